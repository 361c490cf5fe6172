"""Numpy references for every backend's noise kernels: the same counter-based bits, in uint64 arrays
(numpy array arithmetic wraps modulo 2^64 like the kernels), then float64 math."""
import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def mix64(z):
    z = np.asarray(z, np.uint64)
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def noise_key(seed, step, stream=0):
    key = mix64(np.array([seed], np.uint64) + _GAMMA)
    key = mix64(key + np.uint64(step))
    return mix64(key + np.uint64(stream))[0]


def element_bits(key, shape):
    """Bits of every element of an array of ``shape`` (flat C-order index i)."""
    i = np.arange(1, int(np.prod(shape)) + 1, dtype=np.uint64)
    return mix64(np.uint64(key) + i * _GAMMA).reshape(shape)


def keep_mask(key, shape, p):
    """True where an element survives: its top 53 bits are >= p·2^53."""
    return (element_bits(key, shape) >> np.uint64(11)) >= np.uint64(int(p * 2.0 ** 53))


def dropout(x, p, key):
    x = np.asarray(x, np.float64)
    if p == 1.0:
        return np.zeros_like(x)
    return np.where(keep_mask(key, x.shape, p), x / (1.0 - p), 0.0)


def masking_noise(x, p, key):
    x = np.asarray(x, np.float64)
    return np.where(keep_mask(key, x.shape, p), x, 0.0)


def gaussian_noise(x, sigma, key):
    """x + σ·√(−2 ln u₁)·cos(2πu₂), u₁ = (hi32 + 1)/2^32, u₂ = lo32/2^32."""
    bits = element_bits(key, np.shape(x))
    u1 = ((bits >> np.uint64(32)) + np.uint64(1)).astype(np.float64) * 2.0 ** -32
    u2 = (bits & np.uint64(0xFFFFFFFF)).astype(np.float64) * 2.0 ** -32
    return np.asarray(x, np.float64) + sigma * np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)

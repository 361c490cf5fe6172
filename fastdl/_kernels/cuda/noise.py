"""The noise kernels on the GPU, from the CPU backends' counter-based generator
(``random.py``, ``numba/noise.py``): element i of the draw ``key`` gets the bits
mix64(key + (i + 1)·γ), so a seed gives the same dropout and masking masks, bit for bit, on
every backend, and a backward pass recomputes its forward's mask.

    dropout:  out = x·m/(1 − p), m_i = 0 iff the top 53 bits < p·2⁵³ (p = 1: zeros)
    masking:  out = x·m (no rescaling)
    gaussian: out = x + σ √(−2 ln u₁) cos(2π u₂), u₁ = (hi32 + 1)·2⁻³², u₂ = lo32·2⁻³²
A dropped element is exactly 0, also where x is NaN or ±inf. The gaussian draw uses CUDA's cos
and log, so it agrees with the CPU's polynomial ones to rounding, not bit for bit.
"""
import math

import numpy as np

from fastdl._kernels import coefficients as C
from fastdl._kernels.cuda._device import THREADS, blocks, cuda

_GAMMA, _MIX1, _MIX2 = np.uint64(C.GAMMA), np.uint64(C.MIX1), np.uint64(C.MIX2)
_LOW32 = np.uint64(0xFFFFFFFF)
_TWO_POW_53 = 2.0 ** 53
_TWO_POW_M32 = 2.0 ** -32
_MASKED, _GAUSSIAN = 0, 1


@cuda.jit(device=True)
def _element_bits(key, i):
    z = key + (np.uint64(i) + np.uint64(1)) * _GAMMA
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _make_noise(T):
    two_pow_m32 = T(_TWO_POW_M32)

    @cuda.jit
    def noise(kind, x, a, threshold, key, out):
        """masked: out = x·a where kept, else 0; gaussian: out = x + a·n."""
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            bits = _element_bits(key, i)
            if kind == _MASKED:
                kept = np.int64(bits >> np.uint64(11)) >= threshold and a != 0
                out[i] = x[i] * a if kept else T(0.0)
            else:
                u1 = T(np.int64(bits >> np.uint64(32)) + 1) * two_pow_m32
                u2 = T(np.int64(bits & _LOW32)) * two_pow_m32
                out[i] = x[i] + a * (math.sqrt(T(-2.0) * math.log(u1)) * math.cos(T(2 * math.pi) * u2))

    return noise


_NOISE = {np.dtype(t): _make_noise(t) for t in (np.float32, np.float64)}


def _run(kind, x, a, threshold, key, out):
    if x.size:
        flat_x, flat_out = x.reshape(x.size), out.reshape(out.size)
        _NOISE[x.dtype][blocks(x.size), THREADS](kind, flat_x, x.dtype.type(a), np.int64(threshold),
                                                 np.uint64(key), flat_out)


def dropout(x, p, key, out):
    _run(_MASKED, x, 1.0 / (1.0 - p) if p < 1.0 else 0.0, p * _TWO_POW_53, key, out)


def dropout_backward(grad, p, key, out):
    dropout(grad, p, key, out)


def masking_noise(x, p, key, out):
    _run(_MASKED, x, 1.0, p * _TWO_POW_53, key, out)


def gaussian_noise(x, sigma, key, out):
    _run(_GAUSSIAN, x, sigma, 0, key, out)

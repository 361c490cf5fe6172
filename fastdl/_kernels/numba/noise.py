"""Counter-based random numbers and the noise kernels built on them: dropout, masking and
gaussian corruption.

Element i of a draw gets the 64 random bits ``element_bits(key, i) = mix64(key + (i+1)·γ)``
(splitmix64's output function at position i), a pure function of the draw's ``key`` and the
element's flat C-order index. Masks and noise therefore do not depend on the thread count, the
chunking or the dtype, and a backward pass can recompute a forward mask instead of storing it.
``key = fastdl._kernels.random.noise_key(seed, step, stream)`` names one draw: e.g. (run seed,
training step, layer).

Kernels take C-contiguous arrays of any shape and write ``out`` (x's shape and dtype; may be x).
"""

import numpy as np
from numba import prange

from fastdl._kernels import coefficients as C
from fastdl._kernels.numba import vmath
from fastdl._kernels.numba._jit import jit, pjit, specialize
from fastdl._kernels.split import CHUNK, SERIAL_MAX

_GAMMA = np.uint64(C.GAMMA)
_MIX1 = np.uint64(C.MIX1)
_MIX2 = np.uint64(C.MIX2)
_LOW32 = np.uint64(0xFFFFFFFF)
_TWO_POW_53 = 2.0 ** 53
_TWO_POW_M32 = 2.0 ** -32



@jit
def mix64(z):
    """splitmix64's finalizer (Stafford's mix 13): a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@jit
def element_bits(key, i):
    """64 random bits for element i of the draw ``key``."""
    # uint64 throughout: numba turns uint64 (op) int64 into float64
    return mix64(np.uint64(key) + (np.uint64(i) + np.uint64(1)) * _GAMMA)


@jit
def drop_threshold(p):
    """Element i is dropped iff its top 53 bits < this: probability exactly p (to 2^-53)."""
    return np.int64(p * _TWO_POW_53)


@jit
def _kept_scale(bits, scale, threshold):
    """``scale`` where the element is kept, else 0."""
    return scale if np.int64(bits >> np.uint64(11)) >= threshold else type(scale)(0.0)


@jit
def _apply_scale(x, factor):
    """x·factor, and exactly 0 where the factor is 0 (also for NaN/inf x)."""
    return x * factor if factor != type(factor)(0.0) else factor


@jit
def _cos_2pi(u):
    """cos(2πu) for u in [0, 1): cos(2πu) = −sin(2πw) with w = 1/4 − |u − 1/2| in [−1/4, 1/4]."""
    T = type(u)
    w = T(0.25) - abs(u - T(0.5))
    w2 = w * w
    acc = T(C.SIN_2PI[10])
    for k in range(9, -1, -1):
        acc = acc * w2 + T(C.SIN_2PI[k])
    return -(acc * w)


@jit
def _gaussian_draw(bits, sigma, unused):
    """σ·n with n ~ N(0, 1) by Box–Muller on the two 32-bit halves of ``bits``:
    n = √(−2 ln u₁)·cos(2πu₂), u₁ in (0, 1], u₂ in [0, 1) (|n| ≤ 6.7). float32 and float64
    draws share the bits; float32 rounds u₁ to 24 bits, which moves n by < 5e-5 near n = 0."""
    T = type(sigma)
    u1 = T(np.int64(bits >> np.uint64(32)) + 1) * T(_TWO_POW_M32)
    u2 = T(np.int64(bits & _LOW32)) * T(_TWO_POW_M32)
    radius = np.sqrt(T(-2.0) * vmath.log(u1))
    return sigma * (radius * _cos_2pi(u2))


@jit
def _add(x, noise):
    return x + noise


# Kernel templates; _noise_kernel binds DRAW, COMBINE, SPAN and PARALLEL with specialize().
DRAW = COMBINE = SPAN = PARALLEL = None


def _span_template(x, a, b, key, out, offset):
    """The whole of 1-D x and out, elements numbered from ``offset``. Loops run to
    ``out.shape[0]``, which proves every index in bounds: with ``range(start, stop)`` numba's
    negative-index wraparound stayed in, and LLVM kept the loop scalar whenever x and out
    were close in memory or the same array (up to 10x slower)."""
    if x.ctypes.data == out.ctypes.data:
        # in place: name one array only, else LLVM sees the overlap and keeps the loop scalar
        for i in range(out.shape[0]):
            out[i] = COMBINE(out[i], DRAW(element_bits(key, offset + i), a, b))
    else:
        for i in range(out.shape[0]):
            out[i] = COMBINE(x[i], DRAW(element_bits(key, offset + i), a, b))


def _parallel_template(x, a, b, key, out):
    n = x.shape[0]
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        start = chunk * CHUNK
        stop = min(start + CHUNK, n)
        SPAN(x[start:stop], a, b, key, out[start:stop], start)


def _kernel_template(x, a, b, key, out):
    flat_x = x.reshape(x.size)
    flat_out = out.reshape(out.size)
    if x.size > SERIAL_MAX:
        PARALLEL(flat_x, a, b, key, flat_out)
    else:
        SPAN(flat_x, a, b, key, flat_out, 0)


def _noise_kernel(name, draw, combine):
    """``kernel(x, a, b, key, out)``: out_i = combine(x_i, draw(element_bits(key, i), a, b)).

    ``a`` has x's dtype, so the draw does too.
    """
    span = specialize(_span_template, f"{name}_span", jit, DRAW=draw, COMBINE=combine)
    parallel = specialize(_parallel_template, f"{name}_parallel", pjit, SPAN=span)
    return specialize(_kernel_template, name, jit, SPAN=span, PARALLEL=parallel)


_masked_scale = _noise_kernel("_masked_scale", _kept_scale, _apply_scale)
_gaussian = _noise_kernel("_gaussian", _gaussian_draw, _add)


@jit
def dropout(x, p, key, out):
    """Inverted dropout: out = x·m/(1−p) with m_i = 0 with probability p, else 1; p = 1 → zeros.

    The mask is recomputed from ``key``, never stored, so backward needs no buffer: see
    ``dropout_backward``.
    """
    T = x.dtype.type
    scale = T(1.0 / (1.0 - p)) if p < 1.0 else T(0.0)
    _masked_scale(x, scale, drop_threshold(p), key, out)


@jit
def dropout_backward(grad, p, key, out):
    """∂L/∂x = ∂L/∂y·m/(1−p): the forward map applied to the gradient with the same key."""
    dropout(grad, p, key, out)


@jit
def masking_noise(x, p, key, out):
    """Denoising corruption: out = x·m, each element zeroed with probability p (no rescaling)."""
    _masked_scale(x, x.dtype.type(1.0), drop_threshold(p), key, out)


@jit
def gaussian_noise(x, sigma, key, out):
    """Additive gaussian corruption: out = x + σ·N(0, 1), independently per element."""
    _gaussian(x, x.dtype.type(sigma), np.int64(0), key, out)

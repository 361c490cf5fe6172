"""Dropout and input corruption from a counter-based generator.

Every draw is named by ``(seed, step, stream)``: the same triple gives the same mask or noise
on any thread count; change ``step`` every training step and ``stream`` per layer. Element i
(flat C-order index) of a draw is a pure function of the triple and i, so an array's mask does
not depend on how it is computed, only on its size and order.
"""
import operator

import numpy as np

from fastdl._kernels import ops
from fastdl._kernels.random import noise_key
from fastdl._validation import as_float_array, check_out, check_probability, check_real

__all__ = ["dropout", "dropout_backward", "masking_noise", "gaussian_noise"]

_UINT63 = 2 ** 63


def _counter(value, name):
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if not 0 <= value < _UINT63:
        raise ValueError(f"{name} must be in [0, 2**63), got {value}")
    return value


def _prepare(x, name, out, seed, step, stream):
    x = as_float_array(x, name)
    key = noise_key(_counter(seed, "seed"), _counter(step, "step"), _counter(stream, "stream"))
    return x, check_out(out, x.shape, x.dtype, inputs=(x,)), key


def dropout(x, p, *, seed, step, stream=0, training=True, out=None):
    """Inverted dropout: y = x·m/(1−p), m_i = 0 with probability p, else 1 p in [0, 1).

    With ``training=False`` this is the identity: ``x`` is returned (copied into ``out`` if given).
    Dropped elements are exactly 0, whatever x holds there (NaN included).
    """
    p = check_probability(p, "p")
    x, out_arr, key = _prepare(x, "x", out, seed, step, stream)
    if not training:
        if out is None:
            return x
        np.copyto(out_arr, x)
        return out_arr
    ops().dropout(x, p, key, out_arr)
    return out_arr


def dropout_backward(grad, p, *, seed, step, stream=0, out=None):
    """∂L/∂x = ∂L/∂y·m/(1−p), with the mask of the forward call with the same (seed, step, stream)."""
    p = check_probability(p, "p")
    grad, out_arr, key = _prepare(grad, "grad", out, seed, step, stream)
    ops().dropout_backward(grad, p, key, out_arr)
    return out_arr


def masking_noise(x, p, *, seed, step, stream=0, out=None):
    """Masking corruption (denoising autoencoders): each element zeroed with probability p,
    the others unchanged (no rescaling)."""
    p = check_probability(p, "p")
    x, out_arr, key = _prepare(x, "x", out, seed, step, stream)
    ops().masking_noise(x, p, key, out_arr)
    return out_arr


def gaussian_noise(x, sigma, *, seed, step, stream=0, out=None):
    """Gaussian corruption: y = x + σ·n, n_i ~ N(0, 1) independent (Box–Muller, |n| ≤ 6.7)."""
    sigma = check_real(sigma, "sigma", 0.0)
    x, out_arr, key = _prepare(x, "x", out, seed, step, stream)
    ops().gaussian_noise(x, sigma, key, out_arr)
    return out_arr


def _warmup(dtype):
    """Compile the noise kernels for ``dtype`` on tiny inputs (``fastdl.warmup`` calls this)."""
    x = np.zeros((2, 3), dtype)
    for fn in (dropout, dropout_backward, masking_noise):
        fn(x, 0.5, seed=0, step=0)
    gaussian_noise(x, 0.5, seed=0, step=0)

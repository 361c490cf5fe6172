"""The activations on the GPU: device functions for one element, and the kernels of the
``activations`` family over flat arrays (softmax: over the rows of a 2-D array).

The formulas are the README's ("The math") and ``reference/activations.py``'s, computed with
CUDA's libm (``math.exp``, ``math.erfc``, ...) in the arrays' precision. ``derivative`` reads the
input x or the output y, as ``registry.KERNELS[...].grad_from`` says: from y, sigmoid' = y(1 − y),
tanh' = 1 − y², relu' = [y > 0], ELU' = y + α for y ≤ 0. ``scaled(x, w)`` is x·w, and 0 where w
is 0 (−∞·σ(−∞) = 0 for GELU and Swish).
"""
import math

import numpy as np

from fastdl._kernels.cuda import reduce
from fastdl._kernels.cuda._device import THREADS, blocks, cuda
from fastdl._kernels.registry import IDS

(IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, PRELU, ELU, SOFTMAX, GELU, GELU_TANH, SWISH,
 SILU) = (IDS[name] for name in ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu",
                                 "elu", "softmax", "gelu", "gelu_tanh", "swish", "silu"))
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_2U = 2.0 * math.sqrt(2.0 / math.pi)  # 2u = this · (x + 0.044715 x³)


@cuda.jit(device=True)
def _sigmoid(t):
    return 1.0 / (1.0 + math.exp(-t)) if t >= 0 else math.exp(t) / (1.0 + math.exp(t))


@cuda.jit(device=True)
def _scaled(x, w):
    return 0.0 if w == 0 else x * w


@cuda.jit(device=True)
def forward_value(kind, x, p):
    """f(x) for kernel ``kind`` with parameter p (softmax: see softmax_forward)."""
    if kind == SIGMOID:
        return _sigmoid(x)
    if kind == TANH:
        return math.tanh(x)
    if kind == RELU:
        return 0.0 if x < 0 else x
    if kind == LEAKY_RELU or kind == PRELU:
        return p * x if x < 0 else x
    if kind == ELU:
        return x if x > 0 else p * math.expm1(x)
    if kind == GELU:
        return _scaled(x, 0.5 * math.erfc(-x * _SQRT_HALF))
    if kind == GELU_TANH:
        return _scaled(x, _sigmoid(_GELU_TANH_2U * (x + 0.044715 * x * x * x)))
    if kind == SWISH or kind == SILU:
        return _scaled(x, _sigmoid((p if kind == SWISH else 1.0) * x))
    return x


@cuda.jit(device=True)
def derivative(kind, v, p):
    """f' from v: the output y for the kernels whose ``grad_from`` is "output", else the input x."""
    if kind == SIGMOID:
        return v * (1.0 - v)
    if kind == TANH:
        return 1.0 - v * v
    if kind == RELU:
        return 1.0 if v > 0 else 0.0
    if kind == LEAKY_RELU or kind == PRELU:
        return 1.0 if v > 0 else p
    if kind == ELU:
        return 1.0 if v > 0 else v + p
    if kind == GELU:
        pdf = math.exp(-0.5 * v * v) * _INV_SQRT_2PI if abs(v) < 40 else 0.0
        return 0.5 * math.erfc(-v * _SQRT_HALF) + _scaled(v, pdf)
    if kind == GELU_TANH:
        z = _GELU_TANH_2U * (v + 0.044715 * v * v * v)
        dz = _GELU_TANH_2U * (1.0 + 3.0 * 0.044715 * v * v)
        return _sigmoid(z) + _scaled(v * dz, _sigmoid(z) * _sigmoid(-z))
    if kind == SWISH or kind == SILU:
        z = (p if kind == SWISH else 1.0) * v
        return _sigmoid(z) + _scaled(z, _sigmoid(z) * _sigmoid(-z))
    return 1.0


@cuda.jit(device=True)
def param_derivative(kind, x, p):
    """∂f/∂p at x: PReLU's ∂/∂α = x for x ≤ 0; Swish's ∂/∂β = x² σ(βx) σ(−βx); else 0."""
    if kind == PRELU:
        return 0.0 if x > 0 else x
    if kind == SWISH:
        return _scaled(x * x, _sigmoid(p * x) * _sigmoid(-p * x))
    return 0.0


# Flat kernels: element i's parameter is p[i % p.size] (one shared value, or one per feature of
# rows of p.size features).
@cuda.jit
def _forward(kind, x, p, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = forward_value(kind, x[i], p[i % p.size])


@cuda.jit
def _backward(kind, g, v, p, out, dp_terms, learnable):
    """out = g f'(v); with ``learnable`` also dp_terms = g ∂f/∂p (float64; v is x then)."""
    for i in range(cuda.grid(1), g.size, cuda.gridsize(1)):
        pi = p[i % p.size]
        if learnable:
            dp_terms[i] = np.float64(g[i]) * param_derivative(kind, v[i], pi)
        out[i] = g[i] * derivative(kind, v[i], pi)


@cuda.jit
def _feature_sums(terms, sums):
    features = sums.size
    for j in range(cuda.grid(1), features, cuda.gridsize(1)):
        acc = 0.0
        for i in range(j, terms.size, features):
            acc += terms[i]
        sums[j] = acc


def _launch(kernel, n, *args):
    if n:
        kernel[blocks(n), THREADS](*args)


def _as_array(p, dtype):
    """The kernels' p: an array as given (one value, or one per feature), a float as one value."""
    return p if hasattr(p, "shape") else np.full(1, p, dtype)


def activation_forward(kind, x, p, out):
    _launch(_forward, x.size, kind, x, _as_array(p, x.dtype), out)


activation_forward_features = activation_forward  # p one per feature: the same indexing


def activation_backward(kind, g, v, p, out):
    _launch(_backward, g.size, kind, g, v, _as_array(p, g.dtype), out, out, False)


def _param_terms(kind, g, x, p, out):
    terms = cuda.device_array(g.size, np.float64)
    _launch(_backward, g.size, kind, g, x, _as_array(p, g.dtype), out, terms, True)
    return terms


def activation_backward_shared(kind, g, x, p, out):
    return reduce.reduce(reduce.SUM, _param_terms(kind, g, x, p, out))


def activation_backward_features(kind, g, x, p, out):
    sums = cuda.device_array(p.size, np.float64)
    _launch(_feature_sums, p.size, _param_terms(kind, g, x, p, out), sums)
    return sums.copy_to_host()


@cuda.jit(device=True)
def row_max_and_exp_sum(z, r):
    """(m, Σ_c e^{z_rc − m}) of row r, m its maximum, the sum in float64: the pieces of softmax
    and of log-sum-exp."""
    top = z[r, 0]
    for c in range(1, z.shape[1]):
        top = max(top, z[r, c])
    total = 0.0
    for c in range(z.shape[1]):
        total += math.exp(np.float64(z[r, c] - top))
    return top, total


@cuda.jit
def _softmax_rows(z, out):
    """out = e^{z − max} / Σ e^{z − max} per row (out may be z)."""
    rows, cols = z.shape
    for r in range(cuda.grid(1), rows, cuda.gridsize(1)):
        top, total = row_max_and_exp_sum(z, r)
        for c in range(cols):
            out[r, c] = math.exp(np.float64(z[r, c] - top)) / total


@cuda.jit
def _softmax_backward_rows(g, y, out):
    """out = y ⊙ (g − Σ g ⊙ y) per row (out may be g)."""
    rows, cols = g.shape
    for r in range(cuda.grid(1), rows, cuda.gridsize(1)):
        dot = 0.0
        for c in range(cols):
            dot += np.float64(g[r, c]) * y[r, c]
        for c in range(cols):
            out[r, c] = y[r, c] * (g[r, c] - dot)


def softmax_forward(z, out):
    _launch(_softmax_rows, len(z), z, out)


def softmax_backward(g, y, out):
    _launch(_softmax_backward_rows, len(g), g, y, out)

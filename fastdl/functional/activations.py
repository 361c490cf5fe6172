"""Activations and their backward passes, on arrays of any shape (like ``torch.nn.functional``).

Inputs follow fastdl's dtype rule (see ``fastdl._validation``): float32 and float64 keep their
dtype, other real dtypes are converted, non-contiguous arrays are copied once; a ``grad`` is
converted to the dtype of the tensor it pairs with. Results are new arrays, or are written into
``out`` (C-contiguous, right shape and dtype; it may be an input itself, for in-place use). A
caller's array is never written unless passed as ``out``.

Backward functions take the upstream gradient first, then the tensor the derivative is computed
from: the output ``y`` (sigmoid, tanh, relu, elu, softmax) or the input ``x`` (the others), and
return grad ⊙ f'. At the kinks the left derivative is used, as in torch: relu'(0) = 0,
leaky_relu'(0) = negative_slope, prelu'(0) = alpha, elu'(0) = alpha.

PReLU's alpha and Swish's beta are one shared value (a scalar, shape () or (1,)) or one per feature
(shape (F,), F = size of the last axis of x); their backward also returns the parameter's gradient,
shaped like the parameter, summed deterministically (independent of the thread count).
"""
import numpy as np

from fastdl._kernels import ops
from fastdl._kernels.registry import ACTIVATIONS, IDS, check_activation, kernel_name
from fastdl._validation import FLOAT_DTYPES, as_float_array, check_out, check_same_shape

__all__ = [
    "sigmoid", "sigmoid_backward", "tanh", "tanh_backward", "relu", "relu_backward",
    "leaky_relu", "leaky_relu_backward", "prelu", "prelu_backward", "elu", "elu_backward",
    "softmax", "softmax_backward", "gelu", "gelu_backward", "swish", "swish_backward",
    "silu", "silu_backward",
]

_SIGMOID, _TANH, _RELU, _LEAKY_RELU, _ELU, _SILU, _PRELU, _SWISH = (
    IDS[name] for name in ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "silu", "prelu", "swish"))


# ------------------------------------------------------------------------------ shared helpers


# These two run on every call of most functions here and are kept lean (per-call overhead decides
# small-array speed): a float ndarray skips as_float_array, and ravel() both flattens and makes a
# non-contiguous input contiguous (a copy); the kernels cast p themselves.
def _forward(kind, x, p, out):
    if type(x) is not np.ndarray or x.dtype not in FLOAT_DTYPES:
        x = as_float_array(x, "x")
    if out is None:
        out = np.empty(x.shape, x.dtype)
    else:
        check_out(out, x.shape, x.dtype, (x,))
    ops().activation_forward(kind, x.ravel(), p, out.ravel())
    return out


def _backward(kind, grad, v, v_name, p, out):
    if type(v) is not np.ndarray or v.dtype not in FLOAT_DTYPES:
        v = as_float_array(v, v_name)
    if type(grad) is not np.ndarray or grad.dtype != v.dtype:
        grad = as_float_array(grad, "grad", v.dtype)
    if grad.shape != v.shape:
        check_same_shape(grad, "grad", v, v_name)
    if out is None:
        out = np.empty(v.shape, v.dtype)
    else:
        check_out(out, v.shape, v.dtype, (grad, v))
    ops().activation_backward(kind, grad.ravel(), v.ravel(), p, out.ravel())
    return out


def _parameter(x, param, name):
    """``param`` in x's dtype, and whether it is one value per feature (else one shared value)."""
    param = as_float_array(param, name, x.dtype)
    if param.size == 1 and param.ndim <= 1:
        return param, False
    if param.ndim == 1 and x.ndim >= 1 and param.shape[0] == x.shape[-1]:
        return param, True
    raise ValueError(
        f"{name} has shape {param.shape}, but expected one shared value (shape () or (1,)) or one "
        f"per feature (shape ({x.shape[-1] if x.ndim else 1},), the last axis of x {x.shape})")


def _param_forward(kind, x, param, name, out):
    x = as_float_array(x, "x")
    param, per_feature = _parameter(x, param, name)
    if not per_feature:
        return _forward(kind, x, float(param.reshape(-1)[0]), out)
    out = check_out(out, x.shape, x.dtype, (x,))
    ops().activation_forward_features(kind, x.ravel(), param, out.ravel())
    return out


def _param_backward(kind, grad, x, param, name, out):
    x = as_float_array(x, "x")
    grad = as_float_array(grad, "grad", x.dtype)
    check_same_shape(grad, "grad", x, "x")
    param, per_feature = _parameter(x, param, name)
    out = check_out(out, x.shape, x.dtype, (grad, x))
    if not per_feature:
        dparam = ops().activation_backward_shared(kind, grad.ravel(), x.ravel(),
                                                  float(param.reshape(-1)[0]), out.ravel())
    elif param.size:
        dparam = ops().activation_backward_features(kind, grad.ravel(), x.ravel(), param,
                                                    out.ravel())
    else:  # x has an empty last axis
        dparam = np.zeros(0)
    return out, np.asarray(dparam, dtype=x.dtype).reshape(param.shape)


def _gelu_kind(approximate):
    return IDS[kernel_name("gelu", check_activation("gelu", {"approximate": approximate}))]


def _scalar(activation, value, name):
    """The activation's scalar parameter ``name``, checked against the registry's range."""
    return ACTIVATIONS[activation].params[name].check(value, name)


def _rows(a):
    """A 2-D (rows, last axis) view of a C-contiguous array of at least one dimension."""
    if a.ndim == 0:
        raise ValueError("softmax needs an array with at least one axis, got a scalar")
    return a.reshape(-1, a.shape[-1])


# --------------------------------------------------------------------------------- activations


def sigmoid(x, *, out=None):
    """σ(x) = 1 / (1 + e^{-x}), elementwise; exactly 0 / 1 in the far tails."""
    return _forward(_SIGMOID, x, 0.0, out)


def sigmoid_backward(grad, y, *, out=None):
    """grad ⊙ y (1 - y), from the output y = sigmoid(x)."""
    return _backward(_SIGMOID, grad, y, "y", 0.0, out)


def tanh(x, *, out=None):
    """tanh(x), elementwise."""
    return _forward(_TANH, x, 0.0, out)


def tanh_backward(grad, y, *, out=None):
    """grad ⊙ (1 - y²), from the output y = tanh(x)."""
    return _backward(_TANH, grad, y, "y", 0.0, out)


def relu(x, *, out=None):
    """max(x, 0), elementwise (NaN kept)."""
    return _forward(_RELU, x, 0.0, out)


def relu_backward(grad, y, *, out=None):
    """grad where y > 0, else 0 (0 at x = 0, as torch), from the output y = relu(x)."""
    return _backward(_RELU, grad, y, "y", 0.0, out)


def leaky_relu(x, negative_slope=0.01, *, out=None):
    """x for x ≥ 0, negative_slope · x below."""
    return _forward(_LEAKY_RELU, x, _scalar("leaky_relu", negative_slope, "negative_slope"), out)


def leaky_relu_backward(grad, x, negative_slope=0.01, *, out=None):
    """grad for x > 0, negative_slope · grad for x ≤ 0, from the input x."""
    return _backward(_LEAKY_RELU, grad, x, "x", _scalar("leaky_relu", negative_slope, "negative_slope"), out)


def prelu(x, alpha, *, out=None):
    """x for x ≥ 0, alpha · x below; alpha shared (scalar) or one per feature (last axis)."""
    return _param_forward(_PRELU, x, alpha, "alpha", out)


def prelu_backward(grad, x, alpha, *, out=None):
    """(dx, dalpha): dx = grad for x > 0, alpha · grad for x ≤ 0; dalpha = Σ grad · min(x, 0),
    summed over everything (shared alpha) or over all but the last axis (per-feature alpha)."""
    return _param_backward(_PRELU, grad, x, alpha, "alpha", out)


def elu(x, alpha=1.0, *, out=None):
    """x for x > 0, alpha (e^x - 1) otherwise."""
    return _forward(_ELU, x, _scalar("elu", alpha, "alpha"), out)


def elu_backward(grad, y, alpha=1.0, *, out=None):
    """grad for y > 0, grad · (y + alpha) = grad · alpha e^x otherwise, from the output y = elu(x).

    Reading the output needs alpha ≥ 0 (as in torch).
    """
    return _backward(_ELU, grad, y, "y", _scalar("elu", alpha, "alpha"), out)


def softmax(x, *, out=None):
    """e^{x - max} / Σ e^{x - max} over the last axis. A row containing NaN, or only -inf, is NaN."""
    x = as_float_array(x, "x")
    out = check_out(out, x.shape, x.dtype, (x,))
    if x.size:
        ops().softmax_forward(_rows(x), _rows(out))
    return out


def softmax_backward(grad, y, *, out=None):
    """The Jacobian-vector product (diag(y) - y yᵀ) grad = y ⊙ (grad - Σ grad ⊙ y) over the last
    axis, from the output y = softmax(x)."""
    y = as_float_array(y, "y")
    grad = as_float_array(grad, "grad", y.dtype)
    check_same_shape(grad, "grad", y, "y")
    out = check_out(out, y.shape, y.dtype, (grad, y))
    if y.size:
        ops().softmax_backward(_rows(grad), _rows(y), _rows(out))
    return out


def gelu(x, approximate="none", *, out=None):
    """x Φ(x) with Φ the standard normal CDF (exact, via erfc); approximate="tanh" gives
    x (1 + tanh(√(2/π)(x + 0.044715 x³))) / 2, as torch."""
    return _forward(_gelu_kind(approximate), x, 0.0, out)


def gelu_backward(grad, x, approximate="none", *, out=None):
    """grad ⊙ (Φ(x) + x φ(x)) (or the tanh form's derivative), from the input x."""
    return _backward(_gelu_kind(approximate), grad, x, "x", 0.0, out)


def swish(x, beta, *, out=None):
    """x σ(beta x); beta shared (scalar) or one per feature (last axis)."""
    return _param_forward(_SWISH, x, beta, "beta", out)


def swish_backward(grad, x, beta, *, out=None):
    """(dx, dbeta): dx = grad ⊙ (σ(βx) + βx σ(βx) σ(-βx)); dbeta = Σ grad ⊙ x² σ(βx) σ(-βx),
    summed over everything (shared beta) or over all but the last axis (per-feature beta)."""
    return _param_backward(_SWISH, grad, x, beta, "beta", out)


def silu(x, *, out=None):
    """x σ(x) (swish with beta = 1)."""
    return _forward(_SILU, x, 0.0, out)


def silu_backward(grad, x, *, out=None):
    """grad ⊙ (σ(x) + x σ(x) σ(-x)), from the input x."""
    return _backward(_SILU, grad, x, "x", 0.0, out)


def _warmup(dtype):
    """Run every activation kernel once on tiny arrays of ``dtype`` (see ``fastdl.warmup``)."""
    x = np.linspace(-2, 2, 6, dtype=dtype).reshape(2, 3)
    alpha = np.full(3, 0.25, dtype=dtype)
    for forward, backward, reads_output in [
        (sigmoid, sigmoid_backward, True), (tanh, tanh_backward, True), (relu, relu_backward, True),
        (leaky_relu, leaky_relu_backward, False), (elu, elu_backward, True),
        (softmax, softmax_backward, True), (gelu, gelu_backward, False),
        (silu, silu_backward, False),
    ]:
        y = forward(x)
        backward(x, y if reads_output else x)
    gelu_backward(x, gelu(x, "tanh"), "tanh")
    for forward, backward in [(prelu, prelu_backward), (swish, swish_backward)]:
        for param in (alpha, alpha[:1]):
            forward(x, param)
            backward(x, x, param)

"""The dense (fully connected) layer as functions: ``y = f(x Wᵀ + b)`` and its backward pass.

``W`` has shape (n_out, n_in) (PyTorch's ``Linear`` layout; the seed's ``W x`` for a column vector
x), ``b`` shape (n_out,), ``x`` shape (..., n_in) with any leading axes. The weights are taken as
they are: W and b must be C-contiguous arrays of one float dtype (float32 or float64), never
silently converted or copied, and ``x`` must have their dtype (a non-float ``x``, e.g. int, is
converted to it). The computation runs on BLAS GEMMs with the bias and activation fused in.

Activations, by name: identity, sigmoid, tanh, relu, leaky_relu (``negative_slope``, default
0.01), prelu (``alpha``: one shared value or one per output feature, default 0.25), elu (``alpha``,
default 1.0), softmax (over the features), gelu (``approximate`` "none" or "tanh"), swish (``beta``:
shared or per output feature, default 1.0), silu.
"""
import itertools
import math

import numpy as np

from fastdl._kernels import ops
from fastdl._kernels.registry import ACTIVATIONS, IDS, KERNELS, LEARNABLE, check_activation, kernel_name
from fastdl._validation import FLOAT_DTYPES, as_float_array, check_float_dtype, check_out

__all__ = ["dense", "dense_backward"]

_UNUSED_PARAM = {dtype: np.zeros(1, dtype) for dtype in FLOAT_DTYPES}  # read by no kernel
# the kernel's walk over W alternates from call to call (a cache hint; results are the same bits)
_REVERSE = itertools.cycle((False, True))


def _weights(W, b):
    """Check W (n_out, n_in) and b (n_out,) or None; returns (W, b) with b filled in as zeros."""
    if not isinstance(W, np.ndarray) or W.ndim != 2:
        raise ValueError(f"W must be a 2-D numpy array (n_out, n_in), got "
                         f"{W.shape if isinstance(W, np.ndarray) else type(W).__name__}")
    check_float_dtype(W.dtype, "W")
    if not W.flags.c_contiguous:
        raise ValueError("W must be C-contiguous (a transposed or strided view is not); "
                         "pass np.ascontiguousarray(W)")
    if b is None:
        return W, np.zeros(W.shape[0], dtype=W.dtype)
    if not isinstance(b, np.ndarray) or b.shape != (W.shape[0],):
        got = b.shape if isinstance(b, np.ndarray) else type(b).__name__
        raise ValueError(f"b must be a numpy array of shape ({W.shape[0]},) for W of shape "
                         f"{W.shape}, got {got}")
    if b.dtype != W.dtype:
        raise TypeError(f"b has dtype {b.dtype}, but W has dtype {W.dtype}")
    if not b.flags.c_contiguous:
        raise ValueError("b must be C-contiguous; pass np.ascontiguousarray(b)")
    return W, b


def _matching(a, name, W, shape_tail, tail_name):
    """``a`` as a C-contiguous array of W's dtype whose trailing axis is ``shape_tail``."""
    arr = np.asarray(a)
    if arr.dtype in FLOAT_DTYPES and arr.dtype != W.dtype:
        raise TypeError(f"{name} has dtype {arr.dtype}, but W has dtype {W.dtype}")
    arr = as_float_array(arr, name, W.dtype)
    if arr.ndim == 0 or arr.shape[-1] != shape_tail:
        raise ValueError(f"{name} has shape {arr.shape}, but its last axis must be {tail_name} = "
                         f"{shape_tail} for W of shape {W.shape}")
    return arr


def _kernel_and_param(activation, W, params):
    """(kernel name, the activation's parameter as a flat array of size 1 or n_out, its shape).

    A learnable parameter (PReLU's alpha, Swish's beta) may be one value per output feature; a
    scalar one is checked against the registry's range (ELU's alpha >= 0)."""
    if not isinstance(activation, str):
        raise TypeError(f"activation must be a name (str), got {type(activation).__name__}")
    spec = ACTIVATIONS.get(activation)
    keyword = spec.kernel_param if spec else None
    value = params.get(keyword) if keyword else None
    per_feature = value is not None and np.ndim(value) > 0 and KERNELS[spec.kernels[0]].learnable
    checked = check_activation(activation, {k: v for k, v in params.items()
                                            if not (per_feature and k == keyword)})
    kernel = kernel_name(activation, checked)
    if keyword is None:
        return kernel, _UNUSED_PARAM[W.dtype], ()
    p = as_float_array(value, keyword, W.dtype) if per_feature else np.asarray(checked[keyword])
    n_out = W.shape[0]
    if per_feature and p.size != 1 and p.shape != (n_out,):
        raise ValueError(f"{keyword} must be a scalar or shape ({n_out},), got shape {p.shape}")
    return kernel, np.ascontiguousarray(p, dtype=W.dtype).reshape(-1), p.shape


def dense(x, W, b=None, activation="relu", *, out=None, return_preactivation=False,
          **activation_params):
    """y = f(x Wᵀ + b); with ``return_preactivation`` returns (y, z), z = x Wᵀ + b.

    ``out`` receives y (shape (..., n_out), W's dtype, C-contiguous). Keyword arguments beyond
    these are the activation's parameter (see the module docstring).
    """
    W, b = _weights(W, b)
    x = _matching(x, "x", W, W.shape[1], "n_in")
    activation, p, _ = _kernel_and_param(activation, W, activation_params)
    shape = x.shape[:-1] + (W.shape[0],)
    y = check_out(out, shape, W.dtype, (x, W, b), in_place=False)
    z = np.empty(shape, W.dtype) if return_preactivation else y
    rows = math.prod(x.shape[:-1])  # leading axes flattened into one batch axis
    if y.size:
        ops().dense_forward(IDS[activation], x.reshape(rows, -1), W, b, p, z.reshape(rows, -1),
                            y.reshape(rows, -1), next(_REVERSE))
    return (y, z) if return_preactivation else y


def dense_backward(grad, x, W, *, activation="relu", y=None, z=None, need_dx=True, dW=None,
                   db=None, dparam=None, accumulate=False, **activation_params):
    """Gradients of y = f(x Wᵀ + b) from the upstream gradient ``grad`` = ∂L/∂y.

    dz = grad ⊙ f'(·) (softmax: y ⊙ (grad - Σ grad ⊙ y)), dx = dz W, dW = dzᵀ x, db = Σ dz over
    the batch (all leading axes), and for prelu / swish dparam = Σ grad ⊙ ∂f/∂p (per output feature,
    or summed when the parameter is shared). f' is computed from the output ``y`` (sigmoid, tanh,
    relu, elu, softmax, identity) or the pre-activation ``z`` (the others; see
    ``dense(..., return_preactivation=True)``): pass the one the activation needs.

    Returns (dx, dW, db), plus dparam for prelu and swish; dx is None when ``need_dx`` is False.
    dW, db, dparam may be given (C-contiguous, right shape and dtype) to be written into; with
    ``accumulate=True`` the gradients are added to their contents instead (they must be given).
    db and dparam are float64 sums in a fixed order: the same bits whatever the thread count.
    """
    W, _ = _weights(W, None)
    x = _matching(x, "x", W, W.shape[1], "n_in")
    activation, p, p_shape = _kernel_and_param(activation, W, activation_params)
    v_name, v = ("y", y) if KERNELS[activation].grad_from == "output" else ("z", z)
    if v is None:
        source = "the output: pass y" if v_name == "y" else "the pre-activation: pass z"
        raise ValueError(f"the derivative of {activation} is computed from {source}")
    shape = x.shape[:-1] + (W.shape[0],)
    v = _matching(v, v_name, W, W.shape[0], "n_out")
    grad = _matching(grad, "grad", W, W.shape[0], "n_out")
    for arr, name in ((v, v_name), (grad, "grad")):
        if arr.shape != shape:
            raise ValueError(f"{name} has shape {arr.shape}, but x {x.shape} and W {W.shape} give "
                             f"{shape}")
    learnable = activation in LEARNABLE
    if accumulate and (dW is None or db is None or (learnable and dparam is None)):
        raise ValueError("accumulate=True adds into existing gradients: pass dW, db"
                         + (" and dparam" if learnable else ""))
    dW = check_out(dW, W.shape, W.dtype, (x, W, grad, v), name="dW", in_place=False)
    db = check_out(db, (W.shape[0],), W.dtype, (x, W, grad, v, dW), name="db",
                   in_place=False)
    dp = check_out(dparam if learnable else None, p_shape, W.dtype, (x, W, grad, v, dW, db),
                   name="dparam", in_place=False)
    rows = math.prod(x.shape[:-1])
    dx = np.empty(x.shape if need_dx else (0, W.shape[1]), W.dtype)
    grad2 = grad.reshape(rows, W.shape[0])
    ops().dense_backward(IDS[activation], grad2, x.reshape(rows, W.shape[1]), W,
                         v.reshape(rows, W.shape[0]), p, np.empty_like(grad2),
                         dx.reshape(rows if need_dx else 0, W.shape[1]), dW, db, dp.reshape(-1),
                         need_dx, accumulate)
    result = (dx if need_dx else None, dW, db)
    return result + (dp,) if learnable else result


def _warmup(dtype):
    """Compile the dense kernels for ``dtype``: one call per direction compiles every activation."""
    x = np.ones((2, 3), dtype)
    W = np.ones((4, 3), dtype)
    y = dense(x, W, None, "relu")
    dense_backward(y, x, W, activation="relu", y=y)

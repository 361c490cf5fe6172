"""Plain-numpy float64 reference of the dense layer: the specification of every backend's dense kernels.

``p`` is the activation's parameter: a scalar, or one value per output feature (n_out,).
"""
import numpy as np

from fastdl._kernels.reference import activations

#: activation → name of its learnable parameter's ∂f/∂p in the activation reference
_PARAM_GRADS = {"prelu": activations.prelu_dalpha, "swish": activations.swish_dbeta}


def dense(x, W, b, activation, p=0.0):
    """(z, y) with z = x Wᵀ + b and y = f(z)."""
    x, W, b = (np.asarray(a, dtype=np.float64) for a in (x, W, b))
    z = x @ W.T + b
    if activation == "softmax":
        return z, activations.softmax(z)
    return z, activations.FORWARD[activation](z, np.asarray(p, dtype=np.float64))


def dense_backward(g, x, W, b, activation, p=0.0):
    """(dx, dW, db, dp) for y = f(x Wᵀ + b) and upstream gradient g = ∂L/∂y.

    dz = g ⊙ f'(z) (softmax: y ⊙ (g - Σ g ⊙ y)); dx = dz W; dW = dzᵀ x; db = Σ_rows dz;
    dp = Σ_rows g ⊙ ∂f/∂p per feature when p has one value per feature, else summed over all
    (None for activations without a learnable parameter).
    """
    g, x, W = (np.asarray(a, dtype=np.float64) for a in (g, x, W))
    p = np.asarray(p, dtype=np.float64)
    z, y = dense(x, W, b, activation, p)
    if activation == "softmax":
        dz = activations.softmax_backward(g, y)
    else:
        dz = g * activations.DERIVATIVE[activation](z, p)
    dp = None
    if activation in _PARAM_GRADS:
        per_feature = g * _PARAM_GRADS[activation](z, p)
        dp = per_feature.sum(axis=0) if p.ndim == 1 and p.size > 1 else per_feature.sum()
    return dz @ W, dz.T @ x, dz.sum(axis=0), dp

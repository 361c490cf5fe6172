"""Losses: each returns ``(loss, grad)``, the batch loss as a float and ∂loss/∂input.

Reduction, for all three: the loss of one sample is summed over its features (or classes), then
averaged over the N samples of the batch (axis 0). Inputs of shape (N, ...) are treated as N
flattened samples; the gradient has the input's shape and dtype (float32/float64 kept, other
real dtypes follow ``fastdl._validation``). ``grad_out=`` receives the gradient without
allocation; it may be the input array itself (in place, but then the loops stay scalar: slower)
and must not overlap the target.
NaN in an input propagates to the loss and the gradient; no finiteness check is made.
"""
import numpy as np

from fastdl._kernels import ops
from fastdl._validation import as_float_array, check_out, check_same_shape

__all__ = ["mse_loss", "binary_cross_entropy_with_logits", "softmax_cross_entropy"]


def _batch_input(x, name, min_ndim=2):
    arr = as_float_array(x, name)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must be an array of shape (N, features...), got shape {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one sample (N >= 1), got shape {arr.shape}")
    return arr


def _grad_buffer(grad_out, x, target):
    grad = check_out(grad_out, x.shape, x.dtype, inputs=(x,), name="grad_out")
    if grad.size and np.may_share_memory(grad, target):
        raise ValueError("grad_out must not overlap the target")
    return grad


def _rows(arr):
    """(N, ...) C-contiguous → an (N, D) view."""
    return arr.reshape(arr.shape[0], -1)


def _elementwise_loss(kernel, x, x_name, target, grad_out):
    x = _batch_input(x, x_name)
    target = as_float_array(target, "target", dtype=x.dtype)
    check_same_shape(target, "target", x, x_name)
    grad = _grad_buffer(grad_out, x, target)
    row_loss = np.empty(x.shape[0], np.float64)
    loss = getattr(ops(), kernel)(_rows(x), _rows(target), _rows(grad), row_loss)
    return float(loss), grad


def mse_loss(pred, target, *, grad_out=None):
    """Half the squared error per sample, averaged over the batch.

    L = (1/(2N)) Σ_ij (pred_ij − target_ij)²,  ∂L/∂pred = (pred − target)/N.

    This is ½‖x − x̂‖² per sample; ``torch.nn.functional.mse_loss(reduction="mean")`` equals
    2L/D for D features per sample.
    """
    return _elementwise_loss("mse_loss", pred, "pred", target, grad_out)


def binary_cross_entropy_with_logits(logits, target, *, grad_out=None):
    """Binary cross-entropy of σ(logits) against targets in [0, 1], summed per sample, batch mean.

    L = (1/N) Σ_ij max(z,0) − z·t + log1p(e^{−|z|})  (= −t log σ(z) − (1−t) log(1−σ(z))),
    ∂L/∂z = (σ(z) − t)/N.  Stable for any finite logit (±1e4 give exact values).
    ``torch.nn.functional.binary_cross_entropy_with_logits(reduction="sum") / N`` equals L.
    """
    return _elementwise_loss("binary_cross_entropy_with_logits", logits, "logits",
                             target, grad_out)


def softmax_cross_entropy(logits, labels, *, grad_out=None):
    """Cross-entropy of softmax(logits) against class labels, averaged over the batch.

    ``labels``: integer class indices of shape (N,), each in [0, C), or target rows of shape
    (N, C) (one-hot or probabilities; t below, t = onehot(labels) for indices).

    L = −(1/N) Σ_ij t_ij log softmax(z_i)_j,  ∂L/∂z = (softmax(z) − t)/N for rows summing to 1
    (in general (softmax(z)·Σ_j t_ij − t)/N). Equals ``torch.nn.functional.cross_entropy``.
    +inf logits give NaN; a −inf logit has probability 0.
    """
    z = _batch_input(logits, "logits")
    if z.ndim != 2 or z.shape[1] < 1:
        raise ValueError(f"logits must have shape (N, C) with C >= 1 classes, got shape {z.shape}")
    n, n_classes = z.shape
    target = np.asarray(labels)
    if target.ndim == 1:
        if target.dtype.kind not in "iu":
            raise TypeError(f"labels of shape (N,) must be integer class indices, got dtype {target.dtype}")
        if target.shape[0] != n:
            raise ValueError(f"labels has {target.shape[0]} entries, but logits has {n} rows")
        if target.min() < 0 or target.max() >= n_classes:
            raise ValueError(f"labels must lie in [0, {n_classes}) for {n_classes} classes, "
                             f"got values in [{target.min()}, {target.max()}]")
        target = np.ascontiguousarray(target, dtype=np.intp)
        kernel = "softmax_cross_entropy_labels"
    elif target.ndim == 2:
        target = as_float_array(target, "labels", dtype=z.dtype)
        check_same_shape(target, "labels", z, "logits")
        kernel = "softmax_cross_entropy_probs"
    else:
        raise ValueError(f"labels must be class indices (N,) or target rows (N, C), got shape {target.shape}")
    grad = _grad_buffer(grad_out, z, target)
    row_loss = np.empty(n, np.float64)
    return float(getattr(ops(), kernel)(z, target, grad, row_loss)), grad


def _warmup(dtype):
    """Compile every loss kernel for ``dtype`` on tiny inputs (``fastdl.warmup`` calls this)."""
    x = np.zeros((2, 3), dtype)
    mse_loss(x, x)
    binary_cross_entropy_with_logits(x, x)
    softmax_cross_entropy(x, np.zeros(2, np.intp))
    softmax_cross_entropy(x, x)

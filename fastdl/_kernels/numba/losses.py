"""Loss kernels: the loss and its gradient with respect to the input, in one pass.

Every kernel has the form ``loss = kernel(x, target, grad, row_loss)`` over a batch of N rows:
``x`` (N, D) float32/float64 C-contiguous, ``target`` of ``x``'s dtype (or int class indices
(N,) for ``softmax_cross_entropy_labels``). It writes ∂L/∂x into ``grad`` (x's shape and dtype;
may be ``x`` itself, never ``target``), the per-sample loss ℓ_i into ``row_loss`` (N,) float64,
and returns L = (1/N) Σ_i ℓ_i as a float64. No validation and no allocation: the model calls
these every batch with preallocated buffers. In place (grad is x) the loops stay scalar (BCE
~10x slower, measured): hot loops should pass a separate grad buffer.

Each row is reduced by one thread in float64, then the rows are summed in order, so the result
is the same bits for any thread count. Large batches run rows in parallel, small ones serially.
NaN in the input propagates to the loss and to the gradient.
"""
import numpy as np
from numba import prange

from fastdl._kernels.numba import vmath
from fastdl._kernels.numba.activations import row_max
from fastdl._kernels.numba._jit import inline_jit, jit, pjit, specialize
from fastdl._kernels.split import SERIAL_MAX

# Kernel templates; _batch_mean_kernel binds ROW, SERIAL and PARALLEL with specialize().
ROW = SERIAL = PARALLEL = None


def _serial_template(x, target, grad, row_loss, scale):
    for i in range(x.shape[0]):
        row_loss[i] = ROW(x[i], target[i], grad[i], scale)


def _parallel_template(x, target, grad, row_loss, scale):
    for i in prange(x.shape[0]):
        row_loss[i] = ROW(x[i], target[i], grad[i], scale)


def _kernel_template(x, target, grad, row_loss):
    n = x.shape[0]
    scale = x.dtype.type(1.0 / n)
    if x.size > SERIAL_MAX:
        PARALLEL(x, target, grad, row_loss, scale)
    else:
        SERIAL(x, target, grad, row_loss, scale)
    total = 0.0
    for i in range(n):
        total += row_loss[i]
    return total / n


def _batch_mean_kernel(name, row_loss_fn, doc):
    """``kernel(x, target, grad, row_loss)`` -> the batch-mean loss, from
    ``row_loss_fn(x_i, t_i, grad_i, scale)``, which returns the float64 loss ℓ_i of one row and
    writes that row of the gradient of ℓ_i times ``scale`` = 1/N (in x's dtype), i.e. the row of
    ∂L/∂x. Rows are summed in order, so the loss does not depend on the thread count.
    """
    serial = specialize(_serial_template, f"{name}_serial", jit, ROW=row_loss_fn)
    parallel = specialize(_parallel_template, f"{name}_parallel", pjit, ROW=row_loss_fn)
    kernel = specialize(_kernel_template, name, jit, SERIAL=serial, PARALLEL=parallel)
    kernel.__doc__ = doc
    return kernel


@inline_jit
def _mse_row(pred, target, grad, scale):
    """ℓ = ½ Σ_j (p_j − t_j)²; grad_j = (p_j − t_j)·scale."""
    total = 0.0
    for j in range(pred.shape[0]):
        diff = pred[j] - target[j]
        grad[j] = diff * scale
        wide = np.float64(diff)
        total += wide * wide
    return 0.5 * total


@inline_jit
def _bce_with_logits_row(logits, target, grad, scale):
    """ℓ = Σ_j max(z,0) − z·t + log1p(e^{−|z|}); grad_j = (σ(z) − t)·scale.

    One exp serves both the loss and σ(z). ``max(z,0) − z·t`` is formed as |z|·w with
    w = 1 − t (z ≥ 0) or t (z < 0), so nothing cancels at large |z|, and w = 0 gives 0 even
    against an infinite logit. Written with selects only: an if/else here kept LLVM from
    vectorizing the loop (15x slower).
    """
    T = type(scale)
    one = T(1.0)
    zero = T(0.0)
    total = 0.0
    for j in range(logits.shape[0]):
        z = logits[j]
        t = target[j]
        e = vmath.exp(-abs(z))
        inv = one / (one + e)
        positive = z >= zero  # False for NaN, which then propagates through e
        sig = inv if positive else e * inv
        weight = one - t if positive else t
        linear = abs(z) * weight if weight != zero else zero
        grad[j] = (sig - t) * scale
        total += np.float64(linear + vmath.log1p(e))
    return total


@inline_jit
def _shifted_exp_into(logits, m, grad):
    """Write e^{z_j − m} into grad; return s = Σ_j e^{z_j − m} in float64."""
    s = 0.0
    for j in range(logits.shape[0]):
        e = vmath.exp(logits[j] - m)
        grad[j] = e
        s += e
    return s


@inline_jit
def _softmax_xent_label_row(logits, label, grad, scale):
    """ℓ = logsumexp(z) − z_y = (m − z_y) + log s, two terms ≥ 0; grad = (softmax(z) − e_y)·scale.

    z_y is read before grad is written, so grad may be the logits themselves.
    """
    T = type(scale)
    m = row_max(logits)
    gap = np.float64(m) - np.float64(logits[label])
    s = _shifted_exp_into(logits, m, grad)
    factor = T(np.float64(scale) / s)
    for j in range(grad.shape[0]):
        grad[j] *= factor
    grad[label] -= scale
    return gap + vmath.log(s)


@inline_jit
def _softmax_xent_prob_row(logits, target, grad, scale):
    """ℓ = −Σ_j t_j log softmax(z)_j = Σ_j t_j (m − z_j) + τ log s with τ = Σ_j t_j;
    grad = (τ·softmax(z) − t)·scale, which is softmax(z) − t for probability rows (τ = 1).

    Both sums are of non-negative terms when t ≥ 0 (no cancellation for rows like [1e4, 0]);
    a zero t_j contributes 0 even where z_j = −inf. The logits are all read before grad is
    written, so grad may be the logits themselves (not the target).
    """
    T = type(scale)
    m = row_max(logits)
    gap = 0.0
    mass = 0.0
    for j in range(logits.shape[0]):
        t = target[j]
        if t != T(0.0):
            gap += np.float64(t) * np.float64(m - logits[j])
        mass += np.float64(t)
    s = _shifted_exp_into(logits, m, grad)
    factor = T(np.float64(scale) * mass / s)
    for j in range(grad.shape[0]):
        grad[j] = grad[j] * factor - target[j] * scale
    return gap + mass * vmath.log(s)


mse_loss = _batch_mean_kernel(
    "mse_loss", _mse_row,
    "L = (1/(2N)) Σ_ij (p − t)²; ∂L/∂p = (p − t)/N. Row loss ½‖p_i − t_i‖².")
binary_cross_entropy_with_logits = _batch_mean_kernel(
    "binary_cross_entropy_with_logits", _bce_with_logits_row,
    "L = (1/N) Σ_ij max(z,0) − z·t + log1p(e^{−|z|}); ∂L/∂z = (σ(z) − t)/N.")
softmax_cross_entropy_labels = _batch_mean_kernel(
    "softmax_cross_entropy_labels", _softmax_xent_label_row,
    "L = (1/N) Σ_i logsumexp(z_i) − z_{i,y_i}; ∂L/∂z = (softmax(z) − onehot(y))/N; y int (N,).")
softmax_cross_entropy_probs = _batch_mean_kernel(
    "softmax_cross_entropy_probs", _softmax_xent_prob_row,
    "L = −(1/N) Σ_ij t_ij log softmax(z_i)_j; ∂L/∂z = (softmax(z)·Σ_j t_ij − t)/N; t (N, C).")

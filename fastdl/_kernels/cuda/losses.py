"""The losses on the GPU, one thread per row: ℓ_i into ``row_loss`` (float64), ∂L/∂x into
``grad``, and the batch mean L = Σ ℓ_i / N returned (``reduce``: the step's one read-back).

    mse:      ℓ_i = ½ Σ_j (x − t)²,                        ∂L/∂x = (x − t)/N
    bce:      ℓ_i = Σ_j max(x, 0) − x t + log1p(e^{−|x|}),  ∂L/∂x = (σ(x) − t)/N
    softmax cross-entropy, lse_i = log Σ_j e^{x_ij}:
              ℓ_i = Σ_j t_ij (lse_i − x_ij),                ∂L/∂x = (softmax(x_i) Σ_j t_ij − t_ij)/N
    with t the one-hot rows of int labels, or probability rows.
"""
import math

import numpy as np

from fastdl._kernels.cuda import reduce
from fastdl._kernels.cuda.activations import row_max_and_exp_sum
from fastdl._kernels.cuda._device import THREADS, blocks, cuda

_MSE, _BCE, _LABELS, _PROBS = range(4)


@cuda.jit(device=True)
def _target(kind, target, r, c):
    if kind == _LABELS:
        return 1.0 if target[r, 0] == c else 0.0
    return np.float64(target[r, c])


@cuda.jit
def _rows(kind, x, target, grad, row_loss):
    rows, cols = x.shape
    for r in range(cuda.grid(1), rows, cuda.gridsize(1)):
        loss = 0.0
        if kind == _MSE or kind == _BCE:
            for c in range(cols):
                z, t = np.float64(x[r, c]), np.float64(target[r, c])
                if kind == _MSE:
                    loss += 0.5 * (z - t) * (z - t)
                    grad[r, c] = (z - t) / rows
                else:
                    e = math.exp(-abs(z))
                    loss += max(z, 0.0) - z * t + math.log1p(e)
                    grad[r, c] = ((1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)) - t) / rows
        else:
            top, total = row_max_and_exp_sum(x, r)
            lse = math.log(total)
            mass = 0.0
            for c in range(cols):
                t = _target(kind, target, r, c)
                mass += t
                if t != 0:
                    loss -= t * (np.float64(x[r, c] - top) - lse)
            for c in range(cols):
                shifted = np.float64(x[r, c] - top) - lse
                grad[r, c] = (math.exp(shifted) * mass - _target(kind, target, r, c)) / rows
        row_loss[r] = loss


def _loss(kind, x, target, grad, row_loss):
    if len(x):
        _rows[blocks(len(x)), THREADS](kind, x, target, grad, row_loss)
    return reduce.reduce(reduce.SUM, row_loss) / len(x)


def mse_loss(x, target, grad, row_loss):
    return _loss(_MSE, x, target, grad, row_loss)


def binary_cross_entropy_with_logits(x, target, grad, row_loss):
    return _loss(_BCE, x, target, grad, row_loss)


def softmax_cross_entropy_labels(x, target, grad, row_loss):
    return _loss(_LABELS, x, target.reshape(len(target), 1), grad, row_loss)


def softmax_cross_entropy_probs(x, target, grad, row_loss):
    return _loss(_PROBS, x, target, grad, row_loss)

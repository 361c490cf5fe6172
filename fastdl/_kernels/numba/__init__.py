"""The numba backend: JIT kernels, compiled on first use and cached on disk (``_jit.py``).

This module is the backend's side of the kernel interface (``fastdl._kernels.INTERFACE``): it
maps each interface function onto the kernels of ``activations``, ``dense``, ``losses``, ``noise``,
``optimizers`` and ``checks``, which hold the formulas.
"""
import numpy as np

from fastdl._kernels.numba import activations as _act, checks as _checks, dense as _dense, \
    losses as _losses, noise as _noise, optimizers as _opt
from fastdl._kernels.host import (copy, empty, fill, holds, shares_memory, take_rows, to_device,
                                 to_host, transposed, zeros)
from fastdl._kernels.registry import KERNELS

assert tuple(_act.ACTIVATIONS) == tuple(KERNELS), "numba's activation table is out of id order"

# -------------------------------------------------------------------------------------- threads


def set_num_threads(n):
    """Use ``n`` threads for the kernels (numba's setting, per calling Python thread) and for BLAS
    (process-wide, through threadpoolctl)."""
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")


def get_num_threads():
    import numba

    return numba.get_num_threads()


def max_threads():
    import numba

    return numba.config.NUMBA_NUM_THREADS


# ---------------------------------------------------------------------------------- activations
_FORWARD = tuple(act.forward for act in _act.ACTIVATIONS.values())
_BACKWARD = tuple(act.backward for act in _act.ACTIVATIONS.values())
_PARAM = tuple(_act.PARAM_KERNELS.get(name) for name in _act.ACTIVATIONS)


def activation_forward(kind, x, p, out):
    _FORWARD[kind](x, p, out)


def activation_backward(kind, g, v, p, out):
    _BACKWARD[kind](g, v, p, out)


def activation_forward_features(kind, x, p, out):
    _PARAM[kind].forward_features(x, p, out)


def activation_backward_shared(kind, g, x, p, out):
    return _PARAM[kind].backward_shared(g, x, p, out)


def activation_backward_features(kind, g, x, p, out):
    return _PARAM[kind].backward_features(g, x, p, out)


softmax_forward = _act.softmax_forward
softmax_backward = _act.softmax_backward

# ------------------------------------------------------------------------ dense, losses, noise
dense_forward = _dense.dense_forward
dense_backward = _dense.dense_backward
mse_loss = _losses.mse_loss
binary_cross_entropy_with_logits = _losses.binary_cross_entropy_with_logits
softmax_cross_entropy_labels = _losses.softmax_cross_entropy_labels
softmax_cross_entropy_probs = _losses.softmax_cross_entropy_probs
dropout = _noise.dropout
dropout_backward = _noise.dropout_backward
masking_noise = _noise.masking_noise
gaussian_noise = _noise.gaussian_noise

# ----------------------------------------------------------------------------------- optimizers
sgd_step = _opt.sgd_step
momentum_step = _opt.momentum_step
adagrad_step = _opt.adagrad_step
sum_squares = _opt.sum_squares
all_finite = _checks.all_finite


def rmsprop_step(p, g, state, sc, check_finite, centered, with_momentum):
    return _opt.rmsprop_steps[centered, with_momentum](p, g, state, sc, check_finite)


def adam_step(p, g, state, sc, check_finite, amsgrad):
    return _opt.adam_steps[amsgrad](p, g, state, sc, check_finite)


def scale(g, factor):
    _opt.scale_step(g, g, np.empty((0, 0), g.dtype), np.array([factor], g.dtype), False)

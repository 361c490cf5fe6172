"""The cuda backend: numba.cuda kernels on an NVIDIA GPU, optional (``pip install "fastdl[cuda]"``
brings numba-cuda) and never the default: ``fastdl.set_backend("cuda")`` or
``FASTDL_BACKEND=cuda``.

Its arrays are device arrays (``buffers``): a model built on it keeps its parameter arena,
gradients, optimizer state and workspaces in GPU memory for its whole life, a fit copies the data
to the GPU once, and a training step reads back only the loss (and, with ``check_finite``, the
optimizer's finite-gradient flag); ``predict`` and friends return host arrays. The kernels also
take host arrays (the functional layer passes them): each is copied to the GPU and back once per
call (``_accepting_host_arrays``).

The families: ``dense`` (tiled shared-memory GEMMs with the bias + activation epilogue),
``activations``, ``losses``, ``noise`` (the CPU backends' counter-based generator, so a seed gives
the same masks), ``optimizers`` (in place over the flat arena), ``reduce`` (float64 sums in a fixed
order). Importing this package raises ImportError saying why when there is neither a GPU nor
numba's simulator (``_device.py``).
"""
import functools
import os

import numpy as np

from fastdl._kernels import INTERFACE
from fastdl._kernels.cuda._device import SIMULATOR  # noqa: F401  (first: raises when unavailable)
from fastdl._kernels.cuda.activations import (activation_backward, activation_backward_features,
                                              activation_backward_shared, activation_forward,
                                              activation_forward_features, softmax_backward,
                                              softmax_forward)
from fastdl._kernels.cuda.buffers import (copy, empty, fill, holds, shares_memory, take_rows,
                                          to_device, to_host, transposed, zeros)
from fastdl._kernels.cuda.dense import dense_backward, dense_forward
from fastdl._kernels.cuda.losses import (binary_cross_entropy_with_logits, mse_loss,
                                         softmax_cross_entropy_labels, softmax_cross_entropy_probs)
from fastdl._kernels.cuda.noise import dropout, dropout_backward, gaussian_noise, masking_noise
from fastdl._kernels.cuda.optimizers import (adagrad_step, adam_step, all_finite, momentum_step,
                                             rmsprop_step, scale, sgd_step, sum_squares)

_threads = [os.cpu_count() or 1]  # runs no CPU kernels: the count is kept for the next backend


def set_num_threads(n):
    """Kept, not used: the GPU runs the kernels. A backend chosen after this one takes it."""
    _threads[0] = n


def get_num_threads():
    return _threads[0]


def max_threads():
    return os.cpu_count() or 1


def _accepting_host_arrays(kernel):
    """``kernel``, also for numpy arguments: each array is copied to the GPU once, the same array
    once (numba's own per-launch copies would give an array passed twice, as ``out`` and ``z`` say,
    two device copies, the stale one copied back last), and copied back after the call. The
    optimizers' step scalars ``sc`` stay on the host: they are read there."""

    parameters = _PARAMETERS[kernel.__name__]

    @functools.wraps(kernel)
    def run(*args):
        on_device = {}  # id -> (host array, its device copy)
        for name, a in zip(parameters, args):
            if name != "sc" and isinstance(a, np.ndarray) and a.ndim and id(a) not in on_device:
                on_device[id(a)] = (a, to_device(a))
        if not on_device:  # a model's call: device arrays only
            return kernel(*args)
        result = kernel(*(on_device[id(a)][1] if name != "sc" and id(a) in on_device else a
                          for name, a in zip(parameters, args)))
        for host, device in on_device.values():
            if host.flags.writeable:
                device.copy_to_host(host)
        return result

    return run


_PARAMETERS = {name: parameters for family, kernels in INTERFACE.items()
               if family not in ("threads", "buffers") for name, parameters in kernels.items()}
globals().update({name: _accepting_host_arrays(globals()[name]) for name in _PARAMETERS})

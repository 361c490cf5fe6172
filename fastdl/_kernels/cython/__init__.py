"""The Cython backend: C++ kernels compiled when fastdl is installed (``setup.py``), so a fresh
process runs at full speed at once, with no JIT and no cache.

Each family is one extension module: ``_activations``, ``_dense``, ``_losses``, ``_noise``,
``_optimizers`` (the ``.pyx`` files: argument handling, the float32 / float64 dispatch through
fused types, OpenMP ``prange`` over the work split of ``split.py``, BLAS calls) over C++ headers
with the element math (``vmath.hpp``, ``activations.hpp``, ...). Importing this package fails with
ImportError when the extensions were not built; fastdl then runs on numba.
"""
from fastdl._kernels.cython._activations import (activation_backward, activation_backward_features,
                                                 activation_backward_shared, activation_forward,
                                                 activation_forward_features, softmax_backward,
                                                 softmax_forward)
from fastdl._kernels.cython._dense import dense_backward, dense_forward
from fastdl._kernels.cython._losses import (binary_cross_entropy_with_logits, mse_loss,
                                            softmax_cross_entropy_labels,
                                            softmax_cross_entropy_probs)
from fastdl._kernels.cython._noise import dropout, dropout_backward, gaussian_noise, masking_noise
from fastdl._kernels.cython._optimizers import (adagrad_step, adam_step, all_finite, momentum_step,
                                                rmsprop_step, scale, sgd_step, sum_squares)
from fastdl._kernels.host import (copy, empty, fill, holds, shares_memory, take_rows, to_device,
                                 to_host, transposed, zeros)
from fastdl._kernels.cython._threads import get_num_threads, max_threads, openmp
from fastdl._kernels.cython._threads import set_num_threads as _set_kernel_threads


def set_num_threads(n):
    """Use ``n`` OpenMP threads for the kernels (per calling Python thread) and ``n`` for BLAS
    (process-wide, through threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    _set_kernel_threads(n)
    threadpool_limits(limits=n, user_api="blas")

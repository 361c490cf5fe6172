"""Loss kernels of the Cython backend: the interface's "losses" family.

``loss = kernel(x, target, grad, row_loss)`` over a batch of N rows (see ``losses.hpp`` for the
formulas): each row is reduced in float64 by one thread, the rows are then summed in order, so the
result does not depend on the thread count. Batches above SERIAL_MAX elements run rows in
parallel.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from fastdl._kernels.cython.common cimport index_t

from fastdl._kernels import split

cnp.import_array()


cdef extern from "losses.hpp" namespace "fdl" nogil:
    enum LossKind:
        MSE, BCE, XENT_LABELS, XENT_PROBS
    void loss_rows[T](int kind, const T* x, const T* target, const index_t* labels, T* grad,
                      double* row_loss, T scale, index_t r0, index_t r1, index_t d)

cdef index_t SERIAL_MAX = split.SERIAL_MAX


cdef double _batch_mean(int kind, const floating* x, const floating* target, const index_t* labels,
                        floating* grad, double* row_loss, index_t n, index_t d) noexcept nogil:
    cdef floating scale = <floating>(1.0 / n)
    cdef index_t i
    cdef double total = 0.0
    if n * d > SERIAL_MAX:
        for i in prange(n, schedule="static"):
            loss_rows(kind, x, target, labels, grad, row_loss, scale, i, i + 1, d)
    else:
        loss_rows(kind, x, target, labels, grad, row_loss, scale, 0, n, d)
    for i in range(n):
        total += row_loss[i]
    return total / n


cdef double _run(int kind, cnp.ndarray x, cnp.ndarray target, cnp.ndarray grad,
                 cnp.ndarray row_loss):
    cdef index_t n = x.shape[0], d = x.shape[1]
    cdef double* losses = <double*>cnp.PyArray_DATA(row_loss)
    cdef const index_t* labels = <index_t*>cnp.PyArray_DATA(target) if kind == XENT_LABELS else NULL
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        return _batch_mean(kind, <float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(target),
                           labels, <float*>cnp.PyArray_DATA(grad), losses, n, d)
    return _batch_mean(kind, <double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(target),
                       labels, <double*>cnp.PyArray_DATA(grad), losses, n, d)


def mse_loss(cnp.ndarray x, cnp.ndarray target, cnp.ndarray grad, cnp.ndarray row_loss):
    """L = (1/(2N)) Σ_ij (p − t)²; ∂L/∂p = (p − t)/N. Row loss ½‖p_i − t_i‖²."""
    return _run(MSE, x, target, grad, row_loss)


def binary_cross_entropy_with_logits(cnp.ndarray x, cnp.ndarray target, cnp.ndarray grad,
                                     cnp.ndarray row_loss):
    """L = (1/N) Σ_ij max(z,0) − z·t + log1p(e^{−|z|}); ∂L/∂z = (σ(z) − t)/N."""
    return _run(BCE, x, target, grad, row_loss)


def softmax_cross_entropy_labels(cnp.ndarray x, cnp.ndarray target, cnp.ndarray grad,
                                 cnp.ndarray row_loss):
    """L = (1/N) Σ_i logsumexp(z_i) − z_{i,y_i}; ∂L/∂z = (softmax(z) − onehot(y))/N; y intp (N,)."""
    return _run(XENT_LABELS, x, target, grad, row_loss)


def softmax_cross_entropy_probs(cnp.ndarray x, cnp.ndarray target, cnp.ndarray grad,
                                cnp.ndarray row_loss):
    """L = −(1/N) Σ_ij t_ij log softmax(z_i)_j; ∂L/∂z = (softmax(z)·Σ_j t_ij − t)/N."""
    return _run(XENT_PROBS, x, target, grad, row_loss)

"""Activation kernels of the Cython backend: the interface's "activations" family.

The formulas are the element structs of ``activations.hpp``; here arrays are split into the fixed
chunks of ``split.py`` (serial up to SERIAL_MAX elements, OpenMP threads above), so that every
reduction (PReLU's and Swish's parameter gradients) runs in an order set by the size alone.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport free, malloc
from fastdl._kernels.cython.common cimport index_t, is_float32

import numpy as np

from fastdl._kernels import split
from fastdl._kernels.registry import KERNELS

cnp.import_array()


cdef extern from "activations.hpp" namespace "fdl" nogil:
    const char* KIND_NAME "fdl::act::KIND_NAMES"[12]
    int N_KINDS "fdl::act::N_KINDS"
    void activation_forward_chunk[T](int kind, const T* x, T p, T* out, index_t n)
    void activation_backward_chunk[T](int kind, const T* g, const T* v, T p, T* out, index_t n)
    void activation_forward_features_chunk[T](int kind, const T* x, const T* p, T* out,
                                              index_t rows, index_t features)
    double activation_param_sum_chunk[T](int kind, const T* g, const T* x, T p, T* out,
                                         index_t n)
    void activation_param_sum_features_chunk[T](int kind, const T* g, const T* x, const T* p,
                                                T* out, double* acc, index_t rows,
                                                index_t features)
    void softmax_rows_chunk[T](const T* z, T* out, index_t rows, index_t n)
    void softmax_backward_rows_chunk[T](const T* g, const T* y, T* out, index_t rows, index_t n)

if tuple(KIND_NAME[i].decode() for i in range(N_KINDS)) != tuple(KERNELS):
    raise ImportError("the Cython activation kernels were built for another activation table: "
                      "rebuild fastdl (pip install .)")

cdef index_t CHUNK = split.CHUNK
cdef index_t SERIAL_MAX = split.SERIAL_MAX


# ------------------------------------------------------------------------ element-wise maps


cdef void _forward(int kind, const floating* x, floating p, floating* out, index_t n) noexcept nogil:
    cdef index_t c, lo
    if n <= SERIAL_MAX:
        activation_forward_chunk(kind, x, p, out, n)
        return
    for c in prange((n + CHUNK - 1) // CHUNK, schedule="static"):
        lo = c * CHUNK
        activation_forward_chunk(kind, x + lo, p, out + lo, min(CHUNK, n - lo))


cdef void _backward(int kind, const floating* g, const floating* v, floating p, floating* out,
                    index_t n) noexcept nogil:
    cdef index_t c, lo
    if n <= SERIAL_MAX:
        activation_backward_chunk(kind, g, v, p, out, n)
        return
    for c in prange((n + CHUNK - 1) // CHUNK, schedule="static"):
        lo = c * CHUNK
        activation_backward_chunk(kind, g + lo, v + lo, p, out + lo, min(CHUNK, n - lo))


def activation_forward(int kind, cnp.ndarray x, double p, cnp.ndarray out):
    """out = f(x) over flat arrays (``out`` may be ``x``)."""
    cdef index_t n = cnp.PyArray_SIZE(x)
    if is_float32(x):
        _forward(kind, <float*>cnp.PyArray_DATA(x), <float>p, <float*>cnp.PyArray_DATA(out), n)
    else:
        _forward(kind, <double*>cnp.PyArray_DATA(x), p, <double*>cnp.PyArray_DATA(out), n)


def activation_backward(int kind, cnp.ndarray g, cnp.ndarray v, double p, cnp.ndarray out):
    """out = g f'(v) over flat arrays, v the input or the output as the kind reads it."""
    cdef index_t n = cnp.PyArray_SIZE(v)
    if is_float32(v):
        _backward(kind, <float*>cnp.PyArray_DATA(g), <float*>cnp.PyArray_DATA(v), <float>p,
                  <float*>cnp.PyArray_DATA(out), n)
    else:
        _backward(kind, <double*>cnp.PyArray_DATA(g), <double*>cnp.PyArray_DATA(v), p,
                  <double*>cnp.PyArray_DATA(out), n)


# ---------------------------------------------------------- learnable parameters (PReLU, Swish)


cdef void _forward_features(int kind, const floating* x, const floating* p, floating* out,
                            index_t rows, index_t features) noexcept nogil:
    cdef index_t block = max(1, CHUNK // features), c, r0
    if rows * features <= SERIAL_MAX:
        activation_forward_features_chunk(kind, x, p, out, rows, features)
        return
    for c in prange((rows + block - 1) // block, schedule="static"):
        r0 = c * block
        activation_forward_features_chunk(kind, x + r0 * features, p, out + r0 * features,
                                          min(block, rows - r0), features)


def activation_forward_features(int kind, cnp.ndarray x, cnp.ndarray p, cnp.ndarray out):
    """out = f(x, p[j]) over flat rows of p.size features."""
    cdef index_t features = cnp.PyArray_SIZE(p)
    cdef index_t rows = cnp.PyArray_SIZE(x) // features if features else 0
    if is_float32(x):
        _forward_features(kind, <float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(p),
                          <float*>cnp.PyArray_DATA(out), rows, features)
    else:
        _forward_features(kind, <double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(p),
                          <double*>cnp.PyArray_DATA(out), rows, features)


cdef inline double _shared_chunk(index_t c, int kind, const floating* g, const floating* x,
                                 floating p, floating* out, index_t n) noexcept nogil:
    cdef index_t lo = c * CHUNK
    return activation_param_sum_chunk(kind, g + lo, x + lo, p, out + lo, min(CHUNK, n - lo))


cdef double _backward_shared(int kind, const floating* g, const floating* x, floating p,
                             floating* out, index_t n) noexcept nogil:
    # out = g f'(x); Σ g ∂f/∂p in float64: per fixed chunk, then the chunk sums in order.
    # Small arrays stay outside OpenMP: even a serial region costs ~0.35 µs to enter.
    cdef index_t chunks = (n + CHUNK - 1) // CHUNK, c
    cdef double total = 0.0
    cdef double* partial = <double*>malloc(max(chunks, 1) * sizeof(double))
    if n <= SERIAL_MAX:
        for c in range(chunks):
            partial[c] = _shared_chunk(c, kind, g, x, p, out, n)
    else:
        for c in prange(chunks, schedule="static"):
            partial[c] = _shared_chunk(c, kind, g, x, p, out, n)
    for c in range(chunks):
        total += partial[c]
    free(partial)
    return total


def activation_backward_shared(int kind, cnp.ndarray g, cnp.ndarray x, double p, cnp.ndarray out):
    """out = g f'(x); returns Σ g ∂f/∂p (float64, fixed order) for one shared parameter."""
    cdef index_t n = cnp.PyArray_SIZE(x)
    if is_float32(x):
        return _backward_shared(kind, <float*>cnp.PyArray_DATA(g), <float*>cnp.PyArray_DATA(x),
                                <float>p, <float*>cnp.PyArray_DATA(out), n)
    return _backward_shared(kind, <double*>cnp.PyArray_DATA(g), <double*>cnp.PyArray_DATA(x), p,
                            <double*>cnp.PyArray_DATA(out), n)


cdef inline void _features_block(index_t c, index_t block, int kind, const floating* g,
                                 const floating* x, const floating* p, floating* out,
                                 double* partial, index_t rows, index_t features) noexcept nogil:
    cdef index_t r0 = c * block
    activation_param_sum_features_chunk(kind, g + r0 * features, x + r0 * features, p,
                                        out + r0 * features, partial + c * features,
                                        min(block, rows - r0), features)


cdef void _backward_features(int kind, const floating* g, const floating* x, const floating* p,
                             floating* out, double* partial, index_t rows,
                             index_t features) noexcept nogil:
    # each block of rows sums into its own row of partial (zeroed by the caller); small arrays
    # stay outside OpenMP
    cdef index_t block = max(1, CHUNK // features), c
    cdef index_t chunks = (rows + block - 1) // block
    if rows * features <= SERIAL_MAX:
        for c in range(chunks):
            _features_block(c, block, kind, g, x, p, out, partial, rows, features)
    else:
        for c in prange(chunks, schedule="static"):
            _features_block(c, block, kind, g, x, p, out, partial, rows, features)


def activation_backward_features(int kind, cnp.ndarray g, cnp.ndarray x, cnp.ndarray p,
                                 cnp.ndarray out):
    """out = g f'(x, p[j]); returns Σ_rows g ∂f/∂p per feature (float64, fixed order)."""
    cdef index_t features = cnp.PyArray_SIZE(p)
    cdef index_t rows = cnp.PyArray_SIZE(x) // features
    cdef index_t block = max(1, CHUNK // features)
    cdef index_t chunks = (rows + block - 1) // block, c, j
    partial = np.zeros((chunks, features))
    total = np.zeros(features)
    cdef double* sums = <double*>cnp.PyArray_DATA(partial)
    cdef double* out_sums = <double*>cnp.PyArray_DATA(total)
    if is_float32(x):
        _backward_features(kind, <float*>cnp.PyArray_DATA(g), <float*>cnp.PyArray_DATA(x),
                           <float*>cnp.PyArray_DATA(p), <float*>cnp.PyArray_DATA(out), sums,
                           rows, features)
    else:
        _backward_features(kind, <double*>cnp.PyArray_DATA(g), <double*>cnp.PyArray_DATA(x),
                           <double*>cnp.PyArray_DATA(p), <double*>cnp.PyArray_DATA(out), sums,
                           rows, features)
    for c in range(chunks):  # the blocks' sums in order
        for j in range(features):
            out_sums[j] += sums[c * features + j]
    return total


# ---------------------------------------------------------------------------------- softmax


cdef void _softmax(const floating* z, floating* out, index_t rows, index_t n) noexcept nogil:
    cdef index_t block = max(1, CHUNK // max(n, 1)), c, r0
    if rows * n <= SERIAL_MAX:
        softmax_rows_chunk(z, out, rows, n)
        return
    for c in prange((rows + block - 1) // block, schedule="static"):
        r0 = c * block
        softmax_rows_chunk(z + r0 * n, out + r0 * n, min(block, rows - r0), n)


cdef void _softmax_backward(const floating* g, const floating* y, floating* out, index_t rows,
                            index_t n) noexcept nogil:
    cdef index_t block = max(1, CHUNK // max(n, 1)), c, r0
    if rows * n <= SERIAL_MAX:
        softmax_backward_rows_chunk(g, y, out, rows, n)
        return
    for c in prange((rows + block - 1) // block, schedule="static"):
        r0 = c * block
        softmax_backward_rows_chunk(g + r0 * n, y + r0 * n, out + r0 * n, min(block, rows - r0), n)


def softmax_forward(cnp.ndarray z, cnp.ndarray out):
    """Row-wise softmax of a 2-D array."""
    cdef index_t rows = z.shape[0], n = z.shape[1]
    if is_float32(z):
        _softmax(<float*>cnp.PyArray_DATA(z), <float*>cnp.PyArray_DATA(out), rows, n)
    else:
        _softmax(<double*>cnp.PyArray_DATA(z), <double*>cnp.PyArray_DATA(out), rows, n)


def softmax_backward(cnp.ndarray g, cnp.ndarray y, cnp.ndarray out):
    """out = y ⊙ (g - Σ g ⊙ y) per row of 2-D arrays."""
    cdef index_t rows = y.shape[0], n = y.shape[1]
    if is_float32(y):
        _softmax_backward(<float*>cnp.PyArray_DATA(g), <float*>cnp.PyArray_DATA(y),
                          <float*>cnp.PyArray_DATA(out), rows, n)
    else:
        _softmax_backward(<double*>cnp.PyArray_DATA(g), <double*>cnp.PyArray_DATA(y),
                          <double*>cnp.PyArray_DATA(out), rows, n)

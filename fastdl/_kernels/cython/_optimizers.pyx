"""Optimizer steps of the Cython backend: the interface's "optimizers" and "checks" families.

Each step updates the flat parameters, gradient and state in place, over the fixed chunks of
``split.py`` (serial up to SERIAL_MAX elements, OpenMP threads above); with ``check_finite`` a
read-only pass over the gradient runs first and a NaN or inf leaves everything unchanged. The
update rules are ``optimizers.hpp``'s.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport free, malloc
from fastdl._kernels.cython.common cimport index_t, is_float32

from fastdl._kernels import split

cnp.import_array()


cdef extern from "optimizers.hpp" namespace "fdl" nogil:
    enum UpdateKind:
        SGD, MOMENTUM, ADAGRAD, RMSPROP, RMSPROP_MOMENTUM, RMSPROP_CENTERED,
        RMSPROP_CENTERED_MOMENTUM, ADAM, ADAM_AMSGRAD
    void update_chunk[T](int kind, T* p, const T* g, T* state, index_t stride, const T* sc,
                         index_t n)
    bint chunk_is_finite[T](const T* a, index_t n)
    double chunk_sum_squares[T](const T* a, index_t n)
    void scale_chunk[T](T* a, T factor, index_t n)

cdef index_t CHUNK = split.CHUNK
cdef index_t SERIAL_MAX = split.SERIAL_MAX


cdef bint _all_finite(const floating* a, index_t n) noexcept nogil:
    cdef index_t chunks = (n + CHUNK - 1) // CHUNK, c, lo
    cdef bint finite = True
    cdef char* flags
    if n <= SERIAL_MAX:
        return chunk_is_finite(a, n)
    flags = <char*>malloc(chunks)
    for c in prange(chunks, schedule="static"):
        lo = c * CHUNK
        flags[c] = chunk_is_finite(a + lo, min(CHUNK, n - lo))
    for c in range(chunks):
        finite = finite and flags[c]
    free(flags)
    return finite


cdef bint _step(int kind, floating* p, const floating* g, floating* state, const floating* sc,
                index_t n, bint check_finite) noexcept nogil:
    cdef index_t c, lo
    if check_finite and not _all_finite(g, n):
        return False
    if n <= SERIAL_MAX:
        update_chunk(kind, p, g, state, n, sc, n)
        return True
    for c in prange((n + CHUNK - 1) // CHUNK, schedule="static"):
        lo = c * CHUNK
        update_chunk(kind, p + lo, g + lo, state + lo, n, sc, min(CHUNK, n - lo))
    return True


cdef bint _run(int kind, cnp.ndarray p, cnp.ndarray g, cnp.ndarray state, cnp.ndarray sc,
               bint check_finite):
    cdef index_t n = cnp.PyArray_SIZE(p)
    if is_float32(p):
        return _step(kind, <float*>cnp.PyArray_DATA(p), <float*>cnp.PyArray_DATA(g),
                     <float*>cnp.PyArray_DATA(state), <float*>cnp.PyArray_DATA(sc), n,
                     check_finite)
    return _step(kind, <double*>cnp.PyArray_DATA(p), <double*>cnp.PyArray_DATA(g),
                 <double*>cnp.PyArray_DATA(state), <double*>cnp.PyArray_DATA(sc), n,
                 check_finite)


def sgd_step(cnp.ndarray p, cnp.ndarray g, cnp.ndarray state, cnp.ndarray sc, bint check_finite):
    return _run(SGD, p, g, state, sc, check_finite)


def momentum_step(cnp.ndarray p, cnp.ndarray g, cnp.ndarray state, cnp.ndarray sc,
                  bint check_finite):
    return _run(MOMENTUM, p, g, state, sc, check_finite)


def adagrad_step(cnp.ndarray p, cnp.ndarray g, cnp.ndarray state, cnp.ndarray sc,
                 bint check_finite):
    return _run(ADAGRAD, p, g, state, sc, check_finite)


def rmsprop_step(cnp.ndarray p, cnp.ndarray g, cnp.ndarray state, cnp.ndarray sc,
                 bint check_finite, bint centered, bint with_momentum):
    kind = ((RMSPROP_CENTERED_MOMENTUM if with_momentum else RMSPROP_CENTERED) if centered else
            (RMSPROP_MOMENTUM if with_momentum else RMSPROP))
    return _run(kind, p, g, state, sc, check_finite)


def adam_step(cnp.ndarray p, cnp.ndarray g, cnp.ndarray state, cnp.ndarray sc, bint check_finite,
              bint amsgrad):
    return _run(ADAM_AMSGRAD if amsgrad else ADAM, p, g, state, sc, check_finite)


cdef double _sum_squares(const floating* g, index_t n) noexcept nogil:
    # small arrays stay outside OpenMP: even a serial region costs ~0.35 µs to enter
    cdef index_t chunks = (n + CHUNK - 1) // CHUNK, c
    cdef double total = 0.0
    cdef double* partial = <double*>malloc(max(chunks, 1) * sizeof(double))
    if n <= SERIAL_MAX:
        for c in range(chunks):
            partial[c] = chunk_sum_squares(g + c * CHUNK, min(CHUNK, n - c * CHUNK))
    else:
        for c in prange(chunks, schedule="static"):
            partial[c] = chunk_sum_squares(g + c * CHUNK, min(CHUNK, n - c * CHUNK))
    for c in range(chunks):
        total += partial[c]
    free(partial)
    return total


def sum_squares(cnp.ndarray g):
    """Σ g² in float64: per fixed chunk, then the chunk sums in order."""
    if is_float32(g):
        return _sum_squares(<float*>cnp.PyArray_DATA(g), cnp.PyArray_SIZE(g))
    return _sum_squares(<double*>cnp.PyArray_DATA(g), cnp.PyArray_SIZE(g))


cdef void _scale(floating* g, floating factor, index_t n) noexcept nogil:
    cdef index_t c, lo
    if n <= SERIAL_MAX:
        scale_chunk(g, factor, n)
        return
    for c in prange((n + CHUNK - 1) // CHUNK, schedule="static"):
        lo = c * CHUNK
        scale_chunk(g + lo, factor, min(CHUNK, n - lo))


def scale(cnp.ndarray g, double factor):
    """g *= factor, in place."""
    if is_float32(g):
        _scale(<float*>cnp.PyArray_DATA(g), <float>factor, cnp.PyArray_SIZE(g))
    else:
        _scale(<double*>cnp.PyArray_DATA(g), factor, cnp.PyArray_SIZE(g))


def all_finite(cnp.ndarray a):
    """Whether no element of the flat array ``a`` is NaN or ±inf."""
    if is_float32(a):
        return _all_finite(<float*>cnp.PyArray_DATA(a), cnp.PyArray_SIZE(a))
    return _all_finite(<double*>cnp.PyArray_DATA(a), cnp.PyArray_SIZE(a))

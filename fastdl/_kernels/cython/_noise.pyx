"""Dropout and corruption kernels of the Cython backend: the interface's "noise" family.

Every element's draw is a pure function of the key and its flat C-order index (``noise.hpp``),
so the result does not depend on chunks or threads; arrays above SERIAL_MAX elements run in
parallel over the chunks of ``split.py``. ``out`` may be ``x``.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint64_t
from fastdl._kernels.cython.common cimport index_t

from fastdl._kernels import split

cnp.import_array()


cdef extern from "noise.hpp" namespace "fdl" nogil:
    enum NoiseKind:
        MASKED_SCALE, GAUSSIAN
    void noise_chunk[T](int kind, const T* x, T* out, T a, int64_t b, uint64_t key,
                        uint64_t offset, index_t n)
    int64_t drop_threshold(double p)

cdef index_t CHUNK = split.CHUNK
cdef index_t SERIAL_MAX = split.SERIAL_MAX


cdef void _draw(int kind, const floating* x, floating* out, floating a, int64_t b, uint64_t key,
                index_t n) noexcept nogil:
    cdef index_t c, lo
    if n <= SERIAL_MAX:
        noise_chunk(kind, x, out, a, b, key, 0, n)
        return
    for c in prange((n + CHUNK - 1) // CHUNK, schedule="static"):
        lo = c * CHUNK
        noise_chunk(kind, x + lo, out + lo, a, b, key, lo, min(CHUNK, n - lo))


cdef _run(int kind, cnp.ndarray x, double a, int64_t b, uint64_t key, cnp.ndarray out):
    cdef index_t n = cnp.PyArray_SIZE(x)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        _draw(kind, <float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(out), <float>a, b, key, n)
    else:
        _draw(kind, <double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(out), a, b, key, n)


def dropout(cnp.ndarray x, double p, uint64_t key, cnp.ndarray out):
    """Inverted dropout: out = x·m/(1−p), m_i = 0 with probability p, else 1; p = 1 → zeros."""
    _run(MASKED_SCALE, x, 1.0 / (1.0 - p) if p < 1.0 else 0.0, drop_threshold(p), key, out)


def dropout_backward(cnp.ndarray grad, double p, uint64_t key, cnp.ndarray out):
    """∂L/∂x = ∂L/∂y·m/(1−p): the forward map applied to the gradient with the same key."""
    dropout(grad, p, key, out)


def masking_noise(cnp.ndarray x, double p, uint64_t key, cnp.ndarray out):
    """Denoising corruption: out = x·m, each element zeroed with probability p (no rescaling)."""
    _run(MASKED_SCALE, x, 1.0, drop_threshold(p), key, out)


def gaussian_noise(cnp.ndarray x, double sigma, uint64_t key, cnp.ndarray out):
    """Additive gaussian corruption: out = x + σ·N(0, 1), independently per element."""
    _run(GAUSSIAN, x, sigma, 0, key, out)

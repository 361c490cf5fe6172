"""Test shim for ``vmath.hpp``: its element functions over flat arrays, for tests/test_vmath.py
(kernels inline the functions into their own loops and do not use this module)."""
cimport numpy as cnp
from fastdl._kernels.cython.common cimport index_t

cnp.import_array()


cdef extern from "vmath.hpp" namespace "fdl" nogil:
    void vmath_chunk[T](int function, const T* x, T* out, index_t n)

# numbered as fdl::vm::Function
FUNCTIONS = ("exp", "expm1", "log", "log1p", "tanh", "erf", "erfc", "normal_tail",
             "normal_tail_exp")


def evaluate(name, cnp.ndarray x, cnp.ndarray out):
    """out = name(x) for flat contiguous float32 / float64 arrays of one dtype and size
    (``normal_tail`` writes Φ(-t), ``normal_tail_exp`` its e^{-t²/2})."""
    cdef int function = FUNCTIONS.index(name)
    cdef index_t n = cnp.PyArray_SIZE(x)
    if (cnp.PyArray_TYPE(x) != cnp.PyArray_TYPE(out) or cnp.PyArray_SIZE(out) != n
            or not cnp.PyArray_IS_C_CONTIGUOUS(x) or not cnp.PyArray_IS_C_CONTIGUOUS(out)):
        raise ValueError("x and out must be contiguous arrays of one dtype and size")
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            vmath_chunk(function, <const float*>cnp.PyArray_DATA(x),
                        <float*>cnp.PyArray_DATA(out), n)
    elif cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT64:
        with nogil:
            vmath_chunk(function, <const double*>cnp.PyArray_DATA(x),
                        <double*>cnp.PyArray_DATA(out), n)
    else:
        raise TypeError("float32 or float64 arrays only")

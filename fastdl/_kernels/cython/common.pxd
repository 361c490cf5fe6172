# What every module of the Cython backend shares: the index type and the dtype dispatch.
cimport numpy as cnp

ctypedef Py_ssize_t index_t


cdef inline bint is_float32(cnp.ndarray a):
    """Whether a float array is float32 (the kernels take float32 or float64)."""
    return cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32

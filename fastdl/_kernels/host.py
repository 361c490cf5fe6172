"""The ``buffers`` family of the CPU backends: their arrays are numpy arrays in host memory, so
moving one "to the device" or "to the host" is the array itself, and the rest are numpy's own
calls. The cython and numba backends both take these functions."""
import numpy as np


def empty(shape, dtype):
    return np.empty(shape, dtype)


def zeros(shape, dtype):
    return np.zeros(shape, dtype)


def holds(a):
    return isinstance(a, np.ndarray)


def to_device(a):
    return a


def to_host(a):
    return a


def copy(src, dst):
    np.copyto(dst, src)
    return dst


def fill(a, value):
    a.fill(value)


def take_rows(x, idx, out):
    np.take(x, idx, axis=0, out=out, mode="wrap")  # 'wrap' avoids numpy's buffered copy


def transposed(a):
    return a.T


def shares_memory(a, b):
    return np.may_share_memory(a, b)

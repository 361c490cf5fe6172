"""The cuda backend's ``buffers`` family: its arrays are numba device arrays in GPU memory.

Host numpy arrays cross to the GPU only through :func:`to_device` and :func:`copy`, and back only
through :func:`to_host`; everything else stays on the device. On the simulator the device arrays
are numpy arrays in disguise (``FakeCUDAArray``), so its own ``.T`` is already a view.
"""
import numpy as np

from fastdl._kernels.cuda._device import SIMULATOR, THREADS, blocks, cuda


def empty(shape, dtype):
    return cuda.device_array(shape, np.dtype(dtype))


def zeros(shape, dtype):
    a = empty(shape, dtype)
    fill(a, 0)
    return a


def holds(a):
    return bool(getattr(a, "__cuda_ndarray__", False))


def to_device(a):
    return a if holds(a) else cuda.to_device(np.ascontiguousarray(a))


def to_host(a):
    return a.copy_to_host() if holds(a) else a


def copy(src, dst):
    if not holds(src):  # a host array: cast and lay it out like dst first (copy_to_device doesn't)
        src = np.ascontiguousarray(np.broadcast_to(src, dst.shape), dtype=dst.dtype)
    dst.copy_to_device(src)
    return dst


@cuda.jit
def _fill(a, value):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        a[i] = value


def fill(a, value):
    if a.size:
        flat = a.reshape(a.size)
        _fill[blocks(a.size), THREADS](flat, flat.dtype.type(value))


@cuda.jit
def _take_rows(x, idx, out):
    width = out.shape[1]
    for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        r = e // width
        c = e - r * width
        out[r, c] = x[idx[r], c]


def take_rows(x, idx, out):
    if out.size:
        rows = len(x)  # 1-D labels are taken as one-column rows
        _take_rows[blocks(out.size), THREADS](x.reshape(rows, x.size // rows), idx,
                                              out.reshape(len(out), out.size // len(out)))


def transposed(a):
    if SIMULATOR:
        return a.T
    from numba.cuda.cudadrv.devicearray import DeviceNDArray  # not in the simulator

    # numba's own .T copies; a view with the strides swapped reads the same memory
    return DeviceNDArray(shape=a.shape[::-1], strides=a.strides[::-1], dtype=a.dtype,
                         gpu_data=a.gpu_data)


def shares_memory(a, b):
    if SIMULATOR:  # its device arrays wrap numpy arrays
        return np.may_share_memory(a._ary, b._ary)
    a0, b0 = a.device_ctypes_pointer.value, b.device_ctypes_pointer.value
    return a0 < b0 + b.alloc_size and b0 < a0 + a.alloc_size

"""float64 reductions in a fixed order, what the other families' scalars come from.

One block of THREADS threads: thread t adds elements t, t + THREADS, ... in order, then the
partial sums meet in a fixed tree in shared memory. No floating-point atomics, so a sum is the
same bits from run to run.
"""
import math

import numpy as np

from fastdl._kernels.cuda._device import THREADS, cuda

SUM, SQUARES, NON_FINITE = 0, 1, 2  # what is summed: a_i, a_i², 1 where a_i is NaN or ±inf


@cuda.jit
def _reduce(what, a, out):
    partial = cuda.shared.array(THREADS, np.float64)
    t = cuda.threadIdx.x
    acc = 0.0
    for i in range(t, a.size, THREADS):
        v = np.float64(a[i])
        if what == SQUARES:
            acc += v * v
        elif what == NON_FINITE:
            acc += 0.0 if math.isfinite(v) else 1.0
        else:
            acc += v
    partial[t] = acc
    cuda.syncthreads()
    step = THREADS // 2
    while step > 0:
        if t < step:
            partial[t] += partial[t + step]
        cuda.syncthreads()
        step //= 2
    if t == 0:
        out[0] = partial[0]


_out = []  # one float64 device scalar, reused: every call reads it back before the next


def reduce(what, a):
    """Σ over the flat array ``a`` of what ``what`` names, as a Python float (one 8-byte read)."""
    if not _out:
        _out.append(cuda.device_array(1, np.float64))
    _reduce[1, THREADS](what, a.reshape(a.size), _out[0])
    return float(_out[0].copy_to_host()[0])

"""The chunks of element-wise kernels (``split.CHUNK``, ``split.SERIAL_MAX``) as numba code, and a
read-only finite check built on them."""
import numpy as np
from numba import prange

from fastdl._kernels.numba._jit import jit, pjit
from fastdl._kernels.split import CHUNK, SERIAL_MAX


@jit
def _chunk_is_finite(a, lo, hi):
    # x * 0 is 0 for finite x and NaN for NaN/inf; the flags keep NaN semantics, so this is not
    # folded. The zero has a's type: an int literal would widen float32 to float64 (half speed).
    zero = type(a[lo])(0)
    acc = zero
    for i in range(lo, hi):
        acc += a[i] * zero
    return acc == acc


@jit
def chunk_bounds(c, n):
    """(lo, hi) of chunk c of n elements."""
    # unsigned bounds: numba then drops the negative-index wraparound that blocks vectorization
    return np.uint64(c * CHUNK), np.uint64(min(n, c * CHUNK + CHUNK))


@pjit
def all_finite(a):
    """Whether no element of the 1-D array ``a`` is NaN or ±inf (in parallel when large)."""
    n = a.size
    n_chunks = (n + CHUNK - 1) // CHUNK
    if n <= SERIAL_MAX:
        for c in range(n_chunks):
            if not _chunk_is_finite(a, *chunk_bounds(c, n)):
                return False
        return True
    finite = np.empty(n_chunks, dtype=np.bool_)
    for c in prange(n_chunks):
        finite[c] = _chunk_is_finite(a, *chunk_bounds(c, n))
    for c in range(n_chunks):
        if not finite[c]:
            return False
    return True

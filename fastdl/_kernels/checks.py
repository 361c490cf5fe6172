"""Read-only checks over flat arrays, and the fixed chunking that flat-array kernels share.

A flat kernel works in chunks of ``CHUNK`` elements, the same split for any thread count (so
results never depend on it); arrays of at most ``SERIAL_CHUNKS`` chunks stay on the calling
thread, where a parallel launch would cost more than it saves.
"""
import numpy as np
from numba import prange

from fastdl._kernels._jit import jit, pjit

CHUNK = 1 << 14
SERIAL_CHUNKS = 2


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
    if n_chunks <= SERIAL_CHUNKS:
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

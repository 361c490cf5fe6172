"""Hardware baselines shared by the benchmark files."""
from numba import prange

from fastdl._kernels.numba._jit import pjit

_CHUNK = 1 << 16


@pjit
def parallel_copy(src, dst):
    """``dst[:] = src`` for flat arrays, over numba's threads.

    The bandwidth floor of a kernel that reads one array and writes one; ``np.copyto`` runs on one
    thread, so against a 2-thread kernel it is no floor at all.
    """
    n = src.size
    for c in prange((n + _CHUNK - 1) // _CHUNK):
        lo = c * _CHUNK
        hi = min(n, lo + _CHUNK)
        dst[lo:hi] = src[lo:hi]

"""One knob for the two thread pools fastdl uses: the kernel backend's and BLAS's (GEMMs)."""
from fastdl._kernels import ops


def set_num_threads(n):
    """Use ``n`` threads for the kernels and for BLAS.

    The kernels' setting is per calling Python thread (numba's and OpenMP's rule); the BLAS limit
    is process-wide.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    limit = ops().max_threads()
    if not 1 <= n <= limit:
        raise ValueError(f"n must be between 1 and {limit}, got {n}")
    ops().set_num_threads(n)


def get_num_threads():
    """The number of threads the kernels use in the calling thread."""
    return ops().get_num_threads()

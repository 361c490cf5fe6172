"""One knob for the two thread pools fastdl uses: numba's (kernels) and BLAS's (GEMMs)."""
# numba and threadpoolctl are imported on first use: `import fastdl` stays light (~0.2 s saved).


def set_num_threads(n):
    """Use ``n`` threads for numba kernels and for BLAS.

    The numba setting is per calling Python thread (numba's rule); the BLAS limit is process-wide.
    """
    import numba
    from threadpoolctl import threadpool_limits

    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= limit:
        raise ValueError(f"n must be between 1 and {limit} (NUMBA_NUM_THREADS), got {n}")
    numba.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")


def get_num_threads():
    """The number of threads numba kernels use in the calling thread."""
    import numba

    return numba.get_num_threads()

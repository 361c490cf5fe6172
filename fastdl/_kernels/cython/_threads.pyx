"""The Cython backend's threads: OpenMP's, set per calling Python thread as numba's are."""

cdef extern from "threads.hpp" namespace "fdl":
    bint openmp_built()
    void set_threads(int n)
    int get_threads()
    int processors()

#: whether the kernels were built with OpenMP (else they run on the calling thread)
openmp = openmp_built()


def set_num_threads(int n):
    """Run the kernels' parallel loops on ``n`` threads (checked by the caller)."""
    set_threads(n)


def get_num_threads():
    return get_threads()


def max_threads():
    """The most threads a parallel loop may use: the processors OpenMP sees (1 without it)."""
    return processors()

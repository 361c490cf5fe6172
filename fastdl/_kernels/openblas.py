"""The OpenBLAS behind scipy's ``cython_blas``, as every CPU backend's dense kernels need it.

The dense kernels split their work over their own threads and call BLAS single-threaded inside
each task: a multithreaded BLAS pool next to the kernels' pool oversubscribes the cores (OpenBLAS's
idle workers spin for a while after each call; a parallel kernel launched right after a
multithreaded GEMM measured ~7 ms slower on 2 cores). So they set OpenBLAS's thread count to 1 for
the call and restore it: :data:`THREAD_FUNCTIONS` are the addresses of its get / set functions.
"""
import ctypes

import scipy.linalg.cython_blas  # noqa: F401 - loads the library threadpoolctl must see
from threadpoolctl import threadpool_info


def _scipy_openblas():
    """(threadpoolctl's record, ctypes handle) of the OpenBLAS behind scipy's cython_blas, or
    (None, None) for other builds (system OpenBLAS, MKL, Accelerate). pip's scipy bundles OpenBLAS
    with prefixed LP64 symbols (``scipy_openblas_*``); numpy bundles its own ILP64 copy whose path
    also says "scipy_openblas" but whose symbols end in ``64_``: it is told apart by them."""
    for info in threadpool_info():
        if info.get("internal_api") != "openblas" or "scipy" not in info["filepath"]:
            continue
        lib = ctypes.CDLL(info["filepath"])
        if hasattr(lib, "scipy_openblas_get_num_threads"):
            return info, lib
    return None, None


INFO, _LIB = _scipy_openblas()
#: (get, set) addresses of that OpenBLAS's thread-count functions, or None for another BLAS (which
#: then runs with its own thread setting)
THREAD_FUNCTIONS = None if _LIB is None else (
    ctypes.cast(_LIB.scipy_openblas_get_num_threads, ctypes.c_void_p).value,
    ctypes.cast(_LIB.scipy_openblas_set_num_threads, ctypes.c_void_p).value)
#: OpenBLAS's kernel set (threadpoolctl's ``architecture``), e.g. "SkylakeX" or "Haswell"
ARCHITECTURE = None if INFO is None else INFO.get("architecture")
# OpenBLAS's AVX-512 kernel sets run a GEMM without packing, through "small matrix" kernels, when
# M N K <= 10^6 and, for op(A) = Aᵀ, also M N <= 1200 and K >= 32
# (kernel/x86_64/sgemm_small_kernel_permit_skylakex.c; dgemm measured alike).
SMALL_KERNELS = ARCHITECTURE in ("SkylakeX", "Cooperlake", "SapphireRapids")


def small_kernel_columns(m, k):
    """The most columns n with which OpenBLAS runs an (m x k)ᵀ by (k x n) GEMM through its small
    kernels (see SMALL_KERNELS); 0 where it never does."""
    if not SMALL_KERNELS or k < 32 or m < 1:
        return 0
    return min(1200 // m, 1_000_000 // (m * k))

"""What every module of the cuda backend shares: numba's CUDA target, checked once, and the
launch shape of element-wise kernels.

Importing this module raises ImportError saying why when the backend cannot run: numba-cuda is
not installed (``pip install "fastdl[cuda]"``), or there is neither a CUDA GPU nor numba's CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``, which must be set before numba is first imported; it runs
the kernels as Python threads on the CPU, slowly: it is for tests on tiny shapes).
"""
import importlib.util

if importlib.util.find_spec("numba_cuda") is None:
    raise ImportError('numba-cuda is not installed (pip install "fastdl[cuda]")')

from numba import config, cuda  # noqa: E402  (after the check: numba's own cuda is deprecated)

if not cuda.is_available():
    raise ImportError("no CUDA GPU is visible (numba.cuda.is_available() is False); "
                      "NUMBA_ENABLE_CUDASIM=1, set before numba is imported, runs the backend on "
                      "numba's CUDA simulator instead")

#: True when the kernels run on numba's simulator (Python threads on the CPU)
SIMULATOR = bool(config.ENABLE_CUDASIM)
#: threads per block of an element-wise kernel (fewer on the simulator, where each is a Python thread)
THREADS = 256 if not SIMULATOR else 32
#: at most this many blocks; element-wise kernels stride over the rest (grid-stride loops)
MAX_BLOCKS = 4 * 80 if not SIMULATOR else 4


def blocks(n):
    """The number of blocks of :data:`THREADS` for ``n`` elements (at least one)."""
    return max(1, min(MAX_BLOCKS, (n + THREADS - 1) // THREADS))

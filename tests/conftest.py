"""The ``backend`` fixture: a kernel test that takes it (or marks ``usefixtures("backend")``) runs
once on every CPU backend this installation has, with that backend active, like thinc's tests over
all its ops. The cuda backend has its own tests on tiny shapes (tests/test_cuda_*.py): on
numba's simulator these shapes would take hours."""
import os

import pytest

import fastdl
from fastdl import _kernels

BACKENDS = [name for name in fastdl.available_backends() if name in _kernels.CPU_BACKENDS]
#: the directory holding the fastdl under test: child processes start there, so that they import
#: the same one (from the repository root they would import the source tree, whose Cython backend
#: is not built unless the install was editable)
FASTDL_HOME = os.path.dirname(os.path.dirname(os.path.abspath(fastdl.__file__)))
#: numba's CUDA simulator computes the generator's uint64 hashes in numpy scalars, which warn on
#: the wrap-around a GPU does silently
SIMULATOR_WARNINGS = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


def cuda_backend_or_skip():
    """The cuda backend's module; skips the calling test module without numba-cuda, or with
    neither a GPU nor the simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    pytest.importorskip("numba_cuda")
    try:
        return _kernels._load("cuda")
    except ImportError as exc:
        pytest.skip(str(exc), allow_module_level=True)


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The active backend's kernel module, for the duration of the test."""
    previous = fastdl.get_backend()
    fastdl.set_backend(request.param)
    try:
        yield _kernels.ops()
    finally:
        fastdl.set_backend(previous)

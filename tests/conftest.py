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


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The active backend's kernel module, for the duration of the test."""
    previous = fastdl.get_backend()
    fastdl.set_backend(request.param)
    try:
        yield _kernels.ops()
    finally:
        fastdl.set_backend(previous)

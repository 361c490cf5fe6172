"""The ``backend`` fixture: a kernel test that takes it (or marks ``usefixtures("backend")``) runs
once on every backend this installation has, with that backend active, like thinc's tests over
all its ops."""
import pytest

import fastdl
from fastdl import _kernels

BACKENDS = fastdl.available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The active backend's kernel module, for the duration of the test."""
    previous = fastdl.get_backend()
    fastdl.set_backend(request.param)
    try:
        yield _kernels.ops()
    finally:
        fastdl.set_backend(previous)

"""Shared benchmark setup: in every group fastdl (its kernels and BLAS) and torch use the same
threads, and fastdl's rows run on each backend built here, side by side.

``FASTDL_BENCH_THREADS`` sets the count (default 2; use 1 on a machine whose other core is busy).
A row named ``fastdl-<backend>[-<variant>]`` (from :func:`fastdl_impls`) runs with that backend
active; ``variant(impl)`` gives the name without the backend (``fastdl[-<variant>]``), which the
benchmark then dispatches on. Groups without backend rows run on the active backend
(``FASTDL_BACKEND``).
"""
import os

import pytest

import fastdl

try:
    import torch
except ImportError:  # torch rows skip themselves
    torch = None

THREADS = int(os.environ.get("FASTDL_BENCH_THREADS", 2))
BACKENDS = fastdl.available_backends()


def fastdl_impls(*variants):
    """Row names for fastdl on every backend: fastdl_impls("", "out") gives fastdl-cython,
    fastdl-cython-out, fastdl-numba, fastdl-numba-out (the backends built here)."""
    return [f"fastdl-{backend}" + (f"-{v}" if v else "") for backend in BACKENDS for v in variants]


def _split(impl):
    """(backend or None, the impl's name without it)."""
    parts = str(impl).split("-")
    if len(parts) > 1 and parts[0] == "fastdl" and parts[1] in BACKENDS:
        return parts[1], "-".join(parts[:1] + parts[2:])
    return None, impl


def variant(impl):
    return _split(impl)[1]


@pytest.fixture(autouse=True)
def _setup(request):
    backend = _split(getattr(request.node, "callspec", None) and
                     request.node.callspec.params.get("impl"))[0]
    previous = fastdl.get_backend()
    if backend is not None:
        fastdl.set_backend(backend)
    fastdl.set_num_threads(THREADS)
    if torch is not None:
        torch.set_num_threads(THREADS)
    yield
    fastdl.set_backend(previous)

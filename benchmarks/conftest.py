"""Shared benchmark setup: in every group fastdl (its kernels and BLAS) and torch use the same
threads, and fastdl's rows run on each backend built here, side by side.

``FASTDL_BENCH_THREADS`` sets the count (default 2; use 1 on a machine whose other core is busy).
A row named ``fastdl-<backend>[-<variant>]`` (from :func:`fastdl_impls`) runs with that backend
active; ``variant(impl)`` gives the name without the backend (``fastdl[-<variant>]``), which the
benchmark then dispatches on. Groups without backend rows run on the active backend
(``FASTDL_BACKEND``).

``pytest benchmarks --quick`` runs only the rows ``limits.toml`` names, for the regression check
(``ratios.py --check``). :func:`bench_fit` and :func:`bench_predict` time a user's own model or
pipeline (see ``bench_pipeline.py``).
"""
import os
import pathlib

import pytest

import fastdl
from fastdl._kernels import CPU_BACKENDS
from ratios import load_limits, quick_node_ids

try:
    import torch
except ImportError:  # torch rows skip themselves
    torch = None

THREADS = int(os.environ.get("FASTDL_BENCH_THREADS", 2))
BACKENDS = [name for name in fastdl.available_backends() if name in CPU_BACKENDS]  # cuda: bench_cuda.py
LIMITS = pathlib.Path(__file__).with_name("limits.toml")


def pytest_addoption(parser):
    parser.addoption("--quick", action="store_true",
                     help=f"run only the rows {LIMITS.name} checks (each group's fastdl and baseline rows)")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--quick"):
        return
    wanted = quick_node_ids(load_limits(LIMITS), BACKENDS)
    config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in wanted])
    items[:] = [item for item in items if item.nodeid in wanted]


def bench_fit(benchmark, make_model, X, y=None, *, rounds=3, warmup_rows=64, **fit_params):
    """Time ``make_model().fit(X, y, **fit_params)``: a fresh model every round, built outside the
    timing; one fit on the first ``warmup_rows`` rows before, so that first-call costs (numba's
    compilation or cache load, BLAS start-up) stay out. Returns the last fitted model."""
    y_warm = None if y is None else y[:warmup_rows]
    make_model().fit(X[:warmup_rows], y_warm, **fit_params)
    models = []

    def setup():
        models.append(make_model())
        return (models[-1], X, y), fit_params

    benchmark.pedantic(lambda model, X, y, **kw: model.fit(X, y, **kw), setup=setup, rounds=rounds)
    return models[-1]


def bench_predict(benchmark, model, X, method="predict"):
    """Time ``model.<method>(X)`` on a fitted model (one untimed call first); returns its result."""
    getattr(model, method)(X)
    return benchmark(getattr(model, method), X)


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

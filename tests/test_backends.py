"""The kernel seam: every backend provides the whole interface, selection works, and the Cython
backend runs without numba."""
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

import fastdl
from conftest import FASTDL_HOME
from fastdl import _kernels
from fastdl._kernels import BACKENDS, INTERFACE


def _parameters(function):
    function = getattr(function, "py_func", function)  # a numba dispatcher's Python function
    return tuple(inspect.signature(function).parameters)


@pytest.mark.parametrize("name", fastdl.available_backends())
def test_every_backend_keeps_the_interface_signatures(name):
    module = _kernels._load(name)
    for family, kernels in INTERFACE.items():
        for kernel, parameters in kernels.items():
            assert hasattr(module, kernel), f"{name} lacks {family}.{kernel}"
            assert _parameters(getattr(module, kernel)) == parameters, f"{name}.{kernel}"


def test_the_numba_backend_is_always_available():
    assert "numba" in fastdl.available_backends()


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI builds the Cython backend; elsewhere optional")
def test_ci_built_the_cython_backend():
    # without this, a failed build would leave CI testing numba alone, and passing
    error = None
    try:
        _kernels._load("cython")
    except ImportError as exc:
        error = str(exc)
    assert error is None, error
    assert "cython" in fastdl.available_backends()


def test_set_backend_switches_and_carries_the_thread_count():
    previous = fastdl.get_backend()
    threads = fastdl.get_num_threads()
    try:
        for name in fastdl.available_backends():
            fastdl.set_backend(name)
            assert fastdl.get_backend() == name and _kernels.ops() is _kernels._load(name)
            assert fastdl.get_num_threads() == threads
    finally:
        fastdl.set_backend(previous)


def test_unknown_backend_is_a_clear_error_and_changes_nothing():
    previous = fastdl.get_backend()
    with pytest.raises(ValueError, match="backend must be one of"):
        fastdl.set_backend("fortran")
    assert fastdl.get_backend() == previous


def test_models_keep_the_backend_they_were_built_with():
    previous = fastdl.get_backend()
    others = [name for name in fastdl.available_backends() if name != previous]
    if not others:
        pytest.skip("one backend only")
    net = fastdl.MLP([4, 3, 2], seed=0)
    try:
        fastdl.set_backend(others[0])
        assert net.ops is _kernels._load(previous)
        net.fit(np.eye(4, dtype=np.float32), np.array([0, 1, 0, 1]), epochs=1)
    finally:
        fastdl.set_backend(previous)


def _child(code, **env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FASTDL_")}
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", code], env=environment, cwd=FASTDL_HOME,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_fastdl_backend_variable_chooses_the_backend():
    for name in fastdl.available_backends():
        assert _child("import fastdl; print(fastdl.get_backend())", FASTDL_BACKEND=name) == name


def test_the_default_is_cython_when_built():
    expected = "cython" if "cython" in fastdl.available_backends() else "numba"
    assert _child("import fastdl; print(fastdl.get_backend())") == expected


@pytest.mark.skipif("cython" not in fastdl.available_backends(), reason="Cython backend not built")
def test_the_cython_backend_never_imports_numba():
    code = ("import sys, numpy as np, fastdl\n"
            "net = fastdl.StackedAutoencoder([8, 6], 2, corruption=('mask', 0.2), seed=0)\n"
            "X = np.random.default_rng(0).random((20, 8), dtype=np.float32)\n"
            "net.fit(X, np.arange(20) % 2, pretrain_epochs=1, epochs=1)\n"
            "fastdl.warmup(); fastdl.set_num_threads(1)\n"
            "print(fastdl.get_backend(), 'numba' in sys.modules)")
    assert _child(code) == "cython False"


def test_an_unavailable_backend_names_itself():
    if set(fastdl.available_backends()) == set(BACKENDS):
        pytest.skip("every backend is available here")
    missing = next(name for name in BACKENDS if name not in fastdl.available_backends())
    with pytest.raises(ImportError, match=f"{missing} backend is not available"):
        fastdl.set_backend(missing)


def test_the_cuda_backend_without_a_gpu_says_why_and_import_still_works():
    code = ("import fastdl\n"
            "try:\n    fastdl.set_backend('cuda')\nexcept ImportError as exc:\n    print(exc)\n"
            "else:\n    print('available')")
    environment = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    done = subprocess.run([sys.executable, "-c", code], env=environment, cwd=FASTDL_HOME,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    if done.stdout.strip() == "available":
        pytest.skip("a CUDA GPU is visible here")
    assert "cuda backend is not available" in done.stdout
    assert "numba-cuda is not installed" in done.stdout or "no CUDA GPU is visible" in done.stdout
    # the variable is read on first use, not at import
    assert _child("import fastdl; print('imported')", FASTDL_BACKEND="cuda") == "imported"

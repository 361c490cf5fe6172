"""vmath in a parallel loop kernel on 8M float32: fastdl against numpy, torch and a copy.

Run: ``pytest benchmarks/bench_vmath.py --benchmark-min-rounds=5 --benchmark-max-time=0.5``
and read each group's ratios against its ``torch`` and ``copy`` rows. ``fastdl`` is a ``pjit``
kernel ``out[i] = vmath.f(x[i])`` (how activation kernels use vmath), ``fastdl-libm`` the same
loop over ``math.f``, which stays scalar since numba dropped SVML. The copy reads x and writes
out once, as every row does.
"""
import math

import numba
import numpy as np
import pytest
import scipy.special

from fastdl._kernels.numba import vmath
from fastdl._kernels.numba._jit import pjit

torch = pytest.importorskip("torch")

N = 8_000_000
NAMES = ("exp", "tanh", "erf")


def _make_loop(f):
    @pjit
    def loop(x, out):
        for i in numba.prange(x.size):
            out[i] = f(x[i])

    return loop


LOOPS = {name: _make_loop(getattr(vmath, name)) for name in NAMES}
LIBM_LOOPS = {name: _make_loop(getattr(math, name)) for name in NAMES}
NUMPY = {"exp": np.exp, "tanh": np.tanh, "erf": scipy.special.erf}


@pytest.fixture(scope="module")
def data():
    x = np.random.default_rng(0).uniform(-6.0, 6.0, N).astype(np.float32)
    return x, np.empty_like(x)


@pytest.mark.parametrize("impl", ["fastdl", "fastdl-libm", "numpy", "torch", "copy"])
@pytest.mark.parametrize("name", NAMES)
def test_vmath(benchmark, data, name, impl):
    benchmark.group = f"{name} 8M float32"
    x, out = data
    if impl == "fastdl":
        run = LOOPS[name]
        run(x, out)
        benchmark(run, x, out)
        np.testing.assert_allclose(out, NUMPY[name](x.astype(np.float64)), rtol=1e-6, atol=1e-7)
    elif impl == "fastdl-libm":
        run = LIBM_LOOPS[name]
        run(x, out)
        benchmark(run, x, out)
    elif impl == "numpy":
        benchmark(NUMPY[name], x, out=out)
    elif impl == "torch":
        tx, tout = torch.from_numpy(x), torch.from_numpy(out)
        benchmark(getattr(torch, name), tx, out=tout)
    else:
        benchmark(np.copyto, out, x)

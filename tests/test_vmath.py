"""vmath against float64 / long-double references, called from loop kernels compiled with the
project's fast-math ``jit`` (how kernels use them), plus a check that those loops vectorize."""
import re
import warnings

import numpy as np
import pytest

from fastdl._kernels import vmath
from fastdl._kernels._jit import jit

FUNCTIONS = ("exp", "expm1")


def _make_loop(f):
    @jit
    def loop(x, out):
        for i in range(x.size):
            out[i] = f(x[i])

    return loop


LOOPS = {name: _make_loop(getattr(vmath, name)) for name in FUNCTIONS}


def _reference(name, x):
    """Float64 reference for float32 inputs, long double for float64 inputs."""
    wide = x.astype(np.float64 if x.dtype == np.float32 else np.longdouble)
    with np.errstate(all="ignore"):
        return getattr(np, name)(wide)


def _sweep(dtype, lo, hi, n=100_000):
    """Linear and logarithmic points over [lo, hi], both signs of the magnitudes, specials."""
    tiny = np.finfo(dtype).smallest_subnormal
    magnitudes = np.geomspace(tiny, max(abs(lo), abs(hi)), n)
    x = np.concatenate([np.linspace(lo, hi, n), magnitudes, -magnitudes,
                        [0.0, -0.0, 1e4, -1e4, np.inf, -np.inf, np.nan]])
    with np.errstate(over="ignore"):
        return x.astype(dtype)


def _run(name, x):
    out = np.empty_like(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            LOOPS[name](x, out)
    return out


def _max_ulp_error(out, ref):
    """Max error in ulp of the rounded reference over the finite non-zero references (a float64
    ulp is a relative error of at most 2.2e-16); non-finite and zero references match exactly."""
    dtype = out.dtype
    with np.errstate(over="ignore"):
        rounded = ref.astype(dtype)
    regular = np.isfinite(rounded) & (rounded != 0)
    exact = out[~regular]
    np.testing.assert_array_equal(exact, rounded[~regular])
    np.testing.assert_array_equal(np.signbit(exact), np.signbit(rounded[~regular]))
    diff = np.abs(out[regular].astype(ref.dtype) - ref[regular])
    return float(np.max(diff / np.spacing(np.abs(rounded[regular])).astype(ref.dtype)))


# name: (float32 sweep range, max ulp float32, max ulp float64); float64 sweeps 8x wider
CASES = {
    "exp": ((-110.0, 90.0), 1.0, 1.0),
    "expm1": ((-40.0, 90.0), 1.5, 2.0),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_accuracy_and_specials(name, dtype):
    (lo, hi), ulp32, ulp64 = CASES[name]
    if dtype == np.float64:
        lo, hi = 8 * lo, 8 * hi
    x = _sweep(dtype, lo, hi)
    error = _max_ulp_error(_run(name, x), _reference(name, x))
    assert error <= (ulp32 if dtype == np.float32 else ulp64), error


def test_exp_limits():
    for dtype in (np.float32, np.float64):
        info = np.finfo(dtype)
        x = np.array([np.log(info.max) * 0.9999999, np.log(info.max) * 1.0001,
                      np.log(info.smallest_subnormal) * 0.99, np.log(info.smallest_subnormal) * 1.01],
                     dtype)
        out = _run("exp", x)
        assert np.isfinite(out[0]) and out[0] > info.max / 2
        assert out[1] == np.inf
        assert 0 < out[2] < info.smallest_normal
        assert out[3] == 0


@pytest.mark.parametrize("name", ["exp"])
def test_loop_vectorizes(name):
    x = np.ones(4, np.float32)
    _run(name, x)
    llvm_ir = LOOPS[name].inspect_llvm(LOOPS[name].signatures[0])
    assert re.search(r"<\d+ x float>", llvm_ir), f"{name} loop did not vectorize"

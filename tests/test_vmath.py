"""vmath against wider-precision references, called from loop kernels compiled with the project's
fast-math ``jit`` (how kernels use them), plus checks that those loops vectorize and that the
inlined code keeps vmath's own fast-math flags. The accuracy and specials tests also run on the
Cython backend's port, ``vmath.hpp``, through its test shim ``_vmath.evaluate`` (skipped when that
extension is not built), against the same limits.

Errors are in ulp of the correctly rounded result (for float64 one ulp is a relative error of at
most 2.2e-16). References: float64 numpy / scipy for float32 inputs; long double numpy for float64
exp, expm1, log, log1p, tanh; mpmath for float64 erf and erfc (scipy's float64 erfc is off by
hundreds of ulp in the far tail).
"""
import glob
import importlib
import importlib.machinery
import importlib.util
import os
import re
import subprocess
import sys
import warnings

import mpmath
import numpy as np
import pytest
import scipy.special

from fastdl._kernels.numba import vmath
from fastdl._kernels.numba._jit import jit

FUNCTIONS = ("exp", "expm1", "log", "log1p", "tanh", "erf", "erfc")


def _make_loop(f, decorator=jit):
    @decorator
    def loop(x, out):
        for i in range(x.size):
            out[i] = f(x[i])

    return loop


LOOPS = {name: _make_loop(getattr(vmath, name)) for name in FUNCTIONS}
BACKENDS = ("numba", "cython")


def _load_cython_vmath():
    """The Cython test shim, or None when it is not built. Loaded from its file when the package
    ``fastdl._kernels.cython`` itself does not import (another of its extensions missing)."""
    name = "fastdl._kernels.cython._vmath"
    try:
        return importlib.import_module(name)
    except ImportError:
        pass
    folder = os.path.join(os.path.dirname(vmath.__file__), os.pardir, "cython")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for path in glob.glob(os.path.join(folder, "_vmath" + suffix)):
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except ImportError:
                continue
            return module
    return None


CYTHON_VMATH = _load_cython_vmath()

# name: (float32 sweep range, max ulp float32, max ulp float64); float64 sweeps 4x wider
CASES = {
    "exp": ((-110.0, 90.0), 1.0, 1.0),
    "expm1": ((-40.0, 90.0), 1.5, 2.0),
    "log": ((0.0, 100.0), 1.0, 1.0),
    "log1p": ((-1.0, 100.0), 1.0, 1.0),
    "tanh": ((-12.0, 12.0), 5.5, 3.0),
    "erf": ((-12.0, 12.0), 1.5, 1.5),
    "erfc": ((-12.0, 12.0), 5.5, 3.0),
}


def _sweep(dtype, lo, hi, n):
    """Evenly spaced points over [lo, hi], log-spaced magnitudes of both signs from the smallest
    subnormal, and the specials."""
    magnitudes = np.geomspace(np.finfo(dtype).smallest_subnormal, max(abs(lo), abs(hi)), n)
    x = np.concatenate([np.linspace(lo, hi, n), magnitudes, -magnitudes,
                        [0.0, -0.0, 1.0, -1.0, 1e4, -1e4, np.inf, -np.inf, np.nan]])
    with np.errstate(over="ignore"):
        return x.astype(dtype)


def _reference(name, x):
    """The function at x in wider precision (an object array of mpmath numbers for float64 erf,
    erfc)."""
    if x.dtype == np.float32:
        wide = x.astype(np.float64)
        f = getattr(scipy.special, name) if name in ("erf", "erfc") else getattr(np, name)
    elif name in ("erf", "erfc"):
        with mpmath.workdps(30):
            f = getattr(mpmath, name)
            return np.array([f(mpmath.mpf(float(v))) if np.isfinite(v) and v != 0
                             else _exact(name, float(v)) for v in x], dtype=object)
    else:
        wide, f = x.astype(np.longdouble), getattr(np, name)
    with np.errstate(all="ignore"):
        return f(wide)


def _exact(name, v):
    """erf / erfc at ±0, ±inf and NaN, signed zeros kept (mpmath has no -0.0)."""
    if np.isnan(v) or v == 0:
        return {"erf": v, "erfc": 1.0 + v}[name]
    return {"erf": np.sign(v), "erfc": 1.0 - np.sign(v)}[name]


def _run(name, x, backend="numba"):
    """vmath's ``name`` over x on a backend (cython: the shim, which also has normal_tail)."""
    out = np.empty_like(x)
    if backend == "cython" and CYTHON_VMATH is None:
        pytest.skip("the Cython extension _vmath is not built")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            if backend == "cython":
                CYTHON_VMATH.evaluate(name, np.ascontiguousarray(x), out)
            else:
                LOOPS[name](x, out)
    return out


def _max_ulp_error(out, ref):
    """Max |out - ref| in ulp of the rounded reference over the finite references; infinite and
    NaN references, and the sign of zero results, must match exactly."""
    dtype = out.dtype
    with np.errstate(over="ignore"):
        rounded = np.array([float(v) for v in ref] if ref.dtype == object else ref).astype(dtype)
    finite = np.isfinite(rounded)
    np.testing.assert_array_equal(out[~finite], rounded[~finite])
    zero = rounded == 0
    np.testing.assert_array_equal(np.signbit(out[zero]), np.signbit(rounded[zero]))
    ulp = np.spacing(np.abs(rounded[finite]))
    if ref.dtype == object:
        pairs = zip(out[finite], ref[finite])
        diff = np.array([float(abs(mpmath.mpf(float(o)) - r)) for o, r in pairs])
    else:
        diff = np.abs(out[finite].astype(ref.dtype) - ref[finite])
    return float(np.max(diff / ulp.astype(diff.dtype)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_accuracy_and_specials(name, dtype, backend):
    (lo, hi), ulp32, ulp64 = CASES[name]
    if dtype == np.float32:
        x = _sweep(dtype, lo, hi, 200_000)
    elif name in ("erf", "erfc"):  # mpmath is slow: fewer points, out to where erfc underflows
        x = _sweep(dtype, -28.0, 28.0, 1500)
    else:
        x = _sweep(dtype, 4 * lo, 4 * hi, 200_000)
    error = _max_ulp_error(_run(name, x, backend), _reference(name, x))
    assert error <= (ulp32 if dtype == np.float32 else ulp64), error


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_limits(dtype, backend):
    info = np.finfo(dtype)
    big = np.array([np.log(info.max) * 0.99999, np.log(info.max) * 1.0001], dtype)
    assert np.isfinite(_run("exp", big, backend)[0]) and _run("exp", big, backend)[1] == np.inf
    x = np.array([-np.inf, -1e4, -1.0, -0.0, 0.0, 1e4, np.inf, np.nan], dtype)
    nan, inf = np.nan, np.inf
    expected = {
        "exp": [0.0, 0.0, np.exp(-1.0), 1.0, 1.0, inf, inf, nan],
        "expm1": [-1.0, -1.0, np.expm1(-1.0), -0.0, 0.0, inf, inf, nan],
        "log": [nan, nan, nan, -inf, -inf, np.log(1e4), inf, nan],
        "log1p": [nan, nan, -inf, -0.0, 0.0, np.log1p(1e4), inf, nan],
        "tanh": [-1.0, -1.0, np.tanh(-1.0), -0.0, 0.0, 1.0, 1.0, nan],
        "erf": [-1.0, -1.0, scipy.special.erf(-1.0), -0.0, 0.0, 1.0, 1.0, nan],
        "erfc": [2.0, 2.0, scipy.special.erfc(-1.0), 1.0, 1.0, 0.0, 0.0, nan],
    }
    for name, values in expected.items():
        out = _run(name, x, backend)
        want = np.array(values, dtype)
        np.testing.assert_allclose(out, want, rtol=2 * info.eps, atol=0, err_msg=name)
        np.testing.assert_array_equal(np.signbit(out), np.signbit(want), err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gelu_tail_keeps_relative_accuracy(backend):
    """0.5 x erfc(-x/√2) for very negative x: tiny but accurate (erfc's e^{-x²} split)."""
    for dtype, x in ((np.float32, np.linspace(-13.0, -5.0, 50)),
                     (np.float64, np.linspace(-37.0, -10.0, 50))):
        z = (-x / np.sqrt(2.0)).astype(dtype)
        out = _run("erfc", z, backend)
        with mpmath.workdps(30):
            ref = np.array([float(mpmath.erfc(mpmath.mpf(float(v)))) for v in z])
        nonzero = ref.astype(dtype) > np.finfo(dtype).smallest_normal
        assert nonzero.sum() > 30
        np.testing.assert_allclose(out[nonzero], ref[nonzero], rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize(("name", "dtype"), [(name, np.float32) for name in
                                             ("exp", "tanh", "log1p", "erf", "erfc")]
                         + [("erf", np.float64), ("erfc", np.float64)])
def test_loop_vectorizes(name, dtype):
    loop = _make_loop(getattr(vmath, name), jit(cache=False))  # a cached kernel has no IR to show
    x = np.ones(4, dtype)
    loop(x, np.empty_like(x))
    llvm_ir = loop.inspect_llvm(loop.signatures[0])
    element = "float" if dtype == np.float32 else "double"
    assert re.search(rf"<\d+ x {element}>", llvm_ir), f"the {name} loop did not vectorize"
    # the loop itself does no arithmetic: every float op is vmath's, with vmath's own flags
    assert " reassoc " not in llvm_ir and " contract " in llvm_ir


_AVX2_ONLY = ("+64bit,+avx,+avx2,+fma,+f16c,+popcnt,+bmi,+bmi2,+lzcnt,+movbe,+cx16,+sse4.2,+sse4.1,"
              "+ssse3,+sse3,+sse2,+sse,-avx512f,-avx512vl,-avx512bw,-avx512dq")
_NO_FMA = "+64bit,+avx,+popcnt,+cx16,+sse4.2,+sse4.1,+ssse3,+sse3,+sse2,+sse,-fma,-avx2,-avx512f"


def _run_for_target(tmp_path, cpu, features, name, x):
    """vmath's ``name`` over x, compiled in a subprocess for another CPU (numba's cache is keyed by
    CPU features, so the builds never mix)."""
    script = (
        "import sys, numpy as np\n"
        "from test_vmath import LOOPS\n"
        "x = np.load(sys.argv[2])\n"
        "out = np.empty_like(x)\n"
        "LOOPS[sys.argv[1]](x, out)\n"
        "np.save(sys.argv[3], out)\n")
    source, result = tmp_path / "x.npy", tmp_path / "out.npy"
    np.save(source, x)
    env = dict(os.environ, NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES=features,
               NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=os.path.dirname(__file__))
    subprocess.run([sys.executable, "-c", script, name, str(source), str(result)],
                   env=env, check=True, timeout=300)
    return np.load(result)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ldexp_paths_agree(tmp_path, dtype):
    """exp's 2^k scaling has two code paths (one vscalef with AVX-512, bit-cast exponents without):
    an AVX2 build gives the same bits at the edges (overflow, subnormals, NaN)."""
    edges = {np.float32: [-104.0, -103.0, -95.5, -87.4, -1.0, 0.0, 88.7, 88.8, np.inf, np.nan],
             np.float64: [-746.0, -745.0, -720.5, -708.5, -1.0, 0.0, 709.7, 709.8, np.inf, np.nan]}
    x = np.array(edges[dtype], dtype)
    there = _run_for_target(tmp_path, "haswell", _AVX2_ONLY, "exp", x)
    assert _run("exp", x).view(f"u{x.itemsize}").tolist() == there.view(f"u{x.itemsize}").tolist()


def test_square_split_without_fma(tmp_path):
    """erfc's exact a² has two code paths (an FMA's rounding error, or a split into halves on CPUs
    without FMA): the build without FMA stays accurate. Its polynomials round every product too,
    which costs erfc 0.6 ulp (5.63 measured), hence the looser bound."""
    (lo, hi), ulp32, _ = CASES["erfc"]
    x = _sweep(np.float32, lo, hi, 20_000)
    there = _run_for_target(tmp_path, "sandybridge", _NO_FMA, "erfc", x)
    assert _max_ulp_error(there, _reference("erfc", x)) <= ulp32 + 0.5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_stays_within_one(dtype, backend):
    """|tanh| <= 1 everywhere (the backward's 1 - y² must not turn negative): float32's rational
    rounds past 1 by an ulp near |x| = 6 unless clamped."""
    x = np.linspace(-12.0, 12.0, 2_000_001).astype(dtype)
    assert np.abs(_run("tanh", x, backend)).max() <= 1.0


@jit
def _normal_tail_loop(t, tail, e):
    for i in range(t.size):
        tail[i], e[i] = vmath.normal_tail(t[i])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_tail(dtype, backend):
    """(Φ(-t), e^{-t²/2}) for t >= 0 with relative accuracy down to underflow (GELU's tail), 0 for
    NaN (the clamp) and +inf."""
    top = 14.0 if dtype == np.float32 else 38.5
    t = np.concatenate([np.linspace(0.0, top, 3000), [np.inf, np.nan]]).astype(dtype)
    if backend == "cython":
        tail, e = _run("normal_tail", t, backend), _run("normal_tail_exp", t, backend)
    else:
        tail, e = np.empty_like(t), np.empty_like(t)
        _normal_tail_loop(t, tail, e)
    assert tail[-2:].tolist() == [0.0, 0.0] and e[-2:].tolist() == [0.0, 0.0]
    with mpmath.workdps(30):
        ref_tail = np.array([float(mpmath.erfc(mpmath.mpf(float(v)) / mpmath.sqrt(2)) / 2)
                             for v in t[:-2]])
        ref_e = np.array([float(mpmath.exp(-mpmath.mpf(float(v)) ** 2 / 2)) for v in t[:-2]])
    eps = np.finfo(dtype).eps
    for out, ref, ulps in ((tail[:-2], ref_tail, 6), (e[:-2], ref_e, 2)):
        normal = ref > np.finfo(dtype).smallest_normal
        assert normal.sum() > 2500
        np.testing.assert_allclose(out[normal], ref[normal], rtol=ulps * eps, atol=0)

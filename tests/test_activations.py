"""Activation kernels against the float64 numpy reference, and their gradients against finite
differences.

float32 errors are in ulp of the reference (computed in float64 on the float32 inputs, then
rounded), allowed to grow with the function's condition number |x f'(x) / f(x)|: a kernel that
rounds x·beta (Swish) or GELU-tanh's cubic is exact for an input half an ulp away, and the
allowance is what that perturbation makes of the result (Swish at x = -50: 60 ulp in float32).
Exact GELU gets no such growth: it takes e^{-x²/2} from x's exact square, so its error stays a
few ulp in the far left tail, where the condition number is x².
Results below the smallest normal number may flush to zero.
"""
import numpy as np
import pytest

import fastdl
from fastdl._kernels import ops
from fastdl._kernels.reference import activations as R
from fastdl._kernels.registry import IDS, KERNELS
from fastdl._kernels.split import SERIAL_MAX

# every test on every backend (conftest.py); the few on numba's internals say so
pytestmark = pytest.mark.usefixtures("backend")

DTYPES = (np.float32, np.float64)
ELEMENTWISE = [name for name in KERNELS if name != "softmax"]
# a parameter value per activation that is not the trivial default
PARAMS = {"leaky_relu": 0.1, "prelu": 0.3, "elu": 1.5, "swish": 1.7}
# float32 forward: allowed ulp error per unit of (1 + condition number)
ULP32 = {name: 4.0 for name in ELEMENTWISE} | {"tanh": 5.0}  # vmath's float32 tanh: 4.8 ulp
RTOL64 = 1e-14  # float64 relative error per unit of (1 + condition number)


def _param(name):
    return PARAMS.get(name, KERNELS[name].default)


def _inputs(dtype, n=2000, seed=0):
    """Random values, a log-spaced sweep of both signs from the smallest subnormal, and specials."""
    rng = np.random.default_rng(seed)
    finfo = np.finfo(dtype)
    magnitudes = np.geomspace(finfo.smallest_subnormal, 1e4, 400)
    special = [0.0, -0.0, 1.0, -1.0, 1e4, -1e4, np.inf, -np.inf, np.nan, finfo.max, -finfo.max]
    x = np.concatenate([rng.standard_normal(n) * 4, magnitudes, -magnitudes, special])
    return x.astype(dtype)


def _forward(name, x, p=None):
    out = np.empty_like(x)
    p = _param(name) if p is None else p
    ops().activation_forward(IDS[name], x, float(p), out)
    return out


def _backward(name, g, x, p=None):
    p = _param(name) if p is None else p
    v = _forward(name, x, p) if KERNELS[name].grad_from == "output" else x
    out = np.empty_like(x)
    ops().activation_backward(IDS[name], g, v, float(p), out)
    return out


def _assert_close_ulp(got, ref64, x, cond, base_ulp):
    """got (float32) within base_ulp·(1 + cond) ulp of ref64 rounded, specials matching exactly."""
    with np.errstate(over="ignore"):
        ref = ref64.astype(np.float32)
    nan = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg="NaN positions differ")
    inf = np.isinf(ref)
    np.testing.assert_array_equal(got[inf], ref[inf])
    fin = ~nan & ~inf
    err = np.abs(got[fin].astype(np.float64) - ref[fin])
    tiny = np.finfo(np.float32).tiny
    with np.errstate(over="ignore"):
        ulp = np.spacing(np.maximum(np.abs(ref[fin]), tiny)).astype(np.float64)
    bound = base_ulp * (1 + np.nan_to_num(cond[fin], nan=0.0, posinf=1e30))
    bad = (err > bound * ulp) & (err > tiny)
    assert not bad.any(), (
        f"{bad.sum()} values off, worst at x={x[fin][bad][:5]}: got {got[fin][bad][:5]}, "
        f"want {ref[fin][bad][:5]} ({(err / ulp)[bad][:5]} ulp)")


def _condition(name, x64, p):
    with np.errstate(all="ignore"):
        f = R.FORWARD[name](x64, p)
        cond = np.abs(x64 * R.DERIVATIVE[name](x64, p) / f)
    # see the module docstring (e^{-a²} of a rounded a = x/√2 was up to 190 ulp off near x = -14)
    return np.minimum(cond, 1.0) if name == "gelu" else cond


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_forward_matches_reference(name, dtype):
    # a size above SERIAL_MAX runs the parallel branch too
    x = np.concatenate([_inputs(dtype), np.linspace(-8, 8, SERIAL_MAX + 1000, dtype=dtype)])
    p = _param(name)
    got = _forward(name, x)
    x64 = x.astype(np.float64)
    ref = R.FORWARD[name](x64, p)
    cond = _condition(name, x64, p)
    if dtype == np.float32:
        _assert_close_ulp(got, ref, x, cond, ULP32[name])
    else:
        rtol = RTOL64 * (1 + np.nan_to_num(cond, nan=0.0, posinf=0.0))
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        with np.errstate(invalid="ignore"):
            ok = np.isnan(ref) | (np.abs(got - ref) <= rtol * np.abs(ref) + 1e-300) | (got == ref)
        assert ok.all(), f"x={x[~ok][:5]}: got {got[~ok][:5]}, want {ref[~ok][:5]}"


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_forward_limits(name):
    x = np.array([np.nan, np.inf, -np.inf, 1e4, -1e4], dtype=np.float32)
    got = _forward(name, x)
    ref = R.FORWARD[name](x.astype(np.float64), _param(name)).astype(np.float32)
    assert np.isnan(got[0])
    np.testing.assert_array_equal(got[1:], ref[1:])


def test_sigmoid_saturates_exactly():
    for dtype in DTYPES:
        got = _forward("sigmoid", np.array([-1e4, 1e4, -np.inf, np.inf], dtype=dtype))
        np.testing.assert_array_equal(got, [0.0, 1.0, 0.0, 1.0])


def _assert_grad_close(got, g, derivative):
    """got ≈ g·f' up to a few eps·|g|·max(1, |f'|): derivatives read from a rounded output
    (y(1 - y), 1 - y²) or crossing zero (swish) are only accurate in absolute terms."""
    finfo = np.finfo(got.dtype)
    g = g.astype(np.float64)
    ulps = 16 if got.dtype == np.float32 else 4
    tol = ulps * finfo.eps * np.abs(g) * np.maximum(1, np.abs(derivative))
    np.testing.assert_array_less(np.abs(got - g * derivative), tol + finfo.tiny)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_backward_matches_reference(name, dtype):
    x = _inputs(dtype)
    x = x[~np.isnan(x)]  # the derivative's value at NaN is unspecified
    g = np.random.default_rng(1).standard_normal(x.size).astype(dtype)
    got = _backward(name, g, x)
    x64 = x.astype(np.float64)
    _assert_grad_close(got, g, R.DERIVATIVE[name](x64, _param(name)))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_backward_matches_finite_differences(name):
    x = np.random.default_rng(2).uniform(-6, 6, 300)
    x = x[np.abs(x) > 1e-3]  # away from the kinks at 0
    h = 1e-6
    numeric = (_forward(name, x + h) - _forward(name, x - h)) / (2 * h)
    np.testing.assert_allclose(_backward(name, np.ones_like(x), x), numeric, rtol=1e-7, atol=1e-8)


def _elementwise_loop(element, vectorize):
    from fastdl._kernels.numba._jit import jit

    """A jit loop applying element; the early exit in the second one stops LLVM vectorising it."""
    if vectorize:
        def loop(x, p, out):
            for i in range(x.size):
                out[i] = element(x[i], p)
    else:
        def loop(x, p, out):
            for i in range(x.size):
                out[i] = element(x[i], p)
                if out[i] == 12345.0:
                    break
    return jit(loop)


def _numba_elements():
    from fastdl._kernels.numba import activations as K

    return sorted({f for act in K.ACTIVATIONS.values() for f in (act.elem, act.grad) if f}
                  | {K.prelu_dalpha, K.swish_dbeta}, key=lambda f: f.__name__)


@pytest.mark.parametrize("element", _numba_elements(), ids=lambda f: f.__name__)
def test_numba_elements_give_the_same_bits_vectorized_or_not(element):
    # kernels split work at fixed chunk boundaries; each element must then round the same way in
    # the vector body and the scalar remainder, or results would depend on the thread count (the
    # Cython backend's chunks all run one loop, whose remainder is the same clone's code; the
    # thread-count test below covers both)
    x = _inputs(np.float32, n=3000)
    vector, scalar = np.empty_like(x), np.empty_like(x)
    _elementwise_loop(element, True)(x, np.float32(0.7), vector)
    _elementwise_loop(element, False)(x, np.float32(0.7), scalar)
    np.testing.assert_array_equal(vector, scalar)


def test_derivative_at_zero_is_the_left_one():
    zero = np.zeros(1)
    for name, want in [("relu", 0.0), ("leaky_relu", 0.1), ("prelu", 0.3), ("elu", 1.5)]:
        assert _backward(name, np.ones(1), zero)[0] == want, name


# ------------------------------------------------------------------------ parameter gradients

PARAM_ACTIVATIONS = {"prelu": R.prelu_dalpha, "swish": R.swish_dbeta}


def _param_backward(name, g, x, p):
    out = np.empty_like(x)
    if np.ndim(p) == 0:
        dp = ops().activation_backward_shared(IDS[name], g, x, float(p), out)
    else:
        dp = ops().activation_backward_features(IDS[name], g.ravel(), x.ravel(), p, out.ravel())
    return out, dp


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", PARAM_ACTIVATIONS)
def test_param_kernels_match_reference(name, dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((SERIAL_MAX // 20 + 7, 24)) * 3).astype(dtype)  # parallel branch
    g = rng.standard_normal(x.shape).astype(dtype)
    p = rng.uniform(0.1, 2.0, 24).astype(dtype)
    x64, g64, p64 = x.astype(np.float64), g.astype(np.float64), p.astype(np.float64)
    rtol = 1e-5 if dtype == np.float32 else 1e-12

    out = np.empty_like(x)
    ops().activation_forward_features(IDS[name], x.ravel(), p, out.ravel())
    np.testing.assert_allclose(out, R.FORWARD[name](x64, p64), rtol=rtol, atol=1e-30)

    dx, dp = _param_backward(name, g, x, p)
    _assert_grad_close(dx, g, R.DERIVATIVE[name](x64, p64))
    terms = g64 * PARAM_ACTIVATIONS[name](x64, p64)
    # float64 sums of products with one float32-rounded factor: error ~ eps · Σ|terms|
    sum_tol = 4 * np.finfo(dtype).eps
    np.testing.assert_array_less(np.abs(dp - terms.sum(axis=0)),
                                 sum_tol * np.abs(terms).sum(axis=0))

    dx, dp = _param_backward(name, g.ravel(), x.ravel(), p[0])
    _assert_grad_close(dx, g.ravel(), R.DERIVATIVE[name](x64.ravel(), p64[0]))
    terms = g64 * PARAM_ACTIVATIONS[name](x64, p64[0])
    assert abs(dp - terms.sum()) < sum_tol * np.abs(terms).sum()


@pytest.mark.parametrize("name", PARAM_ACTIVATIONS)
def test_param_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(4)
    x, g = rng.uniform(-4, 4, (2, 50))
    p, h = 0.7, 1e-6

    def loss(p):
        return (g * _forward(name, x, p)).sum()

    numeric = (loss(p + h) - loss(p - h)) / (2 * h)
    assert _param_backward(name, g, x, p)[1] == pytest.approx(numeric, rel=1e-7)


def _with_threads(n, func):
    before = fastdl.get_num_threads()
    fastdl.set_num_threads(min(n, ops().max_threads()))
    try:
        return func()
    finally:
        fastdl.set_num_threads(before)


@pytest.mark.parametrize("name", PARAM_ACTIVATIONS)
def test_results_independent_of_thread_count(name):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3000, 40)) * 4).astype(np.float32)  # 8 chunks
    g = rng.standard_normal(x.shape).astype(np.float32)
    p = rng.uniform(0.1, 1, 40).astype(np.float32)

    def run():
        return (*_param_backward(name, g, x, p), *_param_backward(name, g.ravel(), x.ravel(), p[0]),
                _forward(name, x.ravel()), _backward(name, g.ravel(), x.ravel()))

    for one, two in zip(_with_threads(1, run), _with_threads(2, run)):
        np.testing.assert_array_equal(one, two)


# ------------------------------------------------------------------------------------ softmax


def _softmax(z):
    out = np.empty_like(z)
    ops().softmax_forward(z, out)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_matches_reference(dtype):
    rng = np.random.default_rng(6)
    # narrow rows (a few, a block); the row loop; parallel blocks of rows
    for shape in [(7, 5), (37, 10), (5, 20), (SERIAL_MAX // 64 + 3, 64)]:
        z = (rng.standard_normal(shape) * 10).astype(dtype)
        got = _softmax(z)
        ref = R.softmax(z)
        # e^{z - max} is conditioned by |z - max|: that many eps of relative error are inherent
        eps = np.finfo(dtype).eps
        tol = 4 * eps * (1 + np.abs(z - z.max(axis=1, keepdims=True))) * ref
        np.testing.assert_array_less(np.abs(got - ref), tol + np.finfo(dtype).tiny)
        g = rng.standard_normal(shape).astype(dtype)
        out = np.empty_like(z)
        ops().softmax_backward(g, got, out)
        want = R.softmax_backward(g, got)
        scale = np.abs(g).max(axis=1, keepdims=True) * np.abs(got)
        np.testing.assert_array_less(np.abs(out - want), 8 * np.finfo(dtype).eps * scale + 1e-30)


@pytest.mark.parametrize("width", [2, 20], ids=["narrow rows", "row loop"])
def test_softmax_extremes(width):
    z = np.full((8, width), -np.inf, np.float32)  # columns past the second add e^{-inf} = 0
    z[:, :2] = [[1e4, 0.0], [-np.inf, -np.inf], [np.nan, 1.0], [np.inf, 0.0], [-np.inf, 0.0],
                [-1e4, 1e4], [0.0, 0.0], [0.0, -np.nan]]
    got = _softmax(z)
    assert np.isnan(got[1:4]).all() and np.isnan(got[7]).all()
    for row, want in [(0, [1.0, 0.0]), (4, [0.0, 1.0]), (5, [0.0, 1.0]), (6, [0.5, 0.5])]:
        np.testing.assert_array_equal(got[row], want + [0.0] * (width - 2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_max_is_the_maximum_and_nan_spoils_the_softmax(dtype):
    from fastdl._kernels.numba import activations as K

    rng = np.random.default_rng(5)
    rows = [rng.standard_normal(37), -rng.random(40) - 1e-3, [-0.0, 0.0, -0.0], [0.0, -0.0],
            [-np.inf, -5.0, -np.inf], [-np.inf, -np.inf], [3.0, np.inf], [np.finfo(dtype).max],
            [-np.finfo(dtype).smallest_subnormal, -1.0]]
    for row in rows:
        row = np.asarray(row, dtype)
        assert K.row_max(row) == row.max(), row  # the sign of a zero maximum may differ
    for nan in (np.float64("nan"), -np.float64("nan")):  # a NaN of either sign
        z = np.array([[1.0, nan, 2.0]], dtype)
        assert np.isnan(_softmax(z)).all()


def test_softmax_backward_matches_finite_differences():
    rng = np.random.default_rng(7)
    z, g = rng.standard_normal((2, 3, 6))
    h = 1e-6
    numeric = np.empty_like(z)
    for i in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[i] = h
        numeric[i] = (g * (_softmax(z + step) - _softmax(z - step))).sum() / (2 * h)
    out = np.empty_like(z)
    ops().softmax_backward(g, _softmax(z), out)
    np.testing.assert_allclose(out, numeric, rtol=1e-7, atol=1e-9)


def test_numba_softmax_rows_on_a_block_matches_the_array_kernel():
    from fastdl._kernels.numba import activations as K

    z = np.random.default_rng(8).standard_normal((5, 9))
    out = np.empty_like(z)
    whole = np.empty_like(z)
    K.softmax_rows(z[1:3], out[1:3])
    K.softmax_forward(z, whole)
    np.testing.assert_array_equal(out[1:3], whole[1:3])


def test_table_lists_every_activation_once():
    from fastdl._kernels.numba import activations as K

    assert set(KERNELS) == {"identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu",
                            "elu", "softmax", "gelu", "gelu_tanh", "swish", "silu"}
    assert tuple(K.ACTIVATIONS) == tuple(KERNELS)  # the numba table in the registry's order
    for name, act in K.ACTIVATIONS.items():
        assert act.grad_from == KERNELS[name].grad_from in ("input", "output")

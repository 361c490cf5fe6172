"""Dense layer: forward and backward against the numpy reference and torch, for every activation.

Shapes are small but chosen to reach every code path: serial (batch 1, n_out 1), blocks along the
batch, along the output features, and along n_in (a narrow layer's dW; a small batch's dx).
"""
import numpy as np
import pytest

import fastdl
from fastdl._kernels import openblas, split
from fastdl._kernels.reference import dense as ref
from fastdl._kernels.registry import IDS
from fastdl.functional import dense, dense_backward

pytestmark = pytest.mark.usefixtures("backend")

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "softmax",
               "gelu", "gelu_tanh", "swish", "silu"]
GRAD_FROM_INPUT = {"leaky_relu", "prelu", "gelu", "gelu_tanh", "swish", "silu"}
# (batch, n_in, n_out): serial (batch 1; n_out 1); parallel (above split.SERIAL_WORK) with the
# forward split by rows, the backward's dx by rows and dW by n_out; the forward split by features,
# dz by rows and dx along n_in; a narrow output (serial dz, dW split along n_in); a narrow output
# whose blocks need several GEMM calls (openblas.small_kernel_columns: 171 rows each); a small batch
# split by features whose last block ends in a partial group of 8 rows of W
SHAPES = [(1, 5, 3), (7, 13, 1), (100, 60, 90), (40, 170, 260), (110, 500, 10), (600, 40, 7),
          (3, 300, 203)]


def test_shapes_reach_the_parallel_paths():
    assert all(np.prod(shape) > split.SERIAL_WORK for shape in SHAPES[2:])
    assert SHAPES[-1][0] <= split.SMALL_BATCH and SHAPES[-1][2] % 16 % 8 != 0
    assert 40 * 260 * split.DZ_WORK > split.SERIAL_WORK  # dz alone in its region, parallel
    # 0 where scipy's BLAS has no small kernels (then one GEMM call per block)
    assert openblas.small_kernel_columns(7, 40) in (0, 171) and SHAPES[5][0] // 2 > 171


def _kwargs(activation, n_out, per_feature, rng):
    """(the functional layer's keyword arguments, the parameter as the reference takes it)."""
    if activation in ("prelu", "swish"):
        p = rng.uniform(0.1, 1.5, n_out) if per_feature else 0.3
        return {("alpha" if activation == "prelu" else "beta"): p}, p
    return {"leaky_relu": ({"negative_slope": 0.05}, 0.05), "elu": ({"alpha": 0.7}, 0.7),
            "gelu_tanh": ({"approximate": "tanh"}, 0.0)}.get(activation, ({}, 0.0))


def _problem(shape, dtype, rng):
    batch, n_in, n_out = shape
    x = rng.standard_normal((batch, n_in)).astype(dtype)
    W = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    g = rng.standard_normal((batch, n_out)).astype(dtype)
    return x, W, b, g


def _assert_close(got, want, dtype):
    want = np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    tol = 1e-11 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=tol, atol=tol * scale)


def _run(activation, x, W, b, g, kwargs):
    fn = "gelu" if activation == "gelu_tanh" else activation
    y, z = dense(x, W, b, fn, return_preactivation=True, **kwargs)
    v = {"z": z} if activation in GRAD_FROM_INPUT else {"y": y}
    return y, z, dense_backward(g, x, W, activation=fn, **v, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_matches_reference(activation, dtype):
    rng = np.random.default_rng(ACTIVATIONS.index(activation))
    for shape in SHAPES:
        for per_feature in ((False, True) if activation in ("prelu", "swish") else (False,)):
            x, W, b, g = _problem(shape, dtype, rng)
            kwargs, p = _kwargs(activation, shape[2], per_feature, rng)
            y, z, grads = _run(activation, x, W, b, g, kwargs)
            z_ref, y_ref = ref.dense(x, W, b, activation, p)
            assert y.dtype == dtype and y.shape == (shape[0], shape[2])
            _assert_close(z, z_ref, dtype)
            _assert_close(y, y_ref, dtype)
            for got, want in zip(grads, ref.dense_backward(g, x, W, b, activation, p)):
                _assert_close(got, want, dtype)
            if activation in ("prelu", "swish"):
                assert grads[3].shape == np.shape(p)


def _torch_activation(torch, activation, t, p):
    F = torch.nn.functional
    return {
        "identity": lambda: t, "sigmoid": lambda: torch.sigmoid(t), "tanh": lambda: torch.tanh(t),
        "relu": lambda: F.relu(t), "leaky_relu": lambda: F.leaky_relu(t, 0.05),
        "prelu": lambda: torch.where(t > 0, t, p * t), "elu": lambda: F.elu(t, 0.7),
        "softmax": lambda: torch.softmax(t, -1), "gelu": lambda: F.gelu(t),
        "gelu_tanh": lambda: F.gelu(t, approximate="tanh"),
        "swish": lambda: t * torch.sigmoid(p * t), "silu": lambda: F.silu(t),
    }[activation]()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_matches_torch(activation, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(100 + ACTIVATIONS.index(activation))
    x, W, b, g = _problem((37, 45, 29), dtype, rng)
    kwargs, p = _kwargs(activation, 29, True, rng)
    y, _, grads = _run(activation, x, W, b, g, kwargs)
    tx, tW, tb = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    tp = torch.tensor(np.asarray(p, dtype=dtype), requires_grad=True)
    ty = _torch_activation(torch, activation, torch.nn.functional.linear(tx, tW, tb), tp)
    ty.backward(torch.from_numpy(g))
    _assert_close(y, ty.detach().numpy(), dtype)
    for got, want in zip(grads, (tx.grad, tW.grad, tb.grad)):
        _assert_close(got, want.numpy(), dtype)
    if activation in ("prelu", "swish"):
        _assert_close(grads[3], tp.grad.numpy(), dtype)


@pytest.mark.parametrize("activation", ["relu", "prelu"])
def test_accumulate_adds_to_existing_gradients(activation):
    rng = np.random.default_rng(7)
    x, W, b, g = _problem((100, 60, 90), np.float32, rng)
    kwargs = {"alpha": np.float32(0.2)} if activation == "prelu" else {}
    y, z = dense(x, W, b, activation, return_preactivation=True, **kwargs)
    v = {"z": z} if activation == "prelu" else {"y": y}
    fresh = dense_backward(g, x, W, activation=activation, **v, **kwargs)[1:]
    buffers = [rng.standard_normal(np.shape(a)).astype(np.float32) for a in fresh]
    before = [a.copy() for a in buffers]
    names = ["dW", "db", "dparam"][:len(buffers)]
    out = dense_backward(g, x, W, activation=activation, need_dx=False, accumulate=True, **v,
                         **kwargs, **dict(zip(names, buffers)))
    assert out[0] is None
    for got, buf, old, new in zip(out[1:], buffers, before, fresh):
        assert got is buf
        np.testing.assert_allclose(buf, old + new, rtol=1e-5, atol=1e-5)


# dx split by rows / by n_in; a narrow layer (dx's and dW's blocks on separate threads); a
# narrow layer whose forward takes several GEMM calls per block, over a batch not a multiple of 16;
# one whose last block has fewer than 16 rows; deep products (each on its own thread)
@pytest.mark.parametrize("shape", [(96, 64, 200), (64, 100, 150), (64, 300, 10), (150, 784, 10),
                                   (37, 784, 10), (split.DEEP_K, 40, split.DEEP_K + 8)])
def test_same_bits_for_one_and_two_threads(shape):
    rng = np.random.default_rng(3)
    x, W, b, g = _problem(shape, np.float32, rng)
    alpha = rng.uniform(0.1, 0.5, shape[2]).astype(np.float32)
    results = []
    previous = fastdl.get_num_threads()
    try:
        for threads in (1, 2):
            fastdl.set_num_threads(threads)
            y, z = dense(x, W, b, "prelu", return_preactivation=True, alpha=alpha)
            results.append((y, z) + dense_backward(g, x, W, activation="prelu", z=z, alpha=alpha))
    finally:
        fastdl.set_num_threads(previous)
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


def test_kernels_make_scipys_openblas_single_threaded():
    """The thread switch reaches the OpenBLAS scipy's BLAS calls go to (not numpy's ILP64 copy,
    whose path looks alike): else BLAS threads would run inside numba's and change the bits."""
    scipy = pytest.importorskip("scipy")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"] != "scipy-openblas":
        pytest.skip("scipy is not built on its bundled OpenBLAS here")
    from fastdl._kernels.numba.blas import blas_restore_threads, blas_single_threaded
    from fastdl._kernels.numba._jit import jit

    @jit(cache=False)
    def switch():
        previous = blas_single_threaded()
        inside = blas_single_threaded()
        blas_restore_threads(previous)
        return previous, inside

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        assert switch() == (2, 1)


def test_blas_thread_setting_is_restored():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(4)
    x, W, b, g = _problem((64, 64, 64), np.float64, rng)

    def blas_threads():
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                if lib["user_api"] == "blas"]

    before = blas_threads()
    y = dense(x, W, b, "tanh")
    dense_backward(g, x, W, activation="tanh", y=y)
    assert blas_threads() == before


def test_leading_axes_out_and_in_place_preactivation():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6))
    W = rng.standard_normal((4, 6))
    b = rng.standard_normal(4)
    out = np.empty((2, 3, 4))
    y = dense(x, W, b, "sigmoid", out=out)
    assert y is out
    _assert_close(y, ref.dense(x.reshape(-1, 6), W, b, "sigmoid")[1].reshape(2, 3, 4), np.float64)
    _assert_close(dense(x[0, 0], W, None, "identity"), x[0, 0] @ W.T, np.float64)
    # integer x follows W's dtype; n_in = 0 gives f(b)
    assert dense(np.ones((2, 6), dtype=np.int64), W.astype(np.float32), b.astype(np.float32),
                 "relu").dtype == np.float32
    _assert_close(dense(np.empty((3, 0)), np.empty((4, 0)), b, "tanh"), np.tile(np.tanh(b), (3, 1)),
           np.float64)


def test_nan_propagates_through_its_row():
    x = np.ones((3, 4))
    x[1, 2] = np.nan
    y = dense(x, np.ones((5, 4)), np.zeros(5), "relu")
    assert np.isnan(y[1]).all() and not np.isnan(y[[0, 2]]).any()


def test_bad_input_errors_name_the_argument():
    W = np.ones((3, 4), np.float32)
    b = np.zeros(3, np.float32)
    x = np.ones((2, 4), np.float32)
    with pytest.raises(ValueError, match="x has shape .* n_in = 4"):
        dense(np.ones((2, 5), np.float32), W, b)
    with pytest.raises(ValueError, match=r"b must be .* shape \(3,\)"):
        dense(x, W, np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="x has dtype float64, but W has dtype float32"):
        dense(x.astype(np.float64), W, b)
    with pytest.raises(TypeError, match="b has dtype float64"):
        dense(x, W, b.astype(np.float64))
    with pytest.raises(ValueError, match="W must be C-contiguous"):
        dense(np.ones((2, 3), np.float32), W.T, np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="W must be float32 or float64"):
        dense(x, W.astype(np.int32), b)
    with pytest.raises(ValueError, match="activation must be one of .*got 'relu6'"):
        dense(x, W, b, "relu6")
    with pytest.raises(TypeError, match=r"activation='relu' takes no parameter\(s\) \['alpha'\]"):
        dense(x, W, b, "relu", alpha=0.1)
    with pytest.raises(ValueError, match=r"alpha must be a scalar or shape \(3,\)"):
        dense(x, W, b, "prelu", alpha=np.ones(4))
    square = np.ones((3, 3), np.float32)
    with pytest.raises(ValueError, match="out must not share memory"):
        dense(square, square.copy(), b, out=square)
    g = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="computed from the output: pass y"):
        dense_backward(g, x, W, activation="sigmoid", z=g)
    with pytest.raises(ValueError, match="pre-activation: pass z"):
        dense_backward(g, x, W, activation="gelu", y=g)
    with pytest.raises(ValueError, match="grad has shape"):
        dense_backward(np.ones((3, 3), np.float32), x, W, activation="relu", y=g)
    dW = np.full((3, 4), 5.0, np.float32)
    with pytest.raises(ValueError, match="pass dW, db"):
        dense_backward(g, x, W, activation="relu", y=g, dW=dW, accumulate=True)
    with pytest.raises(TypeError, match="db has dtype float64"):
        dense_backward(g, x, W, activation="relu", y=g, dW=dW, db=np.zeros(3))
    read_only = dW.copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="dW is read-only"):
        dense_backward(g, x, W, activation="relu", y=g, dW=read_only)
    with pytest.raises(ValueError, match="dW must not share memory"):  # dx reads W meanwhile
        dense_backward(g, x, W, activation="relu", y=g, dW=W)
    with pytest.raises(TypeError, match="dparam must be a numpy.ndarray, got list"):
        dense_backward(g, x, W, activation="prelu", z=g, dW=dW, dparam=[0.0])
    assert (dW == 5.0).all()  # a rejected call writes nothing


def test_kernel_in_place_dz_and_parameter_left_alone(backend):
    """The model layer's calls: dz written over g, and p passed as dp for a parameter that is not
    learnable (leaky_relu's slope must survive the backward)."""
    rng = np.random.default_rng(6)
    x, W, b, g = _problem((40, 30, 20), np.float64, rng)
    p = np.array([0.05])
    z = np.empty_like(g)
    y = np.empty_like(g)
    kind = IDS["leaky_relu"]
    backend.dense_forward(kind, x, W, b, p, z, y, False)
    dx, dW, db = np.empty_like(x), np.empty_like(W), np.empty_like(b)
    want = ref.dense_backward(g, x, W, b, "leaky_relu", 0.05)
    backend.dense_backward(kind, g, x, W, z, p, g, dx, dW, db, p, True, False)
    assert p[0] == 0.05
    for got, ref_value in zip((dx, dW, db), want):
        _assert_close(got, ref_value, np.float64)


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[-1]], ids=["serial", "parallel"])
def test_small_batch_walk_in_either_direction_gives_the_same_bits(backend, shape):
    x, W, b, _ = _problem(shape, np.float32, np.random.default_rng(9))
    p = np.zeros(1, np.float32)
    y_forward, y_reverse = (np.empty((shape[0], shape[2]), np.float32) for _ in range(2))
    kind = IDS["sigmoid"]
    backend.dense_forward(kind, x, W, b, p, y_forward, y_forward, False)
    backend.dense_forward(kind, x, W, b, p, y_reverse, y_reverse, True)
    np.testing.assert_array_equal(y_forward, y_reverse)
    _assert_close(y_forward, ref.dense(x, W, b, "sigmoid")[1], np.float32)


def test_kernel_reads_a_transposed_weight_view_in_place(backend):
    """A tied decoder passes W = W_enc.T and dW = dW_enc.T (Fortran-ordered views) and accumulates
    its weight gradient straight into the encoder's."""
    rng = np.random.default_rng(8)
    x, W, b, g = _problem((40, 30, 50), np.float64, rng)
    for batch in (40, 1):  # GEMM and gemv paths
        xb, gb = x[:batch], g[:batch]
        W_enc = np.ascontiguousarray(W.T)
        dW_enc = rng.standard_normal(W_enc.shape)
        before = dW_enc.copy()
        y = np.empty_like(gb)
        kind = IDS["tanh"]
        p = np.zeros(1)
        backend.dense_forward(kind, xb, W_enc.T, b, p, y, y, False)
        dx, db = np.empty_like(xb), np.zeros_like(b)
        backend.dense_backward(kind, gb, xb, W_enc.T, y, p, np.empty_like(gb), dx, dW_enc.T, db, p, True,
                         True)
        _assert_close(y, ref.dense(xb, W, b, "tanh")[1], np.float64)
        want_dx, want_dW, want_db, _ = ref.dense_backward(gb, xb, W, b, "tanh")
        _assert_close(dx, want_dx, np.float64)
        _assert_close(dW_enc, before + want_dW.T, np.float64)
        _assert_close(db, want_db, np.float64)

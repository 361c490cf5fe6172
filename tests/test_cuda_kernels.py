"""The cuda backend's kernels against ``reference/`` (and, where the CPU backends define the exact
bits, against them), on numba's CUDA simulator: ``NUMBA_ENABLE_CUDASIM=1 pytest
tests/test_cuda_kernels.py`` (CI does). The simulator runs every GPU thread as a Python thread,
so the shapes are tiny. Skipped without numba-cuda, or with neither a GPU nor the simulator."""
import numpy as np
import pytest

import fastdl
from fastdl import _kernels
from fastdl._kernels.random import noise_key
from fastdl._kernels.reference import activations as RA, dense as RD, losses as RL
from conftest import BACKENDS, SIMULATOR_WARNINGS, cuda_backend_or_skip
from fastdl._kernels.registry import IDS, KERNELS

K = cuda_backend_or_skip()
pytestmark = SIMULATOR_WARNINGS
CPU = _kernels._load(BACKENDS[0])
DTYPES = [np.float32, np.float64]
TOL = {np.float32: 3e-6, np.float64: 1e-13}
PARAMS = {"leaky_relu": 0.01, "prelu": 0.25, "elu": 1.3, "swish": 1.7}
ELEMENTWISE = [name for name in KERNELS if name != "softmax"]


def _tol(dtype, scale=1.0):
    return {"rtol": TOL[dtype] * scale, "atol": TOL[dtype] * scale}


def _inputs(dtype):
    return np.array([-30.0, -4.0, -1.5, -0.3, 0.0, 0.2, 0.9, 2.5, 6.0, np.nan], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activations_and_derivatives_match_the_reference(name, dtype):
    x = _inputs(dtype)
    p = np.full(1, PARAMS.get(name, 0.0), dtype)
    y = K.empty(x.shape, dtype)
    K.activation_forward(IDS[name], K.to_device(x), K.to_device(p), y)
    np.testing.assert_allclose(K.to_host(y), RA.FORWARD[name](x, p[0]), **_tol(dtype))
    g = np.linspace(-1, 1, x.size).astype(dtype)
    v = K.to_host(y) if KERNELS[name].grad_from == "output" else x
    out = K.empty(x.shape, dtype)
    K.activation_backward(IDS[name], K.to_device(g), K.to_device(v), K.to_device(p), out)
    # from the output, ELU's and sigmoid's derivatives carry y's rounding
    np.testing.assert_allclose(K.to_host(out), g * RA.DERIVATIVE[name](x, p[0]), **_tol(dtype, 10))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, dparam", [("prelu", RA.prelu_dalpha), ("swish", RA.swish_dbeta)])
def test_learnable_parameter_gradients_shared_and_per_feature(name, dparam, dtype):
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal((4, 3)).astype(dtype)
    shared = np.full(1, PARAMS[name], dtype)
    out = K.empty(x.size, dtype)
    total = K.activation_backward_shared(IDS[name], K.to_device(g.ravel()), K.to_device(x.ravel()),
                                         K.to_device(shared), out)
    assert total == pytest.approx(np.sum(g * dparam(x, shared[0])), rel=TOL[dtype] * 10)
    expected = (g * RA.DERIVATIVE[name](x, shared[0])).ravel()
    np.testing.assert_allclose(K.to_host(out), expected, **_tol(dtype))
    per_feature = np.array([0.1, 0.5, 1.5], dtype)
    sums = K.activation_backward_features(IDS[name], K.to_device(g.ravel()), K.to_device(x.ravel()),
                                          K.to_device(per_feature), out)
    assert isinstance(sums, np.ndarray) and sums.dtype == np.float64
    np.testing.assert_allclose(sums, np.sum(g * dparam(x, per_feature), axis=0), rtol=TOL[dtype] * 10)
    y = K.empty(x.size, dtype)
    K.activation_forward_features(IDS[name], K.to_device(x.ravel()), K.to_device(per_feature), y)
    np.testing.assert_allclose(K.to_host(y), RA.FORWARD[name](x, per_feature).ravel(), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_rows_forward_backward_and_in_place(dtype):
    z = np.array([[1.0, 2.0, -3.0], [50.0, 50.0, 49.0], [0.0, np.nan, 1.0]], dtype)
    y = K.to_device(z)
    K.softmax_forward(y, y)
    np.testing.assert_allclose(K.to_host(y), RA.softmax(z), **_tol(dtype))
    g = np.arange(9, dtype=dtype).reshape(3, 3) / 9
    dz = K.empty(z.shape, dtype)
    K.softmax_backward(K.to_device(g), y, dz)
    np.testing.assert_allclose(K.to_host(dz), RA.softmax_backward(g, RA.softmax(z)), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["mse_loss", "binary_cross_entropy_with_logits",
                                  "softmax_cross_entropy_labels", "softmax_cross_entropy_probs"])
def test_losses_match_the_reference(name, dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4, 3)) * 3).astype(dtype)
    if name == "softmax_cross_entropy_labels":
        target, reference = np.array([0, 2, 1, 2]), RL.softmax_cross_entropy
    elif name == "softmax_cross_entropy_probs":
        target = rng.dirichlet(np.ones(3), 4).astype(dtype)
        target[0] = [0, 1, 0]
        reference = RL.softmax_cross_entropy
    else:
        target, reference = rng.random((4, 3)).astype(dtype), getattr(RL, name)
    grad, row_loss = K.empty(x.shape, dtype), K.empty(4, np.float64)
    loss = getattr(K, name)(K.to_device(x), K.to_device(target), grad, row_loss)
    expected_loss, expected_grad = reference(x, target)
    assert isinstance(loss, float) and loss == pytest.approx(expected_loss, rel=TOL[dtype] * 10)
    np.testing.assert_allclose(K.to_host(grad), expected_grad, **_tol(dtype))
    assert K.to_host(row_loss).sum() / 4 == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_and_masking_masks_are_the_cpu_backends_bits(dtype):
    x = np.arange(1, 61, dtype=dtype).reshape(6, 10)
    x[0, :3] = [np.nan, np.inf, -np.inf]
    key = noise_key(7, 3, 2)
    for name, p in (("dropout", 0.4), ("dropout_backward", 0.4), ("masking_noise", 0.3),
                    ("dropout", 1.0), ("masking_noise", 0.0)):
        gpu, cpu = K.empty(x.shape, dtype), np.empty_like(x)
        getattr(K, name)(K.to_device(x), p, key, gpu)
        getattr(CPU, name)(x, p, key, cpu)
        np.testing.assert_array_equal(K.to_host(gpu), cpu, err_msg=f"{name} p={p}")
    part = K.empty((3, 10), dtype)  # a slice of a batch draws its rows' part of the mask
    K.dropout(K.to_device(x[3:]), 0.4, noise_key(7, 3, 2, skip=30), part)
    cpu = np.empty_like(x)
    CPU.dropout(x, 0.4, key, cpu)
    np.testing.assert_array_equal(K.to_host(part), cpu[3:])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_noise_matches_the_cpu_backend_to_rounding(dtype):
    x = np.linspace(-1, 1, 40).astype(dtype)
    key = noise_key(1, 2, 3)
    gpu, cpu = K.empty(x.shape, dtype), np.empty_like(x)
    K.gaussian_noise(K.to_device(x), 0.5, key, gpu)
    CPU.gaussian_noise(x, 0.5, key, cpu)
    np.testing.assert_allclose(K.to_host(gpu), cpu, rtol=0, atol=1e-5 if dtype == np.float32 else 1e-12)


OPTIMIZERS = {  # kernel, extra flags, state rows, scalars (in the kernels' order)
    "sgd": ("sgd_step", (), 0, [0.1, 0.01]),
    "momentum": ("momentum_step", (), 1, [0.01, 0.9, 0.1, 0.1, 1.0]),
    "adagrad": ("adagrad_step", (), 1, [0.0, 0.1, 1e-10]),
    "rmsprop": ("rmsprop_step", (False, False), 1, [0.0, 0.99, 0.01, 1e-8, 0.01, 0.0]),
    "rmsprop-centered-momentum": ("rmsprop_step", (True, True), 3, [0.01, 0.9, 0.1, 1e-8, 0.01, 0.5]),
    "adam": ("adam_step", (False,), 2, [0.01, 1.0, 0.9, 0.1, 0.999, 0.001, 0.01, 30.0, 0.0, 1e-8]),
    "adamw-amsgrad": ("adam_step", (True,), 3, [0.0, 0.999, 0.9, 0.1, 0.999, 0.001, 0.01, 30.0, 0.0, 1e-8]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_steps_match_the_cpu_backend_and_refuse_non_finite_gradients(name, dtype):
    kernel, flags, rows, scalars = OPTIMIZERS[name]
    rng = np.random.default_rng(2)
    p, state = rng.standard_normal(37).astype(dtype), rng.random((rows, 37)).astype(dtype)
    if "centered" in name:
        state[1] = 0  # the mean gradient starts at 0: a random one could exceed the second moment
    sc = np.array(scalars, dtype)
    gp, gstate = K.to_device(p), K.to_device(state)
    for _ in range(3):
        g = rng.standard_normal(37).astype(dtype)
        assert getattr(K, kernel)(gp, K.to_device(g), gstate, sc, True, *flags)
        assert getattr(CPU, kernel)(p, g, state, sc, True, *flags)
    np.testing.assert_allclose(K.to_host(gp), p, **_tol(dtype, 10))
    np.testing.assert_allclose(K.to_host(gstate), state, **_tol(dtype, 10))
    g[5] = np.nan
    assert not getattr(K, kernel)(gp, K.to_device(g), gstate, sc, True, *flags)
    np.testing.assert_allclose(K.to_host(gp), p, **_tol(dtype, 10))  # unchanged
    np.testing.assert_allclose(K.to_host(gstate), state, **_tol(dtype, 10))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_squares_scale_and_all_finite(dtype):
    g = np.linspace(-2, 3, 50).astype(dtype)
    d = K.to_device(g)
    assert K.sum_squares(d) == pytest.approx(np.sum(g.astype(np.float64) ** 2), rel=1e-12)
    K.scale(d, 0.5)
    np.testing.assert_allclose(K.to_host(d), g * dtype(0.5), **_tol(dtype))
    assert K.all_finite(d)
    g[7] = -np.inf
    assert not K.all_finite(K.to_device(g))


DENSE = [("identity", 1), ("relu", 1), ("sigmoid", 1), ("softmax", 1), ("gelu", 1),
         ("prelu", 5), ("prelu", 1), ("swish", 1), ("elu", 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("name, n_p", DENSE)
def test_dense_forward_and_backward_match_the_reference(name, n_p, tied, dtype):
    rng = np.random.default_rng(3)
    n, k, m = 5, 6, 5  # shapes that leave partial tiles
    x, g = rng.standard_normal((n, k)).astype(dtype), rng.standard_normal((n, m)).astype(dtype)
    W = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    p = ((rng.random(n_p) + 0.5).astype(dtype) if name in PARAMS
         else np.full(1, PARAMS.get(name, 0.0), dtype))
    # a tied decoder's W is the transposed view of its encoder's (k, m) array
    Wd = K.transposed(K.to_device(np.ascontiguousarray(W.T))) if tied else K.to_device(W)
    xd, pd = K.to_device(x), K.to_device(p)
    z, y = K.empty((n, m), dtype), K.empty((n, m), dtype)
    K.dense_forward(IDS[name], xd, Wd, K.to_device(b), pd, z, y, False)
    expected_z, expected_y = RD.dense(x, W, b, name, p if n_p > 1 else p[0])
    np.testing.assert_allclose(K.to_host(z), expected_z, **_tol(dtype, 10))
    np.testing.assert_allclose(K.to_host(y), expected_y, **_tol(dtype, 10))
    learnable = KERNELS[name].learnable
    dz, dx, db = K.empty((n, m), dtype), K.empty((n, k), dtype), K.empty(m, dtype)
    dW = K.transposed(K.zeros((k, m), dtype)) if tied else K.zeros((m, k), dtype)
    dp = K.zeros(n_p, dtype)
    v = z if KERNELS[name].grad_from == "input" else y
    K.fill(db, 1.0)  # accumulate: dW, db, dp add to what is there
    K.dense_backward(IDS[name], K.to_device(g), xd, Wd, v, pd, dz, dx, dW, db, dp, True, True)
    edx, edW, edb, edp = RD.dense_backward(g, x, W, b, name, p if n_p > 1 else p[0])
    np.testing.assert_allclose(K.to_host(dx), edx, **_tol(dtype, 30))
    np.testing.assert_allclose(K.to_host(dW), edW, **_tol(dtype, 30))
    np.testing.assert_allclose(K.to_host(db), edb + 1, **_tol(dtype, 30))
    if learnable:
        np.testing.assert_allclose(K.to_host(dp), np.atleast_1d(edp), **_tol(dtype, 30))


def test_buffers_copy_fill_take_rows_and_views():
    host = np.arange(12, dtype=np.float32).reshape(4, 3)
    d = K.to_device(host)
    assert K.holds(d) and not K.holds(host) and K.to_host(host) is host
    rows = K.empty((3, 3), np.float32)
    K.take_rows(d, K.to_device(np.array([2, 0, 2])), rows)
    np.testing.assert_array_equal(K.to_host(rows), host[[2, 0, 2]])
    labels = K.empty(3, np.int64)
    K.take_rows(K.to_device(np.array([5, 6, 7, 8])), K.to_device(np.array([3, 1, 0])), labels)
    np.testing.assert_array_equal(K.to_host(labels), [8, 6, 5])
    K.copy(np.arange(12, dtype=np.float64).reshape(4, 3) * 2, d)  # cast on the way
    np.testing.assert_array_equal(K.to_host(d), host * 2)
    K.fill(d, 7)
    t = K.transposed(d)
    assert tuple(t.shape) == (3, 4) and K.shares_memory(t, d)
    assert not K.shares_memory(d, K.zeros((4, 3), np.float32))
    np.testing.assert_array_equal(K.to_host(t), np.full((3, 4), 7, np.float32))


def test_the_functional_layer_runs_on_the_cuda_backend_with_host_arrays():
    from fastdl import functional as F

    rng = np.random.default_rng(4)
    x, g = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    W, b = rng.standard_normal((2, 4)).astype(np.float32), np.zeros(2, np.float32)
    calls = [lambda: F.leaky_relu(x, 0.1), lambda: F.elu_backward(g, F.elu(x, 0.5), 0.5),
             lambda: F.swish_backward(g, x, 1.3),
             lambda: F.prelu_backward(g, x, np.full(4, 0.2, np.float32)),
             lambda: F.softmax(x), lambda: F.dense(x, W, b, "sigmoid"),
             lambda: F.softmax_cross_entropy(x, np.array([0, 3, 1]))]
    previous = fastdl.get_backend()
    try:
        results = {}
        for name in (_kernels.name_of(CPU), "cuda"):
            fastdl.set_backend(name)
            results[name] = [call() for call in calls]
    finally:
        fastdl.set_backend(previous)
    for cpu, gpu in zip(*results.values()):
        for a, b in zip(np.atleast_1d(cpu) if not isinstance(cpu, tuple) else cpu,
                        np.atleast_1d(gpu) if not isinstance(gpu, tuple) else gpu):
            np.testing.assert_allclose(np.asarray(b, np.float64), np.asarray(a, np.float64),
                                       rtol=2e-5, atol=2e-6)

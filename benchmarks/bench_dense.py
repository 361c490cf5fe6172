"""Dense layer forward and backward: fastdl against the bare BLAS GEMMs, numpy and torch.

Run: ``pytest benchmarks/bench_dense.py --benchmark-min-rounds=5 --benchmark-max-time=0.5``
(``-k forward`` / ``-k backward`` / ``-k threads`` for one part) and read each group's ratios
against its ``sgemm`` / ``2-gemms`` and ``torch`` rows.

- ``fastdl-<backend>``: the backend's kernel with preallocated buffers, flipping the direction of its walk over W
  from call to call (what a model's layer calls per batch); ``fastdl-<backend>-public``: the
  validating ``fastdl.functional`` call.
- ``sgemm``: scipy's BLAS sgemm of the same shape, called directly (no Python or f2py
  wrapper), on all threads: the hardware bound of the forward. ``2-gemms``: the backward's
  dx = dz W and dW = dzᵀ x the same way.
- ``numpy``: ``x @ W.T + b`` then the activation; ``torch``: ``Linear`` + activation under
  ``no_grad``, and ``autograd.grad`` for the backward (graph built once, outside the timing).
- ``threads-*``: fastdl's forward and backward at batch 1024 with 1 and 2 threads.
"""

import itertools

import numpy as np
import pytest
from scipy.special import expit

import fastdl
from conftest import fastdl_impls, variant
from fastdl import functional as F
from fastdl._kernels import ops
from fastdl._kernels.numba._jit import jit
from fastdl._kernels.numba.blas import NO_TRANS, TRANS, gemm
from fastdl._kernels.registry import IDS

torch = pytest.importorskip("torch")

BATCHES = [1, 64, 256, 1024]
# (n_in, n_out, activation): a cheap and a transcendental epilogue, and a softmax output layer
SHAPES = [(784, 1024, "relu"), (1024, 1024, "sigmoid"), (500, 10, "softmax")]
SHAPE_IDS = [f"{i}-{o}-{a}" for i, o, a in SHAPES]


def _numpy_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


NUMPY_ACT = {"relu": lambda z: np.maximum(z, 0, out=z), "sigmoid": expit,
             "softmax": _numpy_softmax}
TORCH_ACT = {"relu": torch.relu, "sigmoid": torch.sigmoid,
             "softmax": lambda t: torch.softmax(t, dim=1)}


@jit
def _sgemm_forward(x, W, z):
    """z = x Wᵀ, one BLAS call on BLAS's own threads."""
    n_in = x.shape[1]
    gemm(TRANS, NO_TRANS, W.shape[0], x.shape[0], n_in, 1.0, W, n_in, x, n_in, 0.0, z, W.shape[0])


@jit
def _sgemm_backward(dz, x, W, dx, dW):
    """dx = dz W and dW = dzᵀ x, one BLAS call each."""
    batch, n_in = x.shape
    n_out = W.shape[0]
    gemm(NO_TRANS, NO_TRANS, n_in, batch, n_out, 1.0, W, n_in, dz, n_out, 0.0, dx, n_in)
    gemm(NO_TRANS, TRANS, n_in, n_out, batch, 1.0, x, n_in, dz, n_out, 0.0, dW, n_in)


def _problem(batch, n_in, n_out):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, n_in), dtype=np.float32)
    W = (rng.standard_normal((n_out, n_in), dtype=np.float32) / np.float32(np.sqrt(n_in)))
    b = rng.standard_normal(n_out, dtype=np.float32)
    g = rng.standard_normal((batch, n_out), dtype=np.float32)
    return x, W, b, g


@pytest.mark.parametrize("impl", [*fastdl_impls("", "public"), "sgemm", "numpy", "torch"])
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_forward(benchmark, shape, batch, impl):
    n_in, n_out, act = shape
    benchmark.group = f"forward-{n_in}-{n_out}-{act}-b{batch}"
    impl, K = variant(impl), ops()
    x, W, b, _ = _problem(batch, n_in, n_out)
    y = np.empty((batch, n_out), np.float32)
    p = np.zeros(1, np.float32)
    kind = IDS[act]
    if impl == "fastdl":
        reverse = itertools.cycle((False, True))
        benchmark(lambda: K.dense_forward(kind, x, W, b, p, y, y, next(reverse)))
    elif impl == "fastdl-public":
        benchmark(F.dense, x, W, b, act, out=y)
    elif impl == "sgemm":
        benchmark(_sgemm_forward, x, W, y)
        y = NUMPY_ACT[act](y + b)
    elif impl == "numpy":
        y = benchmark(lambda: NUMPY_ACT[act](x @ W.T + b))
    else:
        tx, tW, tb = (torch.from_numpy(a) for a in (x, W, b))
        with torch.no_grad():
            y = benchmark(lambda: TORCH_ACT[act](torch.nn.functional.linear(tx, tW, tb))).numpy()
    np.testing.assert_allclose(y, F.dense(x, W, b, act), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("impl", [*fastdl_impls(""), "2-gemms", "torch"])
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_backward(benchmark, shape, batch, impl):
    n_in, n_out, act = shape
    benchmark.group = f"backward-{n_in}-{n_out}-{act}-b{batch}"
    impl, K = variant(impl), ops()
    x, W, b, g = _problem(batch, n_in, n_out)
    y = F.dense(x, W, b, act)
    p = np.zeros(1, np.float32)
    dz, dx, dW, db = (np.empty_like(a) for a in (g, x, W, b))
    kind = IDS[act]
    if impl == "fastdl":
        benchmark(K.dense_backward, kind, g, x, W, y, p, dz, dx, dW, db, p, True, False)
    elif impl == "2-gemms":
        benchmark(_sgemm_backward, g, x, W, dx, dW)
        return
    else:
        tx, tW, tb = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
        ty = TORCH_ACT[act](torch.nn.functional.linear(tx, tW, tb))
        tg = torch.from_numpy(g)
        grads = benchmark(torch.autograd.grad, ty, (tx, tW, tb), tg, retain_graph=True)
        dx, dW, db = (t.numpy() for t in grads)
    want = F.dense_backward(g, x, W, activation=act, y=y)
    for got, ref in zip((dx, dW, db), want):
        np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("impl", fastdl_impls(""))
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_threads(benchmark, direction, threads, impl):
    benchmark.group = f"threads-{direction}-784-1024-relu-b1024"
    K = ops()
    x, W, b, g = _problem(1024, 784, 1024)
    y = np.empty_like(g)
    p = np.zeros(1, np.float32)
    dz, dx, dW, db = (np.empty_like(a) for a in (g, x, W, b))
    kind = IDS["relu"]
    K.dense_forward(kind, x, W, b, p, y, y, False)
    fastdl.set_num_threads(threads)
    if direction == "forward":
        benchmark(K.dense_forward, kind, x, W, b, p, y, y, False)  # batch 1024: a GEMM, no walk
    else:
        benchmark(K.dense_backward, kind, g, x, W, y, p, dz, dx, dW, db, p, True, False)
    assert np.isfinite(dW if direction == "backward" else y).all()

"""The cuda backend on a GPU: the dense kernels and an MNIST-size epoch, against torch on the same
GPU (skipped without one: numba's simulator would time Python threads, not a GPU).

Run: ``pytest benchmarks/bench_cuda.py --benchmark-min-rounds=5`` on a machine with an NVIDIA GPU
and ``pip install ".[cuda]"`` (torch with CUDA for the torch rows), then
``python benchmarks/ratios.py RUN.json --ref fastdl-cuda``.

- ``forward-*`` / ``backward-*``: ``dense_forward`` / ``dense_backward`` on device buffers
  allocated once, float32, against ``torch.nn.functional.linear`` + the activation under
  ``no_grad`` and ``autograd.grad`` of the same (graph built outside the timing); every round
  ends with a device synchronize, so the time is the GPU's.
- ``epoch``: one epoch of 60000 × 784 synthetic rows through 784-500-500-10 (ReLU, softmax head,
  Adam, batch 256, 235 steps) with ``MLP.fit``, against the same loop in torch (data on the GPU,
  a gathered batch per step, ``.item()`` of the loss per step as fastdl's loop reads it).
"""
import numpy as np
import pytest

import fastdl
from fastdl import _kernels
from fastdl.models import MLP
from fastdl._kernels.registry import IDS

pytest.importorskip("numba_cuda")
try:
    cuda_ops = _kernels._load("cuda")
except ImportError as exc:
    pytest.skip(str(exc), allow_module_level=True)
if cuda_ops.SIMULATOR:
    pytest.skip("numba's CUDA simulator is on: there is no GPU to time", allow_module_level=True)

from numba import cuda  # noqa: E402

try:
    import torch
    TORCH = torch.cuda.is_available()
except ImportError:
    TORCH = False

BATCHES = [64, 256, 1024]
SHAPES = [(784, 1024, "relu"), (1024, 1024, "sigmoid"), (500, 10, "softmax")]
SHAPE_IDS = [f"{i}-{o}-{a}" for i, o, a in SHAPES]
IMPLS = ["fastdl-cuda", "torch-cuda"]
ROWS, SIZES, BATCH = 60_000, [784, 500, 500, 10], 256


def _need(impl):
    if impl == "torch-cuda" and not TORCH:
        pytest.skip("torch with CUDA is not installed")


def _problem(batch, n_in, n_out):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, n_in), dtype=np.float32)
    W = rng.standard_normal((n_out, n_in), dtype=np.float32) / np.float32(np.sqrt(n_in))
    return x, W, rng.standard_normal(n_out, dtype=np.float32), \
        rng.standard_normal((batch, n_out), dtype=np.float32)


def _torch_act(act):
    return {"relu": torch.relu, "sigmoid": torch.sigmoid,
            "softmax": lambda t: torch.softmax(t, dim=1)}[act]


def _synchronized(call, sync):
    def run():
        call()
        sync()
    return run


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_dense(benchmark, direction, shape, batch, impl):
    _need(impl)
    n_in, n_out, act = shape
    benchmark.group = f"{direction}-{n_in}-{n_out}-{act}-b{batch}"
    x, W, b, g = _problem(batch, n_in, n_out)
    if impl == "fastdl-cuda":
        d = cuda_ops.to_device
        x, W, b, g, p = d(x), d(W), d(b), d(g), d(np.zeros(1, np.float32))
        y = cuda_ops.empty((batch, n_out), np.float32)
        dz, dx = cuda_ops.empty((batch, n_out), np.float32), cuda_ops.empty((batch, n_in), np.float32)
        dW, db = cuda_ops.empty((n_out, n_in), np.float32), cuda_ops.empty(n_out, np.float32)
        kind = IDS[act]
        cuda_ops.dense_forward(kind, x, W, b, p, y, y, False)
        if direction == "forward":
            call = lambda: cuda_ops.dense_forward(kind, x, W, b, p, y, y, False)  # noqa: E731
        else:
            call = lambda: cuda_ops.dense_backward(kind, g, x, W, y, p, dz, dx, dW, db, p,  # noqa: E731
                                                   True, False)
        sync = cuda.synchronize
    else:
        t = {k: torch.from_numpy(v).cuda() for k, v in dict(x=x, W=W, b=b, g=g).items()}
        f = _torch_act(act)
        if direction == "forward":
            def call():
                with torch.no_grad():
                    f(torch.nn.functional.linear(t["x"], t["W"], t["b"]))
        else:
            leaves = [t[k].requires_grad_() for k in ("x", "W", "b")]
            out = f(torch.nn.functional.linear(*leaves))
            call = lambda: torch.autograd.grad(out, leaves, t["g"], retain_graph=True)  # noqa: E731
        sync = torch.cuda.synchronize
    run = _synchronized(call, sync)
    run()
    benchmark(run)


def _epoch_data():
    rng = np.random.default_rng(0)
    return rng.random((ROWS, SIZES[0]), dtype=np.float32), rng.integers(0, SIZES[-1], ROWS)


@pytest.mark.parametrize("impl", IMPLS)
def test_epoch(benchmark, impl):
    _need(impl)
    benchmark.group = "epoch-784-500-500-10-b256"
    X, y = _epoch_data()
    if impl == "fastdl-cuda":
        previous = fastdl.get_backend()
        fastdl.set_backend("cuda")
        try:
            net = MLP(SIZES, activation="relu", seed=0)
        finally:
            fastdl.set_backend(previous)
        net.fit(X[:2 * BATCH], y[:2 * BATCH], epochs=1, batch_size=BATCH)  # compiles the kernels
        run = _synchronized(lambda: net.fit(X, y, epochs=1, batch_size=BATCH), cuda.synchronize)
    else:
        layers = []
        for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1]).cuda()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        Xt, yt = torch.from_numpy(X).cuda(), torch.from_numpy(y).cuda()

        def epoch():
            order = torch.randperm(ROWS, device="cuda")
            for start in range(0, ROWS, BATCH):
                idx = order[start:start + BATCH]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(Xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                loss.item()
        run = _synchronized(epoch, torch.cuda.synchronize)
    run()
    benchmark.pedantic(run, rounds=3)

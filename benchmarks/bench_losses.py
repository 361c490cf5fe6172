"""Losses, forward + backward (loss and ∂L/∂input): fastdl against numpy, torch and a copy.

Run: ``pytest benchmarks/bench_losses.py --benchmark-min-rounds=5 --benchmark-max-time=0.5``
and read each group's ratios against its ``torch`` and ``copy`` rows. ``fastdl`` is the kernel
with preallocated buffers (what the training loop calls), ``fastdl-public`` the validating
functional API. The copy moves the input's bytes once (read + write), the loss reads two
arrays and writes one.
"""

import numpy as np
import pytest

from fastdl import functional as F
from fastdl._kernels.numba import losses as K
from baselines import parallel_copy

torch = pytest.importorskip("torch")

BATCH = 1024


def _numpy_mse(x, t):
    diff = x - t
    return 0.5 * np.sum(diff * diff, dtype=np.float64) / x.shape[0], diff / x.shape[0]


def _numpy_bce(z, t):
    e = np.exp(-np.abs(z))
    loss = np.sum(np.maximum(z, 0) - z * t + np.log1p(e), dtype=np.float64) / z.shape[0]
    sigmoid = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    return loss, (sigmoid - t) / z.shape[0]


def _numpy_xent(z, labels):
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(z.shape[0])
    loss = np.sum(np.log(s[:, 0]) - shifted[rows, labels], dtype=np.float64) / z.shape[0]
    grad = e / s
    grad[rows, labels] -= 1
    return loss, grad / z.shape[0]


def _torch_mse(z, t):
    return torch.nn.functional.mse_loss(z, t, reduction="sum") / (2 * z.shape[0])


def _torch_bce(z, t):
    return torch.nn.functional.binary_cross_entropy_with_logits(z, t, reduction="sum") / z.shape[0]


# name -> (features, kernel, public function, numpy, torch loss, make target)
CASES = {
    "mse": (784, K.mse_loss, F.mse_loss, _numpy_mse, _torch_mse,
            lambda rng, shape: rng.random(shape, dtype=np.float32)),
    "bce": (784, K.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits,
            _numpy_bce, _torch_bce, lambda rng, shape: rng.random(shape, dtype=np.float32)),
    "softmax_xent": (10, K.softmax_cross_entropy_labels, F.softmax_cross_entropy, _numpy_xent,
                     torch.nn.functional.cross_entropy,
                     lambda rng, shape: rng.integers(0, shape[1], shape[0])),
}


@pytest.mark.parametrize("impl", ["fastdl", "fastdl-public", "numpy", "torch", "copy"])
@pytest.mark.parametrize("case", CASES)
def test_loss_forward_backward(benchmark, case, impl):
    features, kernel, public, numpy_fn, torch_fn, make_target = CASES[case]
    benchmark.group = f"loss-{case}-{BATCH}x{features}"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, features), dtype=np.float32)
    target = make_target(rng, x.shape)
    grad, row_loss = np.empty_like(x), np.empty(BATCH)
    if impl == "fastdl":
        run = lambda: kernel(x, target, grad, row_loss)  # noqa: E731
    elif impl == "fastdl-public":
        run = lambda: public(x, target, grad_out=grad)  # noqa: E731
    elif impl == "numpy":
        run = lambda: numpy_fn(x, target)  # noqa: E731
    elif impl == "copy":
        run = lambda: parallel_copy(x.reshape(-1), grad.reshape(-1))  # noqa: E731
    else:
        z = torch.from_numpy(x).requires_grad_()
        t = torch.from_numpy(target)

        def run():
            z.grad = None
            loss = torch_fn(z, t)
            loss.backward()
            return loss.item()
    run()  # compile outside the timing
    benchmark(run)

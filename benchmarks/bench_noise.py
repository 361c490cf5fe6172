"""Dropout and corruption on one 1024 x 784 float32 batch: fastdl against numpy, torch and a copy.

Run: ``pytest benchmarks/bench_noise.py --benchmark-min-rounds=5 --benchmark-max-time=0.5``
and read each group's ratios against its ``torch`` and ``copy`` rows. ``fastdl`` is the kernel
(preallocated output, what the layers call), ``fastdl-public`` the validating functional API.
fastdl hashes (seed, step, index) per element; numpy and torch draw from a stateful generator.
"""

import numpy as np
import pytest

from fastdl import functional as F
from fastdl._kernels.numba import noise as K
from baselines import parallel_copy

torch = pytest.importorskip("torch")

SHAPE = (1024, 784)
P = 0.3
SIGMA = 0.3


def _runners(case, x, out):
    """impl -> zero-argument callable for one noise kind."""
    rng = np.random.default_rng(0)
    xt, out_t = torch.from_numpy(x), torch.from_numpy(out)
    key = K.noise_key(0, 1)
    if case == "dropout":
        return {
            "fastdl": lambda: K.dropout(x, P, key, out),
            "fastdl-public": lambda: F.dropout(x, P, seed=0, step=1, out=out),
            "numpy": lambda: np.multiply(x, (rng.random(x.shape, dtype=np.float32) >= P)
                                         / np.float32(1 - P), out=out),
            "torch": lambda: torch.nn.functional.dropout(xt, P, training=True),
        }
    if case == "masking":
        return {
            "fastdl": lambda: K.masking_noise(x, P, key, out),
            "fastdl-public": lambda: F.masking_noise(x, P, seed=0, step=1, out=out),
            "numpy": lambda: np.multiply(x, rng.random(x.shape, dtype=np.float32) >= P, out=out),
            "torch": lambda: torch.mul(xt, torch.rand_like(xt) >= P, out=out_t),
        }
    return {
        "fastdl": lambda: K.gaussian_noise(x, SIGMA, key, out),
        "fastdl-public": lambda: F.gaussian_noise(x, SIGMA, seed=0, step=1, out=out),
        "numpy": lambda: np.add(x, np.float32(SIGMA) * rng.standard_normal(x.shape, dtype=np.float32),
                                out=out),
        "torch": lambda: torch.add(xt, torch.randn_like(xt), alpha=SIGMA, out=out_t),
    }


@pytest.mark.parametrize("impl", ["fastdl", "fastdl-public", "numpy", "torch", "copy"])
@pytest.mark.parametrize("case", ["dropout", "masking", "gaussian"])
def test_noise(benchmark, case, impl):
    benchmark.group = f"noise-{case}-{SHAPE[0]}x{SHAPE[1]}"
    x = np.random.default_rng(1).standard_normal(SHAPE, dtype=np.float32)
    out = np.empty_like(x)
    run = (lambda: parallel_copy(x.reshape(-1), out.reshape(-1))) if impl == "copy" else _runners(case, x, out)[impl]
    run()  # compile outside the timing
    benchmark(run)

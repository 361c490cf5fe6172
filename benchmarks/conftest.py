"""Shared benchmark setup: in every group fastdl (numba and BLAS) and torch use the same threads.

``FASTDL_BENCH_THREADS`` sets the count (default 2; use 1 on a machine whose other core is busy).
"""
import os

import pytest

import fastdl

try:
    import torch
except ImportError:  # torch rows skip themselves
    torch = None

THREADS = int(os.environ.get("FASTDL_BENCH_THREADS", 2))


@pytest.fixture(autouse=True)
def _threads():
    fastdl.set_num_threads(THREADS)
    if torch is not None:
        torch.set_num_threads(THREADS)

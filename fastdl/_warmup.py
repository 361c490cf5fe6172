"""``fastdl.warmup()``: compile the kernels ahead of time instead of on first use.

Only the numba backend compiles (the Cython one was compiled at install, and warming it up takes
milliseconds). Each module with kernels provides a function ``_warmup(dtype)`` that calls its
public functions once on tiny arrays of that dtype, in every variant that reaches a kernel with
other argument types (the models' step: tied weights, each loss, noise); listing it in ``STEPS``
(one line) makes ``warmup()`` run it for float32 and float64. Compiled code goes to numba's
on-disk cache, so later processes load it.
"""
import importlib
import time

import numpy as np

#: "module:function" warm-up steps, imported only when warmup() runs (keeps ``import fastdl`` fast)
STEPS = (
    "fastdl.functional.activations:_warmup",
    "fastdl.optim:_warmup",
    "fastdl.functional.losses:_warmup",
    "fastdl.functional.noise:_warmup",
    "fastdl.functional.dense:_warmup",
    "fastdl.models:_warmup",
)


def warmup(verbose=False):
    """Compile (or load from the cache) every kernel for float32 and float64.

    Returns the seconds it took; with ``verbose`` also prints them.
    """
    start = time.perf_counter()
    for step in STEPS:
        module, name = step.split(":")
        run = getattr(importlib.import_module(module), name)
        for dtype in (np.float32, np.float64):
            run(dtype)
    seconds = time.perf_counter() - start
    if verbose:
        print(f"fastdl: kernels ready for float32 and float64 in {seconds:.1f} s")
    return seconds

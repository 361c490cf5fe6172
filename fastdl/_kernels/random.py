"""Keys of the counter-based generator, the same for every backend.

A draw (one dropout mask, one corruption of a batch) is named by ``(seed, step, stream)``: e.g. the
run's seed, the training step and the layer. Its key is three rounds of splitmix64's finalizer,
and element i of the draw gets the bits ``mix64(key + (i + 1) γ)`` (each backend's noise kernels),
so masks depend on nothing but the triple and the element's flat index. Since element i's bits
depend on ``key + i γ`` only, ``key + s γ`` starts the same draw s elements later: a process that
holds rows r0… of a batch draws exactly their part of the whole batch's mask.
"""
import numpy as np

from fastdl._kernels.coefficients import GAMMA, MIX1, MIX2

_MASK = (1 << 64) - 1


def mix64(z):
    """splitmix64's finalizer (Stafford's mix 13), a bijection of 64-bit integers."""
    z = ((z ^ (z >> 30)) * MIX1) & _MASK
    z = ((z ^ (z >> 27)) * MIX2) & _MASK
    return z ^ (z >> 31)


def noise_key(seed, step, stream=0, skip=0):
    """The key of one draw, as ``np.uint64``. For a fixed seed, distinct (step, stream) give
    distinct keys. ``skip`` elements: element i of the draw keyed ``noise_key(…, skip=s)`` is
    element i + s of the draw keyed ``noise_key(…)``."""
    key = mix64((seed + GAMMA) & _MASK)
    key = mix64((key + step) & _MASK)
    return np.uint64((mix64((key + stream) & _MASK) + skip * GAMMA) & _MASK)

"""Activations forward and backward: fastdl against numpy, torch and a memory copy.

Run: ``pytest benchmarks/bench_activations.py --benchmark-min-rounds=5 --benchmark-max-time=0.5``
(add ``-k 8M`` or ``-k 4096`` for one size) and read each group's ratios against its ``torch``
and ``copy`` rows. Groups are ``<activation>-<fwd|bwd>-<8M|4096>`` on float32.

Like with like: ``fastdl``, ``numpy`` and ``torch`` all return a new array (torch's backward is the
aten kernel autograd calls); ``fastdl-out`` and ``torch-out`` write into a preallocated buffer, as a
training loop does (fresh 32 MB arrays cost page faults, and numpy's allocator asks for huge pages
where torch's does not, so the allocating 8M rows partly measure allocators). ``copy`` copies the
input's bytes into a preallocated buffer over numba's threads (one read, one write): the bandwidth floor. A forward reads and writes as much as the copy; a backward reads one more array.
PReLU has one alpha per feature (1024 features), Swish one shared beta; their backward includes the
parameter gradient's reduction.

Noise on a small shared machine: torch and numba each keep an OpenMP pool whose threads spin after
a parallel region; with 2 cores the two pools (and other processes) preempt each other and 8M
medians come out as multiples of the scheduler slice (8, 16, 24 ms) for both libraries. Then run
with ``OMP_WAIT_POLICY=PASSIVE`` or ``FASTDL_BENCH_THREADS=1``, or compare within one -k group.
"""

import numpy as np
import pytest
import scipy.special

from fastdl import functional as F
from baselines import parallel_copy
from conftest import fastdl_impls, variant

torch = pytest.importorskip("torch")
aten = torch.ops.aten

SIZES = {"8M": 8 * 2**20, "4096": 4096}
FEATURES = 1024  # last axis for prelu (per-feature alpha) and rows of softmax
SLOPE, ELU_ALPHA, BETA = 0.01, 1.0, 1.5


def _np_sigmoid(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.float32(0.7978845608) * (x + np.float32(0.044715) * x**3)))


def _np_gelu_tanh_backward(g, x):
    c, k = np.float32(0.7978845608), np.float32(0.044715)
    t = np.tanh(c * (x + k * x**3))
    return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * k * x * x))


def _np_swish_backward(g, x, beta):
    s = _np_sigmoid(beta * x)
    ds = s * (1 - s)
    return g * (s + beta * x * ds), np.sum(g * x * x * ds, dtype=np.float64)


def _torch_swish_backward(g, x, beta):
    s = torch.sigmoid(beta * x)
    ds = s * (1 - s)
    return g * (s + beta * x * ds), (g * x * x * ds).sum()


_ERF_SCALE = np.float32(1 / np.sqrt(2))
_PDF_SCALE = np.float32(1 / np.sqrt(2 * np.pi))

# name -> (reads "x" or "y" in backward, {impl: forward(x, p)}, {impl: backward(g, v, p)}); "p" is
# the parameter (prelu: per-feature alpha array; others a float) in the implementation's types
CASES = {
    "sigmoid": ("y", {"fastdl": lambda x, p, out=None: F.sigmoid(x, out=out),
                      "numpy": lambda x, p: _np_sigmoid(x), "torch": lambda x, p: torch.sigmoid(x)},
                {"fastdl": lambda g, y, p, out=None: F.sigmoid_backward(g, y, out=out),
                 "numpy": lambda g, y, p: g * y * (1 - y), "torch": lambda g, y, p: aten.sigmoid_backward(g, y)}),
    "tanh": ("y", {"fastdl": lambda x, p, out=None: F.tanh(x, out=out),
                   "numpy": lambda x, p: np.tanh(x), "torch": lambda x, p: torch.tanh(x)},
             {"fastdl": lambda g, y, p, out=None: F.tanh_backward(g, y, out=out),
              "numpy": lambda g, y, p: g * (1 - y * y), "torch": lambda g, y, p: aten.tanh_backward(g, y)}),
    "relu": ("y", {"fastdl": lambda x, p, out=None: F.relu(x, out=out),
                   "numpy": lambda x, p: np.maximum(x, 0), "torch": lambda x, p: torch.relu(x)},
             {"fastdl": lambda g, y, p, out=None: F.relu_backward(g, y, out=out),
              "numpy": lambda g, y, p: np.where(y > 0, g, 0),
              "torch": lambda g, y, p: aten.threshold_backward(g, y, 0)}),
    "leaky_relu": ("x", {"fastdl": lambda x, p, out=None: F.leaky_relu(x, p, out=out),
                         "numpy": lambda x, p: np.where(x < 0, x * np.float32(p), x),
                         "torch": lambda x, p: torch.nn.functional.leaky_relu(x, p)},
                   {"fastdl": lambda g, x, p, out=None: F.leaky_relu_backward(g, x, p, out=out),
                    "numpy": lambda g, x, p: np.where(x > 0, g, g * np.float32(p)),
                    "torch": lambda g, x, p: aten.leaky_relu_backward(g, x, p, False)}),
    "prelu": ("x", {"fastdl": lambda x, p, out=None: F.prelu(x, p, out=out),
                    "numpy": lambda x, p: np.where(x < 0, x * p, x),
                    "torch": lambda x, p: torch.nn.functional.prelu(x, p)},
              {"fastdl": lambda g, x, p, out=None: F.prelu_backward(g, x, p, out=out),
               "numpy": lambda g, x, p: (np.where(x > 0, g, g * p),
                                         np.sum(np.where(x > 0, 0, g * x), axis=0, dtype=np.float64)),
               "torch": lambda g, x, p: (lambda dx, dw: (dx, dw.sum(0)))(
                   *aten._prelu_kernel_backward(g, x, p))}),
    "elu": ("y", {"fastdl": lambda x, p, out=None: F.elu(x, p, out=out),
                  "numpy": lambda x, p: np.where(x > 0, x, np.float32(p) * np.expm1(np.minimum(x, 0))),
                  "torch": lambda x, p: torch.nn.functional.elu(x, p)},
            {"fastdl": lambda g, y, p, out=None: F.elu_backward(g, y, p, out=out),
             "numpy": lambda g, y, p: np.where(y > 0, g, g * (y + np.float32(p))),
             "torch": lambda g, y, p: aten.elu_backward(g, p, 1, 1, True, y)}),
    "softmax": ("y", {"fastdl": lambda x, p, out=None: F.softmax(x, out=out),
                      "numpy": lambda x, p: _np_softmax(x), "torch": lambda x, p: torch.softmax(x, -1)},
                {"fastdl": lambda g, y, p, out=None: F.softmax_backward(g, y, out=out),
                 "numpy": lambda g, y, p: y * (g - (g * y).sum(axis=-1, keepdims=True)),
                 "torch": lambda g, y, p: aten._softmax_backward_data(g, y, -1, torch.float32)}),
    "gelu": ("x", {"fastdl": lambda x, p, out=None: F.gelu(x, out=out),
                   "numpy": lambda x, p: 0.5 * x * scipy.special.erfc(-x * _ERF_SCALE),
                   "torch": lambda x, p: torch.nn.functional.gelu(x)},
             {"fastdl": lambda g, x, p, out=None: F.gelu_backward(g, x, out=out),
              "numpy": lambda g, x, p: g * (0.5 * scipy.special.erfc(-x * _ERF_SCALE)
                                            + x * _PDF_SCALE * np.exp(-0.5 * x * x)),
              "torch": lambda g, x, p: aten.gelu_backward(g, x)}),
    "gelu_tanh": ("x", {"fastdl": lambda x, p, out=None: F.gelu(x, "tanh", out=out),
                        "numpy": lambda x, p: _np_gelu_tanh(x),
                        "torch": lambda x, p: torch.nn.functional.gelu(x, approximate="tanh")},
                  {"fastdl": lambda g, x, p, out=None: F.gelu_backward(g, x, "tanh", out=out),
                   "numpy": lambda g, x, p: _np_gelu_tanh_backward(g, x),
                   "torch": lambda g, x, p: aten.gelu_backward(g, x, approximate="tanh")}),
    "swish": ("x", {"fastdl": lambda x, p, out=None: F.swish(x, p, out=out),
                    "numpy": lambda x, p: x * _np_sigmoid(np.float32(p) * x),
                    "torch": lambda x, p: x * torch.sigmoid(p * x)},
              {"fastdl": lambda g, x, p, out=None: F.swish_backward(g, x, p, out=out),
               "numpy": lambda g, x, p: _np_swish_backward(g, x, np.float32(p)),
               "torch": _torch_swish_backward}),
    "silu": ("x", {"fastdl": lambda x, p, out=None: F.silu(x, out=out),
                   "numpy": lambda x, p: x * _np_sigmoid(x), "torch": lambda x, p: torch.nn.functional.silu(x)},
             {"fastdl": lambda g, x, p, out=None: F.silu_backward(g, x, out=out),
              "numpy": lambda g, x, p: _np_swish_backward(g, x, np.float32(1))[0],
              "torch": lambda g, x, p: aten.silu_backward(g, x)}),
}
# torch writing into a preallocated tensor (the aten .out / .grad_input overloads), to compare with
# fastdl-out; prelu and swish have none
TORCH_OUT = {
    "sigmoid": (lambda x, p, o: aten.sigmoid.out(x, out=o),
                lambda g, y, p, o: aten.sigmoid_backward.grad_input(g, y, grad_input=o)),
    "tanh": (lambda x, p, o: aten.tanh.out(x, out=o),
             lambda g, y, p, o: aten.tanh_backward.grad_input(g, y, grad_input=o)),
    "relu": (lambda x, p, o: aten.clamp_min.out(x, 0, out=o),
             lambda g, y, p, o: aten.threshold_backward.grad_input(g, y, 0, grad_input=o)),
    "leaky_relu": (lambda x, p, o: aten.leaky_relu.out(x, p, out=o),
                   lambda g, x, p, o: aten.leaky_relu_backward.grad_input(g, x, p, False,
                                                                          grad_input=o)),
    "elu": (lambda x, p, o: aten.elu.out(x, p, 1, 1, out=o),
            lambda g, y, p, o: aten.elu_backward.grad_input(g, p, 1, 1, True, y, grad_input=o)),
    "softmax": (lambda x, p, o: aten._softmax.out(x, -1, False, out=o),
                lambda g, y, p, o: aten._softmax_backward_data.out(g, y, -1, torch.float32,
                                                                   grad_input=o)),
    "gelu": (lambda x, p, o: aten.gelu.out(x, out=o),
             lambda g, x, p, o: aten.gelu_backward.grad_input(g, x, grad_input=o)),
    "gelu_tanh": (lambda x, p, o: aten.gelu.out(x, approximate="tanh", out=o),
                  lambda g, x, p, o: aten.gelu_backward.grad_input(g, x, approximate="tanh",
                                                                   grad_input=o)),
    "silu": (lambda x, p, o: aten.silu.out(x, out=o),
             lambda g, x, p, o: aten.silu_backward.grad_input(g, x, grad_input=o)),
}
PARAMS = {"leaky_relu": SLOPE, "elu": ELU_ALPHA, "swish": BETA}
IMPLS = [*fastdl_impls("", "out"), "numpy", "torch", "torch-out", "copy"]


def _arrays(name, size):
    """x, g, y (= fastdl forward) and the parameter, in float32, shaped (-1, FEATURES)."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(size, dtype=np.float32) * 3).reshape(-1, FEATURES)
    g = rng.standard_normal(size, dtype=np.float32).reshape(x.shape)
    p = rng.uniform(0.1, 0.3, FEATURES).astype(np.float32) if name == "prelu" else PARAMS.get(name, 0.0)
    y = CASES[name][1]["fastdl"](x, p)
    return x, g, y, p


def _torch(a):
    return torch.from_numpy(a) if isinstance(a, np.ndarray) else a


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("direction", ["fwd", "bwd"])
@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("impl", IMPLS)
def test_activation(benchmark, impl, name, direction, size):
    benchmark.group = f"{name}-{direction}-{size}"
    impl = variant(impl)
    reads, forwards, backwards = CASES[name]
    x, g, y, p = _arrays(name, SIZES[size])
    args = (x, p) if direction == "fwd" else (g, y if reads == "y" else x, p)
    funcs = forwards if direction == "fwd" else backwards
    if impl == "copy":
        out = np.empty_like(x)
        call, args = parallel_copy, (x.reshape(-1), out.reshape(-1))
    elif impl == "fastdl-out":
        call, args = funcs["fastdl"], (*args, np.empty_like(x))
    elif impl == "torch":
        call, args = funcs["torch"], tuple(_torch(a) for a in args)
    elif impl == "torch-out":
        if name not in TORCH_OUT:
            pytest.skip(f"torch has no out= variant of {name}")
        call = TORCH_OUT[name][direction == "bwd"]
        args = (*(_torch(a) for a in args), torch.empty(x.shape))
    else:
        call = funcs[impl]
    with np.errstate(over="ignore", invalid="ignore"):
        call(*args)  # compile, warm caches outside the timing
        benchmark(call, *args)

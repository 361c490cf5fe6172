"""The kernel interface: which backend runs fastdl's kernels, and what every backend provides.

A backend is a package beside this module that defines every function of :data:`INTERFACE` with
exactly those parameters:

- ``cython``: C++ kernels behind Cython, compiled when fastdl is installed, so a fresh process
  never waits for a compiler; the default when it was built;
- ``numba``: the same kernels as numba JIT functions, compiled on first use and cached on disk;
- ``cuda``: numba.cuda kernels on an NVIDIA GPU (``pip install "fastdl[cuda]"``), never the
  default; a model built on it keeps its arena, gradients, optimizer state and workspaces in GPU
  memory for its whole life.

Nothing above this package imports a backend: layers, models, optimizers and the functional layer
call :func:`ops` (the active backend's module), and touch arrays only through its ``buffers``
family (numpy's own calls on the CPU backends, ``host.py``). ``FASTDL_BACKEND=cython|numba|cuda``
chooses it for a process, :func:`set_backend` from Python. ``reference/`` is the plain-numpy
specification all are tested against.

The contract every kernel keeps (the families' own modules give the formulas): arrays are
C-contiguous float32 or float64 of one dtype and already validated; results go into the ``out``
buffers given (a kernel allocates nothing but small scratch); NaN and inf propagate; every
float64 reduction runs in an order fixed by the shapes alone (``split.py``), so results do not
depend on the thread count. Activations are passed by id (``registry.IDS``).
"""
import contextlib
import importlib
import os
import warnings

#: backend name -> package, in order of preference
BACKENDS = {"cython": "fastdl._kernels.cython", "numba": "fastdl._kernels.numba",
            "cuda": "fastdl._kernels.cuda"}
#: the backends whose arrays are numpy arrays in host memory
CPU_BACKENDS = ("cython", "numba")

#: family -> {kernel: parameters}; each backend module defines all of them
INTERFACE = {
    "threads": {
        "set_num_threads": ("n",),  # the kernels' threads and BLAS's
        "get_num_threads": (),
        "max_threads": (),
    },
    "buffers": {  # the backend's arrays: numpy arrays on the CPU ones (host.py), device arrays on cuda
        "empty": ("shape", "dtype"),  # a workspace array of the backend's kind
        "zeros": ("shape", "dtype"),
        "holds": ("a",),  # whether a is an array of the backend's kind
        "to_device": ("a",),  # a host array's contents as the backend's array (a itself on the CPU)
        "to_host": ("a",),  # the backend's array as a numpy array (a itself on the CPU)
        "copy": ("src", "dst"),  # dst[...] = src (src the backend's array or a host one); returns dst
        "fill": ("a", "value"),
        "take_rows": ("x", "idx", "out"),  # out[i] = x[idx[i]], idx int64 on the backend
        "transposed": ("a",),  # the transposed view of a 2-D array, no copy
        "shares_memory": ("a", "b"),
    },
    "activations": {  # flat arrays; p a float (kinds without a parameter ignore it)
        "activation_forward": ("kind", "x", "p", "out"),  # out = f(x)
        "activation_backward": ("kind", "g", "v", "p", "out"),  # out = g f'(v), v = x or y
        # p one per feature: x, out flat rows of p.size features
        "activation_forward_features": ("kind", "x", "p", "out"),
        # learnable kinds: out = g f'(x); returns Σ g ∂f/∂p (float) / per feature (float64 array)
        "activation_backward_shared": ("kind", "g", "x", "p", "out"),
        "activation_backward_features": ("kind", "g", "x", "p", "out"),
        "softmax_forward": ("z", "out"),  # 2-D, per row
        "softmax_backward": ("g", "y", "out"),  # y ⊙ (g - Σ g ⊙ y), per row
    },
    "dense": {  # y = f(x Wᵀ + b) and its backward; see numba/dense.py for the arguments
        "dense_forward": ("kind", "x", "W", "b", "p", "z", "y", "reverse"),
        "dense_backward": ("kind", "g", "x", "W", "v", "p", "dz", "dx", "dW", "db", "dp",
                           "need_dx", "accumulate"),
    },
    "losses": {  # write ∂L/∂x into grad and ℓ_i into row_loss (float64); return the batch mean
        "mse_loss": ("x", "target", "grad", "row_loss"),
        "binary_cross_entropy_with_logits": ("x", "target", "grad", "row_loss"),
        "softmax_cross_entropy_labels": ("x", "target", "grad", "row_loss"),
        "softmax_cross_entropy_probs": ("x", "target", "grad", "row_loss"),
    },
    "noise": {  # counter-based draws named by key (random.noise_key); out may be x
        "dropout": ("x", "p", "key", "out"),
        "dropout_backward": ("grad", "p", "key", "out"),
        "masking_noise": ("x", "p", "key", "out"),
        "gaussian_noise": ("x", "sigma", "key", "out"),
    },
    "optimizers": {  # in place over flat p, g, state (k, n); sc: the step's scalars, p's dtype
        "sgd_step": ("p", "g", "state", "sc", "check_finite"),
        "momentum_step": ("p", "g", "state", "sc", "check_finite"),
        "adagrad_step": ("p", "g", "state", "sc", "check_finite"),
        "rmsprop_step": ("p", "g", "state", "sc", "check_finite", "centered", "with_momentum"),
        "adam_step": ("p", "g", "state", "sc", "check_finite", "amsgrad"),
        "sum_squares": ("g",),  # Σ g² in float64
        "scale": ("g", "factor"),  # g *= factor
    },
    "checks": {
        "all_finite": ("a",),  # no NaN or inf in the flat array a
    },
}

_active = None  # (name, module) once chosen


def _load(name):
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {name!r}")
    try:
        return importlib.import_module(BACKENDS[name])
    except ImportError as exc:
        raise ImportError(f"fastdl's {name} backend is not available: {exc}") from exc


def available_backends():
    """The backends this installation can run (the Cython one only if it was built, the cuda
    one only with numba-cuda and a GPU or its simulator)."""
    names = []
    for name in BACKENDS:
        try:
            _load(name)
        except ImportError:
            continue
        names.append(name)
    return names


def _default():
    name = os.environ.get("FASTDL_BACKEND")
    if name:
        return name
    try:
        _load("cython")
    except ImportError as exc:
        warnings.warn(f"{exc}; fastdl runs on numba, whose kernels compile on first use (a "
                      "C++ compiler lets `pip install .` build the Cython backend)",
                      RuntimeWarning, stacklevel=4)
        return "numba"
    return "cython"


def ops():
    """The active backend's module (chosen on first use: ``FASTDL_BACKEND``, else the Cython one
    if it was built, else numba)."""
    if _active is None:
        set_backend(_default())
    return _active[1]


def get_backend():
    """The name of the active backend."""
    ops()
    return _active[0]


def name_of(module):
    """The name of backend ``module``."""
    return next(name for name, package in BACKENDS.items() if package == module.__name__)


@contextlib.contextmanager
def using(module):
    """Make backend ``module`` the active one inside the block (what is built there runs on it),
    then restore the previous one."""
    global _active
    previous = _active
    _active = (name_of(module), module)
    try:
        yield module
    finally:
        _active = previous


def set_backend(name):
    """Run fastdl's kernels on backend ``name`` ("cython", "numba" or "cuda") from now on; models
    built before keep the backend they were built with. The thread count carries over."""
    global _active
    module = _load(name)
    if _active is not None and _active[1] is not module:
        module.set_num_threads(_active[1].get_num_threads())
    _active = (name, module)

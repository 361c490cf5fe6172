"""Checks made once at the public boundary, so that kernels can assume valid input.

The dtype rule, used everywhere: float32 and float64 arrays keep their dtype; float16 becomes
float32 (no float16 kernels; float32 holds every float16 exactly); bool and integer arrays become
float64 (NumPy's rule for ``np.exp`` of an int array, exact for every int32); complex, object and
string arrays are rejected.
Non-contiguous inputs are copied once to C order; the caller's array is never written to.

Scalar hyper-parameters go through :func:`check_real` (a real number, not a bool, not NaN, finite
unless said otherwise, inside its range); probabilities of dropping or corrupting an element
through :func:`check_probability`, in [0, 1): p = 1 leaves no signal, and inverted dropout's
scale 1 / (1 - p) has no value there.
"""
import math
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_FLOAT32, _FLOAT64 = FLOAT_DTYPES


def check_int(value, name, minimum):
    """``value`` as a Python int of at least ``minimum``; a bool is refused (True is no count)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        expected = {0: "a non-negative int", 1: "a positive int"}.get(minimum, f"an int >= {minimum}")
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value)


def check_real(value, name, low=-math.inf, high=math.inf, *, low_open=False, high_open=False,
                finite=True):
    """``value`` as a Python float in the interval from ``low`` to ``high`` (closed unless
    ``low_open`` / ``high_open``); infinite only without ``finite``. A TypeError for a bool or a
    non-real, a ValueError naming ``name`` for NaN, an infinity or a value out of range."""
    if type(value) is not float:  # the usual case skips the ABC check (0.3 µs a call)
        if isinstance(value, (bool, np.bool_)) or not (
                isinstance(value, numbers.Real)
                or (isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf")):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        value = float(value)
    above = low < value if low_open else low <= value  # NaN fails both comparisons
    below = value < high if high_open else value <= high
    if not (above and below) or (finite and not math.isfinite(value)):
        if math.isinf(high):
            bound = "" if math.isinf(low) else f" {'>' if low_open else '>='} {low:g}"
        else:
            bound = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a {'finite ' if finite else ''}number{bound}, got {value!r}")
    return value


def check_bool(value, name):
    """``value`` as a bool; a TypeError naming ``name`` for anything but a bool (1 or "no" is no
    flag)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_probability(p, name):
    """A drop or corruption probability, in [0, 1) (see the module docstring)."""
    return check_real(p, name, 0.0, 1.0, high_open=True)


def check_validation_fraction(fraction):
    """The share of the training set held out for validation, in [0, 1) (0: none)."""
    return check_real(fraction, "validation_fraction", 0.0, 1.0, high_open=True)


def check_finite(arr, name):
    """``arr`` itself, or a ValueError naming ``name`` if it holds a NaN or an infinity. The test
    is a kernel of the active backend: ``np.isfinite(arr).all()`` would allocate a boolean array
    of arr's size."""
    from fastdl._kernels import ops  # the backends import this module: bind late
    if not ops().all_finite(np.ascontiguousarray(arr).reshape(-1)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def check_numeric_dtype(dtype, name):
    """A TypeError naming ``name`` unless ``dtype`` is a real numeric (bool, int, float) dtype."""
    if np.dtype(dtype).kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {dtype}")


def check_float_dtype(dtype, name):
    """``np.dtype(dtype)`` if it is float32 or float64, else a TypeError naming the argument."""
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dtype}")
    return dtype


def as_float_array(x, name, dtype=None):
    """``x`` as a C-contiguous float32/float64 array (no copy when it already is one).

    With ``dtype`` given the result has that dtype, converted if needed (used when an argument
    must match another one, e.g. a gradient and its input).
    """
    if (type(x) is np.ndarray and (x.dtype is _FLOAT32 or x.dtype is _FLOAT64)
            and (dtype is None or x.dtype == dtype) and x.flags.c_contiguous):
        return x  # the common case, checked cheaply (per-call overhead matters for small arrays)
    arr = np.asarray(x)
    if dtype is None:
        if arr.dtype in FLOAT_DTYPES:
            dtype = arr.dtype
        else:
            check_numeric_dtype(arr.dtype, name)
            dtype = np.dtype(np.float32) if arr.dtype == np.float16 else np.dtype(np.float64)
    else:
        check_numeric_dtype(arr.dtype, name)
    return np.asarray(arr, dtype=dtype, order="C")  # ascontiguousarray would make 0-d 1-d


def check_same_shape(a, a_name, b, b_name):
    if a.shape != b.shape:
        raise ValueError(f"{a_name} has shape {a.shape}, but {b_name} has shape {b.shape}")


def check_out(out, shape, dtype, inputs=(), name="out", in_place=True):
    """Validate the caller's output buffer ``out``, the argument ``name`` (errors say that name);
    ``None`` allocates a fresh one.

    ``out`` may be one of ``inputs`` exactly (in-place) when ``in_place``, but must not partly
    overlap any of them; without ``in_place`` it must not share memory with them at all (a GEMM
    reads its operands while it writes).
    """
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} has shape {out.shape}, but the result has shape {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"{name} has dtype {out.dtype}, but the result has dtype {np.dtype(dtype)}")
    flags = out.flags
    if not flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not flags.writeable:
        raise ValueError(f"{name} is read-only")
    for arr in inputs:
        if out is not arr and flags.owndata and arr.flags.owndata:
            continue  # two allocations: disjoint (the usual case; may_share_memory costs 0.25 µs)
        if not (out.size and np.may_share_memory(out, arr)):
            continue
        if not in_place:
            raise ValueError(f"{name} must not share memory with the inputs")
        same_view = (out.__array_interface__["data"][0] == arr.__array_interface__["data"][0]
                     and out.strides == arr.strides)
        if not same_view:
            raise ValueError(f"{name} partly overlaps an input; pass the input itself for "
                             "in-place")
    return out

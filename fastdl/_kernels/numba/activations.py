"""Activation functions: scalar elements, the table naming them, and the array kernels built from them.

Elements
--------
``<name>_elem(x, p)`` is f(x) for one float32/float64 scalar ``x`` and the activation's parameter
``p`` (LeakyReLU's slope, PReLU's and ELU's alpha, Swish's beta; ignored elsewhere) of the same
type, returning that type: constants are written ``T(c)`` with ``T = type(x)`` so float32 math
never widens to float64. ``<name>_grad(v, p)`` is the derivative f'(x) evaluated from ``v``, the
tensor named in the table's ``grad_from``: the output y where that is cheaper (sigmoid, tanh, relu,
elu; identity) and the input x otherwise. ``prelu_dalpha`` and ``swish_dbeta`` are ∂f/∂p. The dense
kernels fuse the same elements into their GEMM epilogue, so each formula exists exactly once.

At x = 0 the kinks take the left derivative, as torch does: relu'(0) = 0, leaky_relu'(0) =
negative_slope, prelu'(0) = alpha, elu'(0) = alpha (the seed's 1 is the right derivative).

Every element propagates NaN and gives the mathematical limit at ±inf (x·σ(x) → 0 as x → -inf,
not inf·0 = NaN), and is accurate in both tails (σ from e^{-|x|}; GELU from Φ(-|x|) =
e^{-x²/2} erfcx(|x|/√2)/2 with x² split exactly, not from 1 + erf).

Array kernels
-------------
Built by one factory from the elements over flat C-contiguous arrays: ``forward(x, p, out)`` is out
= f(x), ``backward(g, v, p, out)`` is out = g ⊙ f'(v); the scalar ``p`` may be a Python float (cast
to the arrays' type inside, which saves a conversion per call). Up to ``SERIAL_MAX`` elements they
run a plain loop on the calling thread (no thread launch); above it they split into ``CHUNK``-sized
tasks over numba's threads (both numbers from ``split.py``). Parameter gradients (PReLU's alpha,
Swish's beta; one shared scalar or one per feature = last axis) are float64 sums in an order fixed
by the array size alone (pairwise within blocks, then blocks, chunks and rows in order), so they
are bit-identical whatever the thread count; so is every output, because each element rounds the
same way in vectorised and scalar code (see ``_tamed``). ``out`` may be one of the inputs
(in-place).

Kernels are specialised from plain-Python templates with :func:`specialize` rather than closures:
numba hashes a closure's captured dispatchers by a random per-process id, so closures never hit
the on-disk cache (each run recompiles and adds a cache file).
"""
from functools import partial
from typing import NamedTuple

import numpy as np
from numba import prange

from fastdl._kernels import coefficients as C
from fastdl._kernels.numba import vmath
from fastdl._kernels.numba._jit import FASTMATH, inline_jit, jit, pjit, specialize
from fastdl._kernels.split import CHUNK, SERIAL_MAX

# Sums whose order must not depend on how a loop was vectorised: no 'reassoc'.
ordered_jit = partial(inline_jit, fastmath=FASTMATH - {"reassoc"})


PAIRWISE_BLOCK = 256  # parameter-gradient terms summed pairwise per block of this many
NARROW_ROW = 16  # softmax rows narrower than this (a float32 vector) take _softmax_narrow_rows


# ------------------------------------------------------------------------------------- helpers


@inline_jit
def _sigmoid_parts(z):
    """(σ(z), σ(z)σ(-z)) from one e^{-|z|}: never overflows, full relative accuracy in both tails."""
    T = type(z)
    e = vmath.exp(-abs(z))
    r = T(1.0) / (T(1.0) + e)
    return (r if z >= T(0.0) else e * r), e * r * r


@inline_jit
def _scaled(x, w):
    """x·w, but 0 where the weight w is 0: the limit of x·w(x) when w decays faster than x grows."""
    return type(x)(0.0) if w == type(w)(0.0) else x * w


@inline_jit
def _tamed(x):
    """x limited to ±1e4, for terms x·w(x) whose weight w is exactly 0 beyond that (no inf·0).

    Used instead of _scaled where a sum follows: a select between the product and the sum lets
    the compiler fuse (FMA) in vectorised code but not in the scalar remainder, and results would
    depend on where a chunk boundary falls.
    """
    T = type(x)
    return min(max(x, T(-1e4)), T(1e4))


# ------------------------------------------------------------------------------------ elements


@inline_jit
def identity_elem(x, p):
    return x


@inline_jit
def identity_grad(v, p):
    return type(v)(1.0)


@inline_jit
def sigmoid_elem(x, p):
    """σ(x) = 1 / (1 + e^{-x}): exactly 0 / 1 in the far tails, relative accuracy down to the
    subnormal range (10% cheaper than _sigmoid_parts; x σ(x) needs that one, as its tiny σ is
    scaled back into the normal range)."""
    T = type(x)
    return T(1.0) / (T(1.0) + vmath.exp(-x))


@inline_jit
def sigmoid_grad(y, p):
    """σ'(x) = y (1 - y), from the output y."""
    return y * (type(y)(1.0) - y)


@inline_jit
def tanh_elem(x, p):
    return vmath.tanh(x)


@inline_jit
def tanh_grad(y, p):
    """tanh'(x) = 1 - y², from the output y."""
    return type(y)(1.0) - y * y


@inline_jit
def relu_elem(x, p):
    """max(x, 0), NaN kept (x < 0 is False for NaN)."""
    return type(x)(0.0) if x < type(x)(0.0) else x


@inline_jit
def relu_grad(y, p):
    """1 where y > 0, else 0 (0 at x = 0, as torch), from the output y."""
    T = type(y)
    return T(0.0) if y <= T(0.0) else T(1.0)


@inline_jit
def leaky_relu_elem(x, p):
    """x for x ≥ 0, p·x below (p = negative_slope, or PReLU's alpha)."""
    return x * p if x < type(x)(0.0) else x


@inline_jit
def leaky_relu_grad(x, p):
    """1 for x > 0, p for x ≤ 0 (p at x = 0, as torch), from the input x."""
    return type(x)(1.0) if x > type(x)(0.0) else p


prelu_elem = leaky_relu_elem
prelu_grad = leaky_relu_grad


@inline_jit
def prelu_dalpha(x, alpha):
    """∂prelu/∂alpha = x for x ≤ 0, else 0."""
    return type(x)(0.0) if x > type(x)(0.0) else x


@inline_jit
def elu_elem(x, alpha):
    """x for x > 0, alpha (e^x - 1) otherwise."""
    return x if x > type(x)(0.0) else alpha * vmath.expm1(x)


@inline_jit
def elu_grad(y, alpha):
    """1 for y > 0, y + alpha = alpha e^x otherwise (alpha at 0), from the output y (alpha ≥ 0)."""
    return type(y)(1.0) if y > type(y)(0.0) else y + alpha


@inline_jit
def _normal_cdf_parts(x):
    """(Φ(x), φ(x)): the standard normal CDF and density from one vmath.normal_tail(|x|), with
    relative accuracy in the left tail (Φ(x) = Φ(-|x|) there; 1 + erf would cancel)."""
    T = type(x)
    tail, e = vmath.normal_tail(abs(x))
    return (tail if x < T(0.0) else T(1.0) - tail), T(C.INV_SQRT2PI) * e


@inline_jit
def gelu_elem(x, p):
    """x Φ(x), Φ the standard normal CDF."""
    return _scaled(x, _normal_cdf_parts(x)[0])


@inline_jit
def gelu_grad(x, p):
    """Φ(x) + x φ(x), from the input x."""
    cdf, pdf = _normal_cdf_parts(x)
    return cdf + _tamed(x) * pdf


@inline_jit
def gelu_tanh_elem(x, p):
    """x (1 + tanh u) / 2 = x σ(2u), u = √(2/π)(x + 0.044715 x³) (torch's approximate='tanh')."""
    T = type(x)
    return _scaled(x, _sigmoid_parts(T(C.TWO_SQRT2_PI) * (x + T(C.GELU_CUBIC) * x * x * x))[0])


@inline_jit
def gelu_tanh_grad(x, p):
    """σ(2u) + x σ'(2u) · 2u'(x), from the input x."""
    T = type(x)
    s, ds = _sigmoid_parts(T(C.TWO_SQRT2_PI) * (x + T(C.GELU_CUBIC) * x * x * x))
    xt = _tamed(x)
    return s + xt * T(C.TWO_SQRT2_PI) * (T(1.0) + T(3.0 * C.GELU_CUBIC) * xt * xt) * ds


@inline_jit
def swish_elem(x, beta):
    """x σ(beta x)."""
    return _scaled(x, _sigmoid_parts(beta * x)[0])


@inline_jit
def swish_grad(x, beta):
    """σ(βx) + βx σ(βx) σ(-βx), from the input x."""
    z = beta * x
    s, ds = _sigmoid_parts(z)
    return s + _tamed(z) * ds


@inline_jit
def swish_dbeta(x, beta):
    """∂swish/∂beta = x² σ(βx) σ(-βx)."""
    return _scaled(x * x, _sigmoid_parts(beta * x)[1])


@inline_jit
def silu_elem(x, p):
    """x σ(x) (swish with beta = 1)."""
    return swish_elem(x, type(x)(1.0))


@inline_jit
def silu_grad(x, p):
    return swish_grad(x, type(x)(1.0))


# ------------------------------------------------------------------------------ softmax rows


@inline_jit
def row_max(z):
    """max(z) for a non-empty 1-D z, as the maximum of ``vmath.order_key``: a float max is a
    compare-select chain that LLVM cannot vectorise without 'nnan', an integer max is one
    instruction per vector (4x faster). A NaN wins or is skipped depending on its sign bit; either
    way it makes the caller's e^{z - max} NaN."""
    key = vmath.order_key(z[0])
    for j in range(z.size):
        k = vmath.order_key(z[j])
        key = k if k > key else key
    return vmath.from_order_key(key, z[0])


@jit
def _softmax_narrow_rows(z, out):
    """Softmax of rows narrower than a vector (a 10-class head). A loop along so short a row never
    reaches its vectorized body, so the exponentials run as one loop over the whole block, and
    only the cheap steps (max, shift, sum, scale) go row by row. 1024 x 10 takes 11 µs, the row
    loop of softmax_rows 16-17, and the transpose into scratch this replaced 18 (which was 10%
    faster at 3 and 7 columns, with three allocations per call). A row's result does not depend
    on the block it is in."""
    rows, n = z.shape
    for i in range(rows):
        m = row_max(z[i])
        for j in range(n):
            out[i, j] = z[i, j] - m
    flat = out.reshape(out.size)  # a view (C-contiguous out); ravel could silently copy
    for k in range(flat.size):
        flat[k] = vmath.exp(flat[k])
    for i in range(rows):
        total = out[i, 0]
        for j in range(1, n):
            total += out[i, j]
        scale = type(total)(1.0) / total
        for j in range(n):
            out[i, j] *= scale


# The row loops below index the 2-D arrays in place: a call per row on row slices cost 30-50 ns
# a row more (forward 64 x 40: 4.4 -> 2.0 µs; backward 64 x 10: 2.9 -> 0.6 µs; the same bits).


@jit
def softmax_rows(z, out):
    """Row-wise softmax of a 2-D block (serial: callable from inside other kernels' prange):
    out = e^{z - max z} / Σ e^{z - max z} per row; a NaN anywhere in a row (or a row of -inf)
    makes that row NaN."""
    rows, n = z.shape
    if n == 0:
        return
    if n < NARROW_ROW:
        _softmax_narrow_rows(z, out)
        return
    for i in range(rows):
        m = row_max(z[i])
        total = type(m)(0.0)
        for j in range(n):
            e = vmath.exp(z[i, j] - m)
            out[i, j] = e
            total += e
        scale = type(m)(1.0) / total
        for j in range(n):
            out[i, j] *= scale


@jit
def softmax_backward_rows(g, y, out):
    """Softmax JVP per row: out = y ⊙ (g - Σ g ⊙ y) = (diag(y) - y yᵀ) g (serial, 2-D block)."""
    zero = y.dtype.type(0.0)
    for i in range(y.shape[0]):
        dot = zero
        for j in range(y.shape[1]):
            dot += g[i, j] * y[i, j]
        for j in range(y.shape[1]):
            out[i, j] = y[i, j] * (g[i, j] - dot)


@pjit
def softmax_forward(z, out):
    """softmax_rows over a 2-D array, blocks of rows spread over threads when large."""
    rows = z.shape[0]
    if z.size <= SERIAL_MAX:
        softmax_rows(z, out)
    else:
        block = max(1, CHUNK // z.shape[1])
        for c in prange((rows + block - 1) // block):
            lo, hi = c * block, min(rows, (c + 1) * block)
            softmax_rows(z[lo:hi], out[lo:hi])


@pjit
def softmax_backward(g, y, out):
    """softmax_backward_rows over a 2-D array, blocks of rows spread over threads when large."""
    rows = y.shape[0]
    if y.size <= SERIAL_MAX:
        softmax_backward_rows(g, y, out)
    else:
        block = max(1, CHUNK // y.shape[1])
        for c in prange((rows + block - 1) // block):
            lo, hi = c * block, min(rows, (c + 1) * block)
            softmax_backward_rows(g[lo:hi], y[lo:hi], out[lo:hi])


# --------------------------------------------------------------------- kernel templates
# Plain functions over the placeholder globals below; specialize() binds them to elements. The
# serial loops run over slices and start at 0: numba then knows indices are non-negative and LLVM
# vectorises them (an index like c * CHUNK + k carries a negative-index check that stops it).

ELEM = GRAD = DPARAM = MAP = PARAM_SUM = None


def _map_forward_template(x, p, out):
    for i in range(x.size):
        out[i] = ELEM(x[i], p)


def _map_backward_template(g, v, p, out):
    for i in range(v.size):
        out[i] = g[i] * GRAD(v[i], p)


def _map_features_template(x, p, out):
    # one row: p holds one parameter per element
    for j in range(x.size):
        out[j] = ELEM(x[j], p[j])


def _forward_template(x, p, out):
    p = x.dtype.type(p)
    n = x.size
    if n <= SERIAL_MAX:
        MAP(x, p, out)
    else:
        for c in prange((n + CHUNK - 1) // CHUNK):
            lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
            MAP(x[lo:hi], p, out[lo:hi])


def _backward_template(g, v, p, out):
    p = v.dtype.type(p)
    n = v.size
    if n <= SERIAL_MAX:
        MAP(g, v, p, out)
    else:
        for c in prange((n + CHUNK - 1) // CHUNK):
            lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
            MAP(g[lo:hi], v[lo:hi], p, out[lo:hi])


def _forward_features_template(x, p, out):
    # x, out: flat, rows of p.size features one after the other; p: one parameter per feature
    features = p.size
    rows = x.size // features
    if x.size <= SERIAL_MAX:
        for i in range(rows):
            MAP(x[i * features:(i + 1) * features], p, out[i * features:(i + 1) * features])
    else:
        block = max(1, CHUNK // features)
        for c in prange((rows + block - 1) // block):
            for i in range(c * block, min(rows, (c + 1) * block)):
                MAP(x[i * features:(i + 1) * features], p, out[i * features:(i + 1) * features])


def _param_sum_template(g, x, p, out):
    # out = g * f'(x) over one chunk; returns sum(g * df/dp): float64 terms of each block of
    # PAIRWISE_BLOCK elements summed pairwise in a fixed tree (elementwise adds, so vectorising
    # cannot reorder them), then the blocks in order
    terms = np.empty(PAIRWISE_BLOCK)
    total = 0.0
    for lo in range(0, x.size, PAIRWISE_BLOCK):
        gs, xs, outs = g[lo:lo + PAIRWISE_BLOCK], x[lo:lo + PAIRWISE_BLOCK], out[lo:lo + PAIRWISE_BLOCK]
        for k in range(xs.size):
            out_k = gs[k] * GRAD(xs[k], p)
            terms[k] = np.float64(gs[k]) * np.float64(DPARAM(xs[k], p))  # exact product
            outs[k] = out_k
        terms[xs.size:] = 0.0
        width = PAIRWISE_BLOCK // 2
        while width:
            for k in range(width):
                terms[k] += terms[k + width]
            width //= 2
        total += terms[0]
    return total


def _param_sum_features_template(g, x, p, out, acc):
    # one row: out = g * f'(x) and acc += g * df/dp, per feature (rows are added in order)
    for j in range(x.size):
        out_j = g[j] * GRAD(x[j], p[j])
        acc[j] += np.float64(g[j]) * np.float64(DPARAM(x[j], p[j]))
        out[j] = out_j


def _param_backward_template(g, x, p, out):
    # out = g * f'(x); returns sum(g * df/dp) in float64, summed per fixed chunk then in order
    p = x.dtype.type(p)
    n = x.size
    chunks = (n + CHUNK - 1) // CHUNK
    partial = np.empty(chunks)  # np.zeros would be a parallel loop of its own in a pjit kernel
    if n <= SERIAL_MAX:
        for c in range(chunks):
            lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
            partial[c] = PARAM_SUM(g[lo:hi], x[lo:hi], p, out[lo:hi])
    else:
        for c in prange(chunks):
            lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
            partial[c] = PARAM_SUM(g[lo:hi], x[lo:hi], p, out[lo:hi])
    total = 0.0
    for c in range(chunks):
        total += partial[c]
    return total


def _param_backward_features_template(g, x, p, out):
    # as _param_backward_template, one parameter per feature (flat rows of p.size features, as in
    # _forward_features_template): returns (features,)
    features = p.size
    rows = x.size // features
    block = max(1, CHUNK // features)
    chunks = (rows + block - 1) // block
    partial = np.empty((chunks, features))
    if x.size <= SERIAL_MAX:
        for c in range(chunks):
            partial[c] = 0.0
            for i in range(c * block, min(rows, (c + 1) * block)):
                lo, hi = i * features, (i + 1) * features
                PARAM_SUM(g[lo:hi], x[lo:hi], p, out[lo:hi], partial[c])
    else:
        for c in prange(chunks):
            partial[c] = 0.0
            for i in range(c * block, min(rows, (c + 1) * block)):
                lo, hi = i * features, (i + 1) * features
                PARAM_SUM(g[lo:hi], x[lo:hi], p, out[lo:hi], partial[c])
    total = np.empty(features)
    for j in range(features):
        total[j] = 0.0
    for c in range(chunks):
        for j in range(features):
            total[j] += partial[c, j]
    return total


class Activation(NamedTuple):
    """One activation: its elements, which tensor its derivative reads, and its array kernels."""

    elem: object  # f(x, p)
    grad: object  # f'(v, p), v = the tensor named by grad_from
    grad_from: str  # 'input' or 'output'
    default: float  # the parameter's default (0.0 where there is none)
    forward: object  # forward(x, p, out) over flat arrays
    backward: object  # backward(g, v, p, out) over flat arrays


def _activation(name, elem, grad, grad_from, default=0.0):
    forward_map = specialize(_map_forward_template, f"{name}_forward_map", jit, ELEM=elem)
    backward_map = specialize(_map_backward_template, f"{name}_backward_map", jit, GRAD=grad)
    return Activation(
        elem, grad, grad_from, default,
        specialize(_forward_template, f"{name}_forward", pjit, MAP=forward_map),
        specialize(_backward_template, f"{name}_backward", pjit, MAP=backward_map),
    )


#: name → Activation, read by the functional layer and the dense kernels. Softmax is row-wise, not
#: an element: see softmax_rows / softmax_backward_rows and softmax_forward / softmax_backward.
ACTIVATIONS = {
    "identity": _activation("identity", identity_elem, identity_grad, "output"),
    "sigmoid": _activation("sigmoid", sigmoid_elem, sigmoid_grad, "output"),
    "tanh": _activation("tanh", tanh_elem, tanh_grad, "output"),
    "relu": _activation("relu", relu_elem, relu_grad, "output"),
    "leaky_relu": _activation("leaky_relu", leaky_relu_elem, leaky_relu_grad, "input", 0.01),
    "prelu": _activation("prelu", prelu_elem, prelu_grad, "input", 0.25),
    "elu": _activation("elu", elu_elem, elu_grad, "output", 1.0),
    "softmax": Activation(None, None, "output", 0.0, softmax_forward, softmax_backward),
    "gelu": _activation("gelu", gelu_elem, gelu_grad, "input"),
    "gelu_tanh": _activation("gelu_tanh", gelu_tanh_elem, gelu_tanh_grad, "input"),
    "swish": _activation("swish", swish_elem, swish_grad, "input", 1.0),
    "silu": _activation("silu", silu_elem, silu_grad, "input"),
}


class ParamKernels(NamedTuple):
    """The extra kernels of an activation with a learnable parameter (shared or one per feature)."""

    forward_features: object  # (x, p, out): flat rows of p.size features, p (features,)
    backward_shared: object  # (g, x, p, out) -> sum g*df/dp (float64), flat arrays, p a scalar
    backward_features: object  # (g, x, p, out) -> (features,) float64, flat rows as forward


def _param_kernels(name, dparam):
    act = ACTIVATIONS[name]
    features_map = specialize(_map_features_template, f"{name}_features_map", inline_jit,
                              ELEM=act.elem)
    param_sum = specialize(_param_sum_template, f"{name}_param_sum", ordered_jit,
                           GRAD=act.grad, DPARAM=dparam)
    param_sum_features = specialize(_param_sum_features_template, f"{name}_param_sum_features",
                                    ordered_jit, GRAD=act.grad, DPARAM=dparam)
    return ParamKernels(
        specialize(_forward_features_template, f"{name}_forward_features", pjit, MAP=features_map),
        specialize(_param_backward_template, f"{name}_backward_shared", pjit, PARAM_SUM=param_sum),
        specialize(_param_backward_features_template, f"{name}_backward_features", pjit,
                   PARAM_SUM=param_sum_features),
    )


#: activations with a learnable parameter → the element ∂f/∂p
PARAM_GRADS = {"prelu": prelu_dalpha, "swish": swish_dbeta}
#: activations with a learnable parameter → their extra kernels
PARAM_KERNELS = {name: _param_kernels(name, dparam) for name, dparam in PARAM_GRADS.items()}

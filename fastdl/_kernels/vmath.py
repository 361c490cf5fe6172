"""Vectorizable transcendental functions for numba kernels (float32 and float64).

exp and expm1 are polynomial (vectorizable); log, log1p, tanh, erf, erfc still call libm and stay
scalar in loops: being replaced. Each takes one float32 or float64 scalar and returns that type.
"""
import math
from functools import partial

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from fastdl._kernels._jit import CACHE

# Instruction-level fast-math flags survive LLVM inlining, so these functions keep their own
# flags inside kernels compiled with the project's FASTMATH. Only 'contract' (FMA fusion):
# 'reassoc' would fold the Cody-Waite reduction (x - k*hi) - k*lo and the rounding trick, 'nsz'
# would lose the sign of zero (expm1(-0.0) = -0.0), 'arcp'/'afn' cost accuracy.
FLAGS = {"contract"}
vjit = partial(numba.njit, cache=CACHE, fastmath=FLAGS, error_model="numpy", nogil=True)

_OVERLOAD = {"jit_options": {"fastmath": FLAGS, "error_model": "numpy", "nogil": True}}
_INT_OF = {types.float32: types.int32, types.float64: types.int64}
_MANTISSA_BITS = {types.float32: 23, types.float64: 52}


# ---------------------------------------------------------------- per-type constants, bit tricks


def _pick(x, for_float32, for_float64):
    """The constant for x's type, as that type (resolved at compile time)."""


@overload(_pick, **_OVERLOAD)
def _pick_overload(x, for_float32, for_float64):
    if x == types.float32:
        return lambda x, for_float32, for_float64: np.float32(for_float32)
    return lambda x, for_float32, for_float64: np.float64(for_float64)


def _horner(x, coeffs32, coeffs64):
    """Σ c_i x^i with the coefficients (lowest first) for x's type, by Horner's rule."""


def _horner_with(T, n, pick_first):
    def horner(x, coeffs32, coeffs64):
        coeffs = coeffs32 if pick_first else coeffs64
        acc = T(coeffs[n - 1])
        for i in range(n - 2, -1, -1):
            acc = acc * x + T(coeffs[i])
        return acc

    return horner


@overload(_horner, **_OVERLOAD)
def _horner_overload(x, coeffs32, coeffs64):
    if x == types.float32:
        return _horner_with(np.float32, len(coeffs32), True)
    return _horner_with(np.float64, len(coeffs64), False)


def _int_type(float_type):
    return ir.IntType(_MANTISSA_BITS[float_type] + (9 if float_type == types.float32 else 12))


@intrinsic
def _pow2(typingctx, k):
    """2^k for an integral float k whose result is a normal number (bit-cast into the exponent)."""
    if k not in _MANTISSA_BITS:
        return None
    mantissa_bits = _MANTISSA_BITS[k]

    def codegen(context, builder, signature, args):
        int_type = _int_type(k)
        bias = (1 << (int_type.width - mantissa_bits - 2)) - 1
        biased = builder.add(builder.fptosi(args[0], int_type), ir.Constant(int_type, bias))
        bits = builder.shl(biased, ir.Constant(int_type, mantissa_bits))
        return builder.bitcast(bits, context.get_value_type(k))

    return k(k), codegen


# ---------------------------------------------------------------- exp, expm1

_LOG2E = 1.4426950408889634
# ln2 = hi + lo; hi has trailing zero bits, so k*hi is exact for every k reached here.
_LN2_HI32, _LN2_LO32 = 0.693145751953125, 1.428606765330187e-06
_LN2_HI64, _LN2_LO64 = 0.6931471803691238, 1.9082149292705877e-10
# expm1(r) = r + r²/2 + r³ q(r) on |r| <= ln2/2; Chebyshev fits, relative error 1e-9 / 1e-18.
_EXPM1_Q32 = (0.1666666716337204, 0.041666556149721146, 0.00833332072943449,
              0.0013926175888627768, 0.00019882690685335547)
_EXPM1_Q64 = (0.16666666666666669, 0.041666666666666664, 0.008333333333330065,
              0.0013888888888886554, 0.00019841269863040545, 2.4801587317135164e-05,
              2.7557268480310024e-06, 2.755728298405588e-07, 2.5100375832561234e-08,
              2.091122972975856e-09)


@vjit
def _reduce_ln2(x):
    """(k, r): x = k ln2 + r with k integral and |r| <= ln2/2 (Cody-Waite, |x| < 2^20)."""
    T = type(x)
    k = np.rint(x * T(_LOG2E))
    r = (x - k * _pick(x, _LN2_HI32, _LN2_HI64)) - k * _pick(x, _LN2_LO32, _LN2_LO64)
    return k, r


@vjit
def _expm1_poly(r):
    """expm1(r) for |r| <= ln2/2."""
    return r + r * r * (type(r)(0.5) + r * _horner(r, _EXPM1_Q32, _EXPM1_Q64))


@vjit
def exp(x):
    """e^x; overflows to inf, underflows gradually to 0, NaN → NaN."""
    lowest, highest = _pick(x, -104.0, -746.0), _pick(x, 89.0, 710.0)
    clamped = x if x > lowest else lowest  # NaN → lowest, so the int conversion stays defined
    clamped = clamped if clamped < highest else highest
    k, r = _reduce_ln2(clamped)
    # 2^k as two normal factors: a subnormal result is rounded once, an overflow gives inf
    half = np.floor(k * type(x)(0.5))
    y = (type(x)(1.0) + _expm1_poly(r)) * _pow2(half) * _pow2(k - half)
    return y if x == x else x


@vjit
def expm1(x):
    """e^x - 1 with full relative accuracy near 0; expm1(-0.0) = -0.0."""
    T = type(x)
    lowest, highest = _pick(x, -30.0, -60.0), _pick(x, 89.0, 710.0)  # e^lowest < ulp(1)/4
    clamped = x if x > lowest else lowest
    clamped = clamped if clamped < highest else highest
    k, r = _reduce_ln2(clamped)
    # e^x - 1 = 2 (t p + (t - 1/2)) with t = 2^(k-1), p = expm1(r): exact for k = 0, no overflow of t
    t = _pow2(k - T(1.0))
    y = T(2.0) * (t * _expm1_poly(r) + (t - T(0.5)))
    return y if abs(x) > T(0.0) else x  # ±0 and NaN pass through


# ---------------------------------------------------------------- libm placeholders (scalar in loops)


@vjit
def log(x):
    return math.log(x)


@vjit
def log1p(x):
    return math.log1p(x)


@vjit
def tanh(x):
    return math.tanh(x)


@vjit
def erf(x):
    return math.erf(x)


@vjit
def erfc(x):
    return math.erfc(x)

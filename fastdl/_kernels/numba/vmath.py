"""Vectorizable transcendental functions for numba kernels (float32 and float64).

``exp, expm1, log, log1p, tanh, erf, erfc`` each take one float32 or float64 scalar and return
that type. numba lost SVML in 0.62, so ``math.exp`` & co. keep a loop scalar; these are
branch-free (selects, no early returns), polynomial, and inline into the caller's loop, which
LLVM then vectorizes. float32 runs in float32 with int32 bit tricks and shorter polynomials,
float64 in float64 with int64: the type picks the constants and polynomials at compile time
(``_pick`` / ``_polynomial`` overloads), so each formula is written once.

Methods (coefficients: fdlibm's for log; float32 exp's polynomial and the float32 rationals of tanh
and erfcx minimax fits by Lawson-weighted linearized least squares, against mpmath and scipy's
erfcx; Chebyshev fits made with mpmath.chebyfit otherwise):

- exp: x = k ln2 + r, |r| <= ln2/2 (Cody-Waite, ln2 split hi + lo); e^r a polynomial of degree 6
  in float32, 1 + expm1(r) in float64; times 2^k (``_ldexp``) so that results overflow to inf and
  underflow through the subnormals with one rounding. The argument is clamped first, so ±1e4 and
  ±inf never overflow the integer k.
- expm1: the same reduction; e^x - 1 = 2 (t p + (t - 1/2)) with t = 2^(k-1),
  p = expm1(r) = r + r²/2 + r³ q(r), q of degree 4 / 9: exact at k = 0 (relative accuracy near 0)
  and finite up to the overflow threshold.
- log, log1p: u = 2^k m with m in [√½, √2) by bit manipulation, f = m - 1, s = f / (2 + f),
  log(1+f) = f - f²/2 + s (f²/2 + R(s²)) (fdlibm's R, degree 4 / 7); log1p adds the rounding
  error of u = 1 + x back as c/u. Subnormal inputs to log are scaled by 2^25 / 2^54 first.
- tanh: float32 c P(c²) / Q(c²), c = x clamped to ±9, P and Q of degree 4 (one division: the
  expm1 form below took 1.7x as long, its 2.5 ulp for this 4.8); float64 sign(x) (-e) / (e + 2)
  with e = expm1(-2|x|): no cancellation near 0, ±1 at ±inf.
- erf, erfc: near 0, erf = x + x P(x²) (|x| <= 1 / 0.75, P of degree 6 / 10) and erfc =
  (1 - x) - x P(x²) (|x| <= 0.75). erfc beyond: erfc(a) = e^{-a²} erfcx(a), erfcx fitted up to
  where erfc underflows: float32 a rational P(a) / Q(a) of degree 4 / 5 (one division),
  float64 W(y) / (1 + 2a), y = (a - K) / (a + K) (Weideman's form, W of degree 22);
  e^{-a²} computed as e^{-(hi + lo)} with a² = hi + lo exactly (hi = a² rounded, lo = fma(a, a, -hi);
  on CPUs without FMA hi = h², lo = (a-h)(a+h), h = a truncated to half its bits), so erfc keeps
  relative accuracy in the far tail; erfc(-a) = 2 - erfc(a).
  ``normal_tail(t)``, for GELU: Φ(-t) = e^{-t²/2} erfcx(t/√2)/2 and e^{-t²/2}, with t²/2 split
  exactly from t (not from the rounded t/√2, whose error e^{-a²} would multiply by 2a²).
  erf beyond: ±(1 - erfc(|x|)), where float32 needs only absolute accuracy and takes the cheaper
  erfc(a) = e^{S(a) - a²} (S of degree 8 on [1, 3.93], no division; erf rounds to 1 beyond).

Accuracy, max error in ulp of the correctly rounded result measured by tests/test_vmath.py from
loops compiled with the project's fast-math ``jit`` (float32: 600k points per function against
float64 numpy / scipy; float64: against long double numpy, or mpmath for erf / erfc):

    function   exp   expm1  log   log1p  tanh  erf   erfc
    float32    0.88  1.33   0.82  0.74   4.80  0.88  5.03
    float64    0.95  1.79   0.72  0.73   2.49  0.60  2.21

(with FMA, as every x86-64 CPU since 2013 has; without it each product rounds separately:
erfc float32 5.63.)

Specials: NaN → NaN everywhere; exp(-inf) = 0, exp(inf) = inf; log(0) = -inf, log(x < 0) = NaN,
log1p(-1) = -inf; tanh(±inf) = ±1, erf(±inf) = ±1, erfc(-inf) = 2, erfc(inf) = 0; signed zeros
kept by expm1, log1p, tanh, erf. No floating-point exceptions reach numpy.

Compilation: ``vjit`` below, with fast-math flags {'contract'} only. LLVM fast-math flags live on
each instruction and survive inlining, so these keep their own flags inside kernels built with
the project's FASTMATH: 'reassoc' would fold the Cody-Waite steps (x - k hi) - k lo, the h² split
and log1p's rounding-error term; 'nsz' would lose signed zeros; 'arcp' / 'afn' cost accuracy.
'contract' (FMA) only makes these steps more exact. ``forceinline=True`` marks them alwaysinline:
LLVM's cost model otherwise leaves erf / erfc as calls, and a call keeps the loop scalar.
"""
from functools import partial

import llvmlite.binding
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from fastdl._kernels import coefficients as C
from fastdl._kernels.numba._jit import jit

FLAGS = {"contract"}  # why not the project's FASTMATH: see the module docstring
vjit = partial(jit, fastmath=FLAGS, forceinline=True)

_OVERLOAD = {"jit_options": {"fastmath": FLAGS, "error_model": "numpy", "nogil": True}}
# float type: (integer of the same width, mantissa bits, exponent bias)
_LAYOUT = {types.float32: (ir.IntType(32), 23, 127), types.float64: (ir.IntType(64), 52, 1023)}
_SUFFIX = {types.float32: "f32", types.float64: "f64"}  # LLVM's name for the type in intrinsics


# ---------------------------------------------------------------- per-type constants, bit tricks


def _pick(x, for_float32, for_float64):
    """The constant for x's type, as that type (resolved at compile time)."""


@overload(_pick, **_OVERLOAD)
def _pick_overload(x, for_float32, for_float64):
    if x == types.float32:
        return lambda x, for_float32, for_float64: np.float32(for_float32)
    return lambda x, for_float32, for_float64: np.float64(for_float64)


def _horner_with(T, coeffs):
    """Horner's rule as straight-line code with the coefficients as literals: a loop over a
    tuple stays a loop (and a scalar switch) once it is too long for LLVM to unroll."""
    lines = ["def horner(x):", f"    acc = T({coeffs[-1]!r})"]
    lines += [f"    acc = acc * x + T({c!r})" for c in reversed(coeffs[:-1])]
    namespace = {"T": T}
    exec("\n".join(lines + ["    return acc"]), namespace)
    return namespace["horner"]


def _polynomial(coeffs32, coeffs64=None):
    """p(x) = Σ c_i x^i with the coefficients (lowest first) for x's type (None: not defined for
    that type)."""

    def polynomial(x):
        raise NotImplementedError("only callable from numba code")

    @overload(polynomial, **_OVERLOAD)
    def _overload(x):
        if x == types.float32 and coeffs32 is not None:
            return _horner_with(np.float32, coeffs32)
        if x == types.float64 and coeffs64 is not None:
            return _horner_with(np.float64, coeffs64)
        return None

    return polynomial


def _call_llvm(builder, name, return_type, args):
    """Call the LLVM intrinsic ``name`` (declared in the module on first use)."""
    signature = ir.FunctionType(return_type, [arg.type for arg in args])
    return builder.call(cgutils.get_or_insert_function(builder.module, signature, name), args)


def _pow2_bits(builder, k_int, int_type, mantissa_bits, bias):
    biased = builder.add(k_int, ir.Constant(int_type, bias))
    return builder.shl(biased, ir.Constant(int_type, mantissa_bits))


@intrinsic
def _pow2(typingctx, k):
    """2^k for an integral float k whose result is a normal number (bit-cast into the exponent)."""
    if k not in _LAYOUT:
        return None
    layout = _LAYOUT[k]

    def codegen(context, builder, signature, args):
        bits = _pow2_bits(builder, builder.fptosi(args[0], layout[0]), *layout)
        return builder.bitcast(bits, context.get_value_type(k))

    return k(k), codegen


def _target_has(feature):
    """Whether the code numba generates may use a CPU feature, e.g. "avx512f" (the features it
    compiles for: NUMBA_CPU_FEATURES, else the host's)."""
    features = numba.config.CPU_FEATURES
    if features is None:
        features = llvmlite.binding.get_host_cpu_features().flatten()
    return "+" + feature in features.split(",")


@intrinsic
def _nearest_int(typingctx, x):
    """x rounded to the nearest integer (ties to even), as an int32 (|x| < 2^31): LLVM's lrint,
    one vcvtps2dq; the float k that exp needs too is then one conversion back, which the int k
    given to ``_ldexp`` shares."""
    if x not in _LAYOUT:
        return None

    def codegen(context, builder, signature, args):
        return _call_llvm(builder, "llvm.lrint.i32." + _SUFFIX[x], ir.IntType(32), args)

    return types.int32(x), codegen


@intrinsic
def _ldexp(typingctx, y, k):
    """y 2^k for an int32 k: a subnormal result is rounded once and an overflow gives inf. With
    AVX-512, LLVM's ldexp: one vscalefps / vscalefpd. Elsewhere LLVM would call libm's ldexp per
    element (8x slower sigmoid with AVX2), so it is 2^⌊k/2⌋ 2^(k-⌊k/2⌋), two factors bit-cast into
    exponents, both normal wherever exp needs them (nine instructions: sigmoid at 8M float32 is
    25% slower that way with AVX-512)."""
    if y not in _LAYOUT or k != types.int32:
        return None
    layout = _LAYOUT[y]
    scalef = _target_has("avx512f")

    def codegen(context, builder, signature, args):
        float_type = context.get_value_type(y)
        if scalef:
            return _call_llvm(builder, f"llvm.ldexp.{_SUFFIX[y]}.i32", float_type, args)
        k_int = builder.sext(args[1], layout[0]) if layout[0].width > 32 else args[1]
        half = builder.ashr(k_int, ir.Constant(layout[0], 1))
        rest = builder.sub(k_int, half)
        first = builder.bitcast(_pow2_bits(builder, half, *layout), float_type)
        second = builder.bitcast(_pow2_bits(builder, rest, *layout), float_type)
        return builder.fmul(builder.fmul(args[0], first), second)

    return y(y, k), codegen


@intrinsic
def _split_exponent(typingctx, x):
    """(k, m) with x = 2^k m, k integral, m in [sqrt(1/2), sqrt(2)), for a positive normal x."""
    if x not in _LAYOUT:
        return None
    int_type, mantissa_bits, bias = _LAYOUT[x]

    def codegen(context, builder, signature, args):
        float_type = context.get_value_type(x)
        one_bits = bias << mantissa_bits
        # the bits of (a value just below) sqrt(1/2): mantissas from there on belong to k + 1
        low_bits = one_bits - (1 << mantissa_bits) + int(0x3504F3 * 2.0 ** (mantissa_bits - 23))

        def const(value):
            return ir.Constant(int_type, value)

        bits = builder.add(builder.bitcast(args[0], int_type), const(one_bits - low_bits))
        k = builder.sub(builder.ashr(bits, const(mantissa_bits)), const(bias))
        m_bits = builder.add(builder.and_(bits, const((1 << mantissa_bits) - 1)), const(low_bits))
        values = [builder.sitofp(k, float_type), builder.bitcast(m_bits, float_type)]
        return context.make_tuple(builder, signature.return_type, values)

    return types.UniTuple(x, 2)(x), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a b + c rounded once (LLVM's fma: one instruction where the target has FMA)."""
    if a not in _LAYOUT or not a == b == c:
        return None

    def codegen(context, builder, signature, args):
        return _call_llvm(builder, "llvm.fma." + _SUFFIX[a], context.get_value_type(a), args)

    return a(a, a, a), codegen


@intrinsic
def _high_half(typingctx, x):
    """x with the low half of its mantissa bits cleared, so that its square is exact."""
    if x not in _LAYOUT:
        return None
    int_type, mantissa_bits, _ = _LAYOUT[x]
    cleared = (mantissa_bits + 2) // 2  # keep at most half the significand bits

    def codegen(context, builder, signature, args):
        mask = ir.Constant(int_type, -(1 << cleared))
        bits = builder.and_(builder.bitcast(args[0], int_type), mask)
        return builder.bitcast(bits, context.get_value_type(x))

    return x(x), codegen


@intrinsic
def order_key(typingctx, x):
    """An integer whose signed order is the order of x: the bits of x with the magnitude bits
    flipped when the sign bit is set (-0 < +0; a NaN with the sign bit clear sorts above +inf, one
    with it set below -inf). Integer max reductions vectorize without 'nnan'; float ones do not.
    """
    if x not in _LAYOUT:
        return None
    int_type = _LAYOUT[x][0]

    def codegen(context, builder, signature, args):
        return _flip_negative(builder, builder.bitcast(args[0], int_type), int_type)

    return types.int32(x) if x == types.float32 else types.int64(x), codegen


@intrinsic
def from_order_key(typingctx, key, like):
    """The float of ``like``'s type whose ``order_key`` is ``key`` (the map is an involution)."""
    if like not in _LAYOUT or key.bitwidth != _LAYOUT[like][0].width:
        return None
    int_type = _LAYOUT[like][0]

    def codegen(context, builder, signature, args):
        bits = _flip_negative(builder, args[0], int_type)
        return builder.bitcast(bits, context.get_value_type(like))

    return like(key, like), codegen


def _flip_negative(builder, bits, int_type):
    width = int_type.width
    sign = builder.ashr(bits, ir.Constant(int_type, width - 1))  # all ones when negative
    return builder.xor(bits, builder.and_(sign, ir.Constant(int_type, (1 << (width - 1)) - 1)))


# ---------------------------------------------------------------- exp, expm1

_expm1_q = _polynomial(C.EXPM1_Q32, C.EXPM1_Q64)
_exp_p = _polynomial(C.EXP_P32)


def _exp_reduced(r):
    """e^r for |r| <= ln2/2: float32 by its own polynomial (two operations fewer than
    1 + expm1(r): sigmoid 10% faster in L1), float64 as 1 + expm1(r)."""


@overload(_exp_reduced, **_OVERLOAD)
def _exp_reduced_overload(r):
    if r == types.float32:
        return lambda r: _exp_p(r)
    return lambda r: 1.0 + _expm1_poly(r)


@vjit
def _exp_sum(hi, lo):
    """e^(hi + lo) for |lo| << 1 and hi + lo within the clamps of exp; lo carries bits that hi,
    rounded, could not (erfc's -z²)."""
    T = type(hi)
    n = _nearest_int(hi * T(C.LOG2E))  # lo moves r by at most an ulp of hi past ln2/2
    k = T(n)
    r = ((hi - k * _pick(hi, C.LN2_HI32, C.LN2_HI64)) - k * _pick(hi, C.LN2_LO32, C.LN2_LO64)) + lo
    return _ldexp(_exp_reduced(r), n)


@vjit
def _clamp(x, lowest, highest):
    """x limited to [lowest, highest]; NaN → lowest, which keeps later int conversions defined."""
    x = x if x > lowest else lowest
    return x if x < highest else highest


@vjit
def _within(x, lowest, highest):
    """x limited to [lowest, highest]; NaN stays NaN (``_clamp`` sends it to lowest, for values
    that become integers)."""
    x = highest if x > highest else x
    return lowest if x < lowest else x


@vjit
def _expm1_poly(r):
    """expm1(r) for |r| <= ln2/2 (a little more is fine)."""
    return r + r * r * (type(r)(0.5) + r * _expm1_q(r))


@vjit
def exp(x):
    """e^x; overflows to inf, underflows gradually to 0, NaN → NaN."""
    y = _exp_sum(_clamp(x, _pick(x, -104.0, -746.0), _pick(x, 89.0, 710.0)), type(x)(-0.0))
    return y if x == x else x


@vjit
def expm1(x):
    """e^x - 1 with full relative accuracy near 0; expm1(-0.0) = -0.0."""
    T = type(x)
    # e^lowest < ulp(1)/4, so expm1 is -1 below it
    clamped = _clamp(x, _pick(x, -30.0, -60.0), _pick(x, 89.0, 710.0))
    k = np.rint(clamped * T(C.LOG2E))
    r = (clamped - k * _pick(x, C.LN2_HI32, C.LN2_HI64)) - k * _pick(x, C.LN2_LO32, C.LN2_LO64)
    # e^x - 1 = 2 (t p + (t - 1/2)) with t = 2^(k-1), p = expm1(r): exact for k = 0, t stays finite
    t = _pow2(k - T(1.0))
    y = T(2.0) * (t * _expm1_poly(r) + (t - T(0.5)))
    return y if abs(x) > T(0.0) else x  # ±0 and NaN pass through


# ---------------------------------------------------------------- log, log1p

_log_r = _polynomial(C.LOG_R32, C.LOG_R64)


@vjit
def _log_core(u, c):
    """log(u) + c for a positive normal u and a correction c of the order of ulp(log u)."""
    T = type(u)
    k, m = _split_exponent(u)
    f = m - T(1.0)
    s = f / (T(2.0) + f)
    z = s * s
    half_f2 = T(0.5) * f * f
    r = z * _log_r(z)
    low = k * _pick(u, C.LN2_LO32, C.LN2_LO64) + c
    return s * (half_f2 + r) + low - half_f2 + f + k * _pick(u, C.LN2_HI32, C.LN2_HI64)


@vjit
def log(x):
    """Natural logarithm; log(0) = -inf, log(x < 0) = NaN, log(inf) = inf."""
    T = type(x)
    tiny = x < _pick(x, 1.1754943508222875e-38, 2.2250738585072014e-308)
    scale = _pick(x, 33554432.0, 1.8014398509481984e16)  # 2^25, 2^54: subnormals become normal
    y = _log_core(x * scale if tiny else x, T(0.0)) - (_log_core(scale, T(0.0)) if tiny else T(0.0))
    return _log_specials(x, y, T(0.0))


@vjit
def _log_specials(x, y, pole):
    """y where x is in (pole, inf); -inf at the pole, NaN below it, x itself for +inf and NaN."""
    T = type(x)
    y = y if x < T(np.inf) else x
    return y if x > pole else (T(-np.inf) if x == pole else T(np.nan))


@vjit
def log1p(x):
    """log(1 + x) with full relative accuracy near 0; log1p(-1) = -inf, log1p(x < -1) = NaN."""
    T = type(x)
    u = T(1.0) + x
    k, _ = _split_exponent(u)
    # 1 + x - u, the rounding error of u, divided by u: log(1 + x) = log(u) + c/u to first order
    c = T(1.0) - (u - x) if k >= T(2.0) else x - (u - T(1.0))
    c = c / u if k < _pick(x, 25.0, 54.0) else T(0.0)
    y = _log_specials(x, _log_core(u, c), T(-1.0))
    return y if x != T(0.0) else x  # log1p(-0.0) = -0.0


# ---------------------------------------------------------------- tanh


_tanh_p, _tanh_q = _polynomial(C.TANH_P32), _polynomial(C.TANH_Q32)


def _tanh(x):
    """float32: a rational function of x (one division, half the work of the float64 form);
    float64: sign(x) (-e) / (e + 2) with e = expm1(-2|x|)."""


@overload(_tanh, **_OVERLOAD)
def _tanh_overload(x):
    if x == types.float32:
        def rational(x):
            c = _within(x, np.float32(-9.0), np.float32(9.0))
            s = c * c
            # the rational's rounding can pass ±1 by an ulp
            return _within(c * _tanh_p(s) / _tanh_q(s), np.float32(-1.0), np.float32(1.0))

        return rational

    def from_expm1(x):
        e = expm1(-2.0 * abs(x))
        return np.copysign(-e / (e + 2.0), x)

    return from_expm1


@vjit
def tanh(x):
    """tanh x: relative accuracy at 0, ±1 at ±inf, NaN → NaN (the method per type: ``_tanh``)."""
    return _tanh(x)


# ---------------------------------------------------------------- erf, erfc

_erf_p = _polynomial(C.ERF_P32, C.ERF_P64)
_erf_s = _polynomial(C.ERF_S32)
_erfcx_p, _erfcx_q = _polynomial(C.ERFCX_P32), _polynomial(C.ERFCX_Q32)
_erfc_w = _polynomial(None, C.ERFC_W64)


@vjit
def _erf_poly(x):
    """erf(x) - x for |x| <= 1 (float32) / 0.75 (float64)."""
    return x * _erf_p(x * x)


def _square(a):
    """(hi, lo) with hi + lo = a² exactly (hi the rounded square where the target has FMA)."""


@overload(_square, **_OVERLOAD)
def _square_overload(a):
    if _target_has("fma"):
        def by_fma(a):
            hi = a * a
            return hi, _fma(a, a, -hi)

        return by_fma

    def by_halves(a):  # h² + (a - h)(a + h), h = a with half its bits: h² exact
        h = _high_half(a)
        return h * h, (a - h) * (a + h)

    return by_halves


@vjit
def _exp_neg_square(a, scale):
    """e^{-scale a²} for a power of two ``scale``, with relative accuracy: from a² split exactly
    into hi + lo (a rounded a² would cost |a²| ulp; scaling by 2^k keeps the split exact); 0 once
    it underflows, NaN → NaN."""
    hi, lo = _square(a)
    return _exp_sum(-scale * hi, -scale * lo)


def _erfcx(a):
    """e^{a²} erfc(a) for 0 <= a <= where erfc underflows (see the fits above)."""


@overload(_erfcx, **_OVERLOAD)
def _erfcx_overload(a):
    if a == types.float32:
        return lambda a: _erfcx_p(a) / _erfcx_q(a)
    return lambda a: _erfc_w((a - C.ERFC_K64) / (a + C.ERFC_K64)) / (1.0 + 2.0 * a)


@vjit
def _erfc_tail(a):
    """erfc(a) for a >= 0 with relative accuracy down to underflow: e^{-a²} erfcx(a). a is
    clamped just past where erfc underflows to 0 (the fits end there; erfcx's value no longer
    matters); NaN → that clamp, so the result stays finite."""
    highest = _pick(a, 10.25, 27.3)
    a = a if a < highest else highest
    return _exp_neg_square(a, type(a)(1.0)) * _erfcx(a)


@vjit
def normal_tail(t):
    """(Φ(-t), e^{-t²/2}) for t >= 0, Φ the standard normal CDF, both with relative accuracy down
    to underflow: Φ(-t) = erfc(t/√2)/2 = e^{-t²/2} erfcx(t/√2)/2, with t²/2 split exactly from t
    itself. (e^{-a²} of a rounded a = t/√2 carries 2a² times a's rounding error, up to 190 ulp
    in float32 near t = 14; erfcx barely amplifies it.) t is clamped where e^{-t²/2} underflows
    to 0 (_erfc_tail's clamps times √2); NaN → that clamp."""
    T = type(t)
    highest = _pick(t, 14.5, 38.61)
    t = t if t < highest else highest
    e = _exp_neg_square(t, T(0.5))
    return T(0.5) * e * _erfcx(t * T(C.SQRT1_2)), e


def _erfc_for_erf(a):
    """erfc(a) for a beyond erf's polynomial range, as accurate as 1 - erfc(a) needs: in float32
    e^{S - a²} (no division, no split), in float64 the full erfc tail."""


@overload(_erfc_for_erf, **_OVERLOAD)
def _erfc_for_erf_overload(a):
    if a == types.float32:
        def float32_tail(a):
            a = _clamp(a, np.float32(1.0), np.float32(3.93))
            s = _erf_s(a - np.float32(2.5))
            return _exp_sum(s - a * a, np.float32(-0.0))

        return float32_tail
    return lambda a: _erfc_tail(a)


@vjit
def erf(x):
    """Error function: x + x P(x²) for |x| <= 1 (float32) / 0.75 (float64), ±(1 - erfc(|x|))
    beyond; erf(±inf) = ±1."""
    T = type(x)
    tail = np.copysign(T(1.0) - _erfc_for_erf(abs(x)), x)
    y = x + _erf_poly(x) if abs(x) <= _pick(x, 1.0, 0.75) else tail
    return y if x == x else x


@vjit
def erfc(x):
    """1 - erf(x): (1 - x) - x P(x²) for |x| <= 0.75, relative accuracy in both tails beyond;
    erfc(-inf) = 2, erfc(inf) = 0."""
    T = type(x)
    tail = _erfc_tail(abs(x))
    tail = tail if x >= T(0.0) else T(2.0) - tail
    y = (T(1.0) - x) - _erf_poly(x) if abs(x) <= T(0.75) else tail
    return y if x == x else x

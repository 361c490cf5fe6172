// Vectorizable exp, expm1, log, log1p, tanh, erf, erfc for the Cython backend (float and double):
// the C++ port of fastdl/_kernels/numba/vmath.py, which documents the methods, clamps, specials
// and measured accuracy. The fits are the same numbers (_coefficients.hpp, generated from
// coefficients.py), evaluated in the same order.
//
// Every function is branch-free (selects, no early returns, no libm calls), so gcc -O3 vectorizes
// a loop that calls it. Differences from the numba code, none of which changes a result beyond
// the ulp bounds of vmath.py:
// - rounding to the nearest integer is the shift trick (v + 1.5·2^p) - 1.5·2^p, whose bits also
//   hold the integer (cvtps2dq-free, and no int64 <-> double conversions, which AVX2 lacks);
// - 2^k scaling is always the two bit-cast factors 2^⌊k/2⌋ 2^(k-⌊k/2⌋) (one rounding on subnormal
//   results): the clones share one source, so there is no vscalef path;
// - erfc's exact a² = hi + lo takes an FMA only when the whole build targets FMA (__FMA__):
//   target_clones cannot tell per clone at compile time, and std::fma in the baseline clone would
//   be a libm call that keeps the loop scalar. Otherwise it is the half-bits split, exact
//   everywhere.
// gcc contracts a*b + c into FMAs in the AVX2 / AVX-512 clones (C++ defaults to
// -ffp-contract=fast), as LLVM does under vmath.py's 'contract': it only makes steps more exact.
// Nothing here relies on -ffast-math (which must never be used): no reassociation is assumed.
#pragma once
#include <cmath>
#include <type_traits>

#include "common.hpp"

namespace fdl {
namespace vm {

// ------------------------------------------------------------ per-type constants, bit tricks

// The constant for T (float32's or float64's), as T.
template <typename T> constexpr T pick(double for_float, double for_double) {
    return std::is_same<T, float>::value ? T(for_float) : T(for_double);
}

template <typename T> using Int = typename Bits<T>::Int;
template <typename T> using UInt = typename Bits<T>::UInt;

template <typename T> constexpr UInt<T> exponent_bits(int biased) {
    return UInt<T>(biased) << Bits<T>::mantissa;
}

// 1.5·2^p (p the mantissa bits): v + this rounds v to an integer (ties to even, |v| < 2^(p-1)),
// held in the low mantissa bits.
template <typename T> constexpr T shifter() { return pick<T>(12582912.0, 6755399441055744.0); }
template <typename T> constexpr UInt<T> shifter_bits() {  // bit_cast<UInt<T>>(shifter<T>())
    return std::is_same<T, float>::value ? UInt<T>(0x4B400000u) : UInt<T>(0x4338000000000000ull);
}

// v rounded to the nearest integer (ties to even), as T (k) and as the bits of v + shifter()
// (shifted_bits - bits(shifter()) is that integer).
template <typename T> struct Nearest {
    T k;
    UInt<T> shifted_bits;
};
template <typename T> FDL_INLINE Nearest<T> nearest(T v) {
    T shifted = v + shifter<T>();
    return {shifted - shifter<T>(), bit_cast<UInt<T>>(shifted)};
}

// y 2^n, n the integer in `r`, with 2^n as 2^⌊n/2⌋ 2^(n-⌊n/2⌋): both factors normal for every n
// exp reaches, a subnormal result rounded once, an overflow gives inf. The arithmetic is unsigned
// on n + 2·bias >= 0 (a logical shift: AVX2 has no 64-bit arithmetic one).
template <typename T> FDL_INLINE T scale_by(T y, Nearest<T> r) {
    constexpr UInt<T> offset = UInt<T>(2 * Bits<T>::bias) - shifter_bits<T>();
    UInt<T> m = r.shifted_bits + offset;  // n + 2 bias
    UInt<T> first = m >> 1;              // ⌊n/2⌋ + bias
    UInt<T> second = m - first;          // n - ⌊n/2⌋ + bias
    return y * bit_cast<T>(first << Bits<T>::mantissa) * bit_cast<T>(second << Bits<T>::mantissa);
}

// 2^(n - 1) for the integer n in `r` (a normal result).
template <typename T> FDL_INLINE T half_pow2(Nearest<T> r) {
    constexpr UInt<T> offset = UInt<T>(Bits<T>::bias - 1) - shifter_bits<T>();
    return bit_cast<T>((r.shifted_bits + offset) << Bits<T>::mantissa);
}

// (k, m) with x = 2^k m, k integral, m in [√½, √2), for a positive normal x (garbage otherwise).
template <typename T> struct Split {
    T k, m;
};
template <typename T> FDL_INLINE Split<T> split_exponent(T x) {
    constexpr int p = Bits<T>::mantissa;
    constexpr UInt<T> one_bits = exponent_bits<T>(Bits<T>::bias);
    // the bits of (a value just below) √½: mantissas from there on belong to k + 1
    constexpr UInt<T> low_bits = one_bits - (UInt<T>(1) << p) + (UInt<T>(0x3504F3) << (p - 23));
    UInt<T> bits = bit_cast<UInt<T>>(x) + (one_bits - low_bits);
    UInt<T> e = bits >> p;  // k + bias
    T k;
    if constexpr (std::is_same<T, float>::value) {
        k = T(Int<T>(e)) - T(Bits<T>::bias);
    } else {  // e < 2^12: as a double by its bits (int64 -> double does not vectorize on AVX2)
        k = (bit_cast<T>(e | exponent_bits<T>(Bits<T>::bias + p)) - T(4503599627370496.0))
            - T(Bits<T>::bias);
    }
    T m = bit_cast<T>((bits & ((UInt<T>(1) << p) - 1)) + low_bits);
    return {k, m};
}

// x with the low half of its mantissa bits cleared, so that its square is exact.
template <typename T> FDL_INLINE T high_half(T x) {
    constexpr int cleared = (Bits<T>::mantissa + 2) / 2;
    return bit_cast<T>(bit_cast<UInt<T>>(x) & (~UInt<T>(0) << cleared));
}

// An integer whose signed order is the order of x: the bits of x with the magnitude bits flipped
// when the sign bit is set (-0 < +0; a NaN with the sign bit clear sorts above +inf, one with it
// set below -inf). Integer max reductions vectorize without fast-math; float ones do not.
template <typename T> FDL_INLINE Int<T> flip_negative(Int<T> bits) {
    constexpr Int<T> magnitude = Int<T>(~UInt<T>(0) >> 1);
    Int<T> sign = bits < 0 ? Int<T>(-1) : Int<T>(0);
    return bits ^ (sign & magnitude);
}
template <typename T> FDL_INLINE Int<T> order_key(T x) { return flip_negative<T>(bit_cast<Int<T>>(x)); }

// The T whose order_key is key (the map is an involution); `like` only gives the type.
template <typename T> FDL_INLINE T from_order_key(Int<T> key, T like) {
    (void)like;
    return bit_cast<T>(flip_negative<T>(key));
}

// Clamps by integer min / max on the bits: gcc 12 turns a vectorized float select into a compare
// and a blend (never vminps / vmaxps) and, when one outcome is a constant, threads the select
// through the code after it; an integer min is one instruction (vpminsd, vpminud) and no branch.

// x limited to [lowest, highest] for lowest < 0 < highest; NaN → one of the bounds (by its sign),
// for values that feed integer tricks (the caller puts NaN back). Unsigned, every positive value
// is below every negative one, so the first min only clamps negatives past lowest; signed, every
// negative is below every positive, so the second only clamps positives past highest.
template <typename T> FDL_INLINE T clamp(T x, T lowest, T highest) {
    UInt<T> bits = bit_cast<UInt<T>>(x), low = bit_cast<UInt<T>>(lowest);
    bits = bits < low ? bits : low;
    Int<T> key = Int<T>(bits), high = bit_cast<Int<T>>(highest);
    return bit_cast<T>(key < high ? key : high);
}

// a limited to [lowest, highest] for 0 <= lowest < highest and a with its sign bit clear
// (non-negative or a positive NaN, as from fabs); NaN → highest.
template <typename T> FDL_INLINE T clamp_positive(T a, T lowest, T highest) {
    Int<T> key = bit_cast<Int<T>>(a), low = bit_cast<Int<T>>(lowest), high = bit_cast<Int<T>>(highest);
    key = key > low ? key : low;
    return bit_cast<T>(key < high ? key : high);
}

// min(x, highest) for highest > 0: negatives (and -0.0) kept, a NaN with its sign bit clear →
// highest (one with it set stays NaN).
template <typename T> FDL_INLINE T at_most(T x, T highest) {
    Int<T> key = bit_cast<Int<T>>(x), high = bit_cast<Int<T>>(highest);
    return bit_cast<T>(key < high ? key : high);
}

// ------------------------------------------------------------------------------ exp, expm1

// expm1(r) for |r| <= ln2/2 (a little more is fine): r + r²/2 + r³ q(r).
template <typename T> FDL_INLINE T expm1_poly(T r) {
    T q = std::is_same<T, float>::value ? horner<T>(c::EXPM1_Q32, r) : horner<T>(c::EXPM1_Q64, r);
    return r + r * r * (T(0.5) + r * q);
}

// e^r for |r| <= ln2/2: float by its own polynomial, double as 1 + expm1(r).
template <typename T> FDL_INLINE T exp_reduced(T r) {
    if constexpr (std::is_same<T, float>::value) {
        return horner<T>(c::EXP_P32, r);
    } else {
        return T(1) + expm1_poly(r);
    }
}

// e^(hi + lo) for |lo| << 1 and hi + lo within exp's clamps; lo carries bits that hi, rounded,
// could not (erfc's -a²).
template <typename T> FDL_INLINE T exp_sum(T hi, T lo) {
    Nearest<T> n = nearest(hi * T(c::LOG2E));
    T r = ((hi - n.k * pick<T>(c::LN2_HI32, c::LN2_HI64)) - n.k * pick<T>(c::LN2_LO32, c::LN2_LO64))
          + lo;
    return scale_by(exp_reduced(r), n);
}

// e^x; overflows to inf, underflows gradually to 0, NaN → NaN.
template <typename T> FDL_INLINE T exp(T x) {
    T y = exp_sum(clamp(x, pick<T>(-104.0, -746.0), pick<T>(89.0, 710.0)), T(-0.0));
    return x == x ? y : x;
}

// e^x - 1 with full relative accuracy near 0; expm1(-0.0) = -0.0.
template <typename T> FDL_INLINE T expm1(T x) {
    // e^lowest < ulp(1)/4, so expm1 is -1 below it
    T clamped = clamp(x, pick<T>(-30.0, -60.0), pick<T>(89.0, 710.0));
    Nearest<T> n = nearest(clamped * T(c::LOG2E));
    T r = (clamped - n.k * pick<T>(c::LN2_HI32, c::LN2_HI64)) - n.k * pick<T>(c::LN2_LO32, c::LN2_LO64);
    // e^x - 1 = 2 (t p + (t - 1/2)) with t = 2^(k-1), p = expm1(r): exact for k = 0, t finite
    T t = half_pow2(n);
    T y = T(2) * (t * expm1_poly(r) + (t - T(0.5)));
    return std::fabs(x) > T(0) ? y : x;  // ±0 and NaN pass through
}

// -------------------------------------------------------------------------------- log, log1p

// log(u) + c for a positive normal u and a correction c of the order of ulp(log u).
template <typename T> FDL_INLINE T log_core(T u, T c) {
    Split<T> e = split_exponent(u);
    T f = e.m - T(1);
    T s = f / (T(2) + f);
    T z = s * s;
    T half_f2 = T(0.5) * f * f;
    T r = z * (std::is_same<T, float>::value ? horner<T>(c::LOG_R32, z) : horner<T>(c::LOG_R64, z));
    T low = e.k * pick<T>(c::LN2_LO32, c::LN2_LO64) + c;
    return s * (half_f2 + r) + low - half_f2 + f + e.k * pick<T>(c::LN2_HI32, c::LN2_HI64);
}

// y where x is in (pole, inf); -inf at the pole, NaN below it, x itself for +inf and NaN.
template <typename T> FDL_INLINE T log_specials(T x, T y, T pole) {
    y = x < T(INFINITY) ? y : x;
    return x > pole ? y : (x == pole ? T(-INFINITY) : T(NAN));
}

// Natural logarithm; log(0) = -inf, log(x < 0) = NaN, log(inf) = inf.
template <typename T> FDL_INLINE T log(T x) {
    bool tiny = x < pick<T>(1.1754943508222875e-38, 2.2250738585072014e-308);
    const T scale = pick<T>(33554432.0, 1.8014398509481984e16);  // 2^25, 2^54: subnormals normal
    T y = log_core(tiny ? x * scale : x, T(0)) - (tiny ? log_core(scale, T(0)) : T(0));
    return log_specials(x, y, T(0));
}

// log(1 + x) with full relative accuracy near 0; log1p(-1) = -inf, log1p(x < -1) = NaN.
template <typename T> FDL_INLINE T log1p(T x) {
    T u = T(1) + x;
    T k = split_exponent(u).k;
    // 1 + x - u, the rounding error of u, divided by u: log(1 + x) = log(u) + c/u to first order
    T c = k >= T(2) ? T(1) - (u - x) : x - (u - T(1));
    c = k < pick<T>(25.0, 54.0) ? c / u : T(0);
    T y = log_specials(x, log_core(u, c), T(-1));
    return x != T(0) ? y : x;  // log1p(-0.0) = -0.0
}

// -------------------------------------------------------------------------------------- tanh

// tanh x: relative accuracy at 0, ±1 at ±inf, NaN → NaN. float: c P(c²) / Q(c²), c = x clamped to
// ±9; double: sign(x) (-e) / (e + 2) with e = expm1(-2|x|).
template <typename T> FDL_INLINE T tanh(T x) {
    if constexpr (std::is_same<T, float>::value) {
        T c = clamp(x, T(-9), T(9));
        T s = c * c;
        // the rational's rounding can pass ±1 by an ulp
        T y = clamp(c * horner<T>(c::TANH_P32, s) / horner<T>(c::TANH_Q32, s), T(-1), T(1));
        return x == x ? y : x;
    } else {
        T e = expm1(T(-2) * std::fabs(x));
        return std::copysign(-e / (e + T(2)), x);
    }
}

// ---------------------------------------------------------------------------------- erf, erfc

// erf(x) - x for |x| <= 1 (float) / 0.75 (double).
template <typename T> FDL_INLINE T erf_poly(T x) {
    T z = x * x;
    return x * (std::is_same<T, float>::value ? horner<T>(c::ERF_P32, z) : horner<T>(c::ERF_P64, z));
}

// (hi, lo) with hi + lo = a² exactly.
template <typename T> struct Square {
    T hi, lo;
};
template <typename T> FDL_INLINE Square<T> square(T a) {
#if defined(__FMA__)
    T hi = a * a;
    return {hi, std::fma(a, a, -hi)};
#else
    T h = high_half(a);  // h² + (a - h)(a + h), h² exact
    return {h * h, (a - h) * (a + h)};
#endif
}

// e^{-scale a²} for a power of two `scale`, with relative accuracy: from a² split exactly.
template <typename T> FDL_INLINE T exp_neg_square(T a, T scale) {
    Square<T> s = square(a);
    return exp_sum(-scale * s.hi, -scale * s.lo);
}

// e^{a²} erfc(a) for 0 <= a <= where erfc underflows.
template <typename T> FDL_INLINE T erfcx(T a) {
    if constexpr (std::is_same<T, float>::value) {
        return horner<T>(c::ERFCX_P32, a) / horner<T>(c::ERFCX_Q32, a);
    } else {
        return horner<T>(c::ERFC_W64, (a - T(c::ERFC_K64)) / (a + T(c::ERFC_K64))) / (T(1) + T(2) * a);
    }
}

// erfc(a) for a >= 0 with relative accuracy down to underflow: e^{-a²} erfcx(a), a clamped just
// past where erfc underflows (a NaN with its sign clear, as from fabs → that clamp, so the result
// stays finite).
template <typename T> FDL_INLINE T erfc_tail(T a) {
    a = at_most(a, pick<T>(10.25, 27.3));
    return exp_neg_square(a, T(1)) * erfcx(a);
}

// Φ(-t) for t >= 0 (Φ the standard normal CDF), and e = e^{-t²/2}, both with relative accuracy
// down to underflow: Φ(-t) = e^{-t²/2} erfcx(t/√2)/2 with t²/2 split exactly from t itself.
// t is clamped where e^{-t²/2} underflows to 0; NaN → that clamp (0 for both results) when its
// sign bit is clear, as from fabs (vmath.py's clamp also sends a NaN with the sign set there;
// here that one stays NaN).
template <typename T> FDL_INLINE T normal_tail(T t, T& e) {
    t = at_most(t, pick<T>(14.5, 38.61));
    e = exp_neg_square(t, T(0.5));
    return T(0.5) * e * erfcx(t * T(c::SQRT1_2));
}

// erfc(a) beyond erf's polynomial range, as accurate as 1 - erfc(a) needs: float e^{S - a²} on
// [1, 3.93] (no division, no split), double the full erfc tail.
template <typename T> FDL_INLINE T erfc_for_erf(T a) {
    if constexpr (std::is_same<T, float>::value) {
        a = clamp_positive(a, T(1), T(3.93));
        T s = horner<T>(c::ERF_S32, a - T(2.5));
        return exp_sum(s - a * a, T(-0.0));
    } else {
        return erfc_tail(a);
    }
}

// Error function: x + x P(x²) for |x| <= 1 (float) / 0.75 (double), ±(1 - erfc(|x|)) beyond.
template <typename T> FDL_INLINE T erf(T x) {
    T tail = std::copysign(T(1) - erfc_for_erf(std::fabs(x)), x);
    T y = std::fabs(x) <= pick<T>(1.0, 0.75) ? x + erf_poly(x) : tail;
    return x == x ? y : x;
}

// 1 - erf(x): (1 - x) - x P(x²) for |x| <= 0.75, relative accuracy in both tails beyond.
template <typename T> FDL_INLINE T erfc(T x) {
    T tail = erfc_tail(std::fabs(x));
    tail = x >= T(0) ? tail : T(2) - tail;
    T y = std::fabs(x) <= T(0.75) ? (T(1) - x) - erf_poly(x) : tail;
    return x == x ? y : x;
}

// ------------------------------------------------------------------------- test entry point

// The functions of vmath_chunk, numbered as _vmath.pyx names them.
enum Function { EXP, EXPM1, LOG, LOG1P, TANH, ERF, ERFC, NORMAL_TAIL, NORMAL_TAIL_EXP };

#define FDL_VM_ELEMENT(name, expr) \
    struct name##_element { \
        template <typename T> static FDL_INLINE T f(T v) { return expr; } \
    };
FDL_VM_ELEMENT(exp, exp(v))
FDL_VM_ELEMENT(expm1, expm1(v))
FDL_VM_ELEMENT(log, log(v))
FDL_VM_ELEMENT(log1p, log1p(v))
FDL_VM_ELEMENT(tanh, tanh(v))
FDL_VM_ELEMENT(erf, erf(v))
FDL_VM_ELEMENT(erfc, erfc(v))
#undef FDL_VM_ELEMENT
struct normal_tail_element {
    template <typename T> static FDL_INLINE T f(T v) {
        T e;
        return normal_tail(v, e);
    }
};
struct normal_tail_exp_element {
    template <typename T> static FDL_INLINE T f(T v) {
        T e;
        normal_tail(v, e);
        return e;
    }
};

template <typename E, typename T>
FDL_INLINE void map(const T* __restrict x, T* __restrict out, index_t n) {
    for (index_t i = 0; i < n; i++) out[i] = E::f(x[i]);
}

}  // namespace vm

// out[i] = function(x[i]) over contiguous, non-overlapping arrays (tests and benchmarks only:
// kernels inline the element functions into their own loops).
template <typename T>
FDL_CLONES void vmath_chunk(int function, const T* x, T* out, index_t n) {
    switch (function) {
        case vm::EXP: vm::map<vm::exp_element>(x, out, n); break;
        case vm::EXPM1: vm::map<vm::expm1_element>(x, out, n); break;
        case vm::LOG: vm::map<vm::log_element>(x, out, n); break;
        case vm::LOG1P: vm::map<vm::log1p_element>(x, out, n); break;
        case vm::TANH: vm::map<vm::tanh_element>(x, out, n); break;
        case vm::ERF: vm::map<vm::erf_element>(x, out, n); break;
        case vm::ERFC: vm::map<vm::erfc_element>(x, out, n); break;
        case vm::NORMAL_TAIL: vm::map<vm::normal_tail_element>(x, out, n); break;
        case vm::NORMAL_TAIL_EXP: vm::map<vm::normal_tail_exp_element>(x, out, n); break;
        default: break;
    }
}

}  // namespace fdl

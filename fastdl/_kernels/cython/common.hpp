// What every C++ kernel header of the Cython backend shares: the per-ISA clones, forced inlining,
// bit casts between a float type and its integer twin, and Horner's rule over a fit's coefficients.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "_coefficients.hpp"

// A hot loop is compiled once per instruction set and the best one for the CPU is picked when the
// extension loads (gcc's function multi-versioning, through an ifunc): AVX-512, AVX2 + FMA, and
// baseline x86-64. The rest of the extension is baseline code, so it runs on any x86-64. Elsewhere
// (other architectures or compilers) there is one baseline version.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define FDL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FDL_CLONES
#endif

// Element functions must inline into the loops above: a call keeps a loop scalar.
#define FDL_INLINE inline __attribute__((always_inline))

namespace fdl {

using index_t = std::ptrdiff_t;

// The integer type of a float type's width, its mantissa bits and exponent bias.
template <typename T> struct Bits;
template <> struct Bits<float> {
    using Int = int32_t;
    using UInt = uint32_t;
    static constexpr int mantissa = 23, bias = 127;
};
template <> struct Bits<double> {
    using Int = int64_t;
    using UInt = uint64_t;
    static constexpr int mantissa = 52, bias = 1023;
};

template <typename To, typename From> FDL_INLINE To bit_cast(From from) {
    static_assert(sizeof(To) == sizeof(From), "bit_cast between types of different widths");
    To to;
    std::memcpy(&to, &from, sizeof to);
    return to;
}

// p(x) = sum_i c[i] x^i (lowest degree first), as straight-line code with the coefficients rounded
// to T: the recursion unrolls at compile time (a runtime loop over a long fit stays a loop).
template <typename T, std::size_t N, std::size_t I = 0>
FDL_INLINE T horner(const double (&c)[N], T x) {
    if constexpr (I + 1 == N) {
        return T(c[I]);
    } else {
        return horner<T, N, I + 1>(c, x) * x + T(c[I]);
    }
}

}  // namespace fdl

// Counter-based noise for the Cython backend: element i of the draw `key` gets the 64 bits
// mix64(key + (i + 1) γ) (splitmix64 at position i), exactly as the numba kernels
// (fastdl/_kernels/numba/noise.py, which documents the draws) and reference/noise.py compute them,
// so masks and noise are the same bits on every backend and thread count.
#pragma once
#include <cmath>

#include "common.hpp"
#include "vmath.hpp"

namespace fdl {
namespace noise {

FDL_INLINE uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * c::MIX1;
    z = (z ^ (z >> 27)) * c::MIX2;
    return z ^ (z >> 31);
}

FDL_INLINE uint64_t element_bits(uint64_t key, uint64_t i) { return mix64(key + (i + 1) * c::GAMMA); }

// x·scale where the element is kept, exactly 0 where it is dropped (also for NaN / inf x).
struct MaskedScale {
    template <typename T> static FDL_INLINE T apply(T x, uint64_t bits, T scale, int64_t threshold) {
        T factor = int64_t(bits >> 11) >= threshold ? scale : T(0);
        return factor != T(0) ? x * factor : factor;
    }
};

// cos(2πu) for u in [0, 1): -sin(2πw), w = 1/4 - |u - 1/2| in [-1/4, 1/4].
template <typename T> FDL_INLINE T cos_2pi(T u) {
    T w = T(0.25) - std::fabs(u - T(0.5));
    return -(horner<T>(c::SIN_2PI, w * w) * w);
}

// x + σ n, n ~ N(0, 1) by Box-Muller on the two 32-bit halves of the bits (|n| <= 6.7).
struct Gaussian {
    template <typename T> static FDL_INLINE T apply(T x, uint64_t bits, T sigma, int64_t) {
        const T scale = T(2.3283064365386963e-10);  // 2^-32
        T u1 = T(int64_t(bits >> 32) + 1) * scale;
        T u2 = T(int64_t(bits & 0xFFFFFFFFULL)) * scale;
        T radius = std::sqrt(T(-2) * vm::log(u1));
        return x + sigma * (radius * cos_2pi(u2));
    }
};

// out[i] = D::apply(x[i], bits of element offset + i, a, b); a separate loop when out is x.
template <typename D, typename T>
FDL_INLINE void span(const T* __restrict x, T* __restrict out, T a, int64_t b, uint64_t key,
                     uint64_t offset, index_t n) {
    for (index_t i = 0; i < n; i++) out[i] = D::apply(x[i], element_bits(key, offset + i), a, b);
}

template <typename D, typename T>
FDL_INLINE void span_inplace(T* x, T a, int64_t b, uint64_t key, uint64_t offset, index_t n) {
    for (index_t i = 0; i < n; i++) x[i] = D::apply(x[i], element_bits(key, offset + i), a, b);
}

}  // namespace noise

enum NoiseKind { MASKED_SCALE, GAUSSIAN };

// Elements [offset, offset + n) of one draw: MASKED_SCALE keeps with scale a, drop threshold b;
// GAUSSIAN adds a = σ times a normal draw.
template <typename T>
FDL_CLONES void noise_chunk(int kind, const T* x, T* out, T a, int64_t b, uint64_t key,
                            uint64_t offset, index_t n) {
    bool inplace = x == out;
    if (kind == MASKED_SCALE) {
        if (inplace) noise::span_inplace<noise::MaskedScale>(out, a, b, key, offset, n);
        else noise::span<noise::MaskedScale>(x, out, a, b, key, offset, n);
    } else {
        if (inplace) noise::span_inplace<noise::Gaussian>(out, a, b, key, offset, n);
        else noise::span<noise::Gaussian>(x, out, a, b, key, offset, n);
    }
}

// Element i is dropped iff its top 53 bits < threshold = p 2^53: probability exactly p (to 2^-53).
inline int64_t drop_threshold(double p) { return int64_t(p * 9007199254740992.0); }

}  // namespace fdl

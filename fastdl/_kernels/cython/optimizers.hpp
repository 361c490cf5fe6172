// In-place optimizer updates for the Cython backend, over one chunk of the flat buffers.
//
// The update rules and the meaning of each step scalar sc[k] are those of
// fastdl/_kernels/numba/optimizers.py (and of the readable references in reference/optimizers.py);
// the scalars arrive already combined, in the parameters' dtype. state points at row 0 of the
// (k, n) state array; row r of the chunk starts at state + r * stride.
#pragma once
#include <cmath>

#include "common.hpp"

namespace fdl {
namespace opt {

// sc = [lr, weight_decay]
template <typename T>
FDL_INLINE void sgd(T* __restrict p, const T* __restrict g, T*, index_t, const T* sc, index_t n) {
    T lr = sc[0], wd = sc[1];
    for (index_t i = 0; i < n; i++) p[i] = p[i] - lr * (g[i] + wd * p[i]);
}

// state = [u]; sc = [weight_decay, momentum, u_coef, lr, nesterov (0/1)]
template <typename T>
FDL_INLINE void momentum(T* __restrict p, const T* __restrict g, T* __restrict state, index_t,
                         const T* sc, index_t n) {
    T wd = sc[0], mu = sc[1], u_coef = sc[2], lr = sc[3];
    bool nesterov = sc[4] != T(0);
    T* u = state;
    for (index_t i = 0; i < n; i++) {
        T gi = g[i] + wd * p[i];
        T ui = mu * u[i] + u_coef * gi;
        u[i] = ui;
        p[i] = p[i] - (nesterov ? lr * gi + mu * ui : ui);
    }
}

// state = [sum]; sc = [weight_decay, lr_t, eps]
template <typename T>
FDL_INLINE void adagrad(T* __restrict p, const T* __restrict g, T* __restrict state, index_t,
                        const T* sc, index_t n) {
    T wd = sc[0], lr = sc[1], eps = sc[2];
    T* s = state;
    for (index_t i = 0; i < n; i++) {
        T gi = g[i] + wd * p[i];
        T si = s[i] + gi * gi;
        s[i] = si;
        p[i] = p[i] - lr * gi / (std::sqrt(si) + eps);
    }
}

// state = [square_avg, (grad_avg if CENTERED), (buf if MOMENTUM)];
// sc = [weight_decay, alpha, 1 - alpha, eps, lr, momentum]
template <bool CENTERED, bool MOMENTUM, typename T>
FDL_INLINE void rmsprop(T* __restrict p, const T* __restrict g, T* __restrict state,
                        index_t stride, const T* sc, index_t n) {
    T wd = sc[0], alpha = sc[1], one_minus_alpha = sc[2], eps = sc[3], lr = sc[4], mu = sc[5];
    T* sq = state;
    T* ga = state + stride;
    T* buf = state + (CENTERED ? 2 : 1) * stride;
    for (index_t i = 0; i < n; i++) {
        T gi = g[i] + wd * p[i];
        T sqi = alpha * sq[i] + one_minus_alpha * gi * gi;
        sq[i] = sqi;
        if (CENTERED) {
            T gai = alpha * ga[i] + one_minus_alpha * gi;
            ga[i] = gai;
            sqi = sqi - gai * gai;
        }
        T di = gi / (std::sqrt(sqi) + eps);
        if (MOMENTUM) {
            di = mu * buf[i] + di;
            buf[i] = di;
        }
        p[i] = p[i] - lr * di;
    }
}

// state = [exp_avg, exp_avg_sq, (max_exp_avg_sq if AMSGRAD)];
// sc = [coupled_wd, decay, beta1, 1 - beta1, beta2, 1 - beta2, step_size, 1/sqrt(bc2), eps_in,
//       eps_out]
template <bool AMSGRAD, typename T>
FDL_INLINE void adam(T* __restrict p, const T* __restrict g, T* __restrict state, index_t stride,
                     const T* sc, index_t n) {
    T wd = sc[0], decay = sc[1], beta1 = sc[2], one_minus_beta1 = sc[3], beta2 = sc[4],
      one_minus_beta2 = sc[5], step_size = sc[6], inv_bc2_sqrt = sc[7], eps_in = sc[8],
      eps_out = sc[9];
    T* m = state;
    T* v = state + stride;
    T* vmax = state + 2 * stride;
    for (index_t i = 0; i < n; i++) {
        T pi = p[i];
        T gi = g[i] + wd * pi;
        T mi = beta1 * m[i] + one_minus_beta1 * gi;
        T vi = beta2 * v[i] + one_minus_beta2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        if (AMSGRAD) {
            vi = vmax[i] > vi ? vmax[i] : vi;
            vmax[i] = vi;
        }
        T denom = std::sqrt(vi + eps_in) * inv_bc2_sqrt + eps_out;
        p[i] = pi * decay - step_size * mi / denom;
    }
}

}  // namespace opt

// Update kinds, as the .pyx numbers them.
enum UpdateKind { SGD, MOMENTUM, ADAGRAD, RMSPROP, RMSPROP_MOMENTUM, RMSPROP_CENTERED,
                  RMSPROP_CENTERED_MOMENTUM, ADAM, ADAM_AMSGRAD };

// One chunk of one update: p[0:n], g[0:n] and the chunk's columns of state (rows stride apart).
template <typename T>
FDL_CLONES void update_chunk(int kind, T* p, const T* g, T* state, index_t stride, const T* sc,
                             index_t n) {
    switch (kind) {
        case SGD: opt::sgd(p, g, state, stride, sc, n); break;
        case MOMENTUM: opt::momentum(p, g, state, stride, sc, n); break;
        case ADAGRAD: opt::adagrad(p, g, state, stride, sc, n); break;
        case RMSPROP: opt::rmsprop<false, false>(p, g, state, stride, sc, n); break;
        case RMSPROP_MOMENTUM: opt::rmsprop<false, true>(p, g, state, stride, sc, n); break;
        case RMSPROP_CENTERED: opt::rmsprop<true, false>(p, g, state, stride, sc, n); break;
        case RMSPROP_CENTERED_MOMENTUM: opt::rmsprop<true, true>(p, g, state, stride, sc, n); break;
        case ADAM: opt::adam<false>(p, g, state, stride, sc, n); break;
        case ADAM_AMSGRAD: opt::adam<true>(p, g, state, stride, sc, n); break;
        default: break;
    }
}

// Whether no element of a[0:n] is NaN or ±inf (all exponent bits set), read as integers: an
// integer reduction vectorizes, a strict float one does not.
template <typename T> FDL_CLONES bool chunk_is_finite(const T* a, index_t n) {
    using UInt = typename Bits<T>::UInt;
    constexpr UInt exponent = ((UInt(1) << (8 * sizeof(T) - 1 - Bits<T>::mantissa)) - 1)
                              << Bits<T>::mantissa;
    UInt special = 0;
    for (index_t i = 0; i < n; i++) special |= (bit_cast<UInt>(a[i]) & exponent) == exponent;
    return !special;
}

// Σ a² over one chunk in float64, vectorized (the order is fixed by the instruction set).
template <typename T> FDL_CLONES double chunk_sum_squares(const T* a, index_t n) {
    double acc = 0.0;
#pragma omp simd reduction(+ : acc)
    for (index_t i = 0; i < n; i++) acc += double(a[i]) * double(a[i]);
    return acc;
}

template <typename T> FDL_CLONES void scale_chunk(T* a, T factor, index_t n) {
    for (index_t i = 0; i < n; i++) a[i] *= factor;
}

}  // namespace fdl

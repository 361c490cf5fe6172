// Loss rows for the Cython backend: each returns the float64 loss of one row and writes that row
// of the gradient times scale = 1/N (the row of ∂L/∂x). The formulas and their stability
// arguments are those of fastdl/_kernels/numba/losses.py; grad may be the input row itself.
#pragma once
#include "activations.hpp"
#include "common.hpp"
#include "vmath.hpp"

namespace fdl {
namespace loss {

// ℓ = ½ Σ_j (p_j − t_j)²; grad_j = (p_j − t_j)·scale
template <typename T>
FDL_INLINE double mse_row(const T* pred, const T* target, T* grad, T scale, index_t n) {
    double total = 0.0;
#pragma omp simd reduction(+ : total)
    for (index_t j = 0; j < n; j++) {
        T diff = pred[j] - target[j];
        grad[j] = diff * scale;
        double wide = double(diff);
        total += wide * wide;
    }
    return 0.5 * total;
}

// ℓ = Σ_j max(z,0) − z·t + log1p(e^{−|z|}), formed as |z|·w + log1p(e) with w = 1 − t (z >= 0)
// or t (z < 0), so nothing cancels at large |z|; grad_j = (σ(z) − t)·scale from the same e.
template <typename T>
FDL_INLINE double bce_row(const T* logits, const T* target, T* grad, T scale, index_t n) {
    double total = 0.0;
#pragma omp simd reduction(+ : total)
    for (index_t j = 0; j < n; j++) {
        T z = logits[j], t = target[j];
        T e = vm::exp(-std::fabs(z));
        T inv = T(1) / (T(1) + e);
        bool positive = z >= T(0);  // false for NaN, which then propagates through e
        T sig = positive ? inv : e * inv;
        T weight = positive ? T(1) - t : t;
        T linear = weight != T(0) ? std::fabs(z) * weight : T(0);
        grad[j] = (sig - t) * scale;
        total += double(linear + vm::log1p(e));
    }
    return total;
}

// e^{z_j − m} into out; returns Σ_j e^{z_j − m} in float64
template <typename T> FDL_INLINE double shifted_exp(const T* z, T m, T* out, index_t n) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (index_t j = 0; j < n; j++) {
        T e = vm::exp(z[j] - m);
        out[j] = e;
        s += double(e);
    }
    return s;
}

// ℓ = logsumexp(z) − z_y = (m − z_y) + log s; grad = (softmax(z) − e_y)·scale. z_y is read before
// grad is written.
template <typename T>
FDL_INLINE double xent_label_row(const T* logits, index_t label, T* grad, T scale, index_t n) {
    T m = act::row_max(logits, n);
    double gap = double(m) - double(logits[label]);
    double s = shifted_exp(logits, m, grad, n);
    T factor = T(double(scale) / s);
    for (index_t j = 0; j < n; j++) grad[j] *= factor;
    grad[label] -= scale;
    return gap + double(vm::log(s));
}

// ℓ = Σ_j t_j (m − z_j) + τ log s with τ = Σ_j t_j; grad = (τ softmax(z) − t)·scale. All logits
// are read before grad is written.
template <typename T>
FDL_INLINE double xent_prob_row(const T* logits, const T* target, T* grad, T scale, index_t n) {
    T m = act::row_max(logits, n);
    double gap = 0.0, mass = 0.0;
#pragma omp simd reduction(+ : gap, mass)
    for (index_t j = 0; j < n; j++) {
        T t = target[j];
        gap += t != T(0) ? double(t) * double(m - logits[j]) : 0.0;
        mass += double(t);
    }
    double s = shifted_exp(logits, m, grad, n);
    T factor = T(double(scale) * mass / s);
    for (index_t j = 0; j < n; j++) grad[j] = grad[j] * factor - target[j] * scale;
    return gap + mass * double(vm::log(s));
}

}  // namespace loss

enum LossKind { MSE, BCE, XENT_LABELS, XENT_PROBS };

// Rows [r0, r1) of one loss into row_loss; target holds D values per row, or one label per row
// (labels, XENT_LABELS only).
template <typename T>
FDL_CLONES void loss_rows(int kind, const T* x, const T* target, const index_t* labels, T* grad,
                          double* row_loss, T scale, index_t r0, index_t r1, index_t d) {
    for (index_t i = r0; i < r1; i++) {
        const T* xi = x + i * d;
        T* gi = grad + i * d;
        switch (kind) {
            case MSE: row_loss[i] = loss::mse_row(xi, target + i * d, gi, scale, d); break;
            case BCE: row_loss[i] = loss::bce_row(xi, target + i * d, gi, scale, d); break;
            case XENT_LABELS: row_loss[i] = loss::xent_label_row(xi, labels[i], gi, scale, d); break;
            case XENT_PROBS: row_loss[i] = loss::xent_prob_row(xi, target + i * d, gi, scale, d); break;
            default: break;
        }
    }
}

}  // namespace fdl

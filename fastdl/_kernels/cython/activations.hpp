// Activation functions for the Cython backend: the elements, and the chunk loops built from them.
//
// Each activation is a struct with static element functions over T in {float, double}, the C++
// twins of the numba elements in fastdl/_kernels/numba/activations.py (formulas, tails and NaN
// rules are documented there): f(x, p), df(v, p) = f'(x) evaluated from v (the output y or the
// input x, as the registry's grad_from says), and for PReLU and Swish dp(x, p) = ∂f/∂p. p is the
// activation's parameter (LeakyReLU's slope, PReLU's and ELU's alpha, Swish's beta), ignored
// elsewhere. Kinds are numbered in the registry's order (fastdl/_kernels/registry.py); the
// extension checks KIND_NAMES against it at import.
//
// The chunk loops (FDL_CLONES: one copy per instruction set) run over contiguous elements; the
// .pyx splits arrays into the chunks of split.py and runs them on OpenMP threads.
#pragma once
#include "common.hpp"
#include "vmath.hpp"

namespace fdl {
namespace act {

// ------------------------------------------------------------------------------------ helpers

template <typename T> struct SigmoidParts {
    T s;   // σ(z)
    T ds;  // σ(z) σ(-z)
};

// (σ(z), σ(z)σ(-z)) from one e^{-|z|}: never overflows, relative accuracy in both tails.
template <typename T> FDL_INLINE SigmoidParts<T> sigmoid_parts(T z) {
    T e = vm::exp(-std::fabs(z));
    T r = T(1) / (T(1) + e);
    return {z >= T(0) ? r : e * r, e * r * r};
}

// x·w, but 0 where the weight w is 0: the limit of x·w(x) when w decays faster than x grows.
template <typename T> FDL_INLINE T scaled(T x, T w) { return w == T(0) ? T(0) : x * w; }

// x limited to ±1e4 (NaN kept), for terms x·w(x) whose weight is exactly 0 beyond (no inf·0).
template <typename T> FDL_INLINE T tamed(T x) {
    x = x < T(-1e4) ? T(-1e4) : x;
    return x > T(1e4) ? T(1e4) : x;
}

// (Φ(x), φ(x)) from one normal tail of |x|: relative accuracy in the left tail.
template <typename T> struct NormalParts {
    T cdf, pdf;
};
template <typename T> FDL_INLINE NormalParts<T> normal_parts(T x) {
    T e;
    T tail = vm::normal_tail(std::fabs(x), e);
    return {x < T(0) ? tail : T(1) - tail, T(c::INV_SQRT2PI) * e};
}

// ----------------------------------------------------------------------------------- elements

struct Identity {
    template <typename T> static FDL_INLINE T f(T x, T) { return x; }
    template <typename T> static FDL_INLINE T df(T, T) { return T(1); }
};

struct Sigmoid {  // σ(x) = 1 / (1 + e^{-x}); σ' = y (1 - y) from the output
    template <typename T> static FDL_INLINE T f(T x, T) { return T(1) / (T(1) + vm::exp(-x)); }
    template <typename T> static FDL_INLINE T df(T y, T) { return y * (T(1) - y); }
};

struct Tanh {  // tanh' = 1 - y² from the output
    template <typename T> static FDL_INLINE T f(T x, T) { return vm::tanh(x); }
    template <typename T> static FDL_INLINE T df(T y, T) { return T(1) - y * y; }
};

struct Relu {  // max(x, 0) with NaN kept; 1 where y > 0 (0 at x = 0, as torch)
    template <typename T> static FDL_INLINE T f(T x, T) { return x < T(0) ? T(0) : x; }
    template <typename T> static FDL_INLINE T df(T y, T) { return y <= T(0) ? T(0) : T(1); }
};

struct LeakyRelu {  // x for x >= 0, p x below; f' = 1 for x > 0, p for x <= 0, from the input
    template <typename T> static FDL_INLINE T f(T x, T p) { return x < T(0) ? x * p : x; }
    template <typename T> static FDL_INLINE T df(T x, T p) { return x > T(0) ? T(1) : p; }
};

struct Prelu : LeakyRelu {  // ∂f/∂alpha = x for x <= 0, else 0
    template <typename T> static FDL_INLINE T dp(T x, T) { return x > T(0) ? T(0) : x; }
};

struct Elu {  // x for x > 0, alpha (e^x - 1) otherwise; f' = y + alpha below 0, from the output
    template <typename T> static FDL_INLINE T f(T x, T alpha) {
        return x > T(0) ? x : alpha * vm::expm1(x);
    }
    template <typename T> static FDL_INLINE T df(T y, T alpha) {
        return y > T(0) ? T(1) : y + alpha;
    }
};

struct Gelu {  // x Φ(x); f' = Φ(x) + x φ(x)
    template <typename T> static FDL_INLINE T f(T x, T) { return scaled(x, normal_parts(x).cdf); }
    template <typename T> static FDL_INLINE T df(T x, T) {
        NormalParts<T> n = normal_parts(x);
        return n.cdf + tamed(x) * n.pdf;
    }
};

struct GeluTanh {  // x σ(2u), u = √(2/π)(x + 0.044715 x³) (torch's approximate="tanh")
    template <typename T> static FDL_INLINE T two_u(T x) {
        return T(c::TWO_SQRT2_PI) * (x + T(c::GELU_CUBIC) * x * x * x);
    }
    template <typename T> static FDL_INLINE T f(T x, T) { return scaled(x, sigmoid_parts(two_u(x)).s); }
    template <typename T> static FDL_INLINE T df(T x, T) {
        SigmoidParts<T> s = sigmoid_parts(two_u(x));
        T xt = tamed(x);
        return s.s + xt * T(c::TWO_SQRT2_PI) * (T(1) + T(3.0 * c::GELU_CUBIC) * xt * xt) * s.ds;
    }
};

struct Swish {  // x σ(βx); f' = σ(βx) + βx σ(βx)σ(-βx); ∂f/∂β = x² σ(βx)σ(-βx)
    template <typename T> static FDL_INLINE T f(T x, T beta) {
        return scaled(x, sigmoid_parts(beta * x).s);
    }
    template <typename T> static FDL_INLINE T df(T x, T beta) {
        T z = beta * x;
        SigmoidParts<T> s = sigmoid_parts(z);
        return s.s + tamed(z) * s.ds;
    }
    template <typename T> static FDL_INLINE T dp(T x, T beta) {
        return scaled(x * x, sigmoid_parts(beta * x).ds);
    }
};

struct Silu {  // swish with beta = 1
    template <typename T> static FDL_INLINE T f(T x, T) { return Swish::f(x, T(1)); }
    template <typename T> static FDL_INLINE T df(T x, T) { return Swish::df(x, T(1)); }
};

// Kinds in the registry's order; softmax is row-wise (softmax_rows below), not an element.
enum Kind {
    IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, PRELU, ELU, SOFTMAX, GELU, GELU_TANH, SWISH, SILU,
    N_KINDS
};
constexpr const char* KIND_NAMES[N_KINDS] = {
    "identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "softmax", "gelu",
    "gelu_tanh", "swish", "silu"};

// Calls body.template run<A>() for the element struct A of kind (nothing for softmax): the one
// switch every per-kind loop goes through.
template <typename Body> FDL_INLINE void with_element(int kind, Body&& body) {
    switch (kind) {
        case IDENTITY: body.template run<Identity>(); break;
        case SIGMOID: body.template run<Sigmoid>(); break;
        case TANH: body.template run<Tanh>(); break;
        case RELU: body.template run<Relu>(); break;
        case LEAKY_RELU: body.template run<LeakyRelu>(); break;
        case PRELU: body.template run<Prelu>(); break;
        case ELU: body.template run<Elu>(); break;
        case GELU: body.template run<Gelu>(); break;
        case GELU_TANH: body.template run<GeluTanh>(); break;
        case SWISH: body.template run<Swish>(); break;
        case SILU: body.template run<Silu>(); break;
        default: break;
    }
}

// The same for the kinds with a learnable parameter.
template <typename Body> FDL_INLINE void with_learnable(int kind, Body&& body) {
    switch (kind) {
        case PRELU: body.template run<Prelu>(); break;
        case SWISH: body.template run<Swish>(); break;
        default: break;
    }
}

// ------------------------------------------------------------------------------- chunk loops
// Separate loops for in-place calls: through two pointers to the same array gcc's runtime alias
// check fails and the loop would run scalar.

template <typename A, typename T>
FDL_INLINE void map_forward(const T* __restrict x, T p, T* __restrict out, index_t n) {
    for (index_t i = 0; i < n; i++) out[i] = A::f(x[i], p);
}

template <typename A, typename T> FDL_INLINE void map_forward_inplace(T* x, T p, index_t n) {
    for (index_t i = 0; i < n; i++) x[i] = A::f(x[i], p);
}

template <typename A, typename T>
FDL_INLINE void map_backward(const T* __restrict g, const T* __restrict v, T p,
                             T* __restrict out, index_t n) {
    for (index_t i = 0; i < n; i++) out[i] = g[i] * A::df(v[i], p);
}

// out is g (the usual dz = g ⊙ f' in place) or v
template <typename A, typename T>
FDL_INLINE void map_backward_into(T* io, const T* __restrict other, T p, bool io_is_g,
                                  index_t n) {
    if (io_is_g) {
        for (index_t i = 0; i < n; i++) io[i] = io[i] * A::df(other[i], p);
    } else {
        for (index_t i = 0; i < n; i++) io[i] = other[i] * A::df(io[i], p);
    }
}

template <typename T> struct Forward {
    const T* x; T p; T* out; index_t n;
    template <typename A> FDL_INLINE void run() {
        if (x == out) {
            map_forward_inplace<A>(out, p, n);
        } else {
            map_forward<A>(x, p, out, n);
        }
    }
};

template <typename T> struct Backward {
    const T* g; const T* v; T p; T* out; index_t n;
    template <typename A> FDL_INLINE void run() {
        if (out == g) {
            map_backward_into<A>(out, v, p, true, n);
        } else if (out == v) {
            map_backward_into<A>(out, g, p, false, n);
        } else {
            map_backward<A>(g, v, p, out, n);
        }
    }
};

// One row of features with one parameter each: out[j] = f(x[j], p[j]).
template <typename T> struct ForwardFeatures {
    const T* x; const T* p; T* out; index_t rows, features;
    template <typename A> FDL_INLINE void run() {
        for (index_t r = 0; r < rows; r++) {
            const T* xr = x + r * features;
            T* o = out + r * features;
            for (index_t j = 0; j < features; j++) o[j] = A::f(xr[j], p[j]);
        }
    }
};

constexpr index_t PAIRWISE_BLOCK = 256;  // parameter-gradient terms summed pairwise per block

// out = g f'(x) over one chunk; returns Σ g ∂f/∂p: float64 terms (exact products) of each block of
// PAIRWISE_BLOCK summed pairwise in a fixed tree, then the blocks in order (numba's order too).
template <typename T> struct ParamSum {
    const T* g; const T* x; T p; T* out; index_t n; double total;
    template <typename A> FDL_INLINE void run() {
        double terms[PAIRWISE_BLOCK];
        total = 0.0;
        for (index_t lo = 0; lo < n; lo += PAIRWISE_BLOCK) {
            index_t m = n - lo < PAIRWISE_BLOCK ? n - lo : PAIRWISE_BLOCK;
            for (index_t k = 0; k < m; k++) {
                T gk = g[lo + k], xk = x[lo + k];
                terms[k] = double(gk) * double(A::dp(xk, p));
                out[lo + k] = gk * A::df(xk, p);
            }
            for (index_t k = m; k < PAIRWISE_BLOCK; k++) terms[k] = 0.0;
            for (index_t width = PAIRWISE_BLOCK / 2; width; width /= 2) {
                for (index_t k = 0; k < width; k++) terms[k] += terms[k + width];
            }
            total += terms[0];
        }
    }
};

// Rows of features, one parameter each: out = g f'(x) and acc[j] += g ∂f/∂p, rows in order.
template <typename T> struct ParamSumFeatures {
    const T* g; const T* x; const T* p; T* out; double* acc; index_t rows, features;
    template <typename A> FDL_INLINE void run() {
        for (index_t r = 0; r < rows; r++) {
            index_t o = r * features;
            for (index_t j = 0; j < features; j++) {
                T gj = g[o + j], xj = x[o + j];
                acc[j] += double(gj) * double(A::dp(xj, p[j]));
                out[o + j] = gj * A::df(xj, p[j]);
            }
        }
    }
};

// --------------------------------------------------------------------------- softmax rows

// max of a non-empty row, as the maximum of vm::order_key: an integer max vectorizes, a float one
// does not without 'nnan'; a NaN in the row makes the caller's e^{z - max} NaN either way.
template <typename T> FDL_INLINE T row_max(const T* z, index_t n) {
    typename Bits<T>::Int key = vm::order_key(z[0]);
    for (index_t j = 0; j < n; j++) {
        typename Bits<T>::Int k = vm::order_key(z[j]);
        key = k > key ? k : key;
    }
    return vm::from_order_key(key, z[0]);
}

constexpr index_t NARROW_ROW = 16;  // narrower rows run their exponentials as one block loop

// Row-wise softmax of a (rows, n) block: out = e^{z - max z} / Σ e^{z - max z}. A row's result
// does not depend on the block it is in.
template <typename T> FDL_INLINE void softmax_rows(const T* z, T* out, index_t rows, index_t n) {
    if (n == 0) return;
    if (n < NARROW_ROW) {  // a loop along so short a row never reaches its vector body
        for (index_t i = 0; i < rows; i++) {
            T m = row_max(z + i * n, n);
            for (index_t j = 0; j < n; j++) out[i * n + j] = z[i * n + j] - m;
        }
        for (index_t k = 0; k < rows * n; k++) out[k] = vm::exp(out[k]);
        for (index_t i = 0; i < rows; i++) {
            T* o = out + i * n;
            T total = o[0];
            for (index_t j = 1; j < n; j++) total += o[j];
            T scale = T(1) / total;
            for (index_t j = 0; j < n; j++) o[j] *= scale;
        }
        return;
    }
    for (index_t i = 0; i < rows; i++) {
        const T* zi = z + i * n;
        T* o = out + i * n;
        T m = row_max(zi, n);
        T total = T(0);
#pragma omp simd reduction(+ : total)
        for (index_t j = 0; j < n; j++) {
            T e = vm::exp(zi[j] - m);
            o[j] = e;
            total += e;
        }
        T scale = T(1) / total;
        for (index_t j = 0; j < n; j++) o[j] *= scale;
    }
}

// Softmax JVP per row: out = y ⊙ (g - Σ g ⊙ y) = (diag(y) - y yᵀ) g.
template <typename T>
FDL_INLINE void softmax_backward_rows(const T* g, const T* y, T* out, index_t rows, index_t n) {
    for (index_t i = 0; i < rows; i++) {
        const T* gi = g + i * n;
        const T* yi = y + i * n;
        T* o = out + i * n;
        T dot = T(0);
#pragma omp simd reduction(+ : dot)
        for (index_t j = 0; j < n; j++) dot += gi[j] * yi[j];
        for (index_t j = 0; j < n; j++) o[j] = yi[j] * (gi[j] - dot);
    }
}

}  // namespace act

// ------------------------------------------------------------------ entry points (per ISA)
// Templates over float and double, so the .pyx's fused functions call one name.

template <typename T>
FDL_CLONES void activation_forward_chunk(int kind, const T* x, T p, T* out, index_t n) {
    act::with_element(kind, act::Forward<T>{x, p, out, n});
}

template <typename T>
FDL_CLONES void activation_backward_chunk(int kind, const T* g, const T* v, T p, T* out,
                                          index_t n) {
    act::with_element(kind, act::Backward<T>{g, v, p, out, n});
}

template <typename T>
FDL_CLONES void activation_forward_features_chunk(int kind, const T* x, const T* p, T* out,
                                                  index_t rows, index_t features) {
    act::with_learnable(kind, act::ForwardFeatures<T>{x, p, out, rows, features});
}

template <typename T>
FDL_CLONES double activation_param_sum_chunk(int kind, const T* g, const T* x, T p, T* out,
                                             index_t n) {
    act::ParamSum<T> body{g, x, p, out, n, 0.0};
    act::with_learnable(kind, body);
    return body.total;
}

template <typename T>
FDL_CLONES void activation_param_sum_features_chunk(int kind, const T* g, const T* x, const T* p,
                                                    T* out, double* acc, index_t rows,
                                                    index_t features) {
    act::with_learnable(kind, act::ParamSumFeatures<T>{g, x, p, out, acc, rows, features});
}

template <typename T>
FDL_CLONES void softmax_rows_chunk(const T* z, T* out, index_t rows, index_t n) {
    act::softmax_rows(z, out, rows, n);
}

template <typename T>
FDL_CLONES void softmax_backward_rows_chunk(const T* g, const T* y, T* out, index_t rows,
                                            index_t n) {
    act::softmax_backward_rows(g, y, out, rows, n);
}

}  // namespace fdl

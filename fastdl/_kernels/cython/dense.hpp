// The dense layer's non-GEMM work for the Cython backend, on blocks of a row-major (rows, ld)
// output: the fused bias + activation epilogue, dz = g ⊙ f'(v), the parameter and bias sums, and
// the GEMM-free product for a few rows. _dense.pyx cuts the outputs into blocks (split.py), calls
// BLAS on each and these right after, on the block still in cache. The formulas are
// fastdl/_kernels/numba/dense.py's; an activation's parameter p is p[j] per output feature when
// per_feature, else p[0].
#pragma once
#include "activations.hpp"
#include "common.hpp"

namespace fdl {
namespace dense {

// y = f(z + b) on rows [r0, r1), columns [c0, c1); with store_z, z keeps z + b too. Separate loops
// for z == y (in place): through two pointers to one array the loop would run scalar.
template <typename T> struct Epilogue {
    T* z; T* y; const T* b; const T* p; bool per_feature, store_z;
    index_t r0, r1, c0, c1, ld;
    template <typename A> FDL_INLINE void run() {
        index_t n = c1 - c0;
        const T* bc = b + c0;
        const T* pc = p + c0;
        T shared = p[0];
        for (index_t i = r0; i < r1; i++) {
            T* yi = y + i * ld + c0;
            if (store_z) {
                T* zi = z + i * ld + c0;
                for (index_t j = 0; j < n; j++) {
                    T v = zi[j] + bc[j];
                    zi[j] = v;
                    yi[j] = A::f(v, per_feature ? pc[j] : shared);
                }
            } else {
                for (index_t j = 0; j < n; j++) yi[j] = A::f(yi[j] + bc[j], per_feature ? pc[j] : shared);
            }
        }
    }
};

// dz = g ⊙ f'(v) on rows [r0, r1), all ld columns; dz may be g.
template <typename T> struct Dz {
    const T* g; const T* v; const T* p; bool per_feature; T* dz; index_t r0, r1, ld;
    template <typename A> FDL_INLINE void run() {
        T shared = p[0];
        for (index_t i = r0; i < r1; i++) {
            const T* vi = v + i * ld;
            T* di = dz + i * ld;
            if (di == g + i * ld) {
                for (index_t j = 0; j < ld; j++) di[j] = di[j] * A::df(vi[j], per_feature ? p[j] : shared);
            } else {
                const T* gi = g + i * ld;
                for (index_t j = 0; j < ld; j++) di[j] = gi[j] * A::df(vi[j], per_feature ? p[j] : shared);
            }
        }
    }
};

// sums[j] += Σ_i g[i, j] ∂f/∂p(v[i, j]) for columns [c0, c1), float64, rows in order.
template <typename T> struct ParamSums {
    const T* g; const T* v; const T* p; bool per_feature; double* sums;
    index_t rows, c0, c1, ld;
    template <typename A> FDL_INLINE void run() {
        index_t n = c1 - c0;
        const T* pc = p + c0;
        T shared = p[0];
        double* sc = sums + c0;
        for (index_t i = 0; i < rows; i++) {
            const T* gi = g + i * ld + c0;
            const T* vi = v + i * ld + c0;
            for (index_t j = 0; j < n; j++) {
                sc[j] += double(gi[j]) * double(A::dp(vi[j], per_feature ? pc[j] : shared));
            }
        }
    }
};

}  // namespace dense

template <typename T>
FDL_CLONES void dense_epilogue(int kind, T* z, T* y, const T* b, const T* p, bool per_feature,
                               bool store_z, index_t r0, index_t r1, index_t c0, index_t c1,
                               index_t ld) {
    if (kind == act::SOFTMAX) {  // the block holds whole rows
        for (index_t i = r0; i < r1; i++) {
            T* zi = z + i * ld;
            for (index_t j = 0; j < ld; j++) zi[j] += b[j];
        }
        act::softmax_rows(z + r0 * ld, y + r0 * ld, r1 - r0, ld);
        return;
    }
    act::with_element(kind, dense::Epilogue<T>{z, y, b, p, per_feature, store_z, r0, r1, c0, c1, ld});
}

template <typename T>
FDL_CLONES void dense_dz(int kind, const T* g, const T* v, const T* p, bool per_feature, T* dz,
                         index_t r0, index_t r1, index_t ld) {
    if (kind == act::SOFTMAX) {
        act::softmax_backward_rows(g + r0 * ld, v + r0 * ld, dz + r0 * ld, r1 - r0, ld);
        return;
    }
    act::with_element(kind, dense::Dz<T>{g, v, p, per_feature, dz, r0, r1, ld});
}

template <typename T>
FDL_CLONES void dense_param_sums(int kind, const T* g, const T* v, const T* p, bool per_feature,
                                 double* sums, index_t rows, index_t c0, index_t c1, index_t ld) {
    act::with_learnable(kind, dense::ParamSums<T>{g, v, p, per_feature, sums, rows, c0, c1, ld});
}

// sums[j] = Σ_i a[i, j] for columns [c0, c1), float64, rows in order (any thread count).
template <typename T>
FDL_CLONES void column_sums(const T* a, double* sums, index_t rows, index_t c0, index_t c1,
                            index_t ld) {
    double* sc = sums + c0;
    for (index_t j = 0; j < c1 - c0; j++) sc[j] = 0.0;
    for (index_t i = 0; i < rows; i++) {
        const T* ai = a + i * ld + c0;
        for (index_t j = 0; j < c1 - c0; j++) sc[j] += double(ai[j]);
    }
}

// z[r0:r1, c0:c1] = x[r0:r1] W[c0:c1]ᵀ for a few rows of x, reading W once: 8 rows of W at a
// time meet every row of x while they are in L1 (a GEMM would pack W first, which costs more
// than the product at this size). Past the last row of W a group repeats that row and stores
// nothing. reverse takes the groups last to first (the rows read last are still cached).
template <typename T>
FDL_CLONES void small_batch_product(const T* x, const T* W, T* z, index_t r0, index_t r1,
                                    index_t c0, index_t c1, index_t n_in, index_t ld_z,
                                    bool reverse) {
    index_t last = c1 - 1;
    index_t groups = (c1 - c0 + 7) / 8;
    for (index_t q = 0; q < groups; q++) {
        index_t j = c0 + 8 * (reverse ? groups - 1 - q : q);
        const T* w[8];
        for (int m = 0; m < 8; m++) w[m] = W + (j + m < last ? j + m : last) * n_in;
        for (index_t i = r0; i < r1; i++) {
            const T* xi = x + i * n_in;
            T s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4, s5, s6, s7)
            for (index_t k = 0; k < n_in; k++) {
                T xk = xi[k];
                s0 += w[0][k] * xk;
                s1 += w[1][k] * xk;
                s2 += w[2][k] * xk;
                s3 += w[3][k] * xk;
                s4 += w[4][k] * xk;
                s5 += w[5][k] * xk;
                s6 += w[6][k] * xk;
                s7 += w[7][k] * xk;
            }
            T sums[8] = {s0, s1, s2, s3, s4, s5, s6, s7};
            T* zi = z + i * ld_z + j;
            for (index_t m = 0; m < 8 && j + m < c1; m++) zi[m] = sums[m];
        }
    }
}

}  // namespace fdl

"""Dense layer kernels of the Cython backend: the interface's "dense" family.

The same algorithm as ``fastdl/_kernels/numba/dense.py``, whose docstring gives the arguments and
the reasons: the output is cut into blocks chosen from the shapes alone (``split.py``), each block
is one single-threaded BLAS GEMM followed at once by the bias + activation epilogue on the block
it just wrote (``dense.hpp``), and OpenMP threads take whole blocks, so results do not depend on
the thread count. W and dW may be Fortran-ordered (a tied decoder's transposed view).
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport uintptr_t
from libc.stdlib cimport calloc, free
from scipy.linalg.cython_blas cimport dgemm, dgemv, sgemm, sgemv
from fastdl._kernels.cython.common cimport index_t, is_float32

from fastdl._kernels import openblas, split
from fastdl._kernels.registry import IDS, LEARNABLE

cnp.import_array()


cdef extern from "dense.hpp" namespace "fdl" nogil:
    void dense_epilogue[T](int kind, T* z, T* y, const T* b, const T* p, bint per_feature,
                           bint store_z, index_t r0, index_t r1, index_t c0, index_t c1,
                           index_t ld)
    void dense_dz[T](int kind, const T* g, const T* v, const T* p, bint per_feature, T* dz,
                     index_t r0, index_t r1, index_t ld)
    void dense_param_sums[T](int kind, const T* g, const T* v, const T* p, bint per_feature,
                             double* sums, index_t rows, index_t c0, index_t c1, index_t ld)
    void column_sums[T](const T* a, double* sums, index_t rows, index_t c0, index_t c1,
                        index_t ld)
    void small_batch_product[T](const T* x, const T* W, T* z, index_t r0, index_t r1,
                                index_t c0, index_t c1, index_t n_in, index_t ld_z, bint reverse)

cdef int SOFTMAX = IDS["softmax"]
cdef bint[12] LEARNABLE_KIND
for _name, _kind in IDS.items():
    LEARNABLE_KIND[_kind] = _name in LEARNABLE

cdef index_t SERIAL_WORK = split.SERIAL_WORK
cdef index_t DZ_WORK = split.DZ_WORK
cdef index_t SMALL_BATCH = split.SMALL_BATCH
cdef index_t COL_ALIGN = split.COL_ALIGN
cdef index_t MIN_ROWS = split.MIN_ROWS
cdef index_t DEEP_K = split.DEEP_K
cdef bint SMALL_KERNELS = openblas.SMALL_KERNELS
cdef char NO_TRANS = 78, TRANS = 84  # 'N', 'T'

# ---------------------------------------------------------------------- BLAS and its threads

ctypedef int (*get_threads_fn)() noexcept nogil
ctypedef void (*set_threads_fn)(int) noexcept nogil

cdef int _one() noexcept nogil:
    return 1

cdef void _ignore(int n) noexcept nogil:
    pass

cdef get_threads_fn _blas_get_threads = _one
cdef set_threads_fn _blas_set_threads = _ignore
if openblas.THREAD_FUNCTIONS is not None:
    _blas_get_threads = <get_threads_fn><uintptr_t>openblas.THREAD_FUNCTIONS[0]
    _blas_set_threads = <set_threads_fn><uintptr_t>openblas.THREAD_FUNCTIONS[1]


cdef inline int _blas_single_threaded() noexcept nogil:
    """Make scipy's OpenBLAS single-threaded; returns the previous count for the restore."""
    cdef int previous = _blas_get_threads()
    if previous != 1:
        _blas_set_threads(1)
    return previous


cdef inline void _blas_restore(int previous) noexcept nogil:
    if previous != 1:
        _blas_set_threads(previous)


cdef inline void _gemm(char transa, char transb, index_t m, index_t n, index_t k,
                       const floating* a, index_t lda, const floating* b, index_t ldb,
                       floating beta, floating* c, index_t ldc) noexcept nogil:
    """Fortran ?gemm, C = op(A) op(B) + beta C, column-major (a row-major (r, s) array is the
    column-major (s, r) matrix of its transpose)."""
    cdef int m_ = m, n_ = n, k_ = k, lda_ = max(lda, 1), ldb_ = max(ldb, 1), ldc_ = max(ldc, 1)
    cdef floating one = 1
    if floating is float:
        sgemm(&transa, &transb, &m_, &n_, &k_, &one, <float*>a, &lda_, <float*>b, &ldb_, &beta,
              c, &ldc_)
    else:
        dgemm(&transa, &transb, &m_, &n_, &k_, &one, <double*>a, &lda_, <double*>b, &ldb_, &beta,
              c, &ldc_)


cdef inline void _gemv(char trans, index_t m, index_t n, const floating* a, index_t lda,
                       const floating* x, floating* y) noexcept nogil:
    """Fortran ?gemv, y = op(A) x, A column-major (m, n), unit strides."""
    cdef int m_ = m, n_ = n, lda_ = max(lda, 1), inc = 1
    cdef floating one = 1, zero = 0
    if floating is float:
        sgemv(&trans, &m_, &n_, &one, <float*>a, &lda_, <float*>x, &inc, &zero, y, &inc)
    else:
        dgemv(&trans, &m_, &n_, &one, <double*>a, &lda_, <double*>x, &inc, &zero, y, &inc)


cdef inline index_t _small_kernel_columns(index_t m, index_t k) noexcept nogil:
    """The most columns with which OpenBLAS runs an (m x k)ᵀ (k x n) GEMM through its small
    kernels (openblas.small_kernel_columns); 0 where it never does."""
    if not SMALL_KERNELS or k < 32 or m < 1:
        return 0
    return min(1200 // m, 1000000 // (m * k))


# ------------------------------------------------------------------------------ GEMM blocks
# W (n_out, n_in) is C-ordered, or column-major (``w_col``: the transposed view of a C-ordered
# (n_in, n_out) matrix); the GEMMs then read it in place with the other transpose flag.


cdef void _gemm_forward(const floating* x, const floating* W, bint w_col, floating* z,
                        index_t n_in, index_t n_out, index_t r0, index_t r1, index_t c0,
                        index_t c1, bint reverse) noexcept nogil:
    """z[r0:r1, c0:c1] = x[r0:r1] W[c0:c1]ᵀ; a small batch by small_batch_product unless
    OpenBLAS's small kernels take it."""
    cdef index_t step = _small_kernel_columns(c1 - c0, n_in) if c1 - c0 < COL_ALIGN else 0
    cdef index_t s
    cdef char trans_w
    cdef const floating* w
    cdef index_t ld_w
    if w_col:
        w, ld_w, trans_w = W + c0, n_out, NO_TRANS
        if r1 - r0 == 1:  # gemv reads W once, without packing
            _gemv(NO_TRANS, c1 - c0, n_in, w, ld_w, x + r0 * n_in, z + r0 * n_out + c0)
            return
    else:
        if r1 - r0 <= SMALL_BATCH and r1 - r0 > step:
            small_batch_product(x, W, z, r0, r1, c0, c1, n_in, n_out, reverse)
            return
        w, ld_w, trans_w = W + c0 * n_in, n_in, TRANS
    step = step // MIN_ROWS * MIN_ROWS if step >= MIN_ROWS else max(1, r1 - r0)
    s = r0
    while s < r1:
        _gemm(trans_w, NO_TRANS, c1 - c0, min(step, r1 - s), n_in, w, ld_w, x + s * n_in, n_in,
              0, z + s * n_out + c0, n_out)
        s += step


cdef void _gemm_dx(const floating* dz, const floating* W, bint w_col, floating* dx, index_t n_in,
                   index_t n_out, index_t r0, index_t r1, index_t i0, index_t i1) noexcept nogil:
    """dx[r0:r1, i0:i1] = dz[r0:r1] W[:, i0:i1] (one row: gemv)."""
    cdef const floating* w
    if w_col:
        w = W + i0 * n_out
        if r1 - r0 == 1:
            _gemv(TRANS, n_out, i1 - i0, w, n_out, dz + r0 * n_out, dx + r0 * n_in + i0)
            return
        _gemm(TRANS, NO_TRANS, i1 - i0, r1 - r0, n_out, w, n_out, dz + r0 * n_out, n_out, 0,
              dx + r0 * n_in + i0, n_in)
        return
    w = W + i0
    if r1 - r0 == 1:
        _gemv(NO_TRANS, i1 - i0, n_out, w, n_in, dz + r0 * n_out, dx + r0 * n_in + i0)
        return
    _gemm(NO_TRANS, NO_TRANS, i1 - i0, r1 - r0, n_out, w, n_in, dz + r0 * n_out, n_out, 0,
          dx + r0 * n_in + i0, n_in)


cdef void _gemm_dW(const floating* dz, const floating* x, floating* dW, bint dW_col,
                   floating beta, index_t batch, index_t n_in, index_t n_out, index_t c0,
                   index_t c1, index_t i0, index_t i1) noexcept nogil:
    """dW[c0:c1, i0:i1] = dz[:, c0:c1]ᵀ x[:, i0:i1] + beta dW[c0:c1, i0:i1]."""
    if dW_col:  # column-major dW: the same product, operands swapped
        _gemm(NO_TRANS, TRANS, c1 - c0, i1 - i0, batch, dz + c0, n_out, x + i0, n_in, beta,
              dW + i0 * n_out + c0, n_out)
    else:
        _gemm(NO_TRANS, TRANS, i1 - i0, c1 - c0, batch, x + i0, n_in, dz + c0, n_out, beta,
              dW + c0 * n_in + i0, n_in)


# ----------------------------------------------------------------------------------- drivers


cdef inline bint _col_major(cnp.ndarray a):
    """Whether a 2-D array's columns are contiguous (a Fortran-ordered / transposed view)."""
    return cnp.PyArray_STRIDES(a)[1] != cnp.PyArray_ITEMSIZE(a)


cdef inline object _blocks(index_t n_rows, index_t n_cols, bint by_rows, index_t work,
                           index_t products):
    """split.dense_blocks, without a Python call for work that stays on one block."""
    if work <= SERIAL_WORK:
        return 1, (n_rows if by_rows else n_cols)
    return split.dense_blocks(n_rows, n_cols, by_rows, work, products)


cdef struct Block:
    index_t r0, r1, c0, c1


cdef inline Block _block(index_t t, index_t span, index_t n_rows, index_t n_cols,
                         bint by_rows) noexcept nogil:
    """Block t of a split made by split.dense_blocks."""
    cdef Block k
    if by_rows:
        k.r0, k.r1, k.c0, k.c1 = t * span, min(n_rows, (t + 1) * span), 0, n_cols
    else:
        k.r0, k.r1, k.c0, k.c1 = 0, n_rows, t * span, min(n_cols, (t + 1) * span)
    return k


# Work that fits one block runs outside OpenMP, as in the other kernels: entering a parallel
# region costs ~0.35 µs even when its if() clause makes it serial (the backward's two regions
# were a quarter of a batch-1 softmax layer's).

cdef inline void _forward_block(index_t t, int kind, const floating* x, const floating* W,
                                bint w_col, const floating* b, const floating* p,
                                bint per_feature, floating* z, floating* y, bint store_z,
                                bint reverse, index_t batch, index_t n_in, index_t n_out,
                                index_t span, bint by_rows) noexcept nogil:
    cdef Block k = _block(t, span, batch, n_out, by_rows)
    _gemm_forward(x, W, w_col, z, n_in, n_out, k.r0, k.r1, k.c0, k.c1, reverse)
    dense_epilogue(kind, z, y, b, p, per_feature, store_z, k.r0, k.r1, k.c0, k.c1, n_out)


cdef void _forward(int kind, const floating* x, const floating* W, bint w_col, const floating* b,
                   const floating* p, bint per_feature, floating* z, floating* y, bint store_z,
                   bint reverse, index_t batch, index_t n_in, index_t n_out, index_t blocks,
                   index_t span, bint by_rows) noexcept nogil:
    cdef index_t t
    cdef int previous = _blas_single_threaded()
    if blocks == 1:
        _forward_block(0, kind, x, W, w_col, b, p, per_feature, z, y, store_z, reverse, batch,
                       n_in, n_out, span, by_rows)
    else:
        for t in prange(blocks, schedule="static", nogil=True):
            _forward_block(t, kind, x, W, w_col, b, p, per_feature, z, y, store_z, reverse,
                           batch, n_in, n_out, span, by_rows)
    _blas_restore(previous)


def dense_forward(int kind, cnp.ndarray x, cnp.ndarray W, cnp.ndarray b, cnp.ndarray p,
                  cnp.ndarray z, cnp.ndarray y, bint reverse):
    """z = x Wᵀ + b, y = f(z) for the activation ``kind`` (numba/dense.py gives the arguments)."""
    cdef index_t batch = cnp.PyArray_DIM(x, 0), n_in = cnp.PyArray_DIM(x, 1)
    cdef index_t n_out = cnp.PyArray_DIM(W, 0)
    cdef bint by_rows = kind == SOFTMAX or batch >= n_out
    cdef bint per_feature = LEARNABLE_KIND[kind] and cnp.PyArray_SIZE(p) != 1
    cdef bint store_z = cnp.PyArray_DATA(z) != cnp.PyArray_DATA(y)
    cdef index_t blocks, span
    blocks, span = _blocks(batch, n_out, by_rows, batch * n_in * n_out, 1)
    if is_float32(x):
        _forward(kind, <float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(W), _col_major(W),
                 <float*>cnp.PyArray_DATA(b), <float*>cnp.PyArray_DATA(p), per_feature,
                 <float*>cnp.PyArray_DATA(z), <float*>cnp.PyArray_DATA(y), store_z, reverse,
                 batch, n_in, n_out, blocks, span, by_rows)
    else:
        _forward(kind, <double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(W), _col_major(W),
                 <double*>cnp.PyArray_DATA(b), <double*>cnp.PyArray_DATA(p), per_feature,
                 <double*>cnp.PyArray_DATA(z), <double*>cnp.PyArray_DATA(y), store_z, reverse,
                 batch, n_in, n_out, blocks, span, by_rows)


cdef struct Split:
    index_t dz_blocks, dz_span, dx_blocks, dx_span, dW_blocks, dW_span
    bint dx_by_rows, with_dx, by_out, alternate, parallel


cdef struct Task:
    bint is_dx
    index_t j


cdef inline Task _backward_task(index_t t, Split* s) noexcept nogil:
    """Task t of the region that runs dx's and dW's blocks (numba/dense.py's _backward_task):
    alternating dx 0, dW 0, dx 1, ... (every thread gets a block of both), or all of dx's blocks
    first (the first threads run dx, the others dW)."""
    cdef index_t both = min(s.dx_blocks, s.dW_blocks)
    cdef Task task
    if not s.alternate:
        task.is_dx, task.j = t < s.dx_blocks, (t if t < s.dx_blocks else t - s.dx_blocks)
    elif t < 2 * both:
        task.is_dx, task.j = t % 2 == 0, t // 2
    else:
        task.is_dx, task.j = s.dx_blocks > s.dW_blocks, t - both
    return task


cdef void _sums(int kind, const floating* g, const floating* v, const floating* p,
                bint per_feature, const floating* dz, double* sums, index_t batch, index_t n_out,
                index_t c0, index_t c1) noexcept nogil:
    """db's and dp's sums over the columns c0:c1 (sums[n_out:] starts at 0)."""
    column_sums(dz, sums, batch, c0, c1, n_out)
    if LEARNABLE_KIND[kind]:
        dense_param_sums(kind, g, v, p, per_feature, sums + n_out, batch, c0, c1, n_out)


cdef inline void _dz_block(index_t t, int kind, const floating* g, const floating* W, bint w_col,
                           const floating* v, const floating* p, bint per_feature, floating* dz,
                           floating* dx, Split* s, index_t batch, index_t n_in,
                           index_t n_out) noexcept nogil:
    """dz of row block t, and dx of the same rows right after (still hot) when dx_by_rows."""
    cdef Block k = _block(t, s.dz_span, batch, n_out, True)
    dense_dz(kind, g, v, p, per_feature, dz, k.r0, k.r1, n_out)
    if s.with_dx and s.dx_by_rows:
        _gemm_dx(dz, W, w_col, dx, n_in, n_out, k.r0, k.r1, 0, n_in)


cdef inline void _dx_dW_task(index_t t, int kind, const floating* g, const floating* x,
                             const floating* W, bint w_col, const floating* v, const floating* p,
                             bint per_feature, const floating* dz, floating* dx, floating* dW,
                             bint dW_col, floating beta, double* sums, Split* s, index_t batch,
                             index_t n_in, index_t n_out) noexcept nogil:
    """Task t of the dx / dW region: a block of dx's columns, or of dW with its columns' sums."""
    cdef Task task = _backward_task(t, s)
    cdef Block k
    if task.is_dx:
        k = _block(task.j, s.dx_span, batch, n_in, False)
        _gemm_dx(dz, W, w_col, dx, n_in, n_out, 0, batch, k.c0, k.c1)
    else:
        k = _block(task.j, s.dW_span, n_out, n_in, s.by_out)
        _gemm_dW(dz, x, dW, dW_col, beta, batch, n_in, n_out, k.r0, k.r1, k.c0, k.c1)
        if s.by_out:
            _sums(kind, g, v, p, per_feature, dz, sums, batch, n_out, k.r0, k.r1)


cdef void _backward(int kind, const floating* g, const floating* x, const floating* W, bint w_col,
                    const floating* v, const floating* p, bint per_feature, floating* dz,
                    floating* dx, floating* dW, bint dW_col, floating* db, floating* dp,
                    index_t dp_size, bint accumulate, double* sums, Split* s, index_t batch,
                    index_t n_in, index_t n_out) noexcept nogil:
    cdef index_t t, j, tasks = s.dx_blocks + s.dW_blocks
    cdef floating beta = 1 if accumulate else 0
    cdef double total
    cdef int previous = _blas_single_threaded()
    # 1. dz by row blocks, and dx by the same rows right after (still hot) when dx_by_rows
    if s.dz_blocks == 1:
        _dz_block(0, kind, g, W, w_col, v, p, per_feature, dz, dx, s, batch, n_in, n_out)
    else:
        for t in prange(s.dz_blocks, schedule="static", nogil=True):
            _dz_block(t, kind, g, W, w_col, v, p, per_feature, dz, dx, s, batch, n_in, n_out)
    # 2. dx (unless done above) and dW with the sums of dW's columns, in one region
    if not s.parallel:
        for t in range(tasks):
            _dx_dW_task(t, kind, g, x, W, w_col, v, p, per_feature, dz, dx, dW, dW_col, beta,
                        sums, s, batch, n_in, n_out)
    else:
        for t in prange(tasks, schedule="static", nogil=True):
            _dx_dW_task(t, kind, g, x, W, w_col, v, p, per_feature, dz, dx, dW, dW_col, beta,
                        sums, s, batch, n_in, n_out)
    if not s.by_out:  # the few columns' sums after the blocks along n_in
        _sums(kind, g, v, p, per_feature, dz, sums, batch, n_out, 0, n_out)
    _blas_restore(previous)
    # db (+)= sums[:n_out]; a learnable parameter's dp (+)= sums[n_out:], or their ordered total
    for j in range(n_out):
        db[j] = <floating>(sums[j] + db[j]) if accumulate else <floating>sums[j]
    if not LEARNABLE_KIND[kind]:
        return
    if dp_size == 1 and n_out != 1:
        total = 0
        for j in range(n_out):
            total += sums[n_out + j]
        dp[0] = <floating>(total + dp[0]) if accumulate else <floating>total
    else:
        for j in range(dp_size):
            dp[j] = <floating>(sums[n_out + j] + dp[j]) if accumulate else <floating>sums[n_out + j]


def dense_backward(int kind, cnp.ndarray g, cnp.ndarray x, cnp.ndarray W, cnp.ndarray v,
                   cnp.ndarray p, cnp.ndarray dz, cnp.ndarray dx, cnp.ndarray dW, cnp.ndarray db,
                   cnp.ndarray dp, bint need_dx, bint accumulate):
    """dz, dx, dW, db, dp of the dense layer for activation ``kind`` (see numba/dense.py)."""
    cdef index_t batch = cnp.PyArray_DIM(x, 0), n_in = cnp.PyArray_DIM(x, 1)
    cdef index_t n_out = cnp.PyArray_DIM(W, 0)
    cdef index_t work = batch * n_in * n_out
    cdef bint per_feature = LEARNABLE_KIND[kind] and cnp.PyArray_SIZE(p) != 1
    cdef Split s
    # the same choices as numba/dense.py's dense_backward, whose comments give the measurements
    cdef bint deep = need_dx and min(batch, n_out) >= DEEP_K
    cdef index_t products = 2 if deep else 1
    s.dx_by_rows = batch >= max(n_in, 2 * MIN_ROWS) and not deep
    s.with_dx = need_dx
    s.by_out = n_out >= 2 * COL_ALIGN
    s.alternate = s.by_out and not deep
    s.dz_blocks, s.dz_span = _blocks(batch, n_out, True,
                                     work if s.dx_by_rows else batch * n_out * DZ_WORK, 1)
    if need_dx and not s.dx_by_rows:
        s.dx_blocks, s.dx_span = _blocks(batch, n_in, False, work, products)
    else:
        s.dx_blocks, s.dx_span = 0, n_in
    s.dW_blocks, s.dW_span = _blocks(n_out, n_in, s.by_out, work, products)
    s.parallel = work > SERIAL_WORK and s.dx_blocks + s.dW_blocks > 1
    cdef double* sums = <double*>calloc(2 * n_out + 1, sizeof(double))
    if sums == NULL:
        raise MemoryError()
    try:
        if is_float32(x):
            _backward(kind, <float*>cnp.PyArray_DATA(g), <float*>cnp.PyArray_DATA(x),
                      <float*>cnp.PyArray_DATA(W), _col_major(W), <float*>cnp.PyArray_DATA(v),
                      <float*>cnp.PyArray_DATA(p), per_feature, <float*>cnp.PyArray_DATA(dz),
                      <float*>cnp.PyArray_DATA(dx), <float*>cnp.PyArray_DATA(dW), _col_major(dW),
                      <float*>cnp.PyArray_DATA(db), <float*>cnp.PyArray_DATA(dp),
                      cnp.PyArray_SIZE(dp), accumulate, sums, &s, batch, n_in, n_out)
        else:
            _backward(kind, <double*>cnp.PyArray_DATA(g), <double*>cnp.PyArray_DATA(x),
                      <double*>cnp.PyArray_DATA(W), _col_major(W), <double*>cnp.PyArray_DATA(v),
                      <double*>cnp.PyArray_DATA(p), per_feature, <double*>cnp.PyArray_DATA(dz),
                      <double*>cnp.PyArray_DATA(dx), <double*>cnp.PyArray_DATA(dW),
                      _col_major(dW), <double*>cnp.PyArray_DATA(db), <double*>cnp.PyArray_DATA(dp),
                      cnp.PyArray_SIZE(dp), accumulate, sums, &s, batch, n_in, n_out)
    finally:
        free(sums)

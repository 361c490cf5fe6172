"""Dense (fully connected) layer kernels: y = f(x Wᵀ + b) and its backward, on BLAS GEMMs.

Shapes: x (batch, n_in), W (n_out, n_in) (PyTorch's ``Linear`` layout), b (n_out,), z and y
(batch, n_out); all C-contiguous, one dtype (float32 or float64), except that W and dW may also be
Fortran-contiguous (``W_enc.T`` for a tied decoder: no copy needed). ``p`` holds the activation's
parameter: one shared value (size 1) or one per output feature (size n_out; PReLU's alpha and
Swish's beta only); activations without a parameter ignore it. The activation is chosen by its
id, ``ACTIVATION_IDS[name]``; ``GRAD_FROM[name]`` says which tensor its backward reads.

``dense_forward(act, x, W, b, p, z, y, reverse)``: z = x Wᵀ + b, y = f(z). Pass ``z is y`` when
the pre-activation is not needed (y then receives x Wᵀ and is activated in place); a separate
``z`` is needed by the backward of activations whose derivative reads the input. ``reverse`` only
orders the work (results are the same bits): a small batch walks W backwards. Flip it from one
call to the next on the same W: the rows the last call read last, still cached, are read first
(a per-core share of W about the size of L2 is otherwise evicted just before each use; 1024 x 1024
at batch 1: 59 -> 45 µs).

``dense_backward(act, g, x, W, v, p, dz, dx, dW, db, dp, need_dx, accumulate)`` with g = ∂L/∂y and
v = y or z as ``GRAD_FROM`` says:
    dz = g ⊙ f'(v)      (softmax: dz = y ⊙ (g - Σ_j g ⊙ y), its Jacobian-vector product)
    dx = dz W           (skipped when ``need_dx`` is False, e.g. for a first layer)
    dW = dzᵀ x,  db = Σ_rows dz,  dp = Σ g ⊙ ∂f/∂p (per feature, or in total when p is shared)
``accumulate`` adds dW, db, dp to the buffers' contents (BLAS beta = 1) instead of overwriting
them. ``dz`` is a workspace; it may be ``g`` itself unless the activation has a learnable
parameter (whose gradient reads g after dz is written). ``dp`` is written only for PReLU and
Swish (pass any array otherwise, e.g. ``p``). db and dp are float64 sums in a fixed order per
column: the same bits whatever the thread count. Only a (2, n_out) float64 scratch is allocated.

How the work is split (``split.py``: from the shapes alone, so the same bits at any thread
count): each call makes scipy's BLAS single-threaded (see blas.py) and cuts the output into the
blocks of ``split.dense_blocks``, which numba's threads take whole; each block is a
single-threaded GEMM followed at once by the bias + activation epilogue on the block it just
wrote (still in that core's cache). Blocks run along the batch when it is at least n_out (each
block then packs all of W once) and along the features otherwise (the smaller x is re-packed
instead); softmax needs whole rows. The backward splits dx and dW the same way, choosing what each
block packs redundantly. A forward of at most ``SMALL_BATCH`` rows skips the GEMM, whose packing
of W would cost more than the product: each block streams its rows of W once through dot
products (one sample: half of W per core, which stays in that core's L2 from call to call when it
fits). A forward with fewer than ``COL_ALIGN`` outputs calls the GEMM on row chunks that
OpenBLAS's small-matrix kernels take (``openblas.small_kernel_columns``), at any batch: those
kernels do not pack either. Calls of at most ``SERIAL_WORK`` multiply-adds stay on the calling
thread: a parallel launch would cost more than the GEMM, and a one-sample forward must be cheap.

One parallel driver per direction serves every activation: it reaches the activation's own
compiled loops through one flat switch per block. numba re-optimizes every callee's IR inside
each caller's module, so compile time grows with nesting and with the number of parallel
drivers: one driver per direction and dtype, with flat switches, keeps a cold compile of all
twelve activations to a few seconds per dtype and direction.
"""
import warnings

import numpy as np
from numba import literal_unroll, prange
from numba.core.errors import NumbaExperimentalFeatureWarning

from fastdl._kernels import split
from fastdl._kernels.numba import activations
from fastdl._kernels.numba._jit import jit, pjit, specialize
from fastdl._kernels.numba.blas import (NO_TRANS, TRANS, blas_restore_threads,
                                        blas_single_threaded, gemm, gemv, small_kernel_columns)
from fastdl._kernels.split import COL_ALIGN, DEEP_K, DZ_WORK, MIN_ROWS, SERIAL_WORK, SMALL_BATCH

#: activation name → id passed to the kernels
ACTIVATION_IDS = {name: i for i, name in enumerate(activations.ACTIVATIONS)}
#: activation name → 'input' (backward reads z) or 'output' (backward reads y)
GRAD_FROM = {name: act.grad_from for name, act in activations.ACTIVATIONS.items()}
_SOFTMAX = ACTIVATION_IDS["softmax"]
#: by id: whether the activation has a learnable parameter (dp is written only then)
_LEARNABLE = tuple(name in activations.PARAM_GRADS for name in ACTIVATION_IDS)


# ------------------------------------------------------------------------------- GEMM blocks
# Row-major (r, s) arrays are column-major (s, r) matrices of their transposes, leading dim s.
# W and dW may also be Fortran-ordered: the transposed view of a C-ordered (n_in, n_out) matrix,
# a tied decoder's W = W_encᵀ. The GEMMs then read and write them in place with the other
# transpose flag instead of needing a copy (and dW accumulates straight into the encoder's).


@jit
def _col_major(a):
    """Whether a 2-D array's columns are contiguous (a Fortran-ordered / transposed view)."""
    return a.strides[1] != a.itemsize


@jit
def _gemm_forward(x, W, z, r0, r1, c0, c1, reverse):
    """z[r0:r1, c0:c1] = x[r0:r1] W[c0:c1]ᵀ; a small batch by ``_small_batch_product`` unless
    OpenBLAS's small kernels take it."""
    n_in = x.shape[1]
    ld_in, ld_out = max(1, n_in), max(1, z.shape[1])
    # few outputs: row chunks that OpenBLAS's small kernels take (see blas.py), 2-3x faster
    # than its packing kernels there (500 -> 10, 512 rows: 115 -> 67 µs) and than
    # _small_batch_product, whose groups of 8 rows of W fit 10 outputs badly (16 rows: 4.8 ->
    # 2.6 µs, one row: 0.78 -> 0.60 µs); whole multiples of MIN_ROWS, so that one thread's
    # chunks and the blocks of a row split break at the same rows
    step = small_kernel_columns(c1 - c0, n_in) if c1 - c0 < COL_ALIGN else 0
    if _col_major(W):
        ld_w = max(1, W.shape[0])
        if r1 - r0 == 1:  # gemv reads W once, without packing
            gemv(NO_TRANS, c1 - c0, n_in, 1.0, W[c0:], ld_w, x[r0], 1, 0.0, z[r0, c0:], 1)
            return
        trans_w = NO_TRANS
    else:
        if r1 - r0 <= SMALL_BATCH and r1 - r0 > step:
            _small_batch_product(x, W, z, r0, r1, c0, c1, reverse)
            return
        ld_w = ld_in
        trans_w = TRANS
    step = step // MIN_ROWS * MIN_ROWS if step >= MIN_ROWS else max(1, r1 - r0)
    for s in range(r0, r1, step):
        gemm(trans_w, NO_TRANS, c1 - c0, min(step, r1 - s), n_in, 1.0, W[c0:], ld_w, x[s:], ld_in,
             0.0, z[s:, c0:], ld_out)


@jit
def _small_batch_product(x, W, z, r0, r1, c0, c1, reverse):
    """z[r0:r1, c0:c1] = x[r0:r1] W[c0:c1]ᵀ for a few rows of x, reading W once.

    A GEMM packs W on every call, which costs more than the product itself when x has few rows.
    Here 8 rows of W at a time meet every row of x while they are in L1: eight dot products per
    row of x, vectorized along n_in (8 streams of W keep L2 busier than 4: 5-8% at batch 1).
    Past the last row of W a group repeats that row and does not store its results, so there is
    no remainder loop. ``reverse`` takes the groups last to first.
    """
    zero = type(z[r0, c0])(0.0)  # a literal 0.0 would widen float32 sums to float64
    last = c1 - 1
    groups = (c1 - c0 + 7) // 8
    for q in range(groups):
        j = c0 + 8 * (groups - 1 - q if reverse else q)
        w0, w1, w2, w3 = W[j], W[min(j + 1, last)], W[min(j + 2, last)], W[min(j + 3, last)]
        w4, w5, w6, w7 = (W[min(j + 4, last)], W[min(j + 5, last)], W[min(j + 6, last)],
                          W[min(j + 7, last)])
        for i in range(r0, r1):
            xi = x[i]
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = zero
            for k in range(xi.size):
                s0 += w0[k] * xi[k]
                s1 += w1[k] * xi[k]
                s2 += w2[k] * xi[k]
                s3 += w3[k] * xi[k]
                s4 += w4[k] * xi[k]
                s5 += w5[k] * xi[k]
                s6 += w6[k] * xi[k]
                s7 += w7[k] * xi[k]
            zi = z[i, j:min(j + 8, c1)]
            for m, s in enumerate((s0, s1, s2, s3, s4, s5, s6, s7)):
                if m < zi.size:
                    zi[m] = s


@jit
def _gemm_dx(dz, W, dx, r0, r1, i0, i1):
    """dx[r0:r1, i0:i1] = dz[r0:r1] W[:, i0:i1] (one row: gemv)."""
    n_out = W.shape[0]
    ld_in, ld_out = max(1, W.shape[1]), max(1, n_out)
    if _col_major(W):
        ld_w = ld_out
        if r1 - r0 == 1:
            gemv(TRANS, n_out, i1 - i0, 1.0, W[:, i0:], ld_w, dz[r0], 1, 0.0, dx[r0, i0:], 1)
            return
        trans_w = TRANS
    else:
        ld_w = ld_in
        if r1 - r0 == 1:
            gemv(NO_TRANS, i1 - i0, n_out, 1.0, W[:, i0:], ld_w, dz[r0], 1, 0.0, dx[r0, i0:], 1)
            return
        trans_w = NO_TRANS
    gemm(trans_w, NO_TRANS, i1 - i0, r1 - r0, n_out, 1.0, W[:, i0:], ld_w, dz[r0:], ld_out,
         0.0, dx[r0:, i0:], ld_in)


@jit
def _gemm_dW(dz, x, dW, beta, c0, c1, i0, i1):
    """dW[c0:c1, i0:i1] = dz[:, c0:c1]ᵀ x[:, i0:i1] + beta dW[c0:c1, i0:i1]."""
    ld_in, ld_out = max(1, x.shape[1]), max(1, dz.shape[1])
    if _col_major(dW):  # column-major dW: the same product, operands swapped
        gemm(NO_TRANS, TRANS, c1 - c0, i1 - i0, x.shape[0], 1.0, dz[:, c0:], ld_out, x[:, i0:],
             ld_in, beta, dW[c0:, i0:], ld_out)
    else:
        gemm(NO_TRANS, TRANS, i1 - i0, c1 - c0, x.shape[0], 1.0, x[:, i0:], ld_in, dz[:, c0:],
             ld_out, beta, dW[c0:, i0:], ld_in)


@jit
def _column_sums(a, sums, c0, c1):
    """sums[j] = Σ_i a[i, j] for c0 <= j < c1, in float64, rows in order (any thread count)."""
    sc = sums[c0:c1]
    sc[:] = 0.0
    for i in range(a.shape[0]):
        ai = a[i, c0:c1]
        for j in range(sc.size):
            sc[j] += ai[j]


# ------------------------------------------- per-activation loops (templates for specialize)
# Each loop takes (p, args): the parameter array and a tuple of the other arguments. With a
# per-feature p the parameter is p[j], else p[0]: a loop-invariant choice that LLVM unswitches,
# and that folds away for activations without a per-feature parameter (PER_FEATURE False).
ELEM = GRAD = DPARAM = LEAVES = None
PER_FEATURE = False


def _bias_act_template(p, args):
    # y = f(z + b) on the block; with store_z, z keeps z + b too. Separate loops for the in-place
    # case: with z is y, a two-array loop fails LLVM's runtime alias check and stays scalar.
    # Loops run over range(n) on sliced rows: an index from range(c0, c1) may be negative as far
    # as numba knows, and its wraparound test stops the loop from vectorizing.
    z, y, b, store_z, r0, r1, c0, c1 = args
    per_feature = PER_FEATURE and p.size != 1
    pc = p[c0:c1] if per_feature else p
    shared = p[0]
    bc = b[c0:c1]
    for i in range(r0, r1):
        yi = y[i, c0:c1]
        if store_z:
            zi = z[i, c0:c1]
            for j in range(bc.size):
                v = zi[j] + bc[j]
                zi[j] = v
                yi[j] = ELEM(v, pc[j] if per_feature else shared)
        else:
            for j in range(bc.size):
                yi[j] = ELEM(yi[j] + bc[j], pc[j] if per_feature else shared)


def _dz_template(p, args):
    g, v, dz, r0, r1 = args
    per_feature = PER_FEATURE and p.size != 1
    shared = p[0]
    for i in range(r0, r1):
        gi = g[i]
        vi = v[i]
        di = dz[i]
        for j in range(vi.size):
            di[j] = gi[j] * GRAD(vi[j], p[j] if per_feature else shared)


def _dparam_template(p, args):
    # sums[c0 + j] = Σ_i g[i, c0 + j] ∂f/∂p(v[i, c0 + j]), float64, rows in order
    g, v, sums, c0, c1 = args
    per_feature = PER_FEATURE and p.size != 1
    pc = p[c0:c1] if per_feature else p
    shared = p[0]
    sc = sums[c0:c1]
    for i in range(v.shape[0]):
        gi = g[i, c0:c1]
        vi = v[i, c0:c1]
        for j in range(sc.size):
            sc[j] += gi[j] * DPARAM(vi[j], pc[j] if per_feature else shared)


@jit
def _bias_softmax(p, args):
    # the block holds whole rows (c0 = 0, c1 = n_out)
    z, y, b, store_z, r0, r1, c0, c1 = args
    for i in range(r0, r1):
        zi = z[i]
        for j in range(c0, c1):
            zi[j] += b[j]
    activations.softmax_rows(z[r0:r1], y[r0:r1])


@jit
def _dz_softmax(p, args):
    g, v, dz, r0, r1 = args
    activations.softmax_backward_rows(g[r0:r1], v[r0:r1], dz[r0:r1])


@jit
def _nothing(p, args):
    pass


def _switch_template(kind, p, args):
    # LEAVES[kind](p, args), unrolled into one flat test per activation
    i = 0
    for leaf in literal_unroll(LEAVES):
        if i == kind:
            leaf(p, args)
        i += 1


def _switches():
    """(epilogue, dz, dparam) switches: ``f(kind, p, args)`` runs that activation's loop."""
    leaves = {"epilogue": [], "dz": [], "dparam": []}
    for name, act in activations.ACTIVATIONS.items():
        def loop(template, part, **elements):
            return specialize(template, f"dense_{name}_{part}", jit,
                              PER_FEATURE=name in activations.PARAM_GRADS, **elements)
        if name == "softmax":
            leaves["epilogue"].append(_bias_softmax)
            leaves["dz"].append(_dz_softmax)
        else:
            leaves["epilogue"].append(loop(_bias_act_template, "epilogue", ELEM=act.elem))
            leaves["dz"].append(loop(_dz_template, "dz", GRAD=act.grad))
        leaves["dparam"].append(loop(_dparam_template, "dparam", DPARAM=activations.PARAM_GRADS[name])
                                if name in activations.PARAM_GRADS else _nothing)
    return tuple(specialize(_switch_template, f"dense_{part}_switch", jit, LEAVES=tuple(funcs))
                 for part, funcs in leaves.items())


_EPILOGUE, _DZ, _DPARAM = _switches()
# literal_unroll over a tuple of jitted functions types them as first-class functions, which numba
# flags as experimental at every compile; the calls are plain indirect calls (one per block).
warnings.filterwarnings("ignore", ".*First-class function type feature is experimental",
                        NumbaExperimentalFeatureWarning)


# ----------------------------------------------------------------------------------- drivers


_split = jit(split.dense_blocks)


@jit
def _block(t, span, n_rows, n_cols, by_rows):
    """(r0, r1, c0, c1) of block t of a split made by ``split.dense_blocks``."""
    if by_rows:
        return t * span, min(n_rows, (t + 1) * span), 0, n_cols
    return 0, n_rows, t * span, min(n_cols, (t + 1) * span)


@jit
def _backward_task(t, dx_blocks, dW_blocks, alternate):
    """Task t of the region that runs dx's and dW's blocks: (is a dx block, block index). numba
    hands each thread a contiguous run of tasks, so ``alternate`` (dx 0, dW 0, dx 1, dW 1, ...)
    gives every thread a block of both products, and otherwise (all of dx's blocks, then dW's)
    the first threads run dx and the others dW."""
    if not alternate:
        return t < dx_blocks, t if t < dx_blocks else t - dx_blocks
    both = min(dx_blocks, dW_blocks)
    if t < 2 * both:
        return t % 2 == 0, t // 2
    return dx_blocks > dW_blocks, t - both


@jit
def _forward_block(kind, x, W, b, p, z, y, store_z, reverse, r0, r1, c0, c1):
    _gemm_forward(x, W, z, r0, r1, c0, c1, reverse)
    _EPILOGUE(kind, p, (z, y, b, store_z, r0, r1, c0, c1))


@pjit
def dense_forward(kind, x, W, b, p, z, y, reverse):
    """z = x Wᵀ + b, y = f(z) for the activation ``kind`` (see the module docstring)."""
    batch, n_in = x.shape
    n_out = W.shape[0]
    store_z = z.ctypes.data != y.ctypes.data
    previous = blas_single_threaded()
    by_rows = kind == _SOFTMAX or batch >= n_out
    blocks, span = _split(batch, n_out, by_rows, batch * n_in * n_out, 1)
    if blocks == 1:
        _forward_block(kind, x, W, b, p, z, y, store_z, reverse, 0, batch, 0, n_out)
    else:
        for t in prange(blocks):
            r0, r1, c0, c1 = _block(t, span, batch, n_out, by_rows)
            _forward_block(kind, x, W, b, p, z, y, store_z, reverse, r0, r1, c0, c1)
    blas_restore_threads(previous)


@jit
def _dz_dx_block(kind, g, W, v, p, dz, dx, with_dx, r0, r1):
    _DZ(kind, p, (g, v, dz, r0, r1))
    if with_dx:
        _gemm_dx(dz, W, dx, r0, r1, 0, W.shape[1])


@jit
def _sums_block(kind, g, v, p, dz, sums, c0, c1):
    """db's and dp's sums over the columns c0:c1 (sums[1] starts at 0)."""
    _column_sums(dz, sums[0], c0, c1)
    _DPARAM(kind, p, (g, v, sums[1], c0, c1))


@jit
def _dW_block(kind, g, x, v, p, dz, dW, sums, beta, by_out, c0, c1, i0, i1):
    _gemm_dW(dz, x, dW, beta, c0, c1, i0, i1)
    if by_out:
        _sums_block(kind, g, v, p, dz, sums, c0, c1)


@pjit
def dense_backward(kind, g, x, W, v, p, dz, dx, dW, db, dp, need_dx, accumulate):
    """dz, dx, dW, db, dp of the dense layer for activation ``kind`` (see the module docstring)."""
    batch, n_in = x.shape
    n_out = W.shape[0]
    work = batch * n_in * n_out
    previous = blas_single_threaded()
    # Deep products (K = n_out for dx's GEMM and K = batch for dW's, both at least DEEP_K) run on
    # half the threads each, dx's blocks on the first half and dW's on the other: each GEMM then
    # packs its shared operand once per half instead of once per thread (2 threads, one product
    # each: 1024 -> 1024 at batch 1024 18.8-19.6 -> 17.6-18.6 ms, 784 -> 1024 at batch 256
    # 3.6-3.8 -> 3.3-3.5 ms). Shallower, dW's GEMM writes all of dW for little work: blocks of both.
    deep = need_dx and min(batch, n_out) >= DEEP_K
    # 1. dz by row blocks. dx by the same row blocks (each right after its dz, still hot) when
    #    the batch is at least n_in and the products are not deep; else by blocks of n_in, so that
    #    each thread packs its part of W instead of all of it (a block of rows of dx reads all of W).
    dx_by_rows = batch >= max(n_in, 2 * MIN_ROWS) and not deep
    blocks, span = _split(batch, n_out, True, work if dx_by_rows else batch * n_out * DZ_WORK, 1)
    if blocks == 1:
        _dz_dx_block(kind, g, W, v, p, dz, dx, need_dx and dx_by_rows, 0, batch)
    else:
        for t in prange(blocks):
            r0, r1, _, _ = _block(t, span, batch, n_out, True)
            _dz_dx_block(kind, g, W, v, p, dz, dx, need_dx and dx_by_rows, r0, r1)
    # 2. dx (unless done above) and dW with db and dp of dW's columns, in one parallel region,
    #    each product cut into one block per thread (per half of them when deep). A wide layer
    #    gives each thread a block of both (their costs differ: at batch 64, dW's GEMM writes all
    #    of dW); a narrow layer (few outputs) splits dW along n_in and sums its few columns
    #    afterwards, and runs dx's blocks on the first threads, dW's on the others (measured:
    #    500 -> 10 at batch 64, 22 -> 16.5 µs; alternating, 20.4 µs).
    sums = np.empty((2, n_out))  # np.zeros would be a parallel region of its own in a pjit kernel
    for j in range(n_out):
        sums[0, j] = 0.0
        sums[1, j] = 0.0
    beta = 1.0 if accumulate else 0.0
    by_out = n_out >= 2 * COL_ALIGN
    with_dx = need_dx and not dx_by_rows
    products = 2 if deep else 1
    dx_blocks, dx_span = _split(batch, n_in, False, work, products) if with_dx else (0, n_in)
    dW_blocks, dW_span = _split(n_out, n_in, by_out, work, products)
    if work <= SERIAL_WORK or dx_blocks + dW_blocks == 1:
        if with_dx:
            _gemm_dx(dz, W, dx, 0, batch, 0, n_in)
        _dW_block(kind, g, x, v, p, dz, dW, sums, beta, by_out, 0, n_out, 0, n_in)
    else:
        for t in prange(dx_blocks + dW_blocks):
            is_dx, j = _backward_task(t, dx_blocks, dW_blocks, by_out and not deep)
            if is_dx:
                _, _, i0, i1 = _block(j, dx_span, batch, n_in, False)
                _gemm_dx(dz, W, dx, 0, batch, i0, i1)
            else:
                c0, c1, i0, i1 = _block(j, dW_span, n_out, n_in, by_out)
                _dW_block(kind, g, x, v, p, dz, dW, sums, beta, by_out, c0, c1, i0, i1)
    if not by_out:  # the few columns' sums after the blocks along n_in
        _sums_block(kind, g, v, p, dz, sums, 0, n_out)
    blas_restore_threads(previous)
    _store_sums(sums, db, dp, accumulate, _LEARNABLE[kind])


@jit
def _store_sums(sums, db, dp, accumulate, learnable):
    """db (+)= sums[0]; for a learnable parameter dp (+)= sums[1], or its ordered total when the
    parameter is shared."""
    for j in range(db.size):
        db[j] = sums[0, j] + db[j] if accumulate else sums[0, j]
    if not learnable:
        return
    if dp.size == 1 and db.size != 1:
        total = 0.0
        for j in range(db.size):
            total += sums[1, j]
        dp[0] = total + dp[0] if accumulate else total
    else:
        for j in range(dp.size):
            dp[j] = sums[1, j] + dp[j] if accumulate else sums[1, j]

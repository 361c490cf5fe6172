"""Dense layer kernels on the GPU: y = f(x Wᵀ + b) and its backward, as tiled shared-memory GEMMs.

The arguments and the contract are the CPU backends' (``numba/dense.py``): x (batch, n_in),
W (n_out, n_in) or the transposed view of a tied encoder's, b (n_out,), p one value or one per
output feature, z and y (batch, n_out), ``z is y`` when the pre-activation is not kept.

Forward: one GEMM whose epilogue adds b, stores z and y = f(z) (softmax: a row pass after it).
Backward:
    1. the derivative pass, one thread per output feature j walking the rows in order:
       dz = g ⊙ f'(v), db_j = Σ_rows dz, and for PReLU / Swish Σ_rows g ⊙ ∂f/∂p, both summed in
       float64 (softmax: dz = y ⊙ (g − Σ_j g ⊙ y) by rows first, then the column sums);
    2. dW = dzᵀ x (added to dW with ``accumulate``) and dx = dz W, the same GEMM kernel reading
       its operands transposed.
Each GEMM block computes a TILE × TILE tile of the product, staging TILE-wide slabs of both
operands in shared memory (loaded along their contiguous axis). ``reverse`` is the CPU kernels'
cache hint; it changes nothing here.
"""
import numpy as np

from fastdl._kernels.cuda import activations
from fastdl._kernels.cuda._device import SIMULATOR, THREADS, blocks, cuda
from fastdl._kernels.registry import IDS, KERNELS

#: the edge of a GEMM tile (the simulator runs each of a block's TILE² threads as a Python thread)
TILE = 16 if not SIMULATOR else 4
_SOFTMAX, _IDENTITY = IDS["softmax"], IDS["identity"]
_LEARNABLE = tuple(kernel.learnable for kernel in KERNELS.values())
_forward_value = activations.forward_value
_derivative, _param_derivative = activations.derivative, activations.param_derivative


def _make_gemm(dtype):
    zero = dtype(0)

    @cuda.jit(device=True)
    def stage(s, m, trans, i0, j0, rows, cols):
        """s = the TILE × TILE tile of op(m) at (i0, j0) (zeros outside its rows × cols), op(m) = mᵀ
        with ``trans``; each thread loads one element, neighbouring threads along m's rows."""
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        if trans:  # op(m)[i, j] = m[j, i]
            i, j = i0 + tx, j0 + ty
            s[tx, ty] = m[j, i] if i < rows and j < cols else zero
        else:
            i, j = i0 + ty, j0 + tx
            s[ty, tx] = m[i, j] if i < rows and j < cols else zero

    @cuda.jit
    def gemm(a, b, c, trans_a, trans_b, accumulate, has_bias, bias, p, kind, z):
        """c = f(op(a) op(b) [+ c] [+ bias]) with op(m) = mᵀ where its flag says; z = the
        argument of f (z may be c)."""
        sa = cuda.shared.array((TILE, TILE), dtype)  # sa[row, t]
        sb = cuda.shared.array((TILE, TILE), dtype)  # sb[t, column]
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        r0, q0 = cuda.blockIdx.y * TILE, cuda.blockIdx.x * TILE
        rows, cols = c.shape
        depth = a.shape[0] if trans_a else a.shape[1]
        acc = zero
        for t0 in range(0, depth, TILE):
            stage(sa, a, trans_a, r0, t0, rows, depth)
            stage(sb, b, trans_b, t0, q0, depth, cols)
            cuda.syncthreads()
            for u in range(TILE):
                acc += sa[ty, u] * sb[u, tx]
            cuda.syncthreads()
        r, q = r0 + ty, q0 + tx
        if r < rows and q < cols:
            if accumulate:
                acc += c[r, q]
            if has_bias:
                acc += bias[q]
            z[r, q] = acc
            c[r, q] = _forward_value(kind, acc, p[q] if p.size > 1 else p[0])

    return gemm


_GEMMS = {np.dtype(t): _make_gemm(t) for t in (np.float32, np.float64)}


def _gemm(a, b, c, trans_a, trans_b, accumulate, bias=None, p=None, kind=_IDENTITY, z=None):
    rows, cols = c.shape
    if rows and cols:
        grid = ((cols + TILE - 1) // TILE, (rows + TILE - 1) // TILE)
        _GEMMS[c.dtype][grid, (TILE, TILE)](
            a, b, c, trans_a, trans_b, accumulate, bias is not None,
            c[0] if bias is None else bias, c[0] if p is None else p, kind, c if z is None else z)


@cuda.jit
def _columns(kind, learnable, g, v, p, dz, db, dp_columns, accumulate):
    """dz = g ⊙ f'(v), db (+)= Σ_rows dz, dp_columns = Σ_rows g ⊙ ∂f/∂p, per column, in float64."""
    rows, cols = g.shape
    for j in range(cuda.grid(1), cols, cuda.gridsize(1)):
        pj = p[j] if p.size > 1 else p[0]
        sum_dz = 0.0
        sum_dp = 0.0
        for i in range(rows):
            if learnable:
                sum_dp += g[i, j] * _param_derivative(kind, v[i, j], pj)
            d = g[i, j] * _derivative(kind, v[i, j], pj)
            dz[i, j] = d
            sum_dz += d
        db[j] = db[j] + sum_dz if accumulate else sum_dz
        dp_columns[j] = sum_dp


@cuda.jit
def _param_grad(dp_columns, dp, accumulate):
    """dp (+)= the column sums: one per feature, or their total (in order) when p is shared."""
    for j in range(cuda.grid(1), dp.size, cuda.gridsize(1)):
        if dp.size == dp_columns.size:
            s = dp_columns[j]
        else:
            s = 0.0
            for c in range(dp_columns.size):
                s += dp_columns[c]
        dp[j] = dp[j] + s if accumulate else s


_scratch = {}  # n_out -> float64 device buffer: the column sums, allocated once per width


def _column_scratch(n):
    if n not in _scratch:
        _scratch[n] = cuda.device_array(n, np.float64)
    return _scratch[n]


def dense_forward(kind, x, W, b, p, z, y, reverse):
    _gemm(x, W, y, False, True, False, b, p, _IDENTITY if kind == _SOFTMAX else kind, z)
    if kind == _SOFTMAX:
        activations.softmax_forward(z, y)


def dense_backward(kind, g, x, W, v, p, dz, dx, dW, db, dp, need_dx, accumulate):
    cols = g.shape[1]
    if kind == _SOFTMAX:  # dz by rows, then the column pass only sums it
        activations.softmax_backward(g, v, dz)
        kind, g, v = _IDENTITY, dz, dz
    learnable = _LEARNABLE[kind]
    dp_columns = _column_scratch(cols)
    if cols:
        _columns[blocks(cols), THREADS](kind, learnable, g, v, p, dz, db, dp_columns, accumulate)
    if learnable:
        _param_grad[blocks(dp.size), THREADS](dp_columns, dp, accumulate)
    _gemm(dz, x, dW, True, False, accumulate)  # dW = dzᵀ x
    if need_dx:
        _gemm(dz, W, dx, False, False, False)  # dx = dz W

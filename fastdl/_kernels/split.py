"""How every CPU backend cuts a kernel's work into tasks: from the shapes alone, never from the
thread count, so that results are the same bits whatever ``set_num_threads`` says.

A task is the unit a thread takes whole; the threads only decide who runs which task.

- Element-wise kernels (activations, losses, noise, optimizer steps, checks): above
  ``SERIAL_MAX`` elements, tasks of ``CHUNK`` elements; reductions add the tasks' partial sums in
  task order. Up to ``SERIAL_MAX`` the calling thread runs it all (a parallel launch costs a few
  µs, more than such a call).
- Dense layers: the output is cut into the blocks of :func:`dense_blocks`, each one
  single-threaded BLAS call followed by the fused epilogue. A BLAS kernel may round a sub-block of
  a product differently from the whole product (OpenBLAS's Haswell kernel does, at its edge
  tiles), so the blocks, and with them every GEMM call's shape, must not depend on the threads.
  Their number is capped by :data:`MAX_BLOCKS`, this machine's core count: enough blocks for
  every core, and no more (a block costs a GEMM its packing again: up to 4% per extra block
  here, more for small products).
"""
import os

CHUNK = 1 << 14  # elements per task of an element-wise kernel
SERIAL_MAX = 1 << 15  # elements up to which an element-wise kernel runs on the calling thread

# multiply-adds up to which a dense product runs as one block on the calling thread (a launch
# costs a few µs, about what one core needs for this much work); every block of a larger one
# has at least this much work
SERIAL_WORK = 1 << 17
DZ_WORK = 16  # multiply-add equivalents per element of dz (a transcendental derivative)
COL_ALIGN = 16  # feature splits fall on multiples of 16 (a 64-byte line of float32)
MIN_ROWS = 16  # batch rows per block at least, when splitting along the batch
SMALL_BATCH = 16  # up to this many rows, the forward product is ours, not a (packing) GEMM
DEEP_K = 256  # backward GEMMs at least this deep run on half the blocks each (dense_backward)

#: the most blocks a dense product is cut into: one per core of this machine (a property of the
#: machine, like its BLAS kernel; not the thread count, which a user may change at any time)
MAX_BLOCKS = max(1, os.cpu_count() or 1)


def dense_blocks(n_rows, n_cols, by_rows, work, products):
    """Cut an (n_rows, n_cols) output of ``work`` multiply-adds into blocks along its rows
    (``by_rows``) or its columns: returns (number of blocks, rows or columns per block).

    One block when ``work`` is at most SERIAL_WORK; else up to MAX_BLOCKS / ``products`` blocks
    (``products`` GEMMs that share the cores: 2 gives each half), each at least MIN_ROWS rows or
    COL_ALIGN columns and SERIAL_WORK multiply-adds. Column blocks start on multiples of
    COL_ALIGN; a narrow output's (fewer than COL_ALIGN columns) row blocks on multiples of
    MIN_ROWS, like its GEMM chunks. Plain integer code: numba compiles it, Cython calls it.
    """
    row_align = MIN_ROWS if n_cols < COL_ALIGN else 1
    n, align, least = (n_rows, row_align, MIN_ROWS) if by_rows else (n_cols, COL_ALIGN, COL_ALIGN)
    parts = 1
    if work > SERIAL_WORK:
        parts = max(1, min(MAX_BLOCKS // products, n // least, work // SERIAL_WORK))
    span = (n + parts - 1) // parts
    span = max(align, (span + align - 1) // align * align)
    return max(1, (n + span - 1) // span), span

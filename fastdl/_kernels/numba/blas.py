"""Direct BLAS calls from numba kernels: ``gemm``/``gemv`` with transposes, alpha/beta, strides.

numba's ``np.dot`` gives no control over transposes, beta (accumulate into an existing buffer) or
sub-blocks of a larger matrix, so the dense kernels call scipy's BLAS (``scipy.linalg.cython_blas``,
the LP64 interface of the OpenBLAS bundled with scipy) themselves. The function addresses are
registered with LLVM under fixed symbol names and called by name, which keeps every kernel that
uses them cacheable (a baked-in address would not be).

Threads: the dense kernels split their work over numba's threads and call BLAS single-threaded
inside each task (``blas_single_threaded`` / ``blas_restore_threads``). A multithreaded BLAS pool
next to numba's OpenMP pool oversubscribes 2 cores badly: OpenBLAS's idle workers spin for a
while after each call, and a numba parallel kernel launched right after a multithreaded GEMM
measured ~7 ms slower here (0.5 ms GEMM + 7 ms), whereas one BLAS thread per numba task costs
nothing at launch and leaves the pool idle.
"""
import llvmlite.binding as llvm
from llvmlite import ir
from numba import cfunc, types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

from fastdl._kernels import openblas
from fastdl._kernels.numba._jit import jit

NO_TRANS = 78  # ord('N')
TRANS = 84  # ord('T')

for _name in ("sgemm", "dgemm", "sgemv", "dgemv"):
    llvm.add_symbol(f"fastdl_{_name}",
                    get_cython_function_address("scipy.linalg.cython_blas", _name))


def _no_thread_control():
    """Stand-ins for BLAS libraries we cannot ask: one thread reported, settings ignored."""
    get_fn = cfunc(types.int32())(lambda: 1)
    set_fn = cfunc(types.void(types.int32))(lambda n: None)
    _no_thread_control.keep_alive = (get_fn, set_fn)
    return get_fn.address, set_fn.address


_get_threads_address, _set_threads_address = openblas.THREAD_FUNCTIONS or _no_thread_control()
llvm.add_symbol("fastdl_blas_get_num_threads", _get_threads_address)
llvm.add_symbol("fastdl_blas_set_num_threads", _set_threads_address)

_blas_get_num_threads = types.ExternalFunction("fastdl_blas_get_num_threads", types.int32())
_blas_set_num_threads = types.ExternalFunction("fastdl_blas_set_num_threads",
                                               types.void(types.int32))


@jit
def blas_single_threaded():
    """Make scipy's BLAS single-threaded; returns the previous thread count for the restore."""
    previous = _blas_get_num_threads()
    if previous != 1:
        _blas_set_num_threads(1)
    return previous


@jit
def blas_restore_threads(previous):
    if previous != 1:
        _blas_set_num_threads(previous)


# Argument kinds of the Fortran routines: every argument goes by reference; scalars are copied
# to stack slots of the named type, arrays pass their data pointer. "real" is the routine's dtype.
_CHAR, _INT, _REAL, _ARRAY = types.int8, types.int32, "real", None
_SIGNATURES = {
    "gemm": (_CHAR, _CHAR, _INT, _INT, _INT, _REAL, _ARRAY, _INT, _ARRAY, _INT, _REAL, _ARRAY,
             _INT),
    "gemv": (_CHAR, _INT, _INT, _REAL, _ARRAY, _INT, _ARRAY, _INT, _REAL, _ARRAY, _INT),
}


def _fortran_codegen(routine, dtype):
    kinds = [dtype if kind == _REAL else kind for kind in _SIGNATURES[routine]]
    symbol = f"fastdl_{'s' if dtype == types.float32 else 'd'}{routine}"

    def codegen(context, builder, signature, args):
        voidptr = ir.IntType(8).as_pointer()
        pointers = []
        for value, from_type, kind in zip(args, signature.args, kinds):
            if kind is _ARRAY:
                data = context.make_array(from_type)(context, builder, value).data
                pointers.append(builder.bitcast(data, voidptr))
            else:
                scalar = context.cast(builder, value, from_type, kind)
                slot = cgutils.alloca_once_value(builder, scalar)
                pointers.append(builder.bitcast(slot, voidptr))
        fnty = ir.FunctionType(ir.VoidType(), [voidptr] * len(pointers))
        builder.call(cgutils.get_or_insert_function(builder.module, fnty, symbol), pointers)
        return context.get_dummy_value()

    return codegen


def _typed(routine, args):
    """(signature, codegen) when all array arguments share a float dtype, else None (no match)."""
    arrays = [a for a, kind in zip(args, _SIGNATURES[routine]) if kind is _ARRAY]
    dtype = arrays[-1].dtype
    if dtype not in (types.float32, types.float64) or any(a.dtype != dtype for a in arrays):
        return None
    return types.void(*args), _fortran_codegen(routine, dtype)


@intrinsic
def gemm(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Fortran ``?gemm``: C = alpha op(A) op(B) + beta C, all column-major, op = 'N' or 'T'.

    ``a``, ``b``, ``c`` are arrays (any layout, views allowed) whose first element is the matrix's
    first element; ``transa``/``transb`` are ``NO_TRANS``/``TRANS``; the arrays' dtype picks sgemm
    or dgemm. A row-major (r, s) array is the column-major (s, r) matrix of its transpose with
    leading dimension s: that is how callers express row-major GEMMs.
    """
    return _typed("gemm", (transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))


@intrinsic
def gemv(typingctx, trans, m, n, alpha, a, lda, x, incx, beta, y, incy):
    """Fortran ``?gemv``: y = alpha op(A) x + beta y, A column-major (m, n), as ``gemm``."""
    return _typed("gemv", (trans, m, n, alpha, a, lda, x, incx, beta, y, incy))


# frozen into compiled (and cached) kernels: numba keys its cache by CPU, and OpenBLAS picks its
# kernels by CPU too
small_kernel_columns = jit(openblas.small_kernel_columns)

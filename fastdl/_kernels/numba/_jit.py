"""The one place that decides how kernels are compiled: fastmath flags and the on-disk cache.

Every kernel module decorates with ``jit`` (serial) or ``pjit`` (parallel) from here, so the
flags cannot drift between modules.
"""
import contextlib
import hashlib
import os
import stat
import tempfile
import types
import warnings
from functools import partial

import numba

from fastdl._kernels import split

# fastmath=True implies 'nnan' and 'ninf', under which np.isnan folds to False and NaN stops
# propagating. These flags keep IEEE NaN/Inf semantics but still allow FMA contraction and
# vectorised reductions. Code whose accuracy depends on evaluation order (range reduction,
# compensated sums) must not rely on them: see vmath.py.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def _probe():  # compiled nowhere: only used to ask numba whether it can cache beside this file
    return 0


def _make_private_dir(path):
    """Create ``path`` (mode 0700), or accept an existing one only if this user alone can write
    it: numba's cache index is a pickle, so a directory planted or shared by another user in the
    temp dir would let them run code in this process."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise OSError(f"{path} is not a private directory")


@contextlib.contextmanager
def _cache_dir(path):
    """numba reads ``config.CACHE_DIR`` when a function is decorated (its cache locator keeps the
    path), so fastdl's fallback directory is set around the decoration of fastdl's own kernels
    only: a user's ``cache=True`` functions keep numba's choice. ``None``: numba's default."""
    if path is None:
        yield
        return
    previous = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = path
    try:
        yield
    finally:
        numba.config.CACHE_DIR = previous


def _choose_cache():
    """(whether numba's cache works, the directory fastdl's kernels cache in: None for numba's
    choice), after a fallback if needed.

    numba looks for a writable ``__pycache__`` beside the source, then ``~/.cache/numba`` (or
    ``NUMBA_CACHE_DIR``); when neither is writable ``cache=True`` raises at decoration time, i.e.
    at ``import fastdl`` on a read-only install with an unwritable HOME. We then use a private
    directory under the system temp dir, and failing that compile without a cache.
    """
    if os.environ.get("FASTDL_NO_CACHE"):
        return False, None
    try:
        numba.njit(cache=True)(_probe)
        return True, None
    except RuntimeError:
        pass
    try:
        fallback = os.path.join(tempfile.gettempdir(), f"fastdl-numba-cache-{os.getuid()}")
        _make_private_dir(fallback)
        with _cache_dir(fallback):
            numba.njit(cache=True)(_probe)
    except (OSError, RuntimeError):
        warnings.warn(
            "fastdl: no writable directory for numba's cache; kernels will be compiled on "
            "every run (set NUMBA_CACHE_DIR to a writable directory to avoid this)",
            RuntimeWarning,
            stacklevel=2,
        )
        return False, None
    warnings.warn(
        f"fastdl: the package directory and numba's user cache are not writable; "
        f"caching compiled kernels in {fallback}",
        RuntimeWarning,
        stacklevel=2,
    )
    return True, fallback


CACHE, CACHE_DIR = _choose_cache()


def _kernel_sources_digest():
    """A digest of everything a kernel may read when it compiles: the .py files beside this one and
    those of the shared kernel package above (coefficients, work split, activation table), and the
    machine's core count (``split.MAX_BLOCKS``, frozen into the dense kernels)."""
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for folder in (here, os.path.dirname(here)):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as f:
                    digest.update(name.encode() + b"\0" + f.read())
    digest.update(f"MAX_BLOCKS={split.MAX_BLOCKS}".encode())
    return digest.hexdigest()


_KERNEL_SOURCES = _kernel_sources_digest()


def jit(func=None, **options):
    """Compile ``func`` with the project's flags (``options`` add to or override them), its
    on-disk cache keyed to every kernel module; ``@jit`` or ``@jit(**options)``, like numba.njit.

    numba checks a cached kernel against its own source file only (numba issue #1833), but kernels
    inline functions from other modules: after an edit to vmath.py alone, dense.py's kernels would
    load from the cache with the old vmath inlined. So the stamp numba saves with a cache index
    and compares on load becomes (its own stamp, a digest of all kernel modules). That index is
    private to numba: where a numba release changes it, the kernel keeps numba's own stamp (no
    error; test_kernel_cache checks that the stamp is in place with the numba installed).

    No process-wide numba setting is changed: CPU features stay numba's (or the user's
    NUMBA_CPU_FEATURES), since numba's CPU code generator is one for the whole process.
    """
    if func is None:
        return partial(jit, **options)
    options = {"cache": CACHE, "fastmath": FASTMATH, "error_model": "numpy", "nogil": True,
               **options}
    with _cache_dir(CACHE_DIR if options["cache"] else None):
        dispatcher = numba.njit(**options)(func)
    index = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)  # None uncached
    if hasattr(index, "_source_stamp"):
        index._source_stamp = (index._source_stamp, _KERNEL_SOURCES)
    return dispatcher


#: kernel containing ``numba.prange`` loops (OpenMP threading layer)
pjit = partial(jit, parallel=True)
#: helper called inside other kernels' loops, per element or per row: always inlined. LLVM's cost
#: model would leave the bigger ones (GELU with erfc) as calls; a call keeps a loop scalar (10 ns
#: instead of 1 ns an element) and costs 30-50 ns a row in argument passing and reference counts.
inline_jit = partial(jit, forceinline=True)


def specialize(template, name, decorator, **bindings):
    """Compile ``template`` with its placeholder globals bound to ``bindings`` under its own name.

    A fresh function object shares the template's code but gets its own globals and qualname, so
    numba caches each specialisation in its own file and finds it again in the next process. (A
    closure over jitted functions would not: numba keys closures by their captured dispatchers'
    per-process ids, so every run recompiles and adds a cache file.)
    """
    namespace = dict(template.__globals__)
    namespace.update(bindings)
    func = types.FunctionType(template.__code__, namespace, name)
    func.__qualname__ = name
    func.__doc__ = template.__doc__
    return decorator(func)

"""The kernels' on-disk cache (``_jit``), seen from fresh processes that load what others saved.

- numba checks a cached kernel against its own source file only, but kernels inline functions
  from other modules (the dense layer inlines the activations, which inline vmath): after an edit
  to vmath.py alone, a stale dense kernel would still load from the cache. ``_jit`` keys every
  kernel's cache to all kernel modules.
- A cached kernel that reads numba's thread count needs numba's threading layer started before it
  loads; ``_jit`` starts it at import.

(The fallback when no cache directory is writable is tested in test_import_readonly.py.)
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import fastdl

PACKAGE = os.path.dirname(fastdl.__file__)


def _run(script, directory, own_cache=True, **env):
    """Run ``script`` in a fresh interpreter started in ``directory`` (``-c`` puts the working
    directory first on sys.path), with the numba cache in directory/cache (``own_cache``) or where
    this process has it; returns its last line."""
    env = {**{k: v for k, v in os.environ.items() if k != "FASTDL_NO_CACHE"}, **env}
    if own_cache:
        env["NUMBA_CACHE_DIR"] = str(directory / "cache")
    run = subprocess.run([sys.executable, "-c", script], env=env, cwd=directory,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.splitlines()[-1]


HITS_AND_MISSES = textwrap.dedent("""
    import json
    import numpy as np
    from fastdl._kernels.numba.checks import all_finite
    all_finite(np.ones(3))
    stats = all_finite.stats
    print(json.dumps([sum(stats.cache_hits.values()), sum(stats.cache_misses.values())]))
""")


def test_an_edit_to_any_kernel_module_recompiles_every_kernel(tmp_path):
    # on a copy of the package, so that it can be edited; the fresh processes start beside it
    shutil.copytree(PACKAGE, tmp_path / "fastdl", ignore=shutil.ignore_patterns("__pycache__"))

    def hits_and_misses():
        return json.loads(_run(HITS_AND_MISSES, tmp_path))

    assert hits_and_misses() == [0, 1]  # compiled
    assert hits_and_misses() == [1, 0]  # loaded from the cache
    with open(tmp_path / "fastdl" / "_kernels" / "numba" / "vmath.py", "a") as f:
        f.write("\n# an edit in another kernel module\n")
    assert hits_and_misses() == [0, 1]  # compiled again: checks.py itself did not change
    assert hits_and_misses() == [1, 0]


def test_cached_kernel_loads_in_a_fresh_process(tmp_path):
    """A kernel that reads numba's thread count, loaded from the cache in a process where no
    parallel region has run yet, used to crash it (SIGSEGV: numba hands the symbol
    get_num_threads to LLVM only when its threading layer starts, which _jit now does)."""
    script = "from fastdl._kernels.numba import dense; print(dense._split(100, 100, True, 10**9, 1))"
    for _ in range(2):  # the first run compiles and caches _split, the second loads it
        assert _run(script, tmp_path).startswith("(")


COMPILES_AFTER_WARMUP = textwrap.dedent("""
    import gc, json
    import numpy as np
    from numba.core import event
    from numba.core.dispatcher import Dispatcher
    import fastdl

    compiles = []
    class Count(event.Listener):
        def on_start(self, e):
            compiles.append(e.data["dispatcher"].py_func.__qualname__)
        def on_end(self, e):
            pass
    event.register("numba:compile", Count())

    def signatures():
        return {(d.py_func.__qualname__, sig) for d in gc.get_objects()
                if isinstance(d, Dispatcher) for sig in d.overloads}

    fastdl.warmup()
    warm = signatures()
    rng = np.random.default_rng(1)
    X = rng.random((300, 64), dtype=np.float32)
    y = rng.integers(0, 10, 300)
    for tied in (True, False):
        net = fastdl.StackedAutoencoder([64, 48, 24], 10, activation="relu", tied=tied,
                                        corruption=("mask", 0.2), dropout=0.1, seed=0)
        net.fit(X, y, pretrain_epochs=2, epochs=2, batch_size=32, validation_fraction=0.1)
        net.score(X, y)
    ae = fastdl.Autoencoder(64, 16, corruption=("gaussian", 0.1), loss="bce")
    ae.fit(X, epochs=1, batch_size=64)
    fastdl.MLP([64, 32, 10], activation="tanh", dtype=np.float64).fit(X, y, epochs=1)
    print(json.dumps([len(compiles), sorted(str(s) for s in signatures() - warm)]))
""")


def test_after_warmup_nothing_compiles_again(tmp_path):
    """After ``fastdl.warmup()`` in one process, a fresh process compiles nothing in its own
    warmup (all of it loads from the cache), and its fits, like the demo's, need no signature the
    warmup did not already load (numba backend). The cache is the test run's own, so what other
    tests compiled is loaded, not compiled again."""
    _run("import fastdl; print(fastdl.warmup())", tmp_path, own_cache=False,
         FASTDL_BACKEND="numba")
    compiled, new_in_fits = json.loads(_run(COMPILES_AFTER_WARMUP, tmp_path, own_cache=False,
                                            FASTDL_BACKEND="numba"))
    assert (compiled, new_in_fits) == (0, [])


USER_NUMBA_UNTOUCHED = textwrap.dedent("""
    import json
    import llvmlite.binding as llvm
    import numba
    import numpy as np

    host = llvm.get_host_cpu_features()
    host["avx512f"] = True  # as if on an AVX-512 CPU, where fastdl used to retune numba
    llvm.get_host_cpu_features = lambda: host
    names = ("CPU_FEATURES", "CPU_NAME", "CACHE_DIR", "FASTMATH", "ERROR_MODEL")
    before = {name: getattr(numba.config, name, None) for name in names}

    @numba.njit
    def user_is_nan(x):
        return np.isnan(x)

    import fastdl
    from fastdl._kernels.numba import _jit
    from fastdl._kernels.numba.checks import all_finite
    fastdl_sees_nan = not all_finite(np.array([1.0, np.nan]))
    stamp = all_finite._cache._cache_file._source_stamp
    print(json.dumps({
        "config_unchanged": before == {name: getattr(numba.config, name, None) for name in names},
        "fastdl_sees_nan": fastdl_sees_nan,
        "user_sees_nan": bool(user_is_nan(float("nan"))),
        "user_fastmath": "fastmath" in user_is_nan.targetoptions,
        "stamped": isinstance(stamp, tuple) and stamp[1] == _jit._KERNEL_SOURCES,
    }))
""")


def test_fastdl_leaves_the_users_numba_alone(tmp_path):
    """Importing fastdl and running a numba kernel changes no process-wide numba setting, a user's
    own njit function keeps its own options, and the cache stamp (a private numba attribute) is
    in place with the numba installed here."""
    report = json.loads(_run(USER_NUMBA_UNTOUCHED, tmp_path))
    assert report == {"config_unchanged": True, "fastdl_sees_nan": True, "user_sees_nan": True,
                      "user_fastmath": False, "stamped": True}

"""numba's on-disk cache stays fresh when any kernel module changes, not only the kernel's own.

numba checks a cached kernel against its own source file only, but kernels inline functions from
other modules (the dense layer inlines the activations, which inline vmath): after an edit to
vmath.py alone, a stale dense kernel would still load from the cache. The driver runs a kernel of
checks.py in a fresh process on a copy of the package, before and after an edit to vmath.py.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import fastdl

PACKAGE = os.path.dirname(fastdl.__file__)

DRIVER = textwrap.dedent("""
    import json
    import numpy as np
    from fastdl._kernels.checks import all_finite
    all_finite(np.ones(3))
    stats = all_finite.stats
    print(json.dumps([sum(stats.cache_hits.values()), sum(stats.cache_misses.values())]))
""")


def test_an_edit_to_any_kernel_module_recompiles_every_kernel(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "fastdl", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def hits_and_misses():
        result = subprocess.run([sys.executable, "-c", DRIVER], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.splitlines()[-1])

    assert hits_and_misses() == [0, 1]  # compiled
    assert hits_and_misses() == [1, 0]  # loaded from the cache
    with open(tmp_path / "fastdl" / "_kernels" / "vmath.py", "a") as f:
        f.write("\n# an edit in another kernel module\n")
    assert hits_and_misses() == [0, 1]  # compiled again: checks.py itself did not change
    assert hits_and_misses() == [1, 0]

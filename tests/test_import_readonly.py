"""``import fastdl`` on a read-only install with an unwritable HOME falls back, at most warning.

How writes are denied: a copy of the package is made read-only (chmod a-w) and HOME points to a
read-only directory. Permission bits do not bind root (CAP_DAC_OVERRIDE), and these tests run as
root here, so the child process is started through ``setpriv`` with every capability dropped:
it stays uid 0 (so it can still read the interpreter under /root) but obeys permission bits.
Each test first checks, in the child, that the package directory really is unwritable, and
skips otherwise rather than pass vacuously.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import fastdl

PACKAGE = os.path.dirname(fastdl.__file__)

DRIVER = textwrap.dedent("""
    import json, os, sys, tempfile, warnings
    if os.environ.get("NO_TEMP_DIR"):
        def no_temp_dir():
            raise FileNotFoundError("no usable temporary directory")
        tempfile.gettempdir = no_temp_dir
    package_dir = os.path.join(sys.path[0], "fastdl")
    try:
        open(os.path.join(package_dir, "probe"), "w").close()
        print(json.dumps({"writable": True}))
        sys.exit(0)
    except OSError:
        pass
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import numba
        import fastdl
        from fastdl._kernels.numba import _jit, noise
        from fastdl._kernels.random import noise_key
        from fastdl._kernels.reference import noise as reference
    key = noise_key(7, 1)  # small kernels: compiling, not running, is what is tested
    bits = [noise.element_bits(key, i) for i in range(3)]
    print(json.dumps({
        "writable": False,
        "fastdl_file": fastdl.__file__,
        "cache": _jit.CACHE,
        "cache_dir": _jit.CACHE_DIR,
        "numba_cache_dir": numba.config.CACHE_DIR,  # the user's: fastdl must leave it alone
        "warnings": [[w.category.__name__, str(w.message)] for w in caught
                     if str(w.message).startswith("fastdl")],
        "correct": bits == list(reference.element_bits(key, (3,))),
    }))
""")


@pytest.fixture
def readonly_install(tmp_path):
    """A read-only copy of the package, a read-only HOME and a private writable TMPDIR."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot deny writes")
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "fastdl",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    home = tmp_path / "home"
    home.mkdir()
    temp = tmp_path / "tmp"
    temp.mkdir()
    for path in (site, home):
        for root, dirs, files in os.walk(path):
            for name in files:
                os.chmod(os.path.join(root, name), 0o444)
            os.chmod(root, 0o555)
    yield site, home, temp
    for root, dirs, files in os.walk(tmp_path):  # let pytest clean up
        os.chmod(root, 0o755)


def run_child(site, home, temp, **extra_env):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "FASTDL_", "PYTHON"))}
    env.update(HOME=str(home), TMPDIR=str(temp), PYTHONDONTWRITEBYTECODE="1", **extra_env)
    prefix = []
    if os.geteuid() == 0:
        prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"]
    command = prefix + [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(site)!r})\n" + DRIVER]
    done = subprocess.run(command, env=env, cwd=str(home), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["writable"]:
        pytest.skip("the read-only copy is writable here (permission bits not enforced)")
    assert report["fastdl_file"].startswith(str(site))
    assert report["correct"]
    return report


def test_falls_back_to_a_private_temp_cache(readonly_install):
    site, home, temp = readonly_install
    report = run_child(site, home, temp)
    fallback = temp / f"fastdl-numba-cache-{os.getuid()}"
    assert report["cache"] is True
    assert report["cache_dir"] == str(fallback) and report["numba_cache_dir"] == ""
    assert report["warnings"] == [["RuntimeWarning", report["warnings"][0][1]]]
    assert str(fallback) in report["warnings"][0][1]
    assert any(name.endswith(".nbi") for _, _, files in os.walk(fallback) for name in files)
    assert (os.stat(fallback).st_mode & 0o777) == 0o700


def test_runs_uncached_when_the_fallback_is_unwritable(readonly_install):
    site, home, temp = readonly_install
    (temp / f"fastdl-numba-cache-{os.getuid()}").mkdir(mode=0o555)
    report = run_child(site, home, temp)
    assert report["cache"] is False and report["cache_dir"] is None
    assert len(report["warnings"]) == 1 and report["warnings"][0][0] == "RuntimeWarning"
    assert "compiled on every run" in report["warnings"][0][1]


def test_runs_uncached_without_any_temp_dir(readonly_install):
    site, home, temp = readonly_install
    report = run_child(site, home, temp, NO_TEMP_DIR="1")
    assert report["cache"] is False
    assert [w[0] for w in report["warnings"]] == ["RuntimeWarning"]


def test_never_trusts_a_fallback_directory_that_others_can_write(readonly_install):
    """A cache index is a pickle: a planted or shared directory would run someone else's code."""
    site, home, temp = readonly_install
    planted = temp / f"fastdl-numba-cache-{os.getuid()}"
    planted.mkdir()
    os.chmod(planted, 0o777)
    report = run_child(site, home, temp)
    assert report["cache"] is False and report["cache_dir"] is None
    assert not any(files for _, _, files in os.walk(planted))

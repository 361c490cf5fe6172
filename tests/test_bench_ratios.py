"""benchmarks/ratios.py: the quick benchmark's regression check against limits.toml."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
ratios = pytest.importorskip("ratios")

LIMITS = {"dense": {"fastdl": "b.py::t[fastdl-{backend}]", "baseline": "b.py::t[sgemm]", "cython": 1.2, "numba": 1.3}}


def _bench(fullname, median):
    return {"fullname": fullname, "name": fullname, "group": "dense", "stats": {"median": median, "min": median}}


def test_ratio_within_and_over_the_limit():
    runs = [_bench("b.py::t[sgemm]", 2.0), _bench("b.py::t[fastdl-cython]", 2.2), _bench("b.py::t[fastdl-numba]", 2.8)]
    lines, failures = ratios.check([runs], LIMITS)
    assert lines[0].startswith("ok") and "dense [cython]: 1.100x" in lines[0] and "(limit 1.2)" in lines[0]
    assert failures == ["dense [numba]: 1.400x b.py::t[sgemm] (limit 1.3)"]


def test_missing_rows_fail_but_an_absent_backend_is_left_out():
    lines, failures = ratios.check([[_bench("b.py::t[fastdl-cython]", 1.0)]], LIMITS)
    assert lines == [] and failures == ["dense [cython]: b.py::t[sgemm] did not run"]  # numba: not built
    assert ratios.quick_node_ids(LIMITS, ["cython"]) == {"b.py::t[sgemm]", "b.py::t[fastdl-cython]"}


def test_the_best_of_several_runs_counts():
    noisy = [_bench("b.py::t[sgemm]", 1.0), _bench("b.py::t[fastdl-cython]", 5.0)]  # a load spike
    quiet = [_bench("b.py::t[sgemm]", 1.0), _bench("b.py::t[fastdl-cython]", 1.1)]
    assert ratios.check([noisy, quiet], LIMITS)[1] == []
    assert ratios.check([noisy, noisy], LIMITS)[1] == ["dense [cython]: 5.000x b.py::t[sgemm] (limit 1.2)"]


def test_the_committed_limits_name_both_backends_and_a_baseline():
    limits = ratios.load_limits(os.path.join(os.path.dirname(ratios.__file__), "limits.toml"))
    assert len(limits) >= 5
    for group in limits.values():
        assert group["fastdl"].startswith("benchmarks/bench_") and "{backend}" in group["fastdl"]
        assert group["baseline"].startswith("benchmarks/bench_")
        assert 0 < group["cython"] < 3 and 0 < group["numba"] < 3

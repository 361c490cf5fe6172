"""Data-parallel training over MPI: ``mpiexec -n 2`` runs of tests/mpi_worker.py and of the CLI,
compared with one process. Skipped without mpi4py or mpiexec (``pip install ".[mpi]"``)."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import FASTDL_HOME
from fastdl._kernels import ops
from fastdl._kernels.random import noise_key

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_worker.py")
MPIEXEC = shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="needs mpiexec (pip install mpich)")
TIMEOUT = 120  # seconds: a hang fails the test instead of stalling the suite


def _mpiexec(*programs, cwd):
    """Run ``mpiexec`` with ``programs`` (each a list: one rank's command; MPMD with ':'), and
    return the finished process."""
    pytest.importorskip("mpi4py")
    command = [MPIEXEC]
    for i, program in enumerate(programs):
        command += ([":"] if i else []) + ["-n", "1"] + program
    env = {**os.environ, "PYTHONPATH": FASTDL_HOME}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def worker_results(tmp_path_factory):
    """Both scenarios of the worker, run once: {scenario: [rank 0's arrays, rank 1's arrays]}."""
    out = tmp_path_factory.mktemp("mpi")
    results = {}
    for scenario in ("equivalence", "faults"):
        program = [sys.executable, WORKER, scenario, str(out)]
        done = _mpiexec(program, program, cwd=FASTDL_HOME)
        assert done.returncode == 0, done.stderr[-3000:]
        results[scenario] = [dict(np.load(out / f"{scenario}.rank{r}.npz")) for r in (0, 1)]
    return results


def test_a_skip_is_a_draw_further_along():
    """What lets a rank draw its rows' part of a batch's mask: skip=s starts s elements later."""
    x = np.random.default_rng(0).random((7, 5)).astype(np.float32)
    key = noise_key(11, 3, 2)
    whole = np.empty_like(x)
    ops().masking_noise(x, 0.5, key, whole)
    part = np.empty_like(x[4:])
    ops().masking_noise(np.ascontiguousarray(x[4:]), 0.5, noise_key(11, 3, 2, skip=4 * 5), part)
    np.testing.assert_array_equal(part, whole[4:])
    assert 0 < np.count_nonzero(whole == 0) < x.size


@needs_mpi
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("model", ["mlp", "mlp_stopped", "autoencoder", "stacked"])
def test_two_ranks_train_the_model_one_process_trains(worker_results, model, dtype, rtol):
    """Dropout, corruption, validation with early stopping, a callback's stop, greedy
    pre-training: 2 ranks on batches of 7 (a last batch of 1 row) give 1 process's model."""
    rank0, rank1 = worker_results["equivalence"]
    key = f"{dtype}.{model}"
    np.testing.assert_array_equal(rank0[f"{key}.params"], rank1[f"{key}.params"])  # rank 1 began at 0.5
    np.testing.assert_allclose(rank0[f"{key}.params"], rank0[f"{key}.single.params"], rtol=rtol, atol=rtol)
    for column in ("loss", "val_loss"):
        np.testing.assert_allclose(rank0[f"{key}.{column}"], rank0[f"{key}.single.{column}"], rtol=rtol)
        np.testing.assert_array_equal(rank0[f"{key}.{column}"], rank1[f"{key}.{column}"])
    assert rank0[f"{key}.stopped"] == rank1[f"{key}.stopped"] == rank0[f"{key}.single.stopped"]
    expected = {"mlp": "early_stopping", "mlp_stopped": "callback"}.get(model, "None")
    assert str(rank0[f"{key}.stopped"]) == expected


@needs_mpi
@pytest.mark.parametrize("case, error, unchanged", [
    ("bad_input", "DistributedError: training stopped on all 2 ranks; rank 1: ValueError: X contains NaN", True),
    ("mismatch", ("DistributedError: the ranks were given different configurations: batch_size is 8 on "
                  "rank 1 but 7 on rank 0"), True),
    ("nan_loss", "TrainingDivergedError: the training loss became nan at epoch 1, step 7", False),
    ("raises", "DistributedError: training stopped on all 2 ranks; rank 1: RuntimeError: injected failure",
     False)])
def test_a_fault_on_one_rank_stops_every_rank_alike(worker_results, case, error, unchanged):
    """Every rank raises the same clear error, none hangs, and all keep the same good weights:
    the initial ones (bad input, mismatch), the failing epoch's start (NaN), the last step taken."""
    ranks = worker_results["faults"]
    for result in ranks:
        assert str(result[f"{case}.error"]).startswith(error)
        assert np.array_equal(result[f"{case}.before"], result[f"{case}.after"]) == unchanged
        assert np.isfinite(result[f"{case}.after"]).all()
    np.testing.assert_array_equal(ranks[0][f"{case}.after"], ranks[1][f"{case}.after"])
    assert ranks[0][f"{case}.step"] == ranks[1][f"{case}.step"]
    if case == "nan_loss":
        np.testing.assert_array_equal(ranks[0][f"{case}.after"], ranks[0][f"{case}.epoch_start"])


def _cli(data, out):
    return [sys.executable, "-m", "fastdl", "train", str(data), "--out", str(out), "--hidden", "6",
            "--pretrain-epochs", "1", "--epochs", "2", "--batch-size", "16"]


@needs_mpi
def test_the_cli_under_mpiexec_writes_one_process_s_model(tmp_path):
    import fastdl

    rng = np.random.default_rng(0)
    X = rng.random((80, 8)).astype(np.float32)
    np.savez(tmp_path / "data.npz", X=X, y=(X[:, 0] > 0.5).astype(np.int64))
    one = subprocess.run(_cli(tmp_path / "data.npz", tmp_path / "one.npz"), cwd=FASTDL_HOME,
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert one.returncode == 0, one.stderr
    two = _mpiexec(*[_cli(tmp_path / "data.npz", tmp_path / "two.npz")] * 2, cwd=FASTDL_HOME)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("saved") == 1 and "on 2 processes" in two.stdout  # rank 0 reports
    single, parallel = fastdl.load(tmp_path / "one.npz"), fastdl.load(tmp_path / "two.npz")
    np.testing.assert_allclose(parallel.arena.params, single.arena.params, rtol=1e-4, atol=1e-5)
    assert parallel.step_ == single.step_ > 0


@needs_mpi
@pytest.mark.parametrize("bad", ["nan", "other data"])
def test_the_cli_writes_nothing_when_one_rank_fails(tmp_path, bad):
    X = np.random.default_rng(0).random((40, 8)).astype(np.float32)
    y = (X[:, 0] > 0.5).astype(np.int64)
    np.savez(tmp_path / "good.npz", X=X, y=y)
    X[3, 2] = np.nan if bad == "nan" else 0.25
    np.savez(tmp_path / "bad.npz", X=X, y=y)
    done = _mpiexec(_cli(tmp_path / "good.npz", tmp_path / "m.npz"), _cli(tmp_path / "bad.npz", tmp_path / "m.npz"),
                    cwd=FASTDL_HOME)
    assert done.returncode != 0
    expected = "rank 1: ValueError: X contains NaN" if bad == "nan" else "X is (32, 8) float32 crc32"
    assert done.stderr.count("fastdl train: error:") == 2 and expected in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["bad.npz", "good.npz"]  # no model, no temporary file


def test_comm_must_be_an_mpi_communicator():
    pytest.importorskip("mpi4py")
    from fastdl.models import MLP

    X = np.random.default_rng(0).random((10, 4))
    net = MLP([4, 3, 2], dtype="float64")
    before = net.arena.params.copy()
    with pytest.raises(TypeError, match="comm must be an mpi4py intra-communicator .* got str"):
        net.fit(X, np.arange(10) % 2, epochs=1, comm="COMM_WORLD")
    np.testing.assert_array_equal(net.arena.params, before)
    assert net.step_ == 0


def test_one_process_started_without_mpiexec_trains_alone(monkeypatch):
    from fastdl.distributed import world_from_launcher

    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert world_from_launcher() is None
    monkeypatch.setenv("PMI_SIZE", "1")  # mpiexec -n 1
    assert world_from_launcher() is None

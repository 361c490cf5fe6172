"""The command line: the demo's table, training on a user's file, errors."""
import csv
import gzip
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import FASTDL_HOME
from fastdl import load
from fastdl.cli import main
from fastdl.datasets import load_digits

SMALL = ["--hidden", "32", "--epochs", "3", "--pretrain-epochs", "1", "--batch-size", "64"]


def test_demo_prints_the_comparison_table(capsys, tmp_path):
    assert main(["demo", "--seeds", "2", *SMALL, "--lr", "3e-3"]) == 0
    out = capsys.readouterr().out
    assert "stacked denoising autoencoder 64-32-10" in out
    rows = re.findall(r"(pre-trained|random init) \+ fine-tuned\s+([\d.]+)% ± ([\d.]+)%\s+([\d.]+)", out)
    assert [r[0] for r in rows] == ["pre-trained", "random init"]
    for _, mean, std, seconds in rows:
        assert 60 < float(mean) <= 100 and 0 <= float(std) < 20 and float(seconds) > 0


def test_train_on_npz_saves_a_model_that_predicts(tmp_path, capsys):
    X, y = load_digits()
    np.savez(tmp_path / "digits.npz", X=X[:600], y=y[:600])
    out = tmp_path / "model.npz"
    assert main(["train", str(tmp_path / "digits.npz"), "--out", str(out), *SMALL, "--lr", "1e-2"]) == 0
    text = capsys.readouterr().out
    accuracy = float(re.search(r"test accuracy ([\d.]+)%", text).group(1))
    model = load(out)
    assert model.predict(X[:600]).shape == (600,)
    assert accuracy > 70 and model.score(X[:600], y[:600]) > 0.7


def test_train_on_idx_files_and_without_labels(tmp_path, capsys):
    X, y = load_digits()
    images = (X[:300] * 255).astype(np.uint8).reshape(300, 8, 8)
    header = bytes([0, 0, 8, 3]) + np.array(images.shape, ">u4").tobytes()
    (tmp_path / "images.idx.gz").write_bytes(gzip.compress(header + images.tobytes()))
    labels = y[:300].astype(np.uint8)
    (tmp_path / "labels.idx").write_bytes(bytes([0, 0, 8, 1]) + np.array([300], ">u4").tobytes() + labels.tobytes())
    assert main(["train", str(tmp_path / "images.idx.gz"), "--labels", str(tmp_path / "labels.idx"),
                 "--out", str(tmp_path / "m.npz"), *SMALL, "--no-pretrain"]) == 0
    assert load(tmp_path / "m.npz").n_outputs == 10
    assert main(["train", str(tmp_path / "images.idx.gz"), "--out", str(tmp_path / "ae.npz"), *SMALL]) == 0
    assert "reconstruction error" in capsys.readouterr().out
    assert type(load(tmp_path / "ae.npz")).__name__ == "Autoencoder"


@pytest.mark.parametrize("hidden", ["32", "1"])  # one hidden unit: a grid of one filter
def test_demo_plot_writes_the_filters_and_the_loss_curves(tmp_path, hidden):
    pytest.importorskip("matplotlib")
    plots = tmp_path / "plots"  # created by the demo
    assert main(["demo", "--seeds", "1", *SMALL, "--hidden", hidden, "--plot", str(plots)]) == 0
    for name in ("filters.png", "loss_curves.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_are_reported_without_a_traceback(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "m.npz")]) == 2
    assert "error: no such data file" in capsys.readouterr().err
    X, y = load_digits()
    np.savez(tmp_path / "digits.npz", X=X[:100], y=y[:100])
    out = tmp_path / "no-such-dir" / "m.npz"
    assert main(["train", str(tmp_path / "digits.npz"), "--out", str(out), *SMALL]) == 2
    captured = capsys.readouterr()
    assert f"error: cannot save to {out}: no directory" in captured.err and captured.out == ""  # not trained
    assert main(["demo", "--threads", "100000"]) == 2
    assert "fastdl demo: error: n must be between 1 and" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--corruption", "mask"])


@pytest.mark.parametrize("option, value", [("--seeds", "0"), ("--threads", "0"), ("--epochs", "-1"),
                                           ("--pretrain-epochs", "1.5"), ("--batch-size", "0")])
def test_counts_out_of_range_are_usage_errors(option, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["demo", option, value])
    assert exit_.value.code == 2 and "expected an int >= " in capsys.readouterr().err


def test_plot_preconditions_are_checked_before_training(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "plots"
    a_file.write_text("")
    assert main(["demo", *SMALL, "--plot", str(a_file)]) == 2
    out, err = capsys.readouterr()
    assert "--plot: cannot create the directory" in err and out == ""  # nothing was trained
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert main(["demo", *SMALL, "--plot", str(tmp_path / "new")]) == 2
    out, err = capsys.readouterr()
    assert "--plot needs matplotlib" in err and out == ""


def test_python_dash_m_fastdl():
    result = subprocess.run([sys.executable, "-m", "fastdl", "--help"], cwd=FASTDL_HOME,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "demo" in result.stdout and "train" in result.stdout


def test_experiment_pretraining_writes_the_runs_and_the_plot(tmp_path, capsys):
    X, y = load_digits()
    np.savez(tmp_path / "digits.npz", X=X[:400], y=y[:400])
    out = tmp_path / "exp"
    args = ["experiment", "pretraining", "--data", str(tmp_path / "digits.npz"), "--seeds", "2", "--depths", "1,2",
            "--hidden", "32,16", "--epochs", "3", "--pretrain-epochs", "1", "--batch-size", "64", "--lr", "1e-2",
            "--out", str(out), "--no-progress"]
    assert main(args) == 0
    with open(out / "pretraining.csv") as f:
        runs = list(csv.DictReader(f))
    assert [(r["depth"], r["init"], r["seed"]) for r in runs] == [
        (d, arm, s) for d in ("1", "2") for s in ("0", "1") for arm in ("pretrained", "random")]
    errors = {(r["depth"], r["init"], r["seed"]): float(r["test_error"]) for r in runs}
    assert all(0 <= e < 0.5 for e in errors.values()) and all(float(r["train_loss"]) > 0 for r in runs)
    # the printed table is the CSV's mean ± sd (sample sd) per depth and arm
    table = re.findall(r"^\s+(\d)\s+(pretrained|random)\s+([\d.]+)% ± ([\d.]+)%\s+([\d.]+) ± ([\d.]+)$",
                       capsys.readouterr().out, re.MULTILINE)
    assert len(table) == 4
    for depth, arm, err, err_sd, loss, loss_sd in table:
        mine = [errors[depth, arm, s] for s in ("0", "1")]
        losses = [float(r["train_loss"]) for r in runs if (r["depth"], r["init"]) == (depth, arm)]
        assert float(err) == pytest.approx(100 * np.mean(mine), abs=0.006)
        assert float(err_sd) == pytest.approx(100 * np.std(mine, ddof=1), abs=0.006)
        assert float(loss) == pytest.approx(np.mean(losses), abs=6e-5)
        assert float(loss_sd) == pytest.approx(np.std(losses, ddof=1), abs=6e-5)
    assert (out / "pretraining.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_experiment_arms_differ_only_in_pretraining():
    """Same seed, same budget: the random arm is a plain fit of the same network, and the
    pre-trained arm equals pre-training then fitting."""
    from fastdl.experiments import pretraining_experiment
    from fastdl.models import StackedAutoencoder

    X, y = load_digits()
    Xtr, ytr, Xte, yte = X[:200], y[:200], X[200:300], y[200:300]
    options = dict(activation="relu", corruption=("mask", 0.2), seed=1)
    runs = pretraining_experiment(Xtr, ytr, Xte, yte, hidden=(16,), depths=(1,), seeds=2, epochs=2,
                                  pretrain_epochs=1, batch_size=50, lr=1e-2, corruption=options["corruption"])
    for pretrain, run in zip((True, False), runs[2:]):  # seed 1
        net = StackedAutoencoder([64, 16], 10, **options)
        history = net.fit(Xtr, ytr, pretrain=pretrain, pretrain_epochs=1, pretrain_lr=1e-2, epochs=2, lr=1e-2,
                          batch_size=50)
        assert run["test_error"] == 1 - net.score(Xte, yte) and run["train_loss"] == history["loss"][-1]


@pytest.mark.parametrize("kwargs, message", [({"seeds": 0}, "seeds must be at least 1"),
                                             ({"depths": (1, 4)}, "depths must be between 1 and 3"),
                                             ({"depths": ()}, "depths must be between 1 and 3")])
def test_experiment_rejects_bad_settings(kwargs, message):
    from fastdl.experiments import pretraining_experiment

    X, y = load_digits()
    with pytest.raises(ValueError, match=message):
        pretraining_experiment(X[:10], y[:10], X[:10], y[:10], **kwargs)

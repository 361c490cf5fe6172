"""The command line: the demo's table, training on a user's file, errors."""
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

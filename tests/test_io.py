"""Save / load: identical predictions, optimizer state that continues bit-identically, and
truncated, corrupted, foreign or newer files rejected with a clear error."""
import json
import os
import zipfile

import numpy as np
import pytest

import fastdl
from fastdl.io import ModelFileError, load, save
from fastdl.models import MLP, Autoencoder, StackedAutoencoder


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.random((96, 8)).astype(np.float32)
    return X, (X[:, 0] > X[:, 1]).astype(int) + 2 * (X[:, 2] > 0.5)


@pytest.fixture
def trained(data):
    X, y = data
    net = StackedAutoencoder([8, 6, 5], 4, activation="relu", dropout=0.1, corruption=("mask", 0.2), seed=3)
    net.fit(X, y, pretrain_epochs=1, epochs=2, batch_size=16)
    return net


def test_save_load_predicts_identically_and_continues_bit_identically(tmp_path, data, trained):
    X, y = data
    path = tmp_path / "model.npz"
    save(trained, path)
    loaded = load(path)
    assert type(loaded) is StackedAutoencoder and loaded.get_config() == trained.get_config()
    np.testing.assert_array_equal(loaded.predict_proba(X), trained.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), trained.predict(X))
    assert (loaded.step_, loaded.epoch_) == (trained.step_, trained.epoch_)
    assert loaded.optimizer_.step_count == trained.optimizer_.step_count
    trained.fit(X, y, pretrain=False, epochs=1, batch_size=16)
    loaded.fit(X, y, pretrain=False, epochs=1, batch_size=16)
    np.testing.assert_array_equal(loaded.arena.params, trained.arena.params)


@pytest.mark.parametrize("make", [
    lambda: Autoencoder(8, 3, tied=True, corruption=("gaussian", 0.1), loss="bce", seed=1),
    lambda: MLP([8, 5, 1], activation="prelu", output="identity", dtype=np.float64),
])
def test_other_models_round_trip(tmp_path, data, make):
    X, y = data
    model = make()
    if isinstance(model, Autoencoder):
        model.fit(X, epochs=1, optimizer="rmsprop", lr=1e-2)
        out = model.reconstruct
    else:
        model.fit(X, X[:, 0], epochs=1, optimizer="adam", optimizer_params={"amsgrad": True})
        out = model.predict
    save(model, tmp_path / "m.npz")
    loaded = fastdl.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(out(X), getattr(loaded, out.__name__)(X))
    assert type(loaded.optimizer_) is type(model.optimizer_)


def test_the_file_is_plain_npz_without_pickle(tmp_path, trained):
    save(trained, tmp_path / "m.npz", optimizer=False)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        assert str(f["fastdl_format"]) == "fastdl-model" and int(f["fastdl_version"]) == 1
        assert json.loads(str(f["config"]))["class"] == "StackedAutoencoder"
        np.testing.assert_array_equal(f["params"], trained.arena.params)
        assert "optimizer" not in f.files
    assert load(tmp_path / "m.npz").optimizer_ is None


def test_write_is_atomic(tmp_path, trained, monkeypatch):
    path = tmp_path / "m.npz"
    save(trained, path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        save(trained, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind


def test_saving_into_a_missing_directory_names_the_path(tmp_path, trained):
    path = tmp_path / "no-such-dir" / "m.npz"
    with pytest.raises(FileNotFoundError, match=f"cannot save to {path}: no directory"):
        save(trained, path)


def _rewrite(src, dst, change):
    with np.load(src, allow_pickle=False) as f:
        members = {k: f[k] for k in f.files}
    change(members)
    np.savez(dst, **members)


@pytest.mark.parametrize("damage, message", [
    ("truncate", "truncated or corrupted"),
    ("flip", "truncated or corrupted"),
    ("text", "truncated or corrupted"),
    ("foreign", "missing fastdl_format"),
    ("version", "format version 99 is newer"),
    ("class", "unknown model class"),
    ("params", "params are float32"),
    ("json", "not valid JSON"),
])
def test_damaged_files_are_rejected(tmp_path, trained, damage, message):
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    save(trained, good)
    blob = good.read_bytes()
    if damage == "truncate":
        bad.write_bytes(blob[: len(blob) * 2 // 3])
    elif damage == "flip":  # one byte inside the params member's data: its CRC-32 no longer matches
        with zipfile.ZipFile(good) as z:
            info = z.getinfo("params.npy")
        at = info.header_offset + 30 + len(info.filename) + info.extra.__len__() + 200
        bad.write_bytes(blob[:at] + bytes([blob[at] ^ 0xFF]) + blob[at + 1:])
    elif damage == "text":
        bad.write_text("hello")
    elif damage == "foreign":
        np.savez(bad, X=np.zeros(3))
    elif damage == "version":
        _rewrite(good, bad, lambda m: m.update(fastdl_version=np.array(99)))
    elif damage == "class":
        _rewrite(good, bad, lambda m: m.update(config=np.array('{"class": "Pickle", "config": {}}')))
    elif damage == "params":
        _rewrite(good, bad, lambda m: m.update(params=m["params"][:-1]))
    elif damage == "json":
        _rewrite(good, bad, lambda m: m.update(state=np.array("{not json")))
    with pytest.raises(ModelFileError, match=message):
        load(bad)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")

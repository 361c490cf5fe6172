import gzip

import numpy as np
import pytest

from fastdl import datasets


def test_digits_matches_scikit_learn():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32 and X.flags.c_contiguous
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.array_equal(np.unique(y), np.arange(10))
    sk = pytest.importorskip("sklearn.datasets")
    bunch = sk.load_digits()
    np.testing.assert_array_equal(X, (bunch.data / 16.0).astype(np.float32))
    np.testing.assert_array_equal(y, bunch.target)


def test_train_test_split_is_stratified_seeded_and_disjoint():
    X, y = datasets.load_digits()
    Xtr, Xte, ytr, yte = datasets.train_test_split(X, y, 0.25, seed=3)
    again = datasets.train_test_split(X, y, 0.25, seed=3)
    np.testing.assert_array_equal(Xte, again[1])
    assert len(Xtr) + len(Xte) == len(X)
    counts = np.bincount(yte, minlength=10) / np.bincount(y, minlength=10)
    assert np.all(np.abs(counts - 0.25) < 0.02)
    rows = {r.tobytes() for r in Xtr}
    assert sum(r.tobytes() in rows for r in Xte) < 20  # digits has a few duplicate images, no more


def _idx_bytes(arr, type_byte):
    header = bytes([0, 0, type_byte, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    labels = np.array([7, 0, 2], dtype=np.uint8)
    write = gzip.compress if compress else bytes
    (tmp_path / "img").write_bytes(write(_idx_bytes(images, 0x08)))
    (tmp_path / "lab").write_bytes(write(_idx_bytes(labels, 0x08)))
    X, y = datasets.load_file(tmp_path / "img", tmp_path / "lab")
    np.testing.assert_array_equal(X, (images.reshape(3, 20) / 255.0).astype(np.float32))
    np.testing.assert_array_equal(y, [7, 0, 2])
    floats = np.linspace(-1, 1, 6).reshape(2, 3)
    (tmp_path / "f").write_bytes(write(_idx_bytes(floats, 0x0E)))
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "f"), floats)


@pytest.mark.parametrize("blob, message", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x02ab", "first two bytes"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x02ab", "unknown IDX data type"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02", "truncated IDX header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03ab", "declares shape"),
    (b"\x1f\x8b\x08\x00garbage", "corrupted gzip"),
])
def test_idx_rejects_bad_files(tmp_path, blob, message):
    (tmp_path / "bad").write_bytes(blob)
    with pytest.raises(ValueError, match=message):
        datasets.read_idx(tmp_path / "bad")


def test_npz_loading_and_errors(tmp_path):
    X = np.random.default_rng(0).random((5, 2, 3))
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(5))
    Xl, yl = datasets.load_file(tmp_path / "d.npz")
    np.testing.assert_array_equal(Xl, X.reshape(5, 6).astype(np.float32))
    np.testing.assert_array_equal(yl, np.arange(5))
    np.savez(tmp_path / "noX.npz", data=X)
    with pytest.raises(ValueError, match="no array named 'X'"):
        datasets.load_npz(tmp_path / "noX.npz")
    np.savez(tmp_path / "bady.npz", X=X, y=np.arange(4))
    with pytest.raises(ValueError, match="y must be 1-D with 5 entries"):
        datasets.load_npz(tmp_path / "bady.npz")
    blob = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="not a readable .npz"):
        datasets.load_file(tmp_path / "cut.npz")
    with pytest.raises(FileNotFoundError):
        datasets.load_file(tmp_path / "missing.npz")

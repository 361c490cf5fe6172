"""Data: the digits set (as scikit-learn ships it) embedded as the default, IDX files (MNIST's format) and ``.npz``.

Every loader returns ``(X, y)`` with ``X`` a C-contiguous 2-D float array (one sample per row,
images flattened) and ``y`` an int64 label vector or ``None``.
"""
import gzip
import os
import zipfile

import numpy as np

# IDX type byte -> big-endian dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def load_digits(dtype=np.float32):
    """The UCI 8x8 handwritten digits (1797 samples, 64 features scaled to [0, 1], labels 0-9).

    The same data as ``sklearn.datasets.load_digits``, shipped inside fastdl (``data/digits.npz``,
    uint8 pixel counts 0-16) so the demo needs neither scikit-learn nor a download.
    """
    path = os.path.join(os.path.dirname(__file__), "data", "digits.npz")
    with np.load(path, allow_pickle=False) as data:
        images, labels = data["images"], data["labels"]
    X = np.ascontiguousarray(images.reshape(len(images), -1) / 16.0, dtype=dtype)
    return X, labels.astype(np.int64)


def train_test_split(X, y, test_fraction=0.25, seed=0):
    """Shuffle with ``seed`` and split off the last ``test_fraction`` of the samples, per class
    when ``y`` is given (so every class keeps its share). Returns ``X_train, X_test, y_train, y_test``."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    n = len(X)
    if y is None:
        order = rng.permutation(n)
        n_test = max(1, int(round(n * test_fraction)))
        test = order[:n_test]
    else:
        y = np.asarray(y)
        test = []
        for label in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == label))
            test.append(members[: int(round(len(members) * test_fraction))])
        test = np.sort(np.concatenate(test))
    is_test = np.zeros(n, dtype=bool)
    is_test[test] = True
    train_idx, test_idx = rng.permutation(np.flatnonzero(~is_test)), np.flatnonzero(is_test)
    if y is None:
        return X[train_idx], X[test_idx], None, None
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]


def read_idx(path):
    """Read an IDX file (raw or gzipped) into an array of its stored shape and dtype.

    Layout: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D
    float32, 0x0E float64), the number of dimensions, then each dimension as a big-endian uint32,
    then the data in C order. The header and the data length are checked.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: corrupted gzip stream ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (its first two bytes must be zero)")
    type_byte, ndim = raw[2], raw[3]
    if type_byte not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX data type 0x{type_byte:02x}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[type_byte])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX header declares shape {shape} ({expected} data bytes), "
            f"but the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_idx(images_path, labels_path=None, dtype=np.float32):
    """Images from an IDX file as rows of ``X`` (uint8 pixels scaled to [0, 1]); labels from a
    second IDX file if given."""
    images = read_idx(images_path)
    X = images.reshape(len(images), -1)
    X = np.ascontiguousarray(X / 255.0 if images.dtype == np.uint8 else X, dtype=dtype)
    y = None
    if labels_path is not None:
        labels = read_idx(labels_path)
        if labels.ndim != 1 or len(labels) != len(X):
            raise ValueError(f"{labels_path}: expected {len(X)} labels in a 1-D IDX file, got shape {labels.shape}")
        y = labels.astype(np.int64)
    return X, y


def load_npz(path, x_key="X", y_key="y", dtype=np.float32):
    """``X`` (and ``y`` if present) from a ``.npz`` file, read without pickle."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if x_key not in data.files:
                raise ValueError(f"{path}: no array named {x_key!r} (found {sorted(data.files)})")
            X = data[x_key]
            y = data[y_key] if y_key in data.files else None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from None
    if X.ndim < 2:
        raise ValueError(f"{path}: {x_key} must have one sample per row, got shape {X.shape}")
    X = np.ascontiguousarray(X.reshape(len(X), -1), dtype=dtype)
    if y is not None:
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"{path}: {y_key} must be 1-D with {len(X)} entries, got shape {y.shape}")
        y = y.astype(np.int64) if y.dtype.kind in "biu" else y
    return X, y


def load_file(path, labels_path=None, dtype=np.float32):
    """``.npz`` or IDX by the file's content: a zip archive is ``.npz``, anything else is IDX."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such data file: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        if labels_path is not None:
            raise ValueError("labels_path is for IDX images; a .npz file carries its own 'y'")
        return load_npz(path, dtype=dtype)
    return load_idx(path, labels_path, dtype=dtype)

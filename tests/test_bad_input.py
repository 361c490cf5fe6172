"""The bad-input battery: every rejected call raises a ValueError or TypeError that names the
argument, and changes nothing (weights, gradients, optimizer state, step counters, files).

Tables, one row a case: (id, call, error type, the name the message must contain). Every test runs
on every backend (the ``backend`` fixture). Read-only and non-contiguous *inputs* are not errors:
they are copied once, and give the results of a contiguous writable copy (checked below); as
``out=`` buffers they are errors.
"""
import os
import zipfile

import numpy as np
import pytest

import fastdl
import fastdl.functional as F
from fastdl import optim
from fastdl.layers import Dense, Dropout

pytestmark = pytest.mark.usefixtures("backend")

NAN, INF = float("nan"), float("inf")
RNG = np.random.default_rng(0)
X = RNG.random((12, 4)).astype(np.float32)
Y = np.arange(12) % 3


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def _fitted():
    """A tiny MLP after two epochs of Adam: weights, gradients, state and counters to compare."""
    net = fastdl.MLP([4, 5, 3], activation="elu", seed=0)
    net.fit(X, Y, epochs=2, batch_size=4, optimizer="adam", lr=1e-2)
    return net


def _snapshot(net):
    opt = net.optimizer_
    return {"params": net.arena.params.copy(), "grads": net.arena.grads.copy(), "step": net.step_,
            "opt_step": opt.state_dict()["step"], "history": len(net.history_.epochs)
            if hasattr(net.history_, "epochs") else repr(net.history_),
            "opt_state": {k: np.copy(v) for k, v in opt.state_dict()["state"].items()}}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if key == "opt_state":
            assert a[key].keys() == b[key].keys()
            for name in a[key]:
                np.testing.assert_array_equal(a[key][name], b[key][name], err_msg=name)
        elif isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key


def _raises(call, error, name):
    with pytest.raises(error) as info:
        call()
    assert name in str(info.value), f"{name!r} not in {str(info.value)!r}"


# --------------------------------------------------------------------------- model arrays

ARRAYS = [
    ("nan", X.copy() * np.where(np.arange(4) == 2, np.nan, 1)),
    ("inf", np.where(X > 0.5, np.inf, X)),
    ("rank1", X[0]),
    ("rank3", X[None]),
    ("width", X[:, :3]),
    ("no_rows", X[:0]),
    ("object", X.astype(object)),
    ("string", X.astype(str)),
    ("complex", X.astype(np.complex64)),
]
#: (case, labels, refused by score too): a label score has not seen only counts as wrong
LABELS = [
    ("too_many_classes", np.arange(12) % 4, False),  # 4 classes, 3 outputs
    ("wrong_length", Y[:-1], True),
    ("wrong_rank", Y.reshape(3, 4), True),
    ("nan", np.where(Y == 1, np.nan, Y), False),
]


@pytest.mark.parametrize("method", ["fit", "predict", "score"])
@pytest.mark.parametrize("case,bad", ARRAYS, ids=[c for c, _ in ARRAYS])
def test_model_arrays(method, case, bad):
    net = _fitted()
    before = _snapshot(net)
    call = {"fit": lambda: net.fit(bad, Y[:len(bad)] if bad.ndim == 2 else Y, epochs=1),
            "predict": lambda: net.predict(bad),
            "score": lambda: net.score(bad, Y[:len(bad)] if bad.ndim == 2 else Y)}[method]
    _raises(call, (ValueError, TypeError), "X")
    _assert_same(before, _snapshot(net))


@pytest.mark.parametrize("case,bad,in_score", LABELS, ids=[c[0] for c in LABELS])
def test_model_labels(case, bad, in_score):
    net = _fitted()
    before = _snapshot(net)
    _raises(lambda: net.fit(X, bad, epochs=1), ValueError, "y")
    fresh = fastdl.MLP([4, 5, 3], seed=0)
    _raises(lambda: fresh.fit(X, bad, epochs=1), ValueError, "y")
    if in_score:
        _raises(lambda: net.score(X, bad), ValueError, "y")
    _assert_same(before, _snapshot(net))


def test_unknown_labels_after_fit_change_nothing():
    net = _fitted()
    before = _snapshot(net)
    _raises(lambda: net.fit(X, Y + 5, epochs=1), ValueError, "y")
    _assert_same(before, _snapshot(net))


@pytest.mark.parametrize("layout", ["readonly", "fortran", "strided"])
def test_readonly_and_noncontiguous_inputs_are_copied_not_refused(layout):
    make = {"readonly": _readonly, "fortran": np.asfortranarray,
            "strided": lambda a: np.repeat(a, 2, axis=1)[:, ::2]}[layout]
    net, twin = _fitted(), _fitted()
    X_in = make(X)
    assert not (X_in.flags.writeable and X_in.flags.c_contiguous)
    net.fit(X_in, Y, epochs=1, batch_size=4)
    twin.fit(X.copy(), Y, epochs=1, batch_size=4)
    np.testing.assert_array_equal(net.arena.params, twin.arena.params)
    np.testing.assert_array_equal(net.predict_proba(X_in), twin.predict_proba(X))


# -------------------------------------------------------------------- hyper-parameters

BAD_NUMBERS = [("nan", NAN), ("negative", -0.5), ("string", "0.1"), ("bool", True)]

#: (owner, parameter, build(value)); each is tried with every BAD_NUMBERS value it must refuse,
#: and with the out-of-range values in OUT_OF_RANGE
CONSTRUCTORS = {
    "MLP.dropout": lambda v: fastdl.MLP([4, 3, 2], dropout=v),
    "MLP.alpha(elu)": lambda v: fastdl.MLP([4, 3, 2], activation="elu", alpha=v),
    "MLP.seed": lambda v: fastdl.MLP([4, 3, 2], seed=v),
    "Autoencoder.corruption_p": lambda v: fastdl.Autoencoder(4, 2, corruption=("mask", v)),
    "Autoencoder.corruption_sigma": lambda v: fastdl.Autoencoder(4, 2, corruption=("gaussian", v)),
    "Autoencoder.alpha(elu)": lambda v: fastdl.Autoencoder(4, 2, activation="elu", alpha=v),
    "StackedAutoencoder.dropout": lambda v: fastdl.StackedAutoencoder([4, 3], 2, dropout=v),
    "StackedAutoencoder.corruption_p": lambda v: fastdl.StackedAutoencoder([4, 3], 2,
                                                                          corruption=("mask", v)),
    "Dense.n_out": lambda v: Dense(4, v),
    "Dense.alpha(elu)": lambda v: Dense(4, 3, "elu", alpha=v),
    "Dropout.p": lambda v: Dropout(v),
}
OPTIMIZERS = {
    "SGD.lr": lambda a, v: optim.SGD(a, lr=v),
    "SGD.weight_decay": lambda a, v: optim.SGD(a, lr=0.1, weight_decay=v),
    "Momentum.momentum": lambda a, v: optim.Momentum(a, lr=0.1, momentum=v),
    "Momentum.dampening": lambda a, v: optim.Momentum(a, lr=0.1, dampening=v),
    "Momentum.nesterov": lambda a, v: optim.Momentum(a, lr=0.1, nesterov=v),
    "Adagrad.lr_decay": lambda a, v: optim.Adagrad(a, lr_decay=v),
    "Adagrad.eps": lambda a, v: optim.Adagrad(a, eps=v),
    "Adagrad.initial_accumulator_value": lambda a, v: optim.Adagrad(a, initial_accumulator_value=v),
    "RMSprop.alpha": lambda a, v: optim.RMSprop(a, alpha=v),
    "RMSprop.momentum": lambda a, v: optim.RMSprop(a, momentum=v),
    "Adam.betas[0]": lambda a, v: optim.Adam(a, betas=(v, 0.999)),
    "Adam.betas[1]": lambda a, v: optim.Adam(a, betas=(0.9, v)),
    "Adam.eps": lambda a, v: optim.Adam(a, eps=v),
    "AdamW.weight_decay": lambda a, v: optim.AdamW(a, weight_decay=v),
    "Adam.check_finite": lambda a, v: optim.Adam(a, check_finite=v),
}
FIT_OPTIONS = {
    "epochs": None, "batch_size": None, "lr": None, "validation_fraction": None,
    "patience": None, "optimizer": None,
}
#: values out of range (besides negative) per parameter's last name
OUT_OF_RANGE = {"dropout": 1.0, "corruption_p": 1.0, "p": 1.5, "dampening": 1.5, "alpha": 1.5,
                "betas[0]": 1.0, "betas[1]": 1.0, "validation_fraction": 1.0, "batch_size": 0,
                "patience": 0, "n_out": 0, "epochs": 2.5, "seed": 2.5}
#: parameters that are flags or counts: a bool or string is their wrong type, NaN too
FLAGS = {"nesterov", "check_finite"}


def _cases(table):
    for key in table:
        name = key.split(".")[-1]
        values = [("out_of_range", OUT_OF_RANGE[name])] if name in OUT_OF_RANGE else []
        values += ([("string", "yes"), ("int", 1), ("nan", NAN)] if name in FLAGS else BAD_NUMBERS)
        for case, value in values:
            yield pytest.param(key, value, id=f"{key}-{case}")


def _message_name(key):
    name = key.split(".")[-1].split("(")[0]
    return {"corruption_p": "corruption", "corruption_sigma": "corruption"}.get(name, name)


@pytest.mark.parametrize("key,value", list(_cases(CONSTRUCTORS)))
def test_constructor_hyper_parameters(key, value):
    _raises(lambda: CONSTRUCTORS[key](value), (ValueError, TypeError), _message_name(key))


@pytest.mark.parametrize("key,value", list(_cases(OPTIMIZERS)))
def test_optimizer_hyper_parameters(key, value):
    net = _fitted()
    before = _snapshot(net)
    _raises(lambda: OPTIMIZERS[key](net.arena, value), (ValueError, TypeError),
            _message_name(key))
    _assert_same(before, _snapshot(net))


@pytest.mark.parametrize("key,value", list(_cases({k: None for k in FIT_OPTIONS if k != "optimizer"}))
                         + [pytest.param("optimizer", "adamax", id="optimizer-unknown"),
                            pytest.param("lr", INF, id="lr-inf")])
def test_fit_options(key, value):
    net = _fitted()
    before = _snapshot(net)
    _raises(lambda: net.fit(X, Y, **{key: value}), (ValueError, TypeError), key)
    _assert_same(before, _snapshot(net))


def test_optimizer_setter_refuses_nan_and_keeps_lr():
    net = _fitted()
    before = _snapshot(net)
    lr = net.optimizer_.lr
    _raises(lambda: setattr(net.optimizer_, "lr", NAN), ValueError, "lr")
    assert net.optimizer_.lr == lr
    _assert_same(before, _snapshot(net))


# ------------------------------------------------------------------------- functional calls

Z = RNG.standard_normal((3, 4))
W = RNG.standard_normal((5, 4))
BAD_Z = Z[:, :3]  # one feature short
FUNCTIONAL_SHAPES = [
    ("sigmoid_backward", lambda: F.sigmoid_backward(Z, BAD_Z), "grad"),
    ("tanh_backward", lambda: F.tanh_backward(Z, BAD_Z), "grad"),
    ("relu_backward", lambda: F.relu_backward(Z, BAD_Z), "grad"),
    ("leaky_relu_backward", lambda: F.leaky_relu_backward(Z, BAD_Z), "grad"),
    ("elu_backward", lambda: F.elu_backward(Z, BAD_Z), "grad"),
    ("softmax_backward", lambda: F.softmax_backward(Z, BAD_Z), "grad"),
    ("gelu_backward", lambda: F.gelu_backward(Z, BAD_Z), "grad"),
    ("silu_backward", lambda: F.silu_backward(Z, BAD_Z), "grad"),
    ("prelu", lambda: F.prelu(Z, np.ones(3)), "alpha"),
    ("prelu_backward", lambda: F.prelu_backward(Z, BAD_Z, 0.25), "grad"),
    ("swish", lambda: F.swish(Z, np.ones(5)), "beta"),
    ("swish_backward", lambda: F.swish_backward(Z, BAD_Z, 1.0), "grad"),
    ("out", lambda: F.sigmoid(Z, out=np.empty((3, 3))), "out"),
    ("out_readonly", lambda: F.sigmoid(Z, out=_readonly(Z)), "out"),
    ("out_noncontiguous", lambda: F.relu(Z, out=np.empty((4, 3)).T), "out"),
    ("dense_x", lambda: F.dense(BAD_Z, W), "x"),
    ("dense_b", lambda: F.dense(Z, W, np.zeros(4)), "b"),
    ("dense_W_rank", lambda: F.dense(Z, W[0]), "W"),
    ("dense_backward_grad", lambda: F.dense_backward(np.ones((3, 4)), Z, W, activation="gelu",
                                                     z=np.ones((3, 5))), "grad"),
    ("mse_loss", lambda: F.mse_loss(Z, BAD_Z), "target"),
    ("bce", lambda: F.binary_cross_entropy_with_logits(Z, BAD_Z), "target"),
    ("cross_entropy_onehot", lambda: F.softmax_cross_entropy(Z, np.eye(3)), "labels"),
    ("dropout_out", lambda: F.dropout(Z, 0.5, seed=0, step=0, out=np.empty((3, 3))), "out"),
    ("gaussian_noise_out", lambda: F.gaussian_noise(Z, 0.1, seed=0, step=0,
                                                    out=np.empty(12)), "out"),
]
FUNCTIONAL_VALUES = [
    ("leaky_relu_nan_slope", lambda: F.leaky_relu(Z, NAN), "negative_slope"),
    ("leaky_relu_inf_slope", lambda: F.leaky_relu_backward(Z, Z, INF), "negative_slope"),
    ("leaky_relu_bool_slope", lambda: F.leaky_relu(Z, True), "negative_slope"),
    ("elu_negative_alpha", lambda: F.elu(Z, -0.5), "alpha"),
    ("elu_nan_alpha", lambda: F.elu_backward(Z, Z, NAN), "alpha"),
    ("dense_elu_alpha", lambda: F.dense(Z, W, activation="elu", alpha=-1.0), "alpha"),
    ("dense_leaky_nan", lambda: F.dense(Z, W, activation="leaky_relu", negative_slope=NAN),
     "negative_slope"),
    ("gelu_approximate", lambda: F.gelu(Z, approximate="erf"), "approximate"),
    ("dropout_nan", lambda: F.dropout(Z, NAN, seed=0, step=0), "p"),
    ("dropout_one", lambda: F.dropout(Z, 1.0, seed=0, step=0), "p"),
    ("masking_negative", lambda: F.masking_noise(Z, -0.1, seed=0, step=0), "p"),
    ("gaussian_nan", lambda: F.gaussian_noise(Z, NAN, seed=0, step=0), "sigma"),
    ("gaussian_string", lambda: F.gaussian_noise(Z, "1", seed=0, step=0), "sigma"),
    ("complex_x", lambda: F.sigmoid(Z.astype(complex)), "x"),
    ("object_x", lambda: F.relu(Z.astype(object)), "x"),
    ("string_x", lambda: F.tanh(Z.astype(str)), "x"),
    ("labels_out_of_range", lambda: F.softmax_cross_entropy(Z, np.array([0, 1, 4])), "labels"),
    ("labels_negative", lambda: F.softmax_cross_entropy(Z, np.array([0, -1, 2])), "labels"),
    ("labels_fractional", lambda: F.softmax_cross_entropy(Z, np.array([0, 1.5, 2])), "labels"),
    ("labels_length", lambda: F.softmax_cross_entropy(Z, np.array([0, 1])), "labels"),
    ("labels_rank", lambda: F.softmax_cross_entropy(Z, np.zeros((3, 1, 1), int)), "labels"),
]


@pytest.mark.parametrize("case,call,name", FUNCTIONAL_SHAPES + FUNCTIONAL_VALUES,
                         ids=[c[0] for c in FUNCTIONAL_SHAPES + FUNCTIONAL_VALUES])
def test_functional_calls(case, call, name):
    before = Z.copy(), W.copy()
    _raises(call, (ValueError, TypeError), name)
    np.testing.assert_array_equal(Z, before[0])
    np.testing.assert_array_equal(W, before[1])


# ------------------------------------------------------------------------------------ files


def _model_file(tmp_path):
    net = _fitted()
    path = tmp_path / "model.npz"
    fastdl.save(net, path)
    return net, path


def _flip(data):
    data = bytearray(data)
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


def _tamper(path):
    """Rewrite the params member with one fewer element, the other members as they were."""
    with np.load(path) as members:
        arrays = {name: members[name] for name in members.files}
    arrays["params"] = arrays["params"][:-1]
    np.savez(path, **arrays)


FILE_CASES = [
    ("missing", lambda p: p.unlink(), FileNotFoundError),
    ("empty", lambda p: p.write_bytes(b""), ValueError),
    ("truncated", lambda p: p.write_bytes(p.read_bytes()[:200]), ValueError),
    ("random_bytes", lambda p: p.write_bytes(np.random.default_rng(1).bytes(4096)), ValueError),
    ("foreign_npz", lambda p: np.savez(open(p, "wb"), a=np.zeros(3)), ValueError),
    ("flipped_bytes", lambda p: p.write_bytes(_flip(p.read_bytes())), ValueError),
    ("tampered_member", _tamper, ValueError),
]


@pytest.mark.parametrize("case,damage,error", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_loading_a_bad_file(tmp_path, case, damage, error):
    _, path = _model_file(tmp_path)
    damage(path)
    _raises(lambda: fastdl.load(path), error, str(path))


def test_saving_into_a_missing_directory(tmp_path):
    net = _fitted()
    before = _snapshot(net)
    target = tmp_path / "absent" / "model.npz"
    _raises(lambda: fastdl.save(net, target), FileNotFoundError, str(target))
    assert not (tmp_path / "absent").exists() and os.listdir(tmp_path) == []
    _assert_same(before, _snapshot(net))


def test_saving_into_a_read_only_directory_keeps_the_old_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("permission bits do not bind root (test_import_readonly drops capabilities)")
    net, path = _model_file(tmp_path)
    old = path.read_bytes()
    os.chmod(tmp_path, 0o555)
    try:
        _raises(lambda: fastdl.save(net, path), PermissionError, str(path))
        assert os.listdir(tmp_path) == ["model.npz"] and path.read_bytes() == old
    finally:
        os.chmod(tmp_path, 0o755)


def test_a_failed_save_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    """A write that fails midway (here: the archive writer raises) keeps the old file's bytes and
    leaves no temporary file."""
    net, path = _model_file(tmp_path)
    old = path.read_bytes()

    def failing_savez(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        fastdl.save(net, path)
    assert os.listdir(tmp_path) == ["model.npz"] and path.read_bytes() == old
    assert zipfile.is_zipfile(path)

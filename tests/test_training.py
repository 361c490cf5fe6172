"""The fit loop: history, validation, early stopping, callbacks, schedules, Ctrl-C, divergence."""
import os
import signal

import numpy as np
import pytest

from fastdl.models import MLP
from fastdl.training import Callback, TrainingDivergedError


def _data(n=120, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (classes, d))
    y = rng.integers(0, classes, n)
    X = (centers[y] + rng.normal(0, 1, (n, d))).astype(np.float32)
    return X, y


def _net(seed=0, **kw):
    return MLP([6, 8, 3], activation="relu", seed=seed, **kw)


def test_history_records_every_epoch_with_validation_metrics():
    X, y = _data()
    net = _net()
    history = net.fit(X, y, epochs=4, batch_size=16, lr=1e-2, validation_fraction=0.25)
    assert len(history) == 4 and history["epoch"] == [1, 2, 3, 4]
    assert all(k in history.records[0] for k in ("loss", "val_loss", "val_accuracy", "lr", "time"))
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.8
    assert net.epoch_ == 4 and net.step_ == 4 * int(np.ceil(90 / 16))
    assert history.stopped is None


def test_validation_data_matches_the_model_evaluation():
    X, y = _data()
    net = _net()
    history = net.fit(X[:90], y[:90], epochs=2, validation_data=(X[90:], y[90:]))
    assert history["val_accuracy"][-1] == pytest.approx(net.score(X[90:], y[90:]))


def test_continued_fits_equal_one_long_fit():
    """fit(2) + fit(2) gives the same bits as fit(4): shuffling is keyed by the epoch counter,
    masks by the step counter, and the optimizer keeps its state (partial_fit-friendly)."""
    X, y = _data()
    a, b = _net(dropout=0.2), _net(dropout=0.2)
    a.fit(X, y, epochs=4, batch_size=16)
    b.fit(X, y, epochs=2, batch_size=16)
    b.fit(X, y, epochs=2, batch_size=16)
    np.testing.assert_array_equal(a.arena.params, b.arena.params)


def test_early_stopping_restores_the_best_weights():
    X, y = _data()
    net = _net()
    snapshots = []

    class Keep(Callback):
        def on_epoch_end(self, state):
            snapshots.append(state.model.arena.params.copy())

    rng = np.random.default_rng(1)
    y_noise = rng.integers(0, 3, len(y))  # random validation labels: val_loss soon rises
    history = net.fit(X, y, epochs=60, batch_size=8, lr=5e-2, patience=3,
                      validation_data=(X[:40], y_noise[:40]), callbacks=[Keep()])
    assert history.stopped == "early_stopping" and len(history) < 60
    best = int(np.argmin(history["val_loss"]))
    assert history.best_epoch == best + 1
    np.testing.assert_array_equal(net.arena.params, snapshots[best])


def test_callbacks_lr_schedule_and_stop_request():
    X, y = _data()
    net = _net()
    seen = []

    class StopAfterTwo(Callback):
        def on_epoch_end(self, state):
            seen.append(state.logs["lr"])
            state.stop_training = state.epoch == 1

    history = net.fit(X, y, epochs=5, lr=1e-2, lr_schedule=lambda e: 0.1 / (e + 1),
                      callbacks=[StopAfterTwo(), lambda state: None])
    assert seen == [0.1, 0.05]
    assert history.stopped == "callback" and len(history) == 2


def test_ctrl_c_stops_after_the_current_step_with_consistent_weights():
    X, y = _data()
    net = _net()

    class Interrupt(Callback):
        def on_batch_end(self, state):
            if state.model.step_ == 3:
                os.kill(os.getpid(), signal.SIGINT)

    history = net.fit(X, y, epochs=5, batch_size=16, callbacks=[Interrupt()])
    assert history.stopped == "interrupted"
    assert net.step_ == 3 and net.epoch_ == 1 and len(history) == 1
    assert np.isfinite(net.arena.params).all()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # the weights are those of 3 complete steps: a fresh model trained for 3 steps agrees
    other = _net()

    class StopAtThree(Callback):
        def on_batch_end(self, state):
            state.stop_training = state.model.step_ == 3

    other.fit(X, y, epochs=5, batch_size=16, callbacks=[StopAtThree()])
    np.testing.assert_array_equal(net.arena.params, other.arena.params)


def test_divergence_raises_and_restores_the_last_good_weights():
    X, y = _data()
    net = MLP([6, 8, 1], activation="relu", output="identity")
    target = X.sum(axis=1)
    net.fit(X, target, epochs=1, optimizer="sgd", lr=1e-4)
    good = net.arena.params.copy()
    with pytest.raises(TrainingDivergedError, match="at epoch 1, step .*restored"):
        net.fit(X * 1e3, target, epochs=20, optimizer="sgd", lr=10.0)
    np.testing.assert_array_equal(net.arena.params, good)
    assert net.epoch_ == 1


def test_divergence_restores_the_weights_and_optimizer_state_its_epoch_started_from():
    X, y = _data()
    net = _net()
    epoch_ends = []

    class BlowUpInTheThirdEpoch(Callback):
        def on_epoch_end(self, state):
            epoch_ends.append((net.arena.params.copy(), state.optimizer.state_dict()))

        def on_batch_end(self, state):
            if state.epoch == 2:
                net.arena.params[...] = 1e30  # the next batch's loss is not finite

    with pytest.raises(TrainingDivergedError, match="at epoch 2, step 17"):
        net.fit(X, y, epochs=5, batch_size=16, callbacks=[BlowUpInTheThirdEpoch()])
    params, saved = epoch_ends[-1]
    np.testing.assert_array_equal(net.arena.params, params)
    restored = net.optimizer_.state_dict()
    assert restored["step"] == saved["step"] == 16 and restored["hyper"] == saved["hyper"]
    assert restored["state"].keys() == saved["state"].keys() == {"exp_avg", "exp_avg_sq"}
    for name, row in saved["state"].items():
        np.testing.assert_array_equal(restored["state"][name], row)


def test_progress_bar_runs_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    X, y = _data()
    history = _net().fit(X, y, epochs=2, progress=True)
    assert len(history) == 2
    assert "2/2" in capsys.readouterr().err


def test_fit_argument_errors_leave_the_model_unchanged():
    X, y = _data()
    net = _net()
    before = net.arena.params.copy()
    for kwargs, exc in [({"epochs": -1}, ValueError), ({"batch_size": 0}, ValueError),
                        ({"patience": 0}, ValueError), ({"optimizer": "lbfgs"}, ValueError),
                        ({"validation_fraction": 1.5}, ValueError), ({"epoch": 3}, TypeError)]:
        with pytest.raises(exc):
            net.fit(X, y, **kwargs)
    np.testing.assert_array_equal(net.arena.params, before)
    assert net.step_ == 0

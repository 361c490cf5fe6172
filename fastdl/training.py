"""The one training loop every fastdl model uses.

``train(model, optimizer, X, y, ...)`` runs mini-batch epochs: each epoch draws a permutation from
``(seed, epoch)``, gathers each batch into buffers allocated once per call, and asks the model for
one step (``model._train_step(xb, yb)``: forward, loss, backward into the gradient arena, returning
the batch loss), then calls ``optimizer.step()``. Nothing is allocated per step.

Around that: validation data or a validation fraction, early stopping with patience that puts the
best weights back, a :class:`History`, callbacks, a learning-rate schedule, a tqdm progress bar
(if tqdm is installed), Ctrl-C that stops after the current step with consistent weights, and a
NaN/inf loss that restores the last good weights and raises :class:`TrainingDivergedError`.

The model side of the protocol: ``model.arena.params`` (the flat parameter buffer),
``model.step_`` and ``model.epoch_`` (counters that seed corruption / dropout masks and shuffling,
so a continued fit never reuses a mask or a permutation), ``model._train_step(xb, yb)`` and
``model._evaluate(X, y, batch_size)`` → dict of validation metrics (``loss`` first).
"""
import math
import signal
import threading
import time

import numpy as np

from fastdl._validation import check_validation_fraction


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite; the model holds the last good weights."""


class Callback:
    """Base class for callbacks: override the hooks you need. Set ``state.stop_training = True``
    to end training after the current step or epoch."""

    def on_train_begin(self, state):
        pass

    def on_epoch_begin(self, state):
        pass

    def on_batch_end(self, state):
        pass

    def on_epoch_end(self, state):
        pass

    def on_train_end(self, state):
        pass


class _EpochEndFunction(Callback):
    """Wraps a plain callable ``f(state)`` as an on_epoch_end callback."""

    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, state):
        self.function(state)


class History:
    """One record (dict) per epoch: ``epoch``, ``loss``, ``lr``, ``time`` and, with validation,
    ``val_loss`` and the model's other validation metrics. ``history["loss"]`` gives a column.

    ``stopped`` says why training ended early (``"early_stopping"``, ``"interrupted"``,
    ``"callback"``) or is ``None``; ``best_epoch`` is the epoch whose weights were restored.
    """

    def __init__(self):
        self.records = []
        self.stopped = None
        self.best_epoch = None

    def __getitem__(self, key):
        return [record.get(key) for record in self.records]

    def __len__(self):
        return len(self.records)

    def __repr__(self):
        last = self.records[-1] if self.records else {}
        return f"History(epochs={len(self)}, last={last}, stopped={self.stopped!r})"


class TrainingState:
    """What callbacks see: the model, the optimizer, counters, the last batch loss and the history."""

    def __init__(self, model, optimizer, history):
        self.model = model
        self.optimizer = optimizer
        self.history = history
        self.epoch = 0
        self.batch_loss = float("nan")
        self.logs = {}
        self.stop_training = False


class _StopOnSigint:
    """While active, the first Ctrl-C only asks the loop to stop after the current step; a second
    one raises KeyboardInterrupt as usual. Python only lets the main thread install the handler,
    and only the main thread ever receives KeyboardInterrupt, so elsewhere this does nothing."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _split_validation(X, y, fraction, seed):
    n_val = int(round(len(X) * fraction))
    if n_val < 1 or n_val >= len(X):
        raise ValueError(f"validation_fraction={fraction} leaves no validation or no training sample "
                         f"out of {len(X)}")
    order = np.random.default_rng([seed, 0x5EED]).permutation(len(X))
    val, tr = np.sort(order[:n_val]), np.sort(order[n_val:])
    return X[tr], None if y is None else y[tr], X[val], None if y is None else y[val]


def _progress_bar(enabled, epochs):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=epochs, unit="epoch", leave=True)


def train(model, optimizer, X, y=None, *, epochs, batch_size, shuffle=True, seed=0,
          validation_data=None, validation_fraction=0.0, patience=None, min_delta=0.0,
          callbacks=(), lr_schedule=None, progress=False):
    """Train ``model`` with ``optimizer`` on validated, C-contiguous ``X`` (and targets ``y``).

    ``validation_data=(X_val, y_val)`` or ``validation_fraction`` (a seeded share of ``X`` held
    out) adds ``val_*`` metrics to each epoch. With ``patience`` set, training stops once the
    monitored value (``val_loss`` if there is validation, else ``loss``) has not improved by more
    than ``min_delta`` for ``patience`` epochs, and the best epoch's weights are put back.
    ``lr_schedule(epoch) -> lr`` sets the optimizer's learning rate before each epoch (``epoch``
    counts from 0 within this call). Returns the :class:`History`.
    """
    validation_fraction = check_validation_fraction(validation_fraction)
    if validation_fraction and validation_data is not None:
        raise ValueError("give validation_data or validation_fraction, not both")
    if validation_fraction:
        X, y, X_val, y_val = _split_validation(X, y, validation_fraction, seed)
    elif validation_data is not None:
        X_val, y_val = validation_data
    else:
        X_val = y_val = None
    n = len(X)
    batch_size = min(batch_size, n)
    history = History()
    state = TrainingState(model, optimizer, history)
    callbacks = [c if isinstance(c, Callback) else _EpochEndFunction(c) for c in callbacks]
    batch_callbacks = [c for c in callbacks if type(c).on_batch_end is not Callback.on_batch_end]

    # Batch buffers, allocated once: the full batch and (views of it) the short last batch.
    x_buf = np.empty((batch_size,) + X.shape[1:], dtype=X.dtype)
    y_buf = None if y is None else np.empty((batch_size,) + y.shape[1:], dtype=y.dtype)
    tail = n % batch_size
    views = {batch_size: (x_buf, y_buf)}
    if tail:
        views[tail] = (x_buf[:tail], None if y is None else y_buf[:tail])
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]

    params = model.arena.params
    # What a NaN/inf loss restores: the weights and optimizer state the epoch started from (the
    # last ones known to give finite losses), copied into buffers allocated once.
    good_params, good_optimizer = np.empty_like(params), None
    best_params = np.empty_like(params) if patience is not None else None  # read once filled
    best_value, best_epoch, waited = math.inf, None, 0
    monitor = "val_loss" if X_val is not None else "loss"
    bar = _progress_bar(progress, epochs)
    order = np.arange(n)

    for c in callbacks:
        c.on_train_begin(state)
    try:
        with _StopOnSigint() as sigint:
            for epoch in range(epochs):
                np.copyto(good_params, params)
                good_optimizer = optimizer._state_dict_reusing(good_optimizer)
                state.epoch = epoch
                if lr_schedule is not None:
                    optimizer.lr = float(lr_schedule(epoch))
                for c in callbacks:
                    c.on_epoch_begin(state)
                if shuffle:
                    order = np.random.default_rng([seed, model.epoch_]).permutation(n)
                index_views = [order[a:b] for a, b in bounds]
                started = time.perf_counter()
                total, seen = 0.0, 0
                for idx in index_views:
                    xb, yb = views[len(idx)]
                    np.take(X, idx, axis=0, out=xb, mode="wrap")  # 'wrap' avoids numpy's buffered copy
                    if y is not None:
                        np.take(y, idx, axis=0, out=yb, mode="wrap")
                    loss = model._train_step(xb, yb)
                    try:
                        if not math.isfinite(loss):
                            raise FloatingPointError(f"the training loss became {loss}")
                        optimizer.step()  # refuses a non-finite gradient, changing nothing
                    except FloatingPointError as exc:
                        np.copyto(params, good_params)
                        optimizer.load_state_dict(good_optimizer)
                        raise TrainingDivergedError(
                            f"{str(exc).split(';')[0]} at epoch {model.epoch_}, step {model.step_}; "
                            f"the weights from the end of the last finite epoch were restored "
                            f"(try a lower learning rate)") from None
                    model.step_ += 1
                    total += loss * len(idx)
                    seen += len(idx)
                    state.batch_loss = loss
                    for c in batch_callbacks:
                        c.on_batch_end(state)
                    if sigint.requested or state.stop_training:
                        break
                model.epoch_ += 1
                # an interrupted epoch's mean loss covers the batches it ran
                record = {"epoch": model.epoch_, "loss": total / seen, "lr": getattr(optimizer, "lr", None),
                          "time": time.perf_counter() - started}
                if X_val is not None:
                    record.update({f"val_{k}": v for k, v in model._evaluate(X_val, y_val, batch_size).items()})
                history.records.append(record)
                state.logs = record
                value = record[monitor]
                if value < best_value - min_delta:
                    best_value, best_epoch, waited = value, len(history), 0
                    if best_params is not None:
                        np.copyto(best_params, params)
                else:
                    waited += 1
                for c in callbacks:
                    c.on_epoch_end(state)
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items()
                                     if k in ("loss", "val_loss", "val_accuracy")})
                    bar.update(1)
                if sigint.requested:
                    history.stopped = "interrupted"
                    break
                if state.stop_training:
                    history.stopped = "callback"
                    break
                if patience is not None and waited >= patience:
                    history.stopped = "early_stopping"
                    break
    finally:
        if bar is not None:
            bar.close()
    if best_params is not None and best_epoch is not None:
        np.copyto(params, best_params)
        history.best_epoch = best_epoch
    for c in callbacks:
        c.on_train_end(state)
    return history

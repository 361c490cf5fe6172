"""The one training loop every fastdl model uses.

``train(model, optimizer, X, y, ...)`` runs mini-batch epochs: each epoch draws a permutation from
``(seed, epoch)``, gathers each batch into buffers allocated once per call (on the model's
backend: with cuda, the data is copied to the GPU once per call and the permutation once per
epoch; a step then reads back only the loss and the optimizer's finite-gradient flag), and asks
the model for one step (``model._train_step(xb, yb)``: forward, loss, backward into the gradient arena, returning
the batch loss), then calls ``optimizer.step()``. Nothing is allocated per step.

Around that: validation data or a validation fraction, early stopping with patience that puts the
best weights back, a :class:`History`, callbacks, a learning-rate schedule, a tqdm progress bar
(if tqdm is installed), Ctrl-C that stops after the current step with consistent weights, and a
NaN/inf loss that restores the last good weights and raises :class:`TrainingDivergedError`.
With ``comm`` (an mpi4py communicator) the ranks train one model together, data-parallel: see
:mod:`fastdl.distributed`.

The model side of the protocol: ``model.arena.params`` (the flat parameter buffer),
``model.step_`` and ``model.epoch_`` (counters that seed corruption / dropout masks and shuffling,
so a continued fit never reuses a mask or a permutation), ``model._train_step(xb, yb, first_row)``
(``first_row``: where ``xb`` starts in the whole batch, which another process may share) and
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


def _progress_bar(enabled, total, unit="epoch"):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit=unit, leave=True)


def _stop_reason(sigint, state, waited, patience):
    if sigint.requested:
        return "interrupted"
    if state.stop_training:
        return "callback"
    if patience is not None and waited >= patience:
        return "early_stopping"
    return None


def train(model, optimizer, X, y=None, *, epochs, batch_size, shuffle=True, seed=0,
          validation_data=None, validation_fraction=0.0, patience=None, min_delta=0.0,
          callbacks=(), lr_schedule=None, progress=False, comm=None):
    """Train ``model`` with ``optimizer`` on validated, C-contiguous ``X`` (and targets ``y``).

    ``validation_data=(X_val, y_val)`` or ``validation_fraction`` (a seeded share of ``X`` held
    out) adds ``val_*`` metrics to each epoch. With ``patience`` set, training stops once the
    monitored value (``val_loss`` if there is validation, else ``loss``) has not improved by more
    than ``min_delta`` for ``patience`` epochs, and the best epoch's weights are put back.
    ``lr_schedule(epoch) -> lr`` sets the optimizer's learning rate before each epoch (``epoch``
    counts from 0 within this call). Returns the :class:`History`.

    ``comm``: train data-parallel with the other ranks of this mpi4py communicator, each on its
    part of every batch (:mod:`fastdl.distributed`); validation and callbacks run on rank 0.
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
    ops = model.ops
    history = History()
    state = TrainingState(model, optimizer, history)
    replicas = None
    if comm is not None:
        from fastdl.distributed import Replicas, fingerprint

        replicas = Replicas(comm)
        settings = dict(epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed,
                        validation=None if X_val is None else X_val.shape, patience=patience,
                        min_delta=min_delta, lr_schedule=lr_schedule is not None)
        replicas.check_same(fingerprint(model, optimizer, X, y, settings))
        replicas.broadcast(model.arena.params)
    root = replicas is None or replicas.is_root  # validation, callbacks and the bar live here
    callbacks = [c if isinstance(c, Callback) else _EpochEndFunction(c) for c in callbacks] if root else []
    batch_callbacks = [c for c in callbacks if type(c).on_batch_end is not Callback.on_batch_end]

    # Each batch [start, stop) of the permutation, this process's rows [a, b) of it, and buffers
    # allocated once with a view per length that occurs (the short last batch, a rank's part).
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    parts = bounds if replicas is None else [replicas.rows(*bound) for bound in bounds]
    lengths = {b - a for a, b in parts}
    X, y = ops.to_device(X), None if y is None else ops.to_device(y)
    x_buf = ops.empty((max(lengths),) + X.shape[1:], X.dtype)
    y_buf = None if y is None else ops.empty((max(lengths),) + y.shape[1:], y.dtype)
    views = {k: (x_buf[:k], None if y is None else y_buf[:k]) for k in lengths}

    params = model.arena.params
    # What a NaN/inf loss restores: the weights and optimizer state the epoch started from (the
    # last ones known to give finite losses), copied into buffers allocated once.
    good_params, good_optimizer = ops.empty(params.shape, params.dtype), None
    best_params = ops.empty(params.shape, params.dtype) if patience is not None else None  # read once filled
    best_value, best_epoch, waited = math.inf, None, 0
    monitor = "val_loss" if X_val is not None else "loss"
    bar = _progress_bar(progress and root, epochs)
    order = ops.to_device(np.arange(n))

    for c in callbacks:
        c.on_train_begin(state)
    try:
        with _StopOnSigint() as sigint:
            for epoch in range(epochs):
                ops.copy(params, good_params)
                good_optimizer = optimizer._state_dict_reusing(good_optimizer)
                state.epoch = epoch
                if lr_schedule is not None:
                    optimizer.lr = float(lr_schedule(epoch))
                for c in callbacks:
                    c.on_epoch_begin(state)
                if shuffle:
                    order = ops.to_device(np.random.default_rng([seed, model.epoch_]).permutation(n))
                started = time.perf_counter()
                total, seen = 0.0, 0
                for (start, stop), (a, b) in zip(bounds, parts):
                    idx = order[a:b]
                    xb, yb = views[b - a]
                    ops.take_rows(X, idx, xb)
                    if y is not None:
                        ops.take_rows(y, idx, yb)
                    if b > a:
                        loss = model._train_step(xb, yb, a - start)
                    else:  # a batch shorter than the number of ranks: no row here
                        model.arena.zero_grad()
                        loss = 0.0
                    if replicas is not None:
                        share = (b - a) / (stop - start)
                        loss, stopping = replicas.step(loss, share, sigint.requested or state.stop_training)
                        if stopping:  # asked for after the previous step: this one is not taken
                            break
                        replicas.average_gradients(model.arena.grads, share, model.ops)
                    try:
                        if not math.isfinite(loss):
                            raise FloatingPointError(f"the training loss became {loss}")
                        optimizer.step()  # refuses a non-finite gradient, changing nothing
                    except FloatingPointError as exc:
                        ops.copy(good_params, params)
                        optimizer.load_state_dict(good_optimizer)
                        raise TrainingDivergedError(
                            f"{str(exc).split(';')[0]} at epoch {model.epoch_}, step {model.step_}; "
                            f"the weights from the end of the last finite epoch were restored "
                            f"(try a lower learning rate)") from None
                    model.step_ += 1
                    total += loss * (stop - start)
                    seen += stop - start
                    state.batch_loss = loss
                    for c in batch_callbacks:
                        c.on_batch_end(state)
                    if replicas is None and (sigint.requested or state.stop_training):
                        break
                model.epoch_ += 1
                record = None
                if root:  # an interrupted epoch's mean loss covers the batches it ran
                    record = {"epoch": model.epoch_, "loss": total / seen if seen else math.nan, "lr": getattr(optimizer, "lr", None),
                              "time": time.perf_counter() - started}
                    if X_val is not None:
                        record.update({f"val_{k}": v for k, v in model._evaluate(X_val, y_val, batch_size).items()})
                if replicas is not None:
                    record = replicas.agree(record)[0]
                history.records.append(record)
                state.logs = record
                value = record[monitor]
                if value < best_value - min_delta:
                    best_value, best_epoch, waited = value, len(history), 0
                    if best_params is not None:
                        ops.copy(params, best_params)
                else:
                    waited += 1
                for c in callbacks:
                    c.on_epoch_end(state)
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items()
                                     if k in ("loss", "val_loss", "val_accuracy")})
                    bar.update(1)
                stopped = _stop_reason(sigint, state, waited, patience)
                if replicas is not None:  # rank 0's reason first, else any rank's Ctrl-C
                    stopped = next((r for r in replicas.agree(stopped) if r is not None), None)
                if stopped is not None:
                    history.stopped = stopped
                    break
    finally:
        if bar is not None:
            bar.close()
    if best_params is not None and best_epoch is not None:
        ops.copy(best_params, params)
        history.best_epoch = best_epoch
    for c in callbacks:
        c.on_train_end(state)
    if replicas is not None:  # the last collective: nothing that can fail on one rank follows
        replicas.check_in_step(params)
    return history

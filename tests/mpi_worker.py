"""Run by tests/test_distributed.py under ``mpiexec -n 2``: ``python mpi_worker.py SCENARIO OUT``.

Each rank writes ``OUT/<scenario>.rank<r>.npz`` with what the test compares: the weights after a
distributed fit, rank 0 also those of the same fit in one process, and for the faults the error
each rank raised.
"""
import sys

import numpy as np
from mpi4py import MPI

from fastdl.distributed import DistributedError
from fastdl.models import MLP, Autoencoder, StackedAutoencoder
from fastdl.training import Callback, TrainingDivergedError

COMM = MPI.COMM_WORLD
RANK = COMM.Get_rank()
# 29 rows in batches of 7: the last batch has 1 row, so rank 0 holds none of it
X = np.random.default_rng(1).random((29, 6))
Y = np.arange(29) % 3


class StopAtStep(Callback):
    def __init__(self, step):
        self.step = step

    def on_batch_end(self, state):
        state.stop_training = state.model.step_ == self.step


def models(dtype):
    """(name, a fresh model, how it is fitted) for every kind of model and noise."""
    yield ("mlp", lambda: MLP([6, 5, 4, 3], dropout=0.25, dtype=dtype, seed=3),
           lambda m, **kw: m.fit(X, Y, epochs=4, batch_size=7, validation_fraction=0.2, patience=2, **kw))
    yield ("mlp_stopped", lambda: MLP([6, 5, 3], activation="tanh", dtype=dtype),
           lambda m, **kw: m.fit(X, Y, epochs=3, batch_size=7, optimizer="momentum", lr=0.1,
                                 callbacks=[StopAtStep(6)], **kw))
    yield ("autoencoder", lambda: Autoencoder(6, 4, corruption=("mask", 0.3), dtype=dtype, seed=5),
           lambda m, **kw: m.fit(X, epochs=3, batch_size=7, **kw))
    yield ("stacked", lambda: StackedAutoencoder([6, 5, 4], 3, corruption=("gaussian", 0.1), dtype=dtype),
           lambda m, **kw: m.fit(X, Y, pretrain_epochs=2, epochs=2, batch_size=7, lr=1e-2, **kw))


def _history(prefix, history):
    return {f"{prefix}.loss": np.array(history["loss"], float),
            f"{prefix}.val_loss": np.array(history["val_loss"], float),  # None (nan) without validation
            f"{prefix}.stopped": np.array(str(history.stopped))}


def equivalence():
    """Every model, float64 and float32, trained by both ranks and (rank 0) by one process."""
    result = {}
    for dtype in ("float64", "float32"):
        for name, build, fit in models(dtype):
            model = build()
            if RANK:  # rank 0's initial weights must win
                model.arena.params[...] = 0.5
            result.update(_history(f"{dtype}.{name}", fit(model, comm=COMM)))
            result[f"{dtype}.{name}.params"] = model.arena.params
            if RANK == 0:
                single = build()
                result.update(_history(f"{dtype}.{name}.single", fit(single)))
                result[f"{dtype}.{name}.single.params"] = single.arena.params
    return result


def _failing_step(model, at_call, failure):
    """Make this rank's ``model._train_step`` fail on its ``at_call``-th call."""
    original, calls = model._train_step, [0]

    def step(xb, yb, first_row=0):
        calls[0] += 1
        loss = original(xb, yb, first_row)
        if calls[0] == at_call:
            if failure == "nan":
                return float("nan")
            raise RuntimeError("injected failure")
        return loss

    model._train_step = step


class EpochStart(Callback):
    def on_epoch_begin(self, state):
        self.params = state.model.arena.params.copy()


def faults():
    """Each fault in turn: the error every rank raised and its weights before and after."""
    result = {}
    cases = {"bad_input": {"X": np.where(np.eye(29, 6, dtype=bool), np.nan, X) if RANK else X},
             "mismatch": {"batch_size": 8 if RANK else 7},
             "nan_loss": {"fail": (8, "nan")}, "raises": {"fail": (8, "raise")}}
    for case, options in cases.items():
        model = MLP([6, 5, 3], dtype="float64")
        if "fail" in options and RANK == 1:
            _failing_step(model, *options["fail"])
        epoch_start = EpochStart()
        before = model.arena.params.copy()
        try:
            model.fit(options.get("X", X), Y, epochs=3, batch_size=options.get("batch_size", 7), comm=COMM,
                      callbacks=[epoch_start])
            raised = "nothing"
        except (DistributedError, TrainingDivergedError) as exc:
            raised = f"{type(exc).__name__}: {exc}"
        result[f"{case}.error"] = np.array(raised)
        result[f"{case}.before"] = before
        result[f"{case}.after"] = model.arena.params
        result[f"{case}.step"] = np.array(model.step_)
        if RANK == 0 and hasattr(epoch_start, "params"):
            result[f"{case}.epoch_start"] = epoch_start.params
    return result


if __name__ == "__main__":
    scenario, out = sys.argv[1], sys.argv[2]
    np.savez(f"{out}/{scenario}.rank{RANK}.npz", **{"equivalence": equivalence, "faults": faults}[scenario]())

"""Synchronous data-parallel training over MPI: ``model.fit(X, y, comm=MPI.COMM_WORLD)``.

Every process (rank) holds the whole data set and builds the same model; then, in
:func:`fastdl.training.train`:

- the ranks check that they agree on the model, data, optimizer and settings, and rank 0's
  weights are broadcast;
- every rank draws the same permutation from the seed, and of each global batch of L rows rank r
  takes rows ``[r L / n, (r + 1) L / n)`` (n ranks); dropout and corruption masks are drawn for
  the rows' positions in the whole batch;
- its gradient (the loss kernels give means over its rows) is weighted by its share of the batch,
  ``rows / L``, and **one** in-place ``Allreduce`` over the flat gradient arena sums them, so every
  rank holds the gradient of the global batch's mean loss, and takes the same optimizer step.

So n ranks with batch L give the model one process gives with batch L, up to float rounding.
Validation, callbacks and the progress bar run on rank 0; its records and its stop decisions
(early stopping, a callback) reach every rank. A process holding rows of the batch but a
different model would be a silent error, hence the check at the start.

Faults: every control point is :meth:`Replicas.agree` (an allgather), and the gradient Allreduce
follows the step's agreement with nothing that can raise in between. A rank that raises anywhere
in ``fit`` (bad input, a failing callback) meets the others at their next agreement with its
error (:func:`collective`), and every rank raises the same :class:`DistributedError`, holding the
weights of the last step all ranks took. A NaN loss on one rank makes the summed loss NaN
everywhere: every rank raises :class:`~fastdl.training.TrainingDivergedError` and restores the
same weights.

mpi4py is imported only here, when a ``comm`` is given.
"""
import contextlib
import functools
import os
import zlib

import numpy as np

from fastdl.training import TrainingDivergedError

__all__ = ["DistributedError", "Replicas", "collective", "fingerprint", "reported", "world_from_launcher"]


class DistributedError(RuntimeError):
    """A rank failed or the ranks disagree; raised on every rank alike."""


def _crc(array):
    return zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"))


def fingerprint(model, optimizer, X, y, settings):
    """What every rank must have alike to train one model: plain strings, one per aspect."""
    prints = {"model": f"{type(model).__name__}({model.get_config()})",
              "backend": model.ops.__name__.rsplit(".", 1)[-1],
              "parameters": f"{model.arena.size} {model.arena.dtype.name}",
              "counters": f"step {model.step_}, epoch {model.epoch_}",
              "optimizer": f"{type(optimizer).__name__}({optimizer.state_dict()['hyper']})",
              "X": f"{X.shape} {X.dtype} crc32 {_crc(X):08x}",
              "y": "None" if y is None else f"{y.shape} {y.dtype} crc32 {_crc(y):08x}"}
    prints.update({name: repr(value) for name, value in settings.items()})
    return prints


class Replicas:
    """The ranks of ``comm`` training one model together: the collectives the training loop uses."""

    def __init__(self, comm):
        from mpi4py import MPI  # optional: pip install "fastdl[mpi]"

        if not isinstance(comm, MPI.Intracomm):
            raise TypeError(f"comm must be an mpi4py intra-communicator such as MPI.COMM_WORLD, "
                            f"got {type(comm).__name__}")
        self._in_place = MPI.IN_PLACE
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.is_root = self.rank == 0

    def rows(self, start, stop):
        """This rank's contiguous part ``(a, b)`` of the global batch's rows ``[start, stop)``."""
        n = stop - start
        return start + self.rank * n // self.size, start + (self.rank + 1) * n // self.size

    def agree(self, payload=None, error=None):
        """Every rank's ``payload``, in rank order, once all ranks got here. If any rank brings an
        ``error`` (its local exception), every rank raises one DistributedError naming them all."""
        brought = None if error is None else f"{type(error).__name__}: {error}"
        gathered = self.comm.allgather((brought, payload))
        failed = [f"rank {rank}: {message}" for rank, (message, _) in enumerate(gathered) if message]
        if failed:
            raise DistributedError(f"training stopped on all {self.size} ranks; "
                                   + "; ".join(failed)) from error
        return [item for _, item in gathered]

    def check_same(self, prints):
        """Raise DistributedError on every rank unless all ranks' :func:`fingerprint` are equal."""
        everyone = self.agree(prints)
        differ = [f"{name} is {mine[name]} on rank {rank} but {everyone[0][name]} on rank 0"
                  for rank, mine in enumerate(everyone) for name in everyone[0]
                  if mine.get(name) != everyone[0][name]]
        if differ:
            raise DistributedError("the ranks were given different configurations: " + "; ".join(differ))

    def broadcast(self, params):
        """Rank 0's ``params``, in place, on every rank."""
        self.comm.Bcast(params, root=0)

    def step(self, loss, share, stop):
        """The global batch loss ``Σ_r share_r · loss_r`` (summed in rank order, so the same
        float on every rank) and whether any rank asks to stop."""
        everyone = self.agree((loss * share if share else 0.0, bool(stop)))
        return sum(part for part, _ in everyone), any(asks for _, asks in everyone)

    def average_gradients(self, grads, share, ops):
        """``grads ← Σ_r share_r · grads_r``: the gradient of the global batch's mean loss."""
        ops.scale(grads, share)
        self.comm.Allreduce(self._in_place, grads)

    def check_in_step(self, params):
        """Raise on every rank unless all hold bit-identical ``params`` (a checksum each)."""
        sums = self.agree(_crc(params))
        if len(set(sums)) > 1:
            raise DistributedError(f"the ranks' weights drifted apart (checksums {sums}): this MPI's "
                                   f"Allreduce does not give every rank the same sum")


def world_from_launcher():
    """``MPI.COMM_WORLD`` when this process was started by ``mpiexec`` / ``mpirun`` with more than
    one process (MPICH and Intel MPI set ``PMI_SIZE``, Open MPI ``OMPI_COMM_WORLD_SIZE``), else None."""
    size = os.environ.get("PMI_SIZE") or os.environ.get("OMPI_COMM_WORLD_SIZE") or "1"
    if int(size) <= 1:
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD


@contextlib.contextmanager
def reported(comm):
    """With a ``comm``, a local exception inside the block (bad input on this rank, a failing
    callback) is brought to the other ranks' next :meth:`Replicas.agree`, so that every rank
    raises the same DistributedError instead of waiting forever for this one."""
    if comm is None:
        yield
        return
    replicas = Replicas(comm)
    try:
        yield
    except (DistributedError, TrainingDivergedError):  # every rank raises these alike
        raise
    except Exception as exc:
        replicas.agree(error=exc)  # raises on every rank


def collective(fit):
    """Decorates a model's ``fit``: its ``comm=`` keyword runs it :func:`reported`."""

    @functools.wraps(fit)
    def run(self, *args, comm=None, **kwargs):
        if comm is None:
            return fit(self, *args, **kwargs)
        with reported(comm):
            return fit(self, *args, comm=comm, **kwargs)

    return run

"""One MNIST-size synthetic epoch, data-parallel over MPI ranks or in one process, and what the
gradient Allreduce costs. A script, not a pytest-benchmark group: it runs under ``mpiexec``.

    python benchmarks/mpi_epoch.py --threads 2                  # 1 rank × 2 threads
    mpiexec -n 2 python benchmarks/mpi_epoch.py --threads 1     # 2 ranks × 1 thread

The model is 784-500-500-10 (ReLU, softmax head, Adam, float32) on 60000 × 784 rows in [0, 1],
batch 256, shuffled: 235 steps. A fit of two batches first loads the kernels (not timed). Under
mpiexec the communicator is wrapped to time its collectives, so the report splits each step into
the gradient ``Allreduce`` (2.6 MB), the control ``allgather`` (loss, stop, errors) and the rest
(compute), then times bare in-place Allreduces of the arena to give bytes per second.
"""
import argparse
import time

import numpy as np

import fastdl
from fastdl.models import MLP

SIZES, ROWS, BATCH = [784, 500, 500, 10], 60_000, 256


def _timed_world():
    """COMM_WORLD, with its Allreduce and allgather timed (seconds summed in ``.spent``)."""
    from mpi4py import MPI

    class Timed(MPI.Intracomm):
        spent = {"Allreduce": 0.0, "allgather": 0.0}
        calls = {"Allreduce": 0, "allgather": 0}

        def _time(self, name, call, *args):
            started = time.perf_counter()
            result = call(*args)
            self.spent[name] += time.perf_counter() - started
            self.calls[name] += 1
            return result

        def Allreduce(self, *args):
            return self._time("Allreduce", super().Allreduce, *args)

        def allgather(self, *args):
            return self._time("allgather", super().allgather, *args)

    return Timed(MPI.COMM_WORLD)


def _bandwidth(comm, size, repeats=50):
    """Seconds per in-place Allreduce of ``size`` float32, the best of ``repeats``."""
    from mpi4py import MPI

    buffer = np.ones(size, np.float32)
    best = np.inf
    for _ in range(repeats):
        comm.Barrier()
        started = time.perf_counter()
        MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, buffer)
        best = min(best, time.perf_counter() - started)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="threads per rank")
    parser.add_argument("--rows", type=int, default=ROWS)
    args = parser.parse_args()
    fastdl.set_num_threads(args.threads)
    from fastdl.distributed import world_from_launcher

    comm = _timed_world() if world_from_launcher() is not None else None
    ranks = 1 if comm is None else comm.Get_size()
    rng = np.random.default_rng(0)
    X = rng.random((args.rows, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], args.rows)
    warm = MLP(SIZES, seed=1)
    warm.fit(X[:2 * BATCH], y[:2 * BATCH], epochs=1, batch_size=BATCH, comm=comm)
    if comm is not None:
        for name in comm.spent:
            comm.spent[name], comm.calls[name] = 0.0, 0
    net = MLP(SIZES, seed=0)
    started = time.perf_counter()
    net.fit(X, y, epochs=1, batch_size=BATCH, comm=comm)
    epoch = time.perf_counter() - started
    if comm is not None and comm.Get_rank() != 0:
        _bandwidth(comm, net.arena.size)
        return
    steps = -(-args.rows // BATCH)
    nbytes = net.arena.size * net.arena.dtype.itemsize
    print(f"{ranks} rank(s) x {args.threads} thread(s), {fastdl.get_backend()} kernels: one epoch of "
          f"{args.rows} x {SIZES[0]}, {'-'.join(map(str, SIZES))}, batch {BATCH}: {epoch:.2f} s, "
          f"{1e3 * epoch / steps:.2f} ms/step over {steps} steps")
    if comm is None:
        return
    reduce, gather = comm.spent["Allreduce"], comm.spent["allgather"]
    bare = _bandwidth(comm, net.arena.size)
    print(f"gradient Allreduce: {comm.calls['Allreduce']} calls, {1e3 * reduce / steps:.3f} ms/step = "
          f"{100 * reduce / epoch:.1f}% of step time; control allgather {1e3 * gather / steps:.3f} ms/step = "
          f"{100 * gather / epoch:.1f}%")
    print(f"bytes per step: {nbytes / 1e6:.2f} MB of float32 gradients; a bare in-place Allreduce of them "
          f"takes {1e3 * bare:.3f} ms = {nbytes / bare / 1e9:.2f} GB/s of arena "
          f"(a ring moves 2(n-1)/n of it per rank: {2 * (ranks - 1) / ranks * nbytes / bare / 1e9:.2f} GB/s)")


if __name__ == "__main__":
    main()

"""Models on the cuda backend, on numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1 pytest
tests/test_cuda_models.py``; CI does): the state stays on the device, and a whole pre-training +
fine-tuning ends with the CPU backend's weights. The simulator runs every GPU thread as a Python
thread, so the shapes are tiny. Skipped without numba-cuda, or with neither a GPU nor the simulator."""
import numpy as np
import pytest

import fastdl
from conftest import BACKENDS, SIMULATOR_WARNINGS, cuda_backend_or_skip
from fastdl.models import Autoencoder, MLP, StackedAutoencoder

cuda_ops = cuda_backend_or_skip()
pytestmark = SIMULATOR_WARNINGS
CPU = BACKENDS[0]
TOLERANCE = {np.float32: 2e-5, np.float64: 1e-11}


def _on(name, build):
    previous = fastdl.get_backend()
    fastdl.set_backend(name)
    try:
        return build()
    finally:
        fastdl.set_backend(previous)


def _data(dtype, n=8, d=6, classes=3):
    rng = np.random.default_rng(1)
    return rng.random((n, d)).astype(dtype), np.arange(n) % classes


@pytest.mark.parametrize("dtype, activation, tied, corruption, dropout", [
    (np.float64, "sigmoid", True, ("mask", 0.3), 0.25),
    (np.float32, "prelu", False, ("gaussian", 0.1), 0.0),
])
def test_pretrain_and_finetune_end_with_the_cpu_backends_weights(dtype, activation, tied,
                                                                 corruption, dropout):
    X, y = _data(dtype)

    def run():
        net = StackedAutoencoder([6, 4], 3, activation=activation, tied=tied, corruption=corruption,
                                 dropout=dropout, dtype=dtype, seed=3)
        history = net.fit(X, y, pretrain_epochs=1, epochs=2, batch_size=4, lr=0.05)
        return net, history

    gpu, gpu_history = _on("cuda", run)
    cpu, cpu_history = _on(CPU, run)
    assert gpu.ops is cuda_ops and cuda_ops.holds(gpu.arena.params)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(gpu_history["loss"], cpu_history["loss"], rtol=tol)
    np.testing.assert_allclose(cuda_ops.to_host(gpu.arena.params), cpu.arena.params, rtol=tol,
                               atol=tol)
    for name in cpu.optimizer_.state:
        np.testing.assert_allclose(gpu.optimizer_.state_dict()["state"][name],
                                   cpu.optimizer_.state[name], rtol=tol, atol=tol)
    proba = gpu.predict_proba(X)
    assert isinstance(proba, np.ndarray)
    np.testing.assert_allclose(proba, cpu.predict_proba(X), rtol=tol, atol=tol)
    np.testing.assert_array_equal(gpu.predict(X), cpu.predict(X))


def test_a_fit_keeps_every_array_on_the_device_and_returns_host_results():
    X, y = _data(np.float32)
    net = _on("cuda", lambda: MLP([6, 5, 3], activation="relu", dtype=np.float32, seed=0))
    net.fit(X, y, epochs=1, batch_size=4, validation_fraction=0.25)
    arrays = [net.arena.params, net.arena.grads, *net.optimizer_.state.values()]
    arrays += [a for ws in net._workspaces.values() for layer in ws["layers"] for a in layer.values()]
    assert all(cuda_ops.holds(a) for a in arrays)
    for result in (net.predict(X), net.predict_proba(X), net.decision_function(X)):
        assert isinstance(result, np.ndarray)
    assert isinstance(net.score(X, y), float)


def test_a_training_step_reads_back_only_the_loss_and_the_finite_flag(monkeypatch):
    X, y = _data(np.float32, n=12)
    net = _on("cuda", lambda: MLP([6, 5, 3], dtype=np.float32, seed=0))
    net.fit(X, y, epochs=1, batch_size=4)  # the first fit allocates the workspaces
    reads = []
    fake_or_real = type(cuda_ops.empty(1, np.float32))
    original = fake_or_real.copy_to_host
    monkeypatch.setattr(fake_or_real, "copy_to_host",
                        lambda self, *a, **k: reads.append(self.size) or original(self, *a, **k))
    net.fit(X, y, epochs=2, batch_size=4)
    steps = 2 * 3
    assert len(reads) == 2 * steps and max(reads) == 1  # one scalar each
    reads.clear()  # without the finite check: the loss alone
    net.fit(X, y, epochs=2, batch_size=4, optimizer=fastdl.optim.Adam(net.arena, check_finite=False))
    assert len(reads) == steps and max(reads) == 1


def test_autoencoder_codes_and_reconstructions_match_the_cpu():
    X, _ = _data(np.float64)

    def run():
        ae = Autoencoder(6, 4, tied=True, loss="bce", dtype=np.float64, seed=2)
        ae.fit(X, epochs=1, batch_size=4)
        return ae

    gpu, cpu = _on("cuda", run), _on(CPU, run)
    for method in ("encode", "reconstruct"):
        np.testing.assert_allclose(getattr(gpu, method)(X), getattr(cpu, method)(X), rtol=1e-11)
    np.testing.assert_allclose(gpu.decode(cpu.encode(X)), cpu.decode(cpu.encode(X)), rtol=1e-11)
    assert gpu.reconstruction_error(X) == pytest.approx(cpu.reconstruction_error(X), rel=1e-11)


def test_a_model_saved_on_the_gpu_loads_on_the_cpu(tmp_path):
    X, y = _data(np.float32)
    net = _on("cuda", lambda: MLP([6, 5, 3], dtype=np.float32, seed=0))
    net.fit(X, y, epochs=1, batch_size=4)
    fastdl.save(net, tmp_path / "net.npz")
    loaded = _on(CPU, lambda: fastdl.load(tmp_path / "net.npz"))
    np.testing.assert_allclose(loaded.predict_proba(X), net.predict_proba(X), rtol=1e-5)
    back = _on("cuda", lambda: fastdl.load(tmp_path / "net.npz"))
    assert cuda_ops.holds(back.arena.params) and cuda_ops.holds(back.optimizer_.state["exp_avg"])
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))


def test_mpi_training_is_refused_on_the_cuda_backend_before_anything_changes():
    MPI = pytest.importorskip("mpi4py.MPI")
    X, y = _data(np.float32)
    net = _on("cuda", lambda: MLP([6, 5, 3], dtype=np.float32, seed=0))
    before = cuda_ops.to_host(net.arena.params)
    with pytest.raises(Exception, match="runs on the CPU backends"):  # DistributedError on every rank
        net.fit(X, y, epochs=1, comm=MPI.COMM_SELF)
    np.testing.assert_array_equal(cuda_ops.to_host(net.arena.params), before)
    assert net.optimizer_ is None

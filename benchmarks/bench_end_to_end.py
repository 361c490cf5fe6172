"""End to end: greedy pre-training + fine-tuning, and one-sample inference, fastdl against torch.

Run: ``pytest benchmarks/bench_end_to_end.py --benchmark-columns=min,median,rounds`` and read each
group's fastdl/torch ratio.

- ``pretrain_finetune``: greedy pre-training of a 784-500-500 sigmoid stack (untied autoencoders,
  one epoch per layer, each layer on the codes of the one below) then one fine-tuning epoch of
  784-500-500-10 with softmax cross-entropy; 10k synthetic 784-dim samples in [0, 1], batch 64,
  Adam(lr 1e-3), float32, 2 threads, shuffled each epoch. The torch script is the same algorithm:
  ``nn.Linear`` layers, the same losses (½‖x − x̂‖² per sample, averaged), ``torch.optim.Adam``
  (its default implementation for CPU tensors).
- ``latency_batch1``: ``predict_proba`` of one sample through 784-500-500-10 (ReLU): the public
  fastdl call (validation included) against torch eager under ``inference_mode`` and plain numpy.
"""
import numpy as np
import pytest

from conftest import fastdl_impls
from fastdl.models import MLP, StackedAutoencoder

N, D, HIDDEN, CLASSES, BATCH = 10_000, 784, (500, 500), 10, 64


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.random((N, D), dtype=np.float32)
    y = rng.integers(0, CLASSES, N)
    return X, y


def _fastdl_run(X, y):
    net = StackedAutoencoder([D, *HIDDEN], CLASSES, activation="sigmoid", tied=False, seed=0)
    net.fit(X, y, pretrain_epochs=1, epochs=1, batch_size=BATCH, lr=1e-3, pretrain_lr=1e-3)
    return net


def _torch_run(torch, X, y):
    nn = torch.nn
    torch.manual_seed(0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    encoders = [nn.Linear(n_in, n_out) for n_in, n_out in zip((D,) + HIDDEN[:-1], HIDDEN)]
    codes = Xt
    for encoder in encoders:  # greedy: one autoencoder per layer on the codes below
        decoder = nn.Linear(encoder.out_features, encoder.in_features)
        opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
        for idx in torch.randperm(N).split(BATCH):
            xb = codes[idx]
            recon = torch.sigmoid(decoder(torch.sigmoid(encoder(xb))))
            loss = 0.5 * ((recon - xb) ** 2).sum(dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            codes = torch.sigmoid(encoder(codes))
    layers = []
    for encoder in encoders:
        layers += [encoder, nn.Sigmoid()]
    net = nn.Sequential(*layers, nn.Linear(HIDDEN[-1], CLASSES))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for idx in torch.randperm(N).split(BATCH):
        loss = nn.functional.cross_entropy(net(Xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


@pytest.mark.benchmark(group="pretrain_finetune")
@pytest.mark.parametrize("impl", fastdl_impls(""))
def test_pretrain_finetune_fastdl(benchmark, data, impl):
    X, y = data
    _fastdl_run(X[:512], y[:512])  # compile outside the timing
    net = benchmark.pedantic(_fastdl_run, args=(X, y), rounds=3, iterations=1)
    assert np.isfinite(net.arena.params).all()


@pytest.mark.benchmark(group="pretrain_finetune")
def test_pretrain_finetune_torch(benchmark, data):
    torch = pytest.importorskip("torch")
    X, y = data
    net = benchmark.pedantic(_torch_run, args=(torch, X, y), rounds=3, iterations=1)
    assert all(torch.isfinite(p).all() for p in net.parameters())


@pytest.fixture
def latency_net():
    """Built under the test's backend (a model keeps the backend it was built with)."""
    net = MLP([D, *HIDDEN, CLASSES], activation="relu", seed=0)
    net.classes_ = np.arange(CLASSES)
    return net


@pytest.mark.benchmark(group="latency_batch1")
@pytest.mark.parametrize("impl", fastdl_impls(""))
def test_latency_fastdl(benchmark, latency_net, impl):
    x = np.random.default_rng(1).random((1, D), dtype=np.float32)
    latency_net.predict_proba(x)
    proba = benchmark(latency_net.predict_proba, x)
    assert proba.shape == (1, CLASSES) and abs(proba.sum() - 1) < 1e-5


@pytest.mark.benchmark(group="latency_batch1")
def test_latency_numpy(benchmark, latency_net):
    x = np.random.default_rng(1).random((1, D), dtype=np.float32)
    layers = latency_net.layers

    def forward(x):
        for layer in layers[:-1]:
            x = np.maximum(x @ layer.W.T + layer.b, 0)
        z = x @ layers[-1].W.T + layers[-1].b
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    np.testing.assert_allclose(benchmark(forward, x), latency_net.predict_proba(x), rtol=1e-4, atol=1e-6)


@pytest.mark.benchmark(group="latency_batch1")
def test_latency_torch(benchmark, latency_net):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    layers = []
    for layer in latency_net.layers:
        linear = nn.Linear(layer.n_in, layer.n_out)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.W))
            linear.bias.copy_(torch.from_numpy(layer.b))
        layers += [linear, nn.ReLU()]
    net = nn.Sequential(*layers[:-1], nn.Softmax(dim=1)).eval()
    x = torch.from_numpy(np.random.default_rng(1).random((1, D), dtype=np.float32))

    def forward(x):
        with torch.inference_mode():
            return net(x)

    out = benchmark(forward, x)
    np.testing.assert_allclose(out.numpy(), latency_net.predict_proba(x.numpy()), rtol=1e-4, atol=1e-6)

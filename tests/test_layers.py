"""Layers and initializers: forward against numpy, parameters as arena views, dropout statistics."""
import numpy as np
import pytest

from fastdl import init as initializers
from fastdl._kernels.registry import check_activation
from fastdl.layers import Dense, Dropout
from fastdl.models import MLP, Network


def test_dense_weights_are_views_of_the_arena_and_forward_matches_numpy():
    net = MLP([5, 4, 3], activation="relu", dtype=np.float64, seed=2)
    first, last = net.layers
    assert np.shares_memory(first.W, net.arena.params) and np.shares_memory(last.b, net.arena.params)
    assert np.shares_memory(first.dW, net.arena.grads)
    assert [s.name for s in net.arena.specs] == ["layer0.W", "layer0.b", "layer1.W", "layer1.b"]
    X = np.random.default_rng(0).normal(size=(7, 5))
    first.b[:] = 0.1
    hidden = np.maximum(X @ first.W.T + first.b, 0)
    np.testing.assert_allclose(net.decision_function(X), hidden @ last.W.T + last.b, rtol=1e-12)


def test_learnable_activation_parameters_live_in_the_arena_and_train():
    net = MLP([4, 6, 2], activation="prelu", seed=0, dtype=np.float64)
    alpha = net.arena.param("layer0.alpha")
    assert alpha.shape == (6,) and np.all(alpha == 0.25)
    X = np.random.default_rng(1).normal(size=(32, 4))
    net.fit(X, (X[:, 0] > 0).astype(int), epochs=3, lr=1e-2)
    assert not np.all(net.arena.param("layer0.alpha") == 0.25)
    assert MLP([4, 3, 2], activation="swish").arena.param("layer0.beta").shape == (1,)
    fixed = MLP([4, 6, 2], activation="leaky_relu", negative_slope=0.2, dtype=np.float64)
    fixed.fit(X, (X[:, 0] > 0).astype(int), epochs=1)
    assert fixed.layers[0].p.tolist() == [0.2]  # a fixed parameter is not trained


@pytest.mark.parametrize("bad, message", [
    (dict(n_in=0, n_out=3), "n_in must be a positive int"),
    (dict(n_in=2, n_out=3, activation="softplus"), "activation must be one of"),
    (dict(n_in=2, n_out=3, activation="relu", alpha=2.0), "takes no parameter"),
    (dict(n_in=2, n_out=3, init="orthogonal"), "init must be"),
    (dict(n_in=2, n_out=3, activation="gelu", approximate="erf"), "approximate"),
])
def test_dense_rejects_bad_arguments(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Dense(**bad)


def test_network_checks_layer_chaining():
    with pytest.raises(ValueError, match="layer 1 takes 5 inputs"):
        Network([Dense(3, 4, "relu"), Dense(5, 2)])
    with pytest.raises(ValueError, match="identity activation"):
        Network([Dense(3, 2, "relu")])
    with pytest.raises(ValueError, match="p must be a finite number in"):
        Dropout(1.0)
    assert check_activation("leaky_relu", {}) == {"negative_slope": 0.01}


@pytest.mark.parametrize("name, std", [("glorot_uniform", np.sqrt(2 / (300 + 200))),
                                       ("glorot_normal", np.sqrt(2 / (300 + 200))),
                                       ("he_normal", np.sqrt(2 / 300)), ("he_uniform", np.sqrt(2 / 300)),
                                       ("lecun_normal", np.sqrt(1 / 300)), ("zeros", 0.0)])
def test_initializer_scales(name, std):
    w = np.empty((200, 300))
    initializers.initialize(w, name, np.random.default_rng(0))
    assert w.std() == pytest.approx(std, rel=0.02, abs=1e-12)
    assert abs(w.mean()) < 0.01
    assert initializers.resolve("auto", "relu") == "he_uniform"
    assert initializers.resolve("auto", "tanh") == "glorot_uniform"


def _dropout_net(p):
    return MLP([400, 300, 2], activation="relu", dropout=p, seed=5)


def test_dropout_keep_rate_is_within_statistical_bounds_and_backward_uses_the_same_mask():
    p = 0.3
    net = _dropout_net(p)
    X = np.ones((50, 400), np.float32)
    ws = net._workspace(50, True)
    out = net._forward(X, ws, True)
    hidden, dropped = ws["layers"][0]["out"], ws["layers"][1]["out"]
    live = hidden != 0  # ReLU zeros stay zero whatever the mask
    kept = dropped != 0
    n = live.sum()
    assert n > 3000
    # n Bernoulli(0.7) draws: within 5 standard deviations
    assert abs(kept[live].mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(dropped[kept], hidden[kept] / (1 - p), rtol=1e-6)
    assert out.shape == (50, 2)
    grad = np.ones_like(dropped)
    grad_in = np.empty_like(dropped)
    net._ctx.stream = 1  # the layer's index: its masks' stream, as in the network's backward pass
    net.layers[1].backward(grad, None, ws["layers"][1], grad_in, net._ctx)
    np.testing.assert_array_equal(grad_in[live], np.where(kept[live], 1 / (1 - p), 0).astype(np.float32))
    # a different step draws a different mask
    net.step_ += 1
    net._forward(X, ws, True)
    assert not np.array_equal(ws["layers"][1]["out"] != 0, kept)


def test_dropout_is_the_exact_identity_in_evaluation_mode():
    X = np.random.default_rng(0).random((8, 400)).astype(np.float32)
    with_dropout, without = _dropout_net(0.5), MLP([400, 300, 2], activation="relu", seed=5)
    np.testing.assert_array_equal(with_dropout.decision_function(X), without.decision_function(X))
    layer = with_dropout.layers[1]
    assert layer.forward(X, {}, False, with_dropout._ctx) is X

"""Models: accuracy on digits, the autoencoder against PCA, tied weights, gradients, determinism,
input validation with the model unchanged, and no allocation per training step."""
import copy
import pickle
import tracemalloc

import numpy as np
import pytest

import fastdl
from fastdl.datasets import load_digits, train_test_split
from fastdl.models import MLP, Autoencoder, StackedAutoencoder


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    return train_test_split(X, y, 0.25, seed=0)


def test_pretrained_stack_reaches_97_percent_on_digits(digits):
    Xtr, Xte, ytr, yte = digits
    net = StackedAutoencoder([64, 256, 128], 10, activation="relu", corruption=("mask", 0.2), seed=0)
    net.fit(Xtr, ytr, pretrain_epochs=5, epochs=30, lr=1e-3, batch_size=32)
    assert [r["layer"] for r in net.pretrain_report_] == [0, 1]
    assert all(r["loss"][-1] < r["loss"][0] for r in net.pretrain_report_)
    assert net.score(Xte, yte) >= 0.97
    proba = net.predict_proba(Xte)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(net.classes_[proba.argmax(axis=1)], net.predict(Xte))


@pytest.mark.parametrize("rows", [3, 40])  # the small-batch product and the GEMM
def test_heads_fused_into_the_last_layer_match_a_pass_of_their_own(rows):
    X = np.random.default_rng(4).random((rows, 8), dtype=np.float32)
    for output, head in (("softmax", lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)),
                         ("sigmoid", lambda z: 1 / (1 + np.exp(-z)))):
        net = MLP([8, 6, 3], dropout=0.5, output=output, seed=1)
        logits = net.decision_function(X).astype(np.float64)
        np.testing.assert_allclose(net.predict_proba(X), head(logits), rtol=1e-6, atol=1e-7)
    ae = Autoencoder(8, 4, loss="bce", seed=2)
    np.testing.assert_allclose(ae.reconstruct(X), ae.decode(ae.encode(X)), rtol=1e-6, atol=1e-7)


def test_pretraining_off_is_the_random_init_baseline_of_the_same_seed(digits):
    Xtr, _, ytr, _ = digits
    kwargs = dict(sizes=[64, 32, 16], n_outputs=10, activation="relu", seed=3)
    initial = StackedAutoencoder(**kwargs).arena.params.copy()
    pre, base = StackedAutoencoder(**kwargs), StackedAutoencoder(**kwargs)
    pre.pretrain(Xtr[:300], epochs=1)
    head = slice(pre.arena.spec("layer2.W").offset, None)
    np.testing.assert_array_equal(pre.arena.params[head], initial[head])  # only the encoders moved
    assert not np.array_equal(pre.arena.params, initial)
    base.fit(Xtr[:300], ytr[:300], pretrain=False, epochs=1)
    again = StackedAutoencoder(**kwargs)
    again.fit(Xtr[:300], ytr[:300], pretrain=False, epochs=1)
    np.testing.assert_array_equal(base.arena.params, again.arena.params)


def test_autoencoder_beats_pca_with_the_same_code_size(digits):
    Xtr, Xte, _, _ = digits
    k = 12
    ae = Autoencoder(64, k, activation="sigmoid", decoder_activation="sigmoid", seed=0)
    ae.fit(Xtr, epochs=60, lr=1e-2, batch_size=32)
    mean = Xtr.mean(axis=0)
    components = np.linalg.svd(Xtr - mean, full_matrices=False)[2][:k]
    pca = (Xte - mean) @ components.T @ components + mean
    pca_error = 0.5 * np.mean(np.sum((Xte - pca) ** 2, axis=1))
    ae_error = ae.reconstruction_error(Xte)
    assert ae_error < pca_error
    np.testing.assert_allclose(ae_error, 0.5 * np.mean(np.sum((Xte - ae.reconstruct(Xte)) ** 2, axis=1)),
                               rtol=1e-4)
    np.testing.assert_allclose(ae.decode(ae.encode(Xte)), ae.reconstruct(Xte), rtol=1e-6)


def _is_transpose_of(a, b):
    """``a`` is ``b.T``: the same memory read with swapped strides, no copy."""
    return a.shape == b.shape[::-1] and a.strides == b.strides[::-1] and a.ctypes.data == b.ctypes.data


def test_tied_weights_stay_one_array_through_training(digits):
    Xtr = digits[0][:200]
    ae = Autoencoder(64, 16, tied=True, corruption=("mask", 0.3), seed=1)
    assert [s.name for s in ae.arena.specs] == ["encoder.W", "encoder.b", "decoder.b"]
    assert _is_transpose_of(ae.decoder.W, ae.encoder.W) and _is_transpose_of(ae.decoder.dW, ae.encoder.dW)
    before = ae.encoder.W.copy()
    ae.fit(Xtr, epochs=2)
    assert _is_transpose_of(ae.decoder.W, ae.encoder.W) and np.shares_memory(ae.encoder.W, ae.arena.params)
    assert not np.array_equal(before, ae.encoder.W)
    codes = ae.encode(Xtr)
    logits = codes @ ae.encoder.W + ae.decoder.b  # the decoder really uses Wᵀ
    np.testing.assert_allclose(ae.decode(codes), 1 / (1 + np.exp(-logits)), rtol=1e-5, atol=1e-6)



def test_copies_and_pickles_are_independent_working_models(digits):
    X, y = digits[0][:160], digits[2][:160]
    net = StackedAutoencoder([64, 16], 10, activation="relu", dropout=0.1, seed=2)
    net.fit(X, y, pretrain_epochs=1, epochs=1, batch_size=32)
    before = net.arena.params.copy()
    twin = copy.deepcopy(net)
    dense = [i for i, layer in enumerate(net.layers) if not isinstance(layer, fastdl.Dropout)]
    for i in dense:  # the copy's layers are views of the copy's arena, not of the original's
        for tensor in ("W", "b"):
            view = getattr(twin.layers[i], tensor)
            assert np.shares_memory(view, twin.arena.params) and not np.shares_memory(view, net.arena.params)
            np.testing.assert_array_equal(view, twin.arena.param(f"layer{i}.{tensor}"))
    twin.fit(X, y, pretrain=False, epochs=1, batch_size=32)
    np.testing.assert_array_equal(net.arena.params, before)  # the original is untouched
    assert not np.array_equal(twin.arena.params, before)
    restored = pickle.loads(pickle.dumps(net))
    assert restored.get_config() == net.get_config() and restored.classes_.tolist() == list(range(10))
    assert (restored.step_, restored.epoch_) == (net.step_, net.epoch_)
    np.testing.assert_array_equal(restored.predict_proba(X), net.predict_proba(X))
    # the same epoch from the same state (weights, counters, Adam's moments) on all three
    net.fit(X, y, pretrain=False, epochs=1, batch_size=32)
    restored.fit(X, y, pretrain=False, epochs=1, batch_size=32)
    np.testing.assert_array_equal(restored.arena.params, net.arena.params)
    np.testing.assert_array_equal(twin.arena.params, net.arena.params)
    np.testing.assert_array_equal(twin.predict_proba(X), net.predict_proba(X))


def test_a_copied_tied_autoencoder_shares_one_array_of_its_own(digits):
    X = digits[0][:64]
    ae = Autoencoder(64, 16, tied=True, seed=1)
    ae.fit(X, epochs=1)
    twin = copy.deepcopy(ae)
    assert _is_transpose_of(twin.decoder.W, twin.encoder.W)
    assert np.shares_memory(twin.encoder.W, twin.arena.params) and not np.shares_memory(twin.encoder.W, ae.arena.params)
    twin.fit(X, epochs=1)
    ae.fit(X, epochs=1)
    np.testing.assert_array_equal(twin.arena.params, ae.arena.params)
    np.testing.assert_array_equal(twin.reconstruct(X), ae.reconstruct(X))


def test_read_only_inputs_add_no_kernel_signatures(digits, tmp_path):
    from fastdl._kernels.numba import dense, losses

    X, y = digits[0][:64], digits[2][:64]
    np.save(tmp_path / "X.npy", X)
    frozen = np.load(tmp_path / "X.npy", mmap_mode="r")  # a read-only memmap
    net = MLP([64, 16, 10], activation="relu", seed=0)
    ae = Autoencoder(64, 16, activation="relu", decoder_activation="identity", seed=0)
    net.fit(X, y, epochs=1, validation_data=(X, y))
    ae.fit(X, epochs=1, validation_data=X)
    expected = net.predict_proba(X), ae.reconstruct(X), ae.decode(ae.encode(X))
    kernels = (dense.dense_forward, dense.dense_backward, losses.mse_loss, losses.softmax_cross_entropy_labels)
    compiled = [len(kernel.signatures) for kernel in kernels]
    codes = ae.encode(frozen)
    codes.flags.writeable = False
    got = net.predict_proba(frozen), ae.reconstruct(frozen), ae.decode(codes)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    net.fit(frozen, y, epochs=1, validation_data=(frozen, y))
    ae.fit(frozen, epochs=1, validation_data=frozen)
    assert [len(kernel.signatures) for kernel in kernels] == compiled

def _assert_gradients_match_finite_differences(model, X, targets, n_checks=12):
    rng = np.random.default_rng(0)
    ws = model._workspace(len(X), True)
    model.arena.zero_grad()
    model._train_step(X, targets)
    analytic = model.arena.grads.copy()
    params = model.arena.params
    for i in rng.choice(params.size, n_checks, replace=False):
        old = params[i]
        params[i] = old + 1e-6
        up = model._loss_on(X, targets if targets is not None else X)
        params[i] = old - 1e-6
        down = model._loss_on(X, targets if targets is not None else X)
        params[i] = old
        assert analytic[i] == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-8)
    assert ws is model._workspace(len(X), True)


def test_network_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(9, 5))
    net = MLP([5, 7, 6, 3], activation="sigmoid", dtype=np.float64, seed=2)
    _assert_gradients_match_finite_differences(net, X, rng.integers(0, 3, 9))


@pytest.mark.parametrize("tied", [False, True])
def test_autoencoder_gradients_match_finite_differences(tied):
    X = np.random.default_rng(2).random((6, 5))
    ae = Autoencoder(5, 3, activation="sigmoid", tied=tied, loss="bce", dtype=np.float64, seed=4)
    _assert_gradients_match_finite_differences(ae, X, None)


def test_same_seed_gives_bit_identical_weights_with_1_and_2_threads(digits):
    # 1280 rows: every batch and evaluation pass splits into row blocks that are multiples of 16.
    # (The dense forward's row blocks of other sizes change OpenBLAS's micro-kernel tiling, so a
    # 67-row batch differs in the last bits between 1 and 2 threads: a kernel issue, reported.)
    Xtr, ytr = digits[0][:1280], digits[2][:1280]
    results = []
    previous = fastdl.get_num_threads()
    try:
        for threads in (1, 2):
            fastdl.set_num_threads(threads)
            net = StackedAutoencoder([64, 128, 32], 10, activation="relu", dropout=0.1,
                                     corruption=("mask", 0.2), seed=7)
            net.fit(Xtr, ytr, pretrain_epochs=1, epochs=1, batch_size=256)
            results.append(net.arena.params.copy())
    finally:
        fastdl.set_num_threads(previous)
    np.testing.assert_array_equal(results[0], results[1])


def test_regression_head():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4)).astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5, 0.0], np.float32) + 0.3
    net = MLP([4, 16, 1], activation="relu", output="identity", seed=0)
    net.fit(X, y, epochs=40, lr=1e-2)
    assert net.predict(X).shape == (400,)
    assert net.score(X, y) > 0.98
    with pytest.raises(AttributeError, match="predict_proba"):
        net.predict_proba(X)


def test_string_labels_round_trip(digits):
    Xtr, _, ytr, _ = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    net = MLP([64, 32, 10], activation="relu")
    net.fit(Xtr, names[ytr], epochs=5, lr=1e-2)
    assert set(net.predict(Xtr)) <= set(names) and net.score(Xtr, names[ytr]) > 0.9



def test_fit_with_classes_knows_labels_absent_from_the_first_y(digits):
    X, y = digits[0][:200], digits[2][:200]
    low = y < 5
    net = MLP([64, 16, 10], activation="relu", seed=0)
    net.fit(X[low], y[low], classes=[9, 8, 7, 6, 5, 4, 3, 2, 1, 0], epochs=1)
    assert net.classes_.tolist() == list(range(10))
    net.fit(X, y, epochs=1)  # the labels 5..9 are known although the first y had none
    assert net.predict_proba(X).shape == (200, 10) and set(net.predict(X)) <= set(range(10))
    net.fit(X, y, classes=np.arange(10), epochs=1)  # the fitted classes again: accepted
    params = net.arena.params.copy()
    with pytest.raises(ValueError, match=r"classes \[0, 1, 2, 3, 4\] differ from the fitted classes_"):
        net.fit(X[low], y[low], classes=np.arange(5), epochs=1)
    np.testing.assert_array_equal(net.arena.params, params)
    inferred = MLP([64, 16, 10], activation="relu", seed=0)
    inferred.fit(X[low], y[low], epochs=1)
    assert inferred.classes_.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="labels the model was not fitted with"):
        inferred.fit(X, y, epochs=1)
    with pytest.raises(ValueError, match="classes has 11 labels, but the network has 10 outputs"):
        MLP([64, 16, 10]).fit(X, y, classes=np.arange(11), epochs=1)
    with pytest.raises(ValueError, match="labels the model was not fitted with"):
        MLP([64, 16, 10]).fit(X, y, classes=np.arange(5), epochs=1)
    with pytest.raises(ValueError, match="classes is for a softmax head"):
        MLP([64, 4, 1], output="identity").fit(X, X[:, 0], classes=[0, 1], epochs=1)

def _bad_calls(X, y):
    nan_X = X.copy()
    nan_X[3, 2] = np.nan
    return [
        (lambda m: m.fit(X[:, :10], y), ValueError, "X has 10 features, but the model expects 64"),
        (lambda m: m.fit(nan_X, y), ValueError, "X contains NaN"),
        (lambda m: m.fit(X, y[:-1]), ValueError, "y has 99 entries, but X has 100"),
        (lambda m: m.fit(X, np.arange(100)), ValueError, "labels the model was not fitted with"),
        (lambda m: m.fit(X.astype(str), y), TypeError, "X must be a real numeric array"),
        (lambda m: m.fit(X[0], y), ValueError, "X must be 2-D"),
        (lambda m: m.fit(X, y, validation_data=(X[:, :3], y)), ValueError, "validation_data X has 3"),
        (lambda m: m.fit(X, y, pretrain_epochs=[1, 2, 3]), ValueError, "pretrain epochs has 3 entries"),
        (lambda m: m.predict(nan_X), ValueError, "X contains NaN"),
    ]


def test_bad_inputs_are_rejected_and_leave_the_model_unchanged(digits):
    Xtr, _, ytr, _ = digits
    X, y = Xtr[:100], ytr[:100]
    net = StackedAutoencoder([64, 16], 10, activation="relu", seed=0)
    net.fit(X, y, pretrain_epochs=1, epochs=1)
    state = (net.arena.params.copy(), net.step_, net.epoch_, net.classes_.copy(), net.optimizer_)
    for call, exc, message in _bad_calls(X, y):
        with pytest.raises(exc, match=message):
            call(net)
    with pytest.raises(ValueError, match=r"labels the model was not fitted with: \[42\]"):
        net.fit(X, np.where(y == 3, 42, y))
    np.testing.assert_array_equal(net.arena.params, state[0])
    assert (net.step_, net.epoch_, net.optimizer_) == state[1:2] + state[2:3] + (state[4],)
    np.testing.assert_array_equal(net.classes_, state[3])
    fresh = MLP([64, 8, 10])
    with pytest.raises(ValueError, match="100 classes, but the network has 10 outputs"):
        fresh.fit(X, np.arange(100))
    assert fresh.classes_ is None
    with pytest.raises(ValueError, match="corruption must be"):
        Autoencoder(64, 8, corruption=("salt", 0.1))
    with pytest.raises(ValueError, match="decoder_activation must be 'sigmoid'"):
        Autoencoder(64, 8, decoder_activation="relu", loss="bce")


def test_no_allocation_per_training_step_in_the_steady_state(digits):
    Xtr, _, ytr, _ = digits
    net = MLP([64, 64, 10], activation="relu", dropout=0.2)
    X, y = Xtr[:512], ytr[:512]
    idx, _ = net._check_y(y, len(y), "y", None)
    net.fit(X, y, epochs=1, batch_size=256)  # warm up: workspaces, optimizer state, compilation
    opt = net.optimizer_
    xb, yb = np.ascontiguousarray(X[:256]), idx[:256]

    def steps(n):
        for _ in range(n):
            net._train_step(xb, yb)
            opt.step()
            net.step_ += 1

    steps(3)
    tracemalloc.start()
    try:
        steps(5)
        base_current, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        steps(50)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Nothing is retained, and no buffer is allocated: the smallest per-batch buffer, the logits'
    # gradient, would be 256 x 10 x 4 = 10 kB. What the peak does see (~2 kB) are the transient
    # Python objects of the numba dispatcher calls (argument tuples, boxed scalars).
    assert current - base_current < 128
    assert peak - base_current < 8192

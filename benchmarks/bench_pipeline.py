"""Fit and predict of a whole scikit-learn pipeline: the template for timing your own.

Run: ``pytest benchmarks/bench_pipeline.py --benchmark-autosave`` and read each group's
``fastdl-<backend>`` / ``sklearn`` ratio (``python benchmarks/ratios.py FILE.json``).

The pipeline is ``StandardScaler`` then ``PretrainedMLPClassifier`` (2 epochs of pre-training,
10 of fine-tuning) on the digits; ``sklearn`` is the same pipeline with ``MLPClassifier`` (no
pre-training, same hidden size, epochs, batch, Adam learning rate). To time yours, copy this file
into ``benchmarks/``, replace ``_pipeline`` and ``_data``, and keep the two tests: ``bench_fit``
builds a fresh model per round outside the timing and warms the kernels up first,
``bench_predict`` times one fitted model.
"""
import warnings

import numpy as np
import pytest

from conftest import bench_fit, bench_predict, fastdl_impls

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from fastdl.datasets import load_digits, train_test_split  # noqa: E402
from fastdl.sklearn import PretrainedMLPClassifier  # noqa: E402

IMPLS = [*fastdl_impls(""), "sklearn"]
COMMON = dict(hidden_layer_sizes=(128,), batch_size=32, learning_rate_init=1e-3, max_iter=10,
              n_iter_no_change=11, random_state=0)


def _data():
    X, y = load_digits()
    return train_test_split(X, y, 0.25, seed=0)


def _pipeline(impl):
    if impl == "sklearn":
        return make_pipeline(StandardScaler(), MLPClassifier(**COMMON))
    return make_pipeline(StandardScaler(), PretrainedMLPClassifier(pretrain_epochs=2, **COMMON))


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # exactly max_iter epochs, on purpose
        yield


@pytest.mark.parametrize("impl", IMPLS)
def test_fit(benchmark, impl):
    benchmark.group = "pipeline-fit-digits"
    X_train, X_test, y_train, y_test = _data()
    model = bench_fit(benchmark, lambda: _pipeline(impl), X_train, y_train)
    accuracy = model.score(X_test, y_test)
    benchmark.extra_info["test_accuracy"] = round(float(accuracy), 4)
    assert accuracy > 0.9


@pytest.mark.parametrize("impl", IMPLS)
def test_predict(benchmark, impl):
    benchmark.group = "pipeline-predict-digits"
    X_train, X_test, y_train, y_test = _data()
    model = _pipeline(impl).fit(X_train, y_train)
    assert np.mean(bench_predict(benchmark, model, X_test) == y_test) > 0.9

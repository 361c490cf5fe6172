"""Fit time of the scikit-learn estimators against ``MLPClassifier`` with the same hidden sizes,
epochs, batch size, optimizer (Adam), learning rate and L2 penalty.

Run: ``pytest benchmarks/bench_sklearn.py --benchmark-min-rounds=3`` and read each group's ratio
of ``fastdl`` to ``sklearn``; each row's ``extra_info`` holds its test accuracy. ``fastdl`` runs
no pre-training (the same work as sklearn: only the supervised epochs); ``fastdl-pretrained`` adds
``PRETRAIN_EPOCHS`` of greedy pre-training per hidden layer (the time the extra accuracy costs).
Target: ``fastdl`` ≤ 0.5× ``sklearn`` at equal or better accuracy. Both run early-stopping-free
for exactly the case's epochs. With 2 threads on a machine whose other core is busy, fastdl's
per-step parallel kernels wait for the busy core (seconds instead of 0.1 s on digits): measure
with ``FASTDL_BENCH_THREADS=1`` there.
"""
import warnings

import numpy as np
import pytest


pytest.importorskip("sklearn")

from sklearn.datasets import load_digits, make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from fastdl.sklearn import PretrainedMLPClassifier  # noqa: E402

# numba and BLAS threads for both libraries; on a crowded machine 1 (see the module docstring)
PRETRAIN_EPOCHS = 2

#: name -> (data loader, hidden sizes, epochs, batch size)
CASES = {
    "digits": (lambda: load_digits(return_X_y=True), (100,), 30, 32),
    "synthetic-10k-784": (lambda: make_classification(n_samples=12_500, n_features=784, n_informative=60,
                                                      n_classes=10, n_clusters_per_class=1, random_state=0),
                          (500,), 5, 128),
}


def _split(case):
    X, y = CASES[case][0]()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def _estimator(kind, case):
    _, hidden, epochs, batch = CASES[case]
    common = dict(hidden_layer_sizes=hidden, activation="relu", alpha=1e-4, batch_size=batch,
                  learning_rate_init=1e-3, max_iter=epochs, n_iter_no_change=epochs + 1, random_state=0)
    if kind == "sklearn":
        return MLPClassifier(solver="adam", **common)
    pretrain_epochs = PRETRAIN_EPOCHS if kind == "fastdl-pretrained" else 0
    return PretrainedMLPClassifier(optimizer="adam", pretrain_epochs=pretrain_epochs, **common)


@pytest.mark.parametrize("kind", ["sklearn", "fastdl", "fastdl-pretrained"])
@pytest.mark.parametrize("case", list(CASES))
def test_fit(benchmark, case, kind):
    benchmark.group = f"fit {case}"
    X_train, X_test, y_train, y_test = _split(case)
    if kind != "sklearn":
        _estimator(kind, case).set_params(max_iter=1).fit(X_train[:256], y_train[:256])  # compile outside the timing
    fitted = []

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted.append(_estimator(kind, case).fit(X_train, y_train))

    benchmark.pedantic(fit, rounds=3, iterations=1)
    accuracy = fitted[-1].score(X_test, y_test)
    benchmark.extra_info["test_accuracy"] = round(float(accuracy), 4)
    assert accuracy > 1.5 / len(np.unique(y_train))  # learned something

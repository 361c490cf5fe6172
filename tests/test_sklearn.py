"""scikit-learn estimators: the estimator contract (check_estimator), clone / pickle / GridSearchCV /
Pipeline round-trips, labels, multi-output, warm start and partial_fit, and an autoencoder
pipeline on digits against the same pipeline with PCA."""
import copy
import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_blobs  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastdl.sklearn import AutoencoderTransformer, PretrainedMLPClassifier, PretrainedMLPRegressor  # noqa: E402
from conftest import FASTDL_HOME  # noqa: E402

# Small networks and few epochs: check_estimator fits each estimator some fifty times.
_SMALL = dict(hidden_layer_sizes=(8,), batch_size=32, max_iter=20, pretrain_epochs=1, learning_rate_init=1e-2,
              random_state=0)


def _classifier(**kw):
    return PretrainedMLPClassifier(**{**_SMALL, **kw})


def _regressor(**kw):
    return PretrainedMLPRegressor(**{**_SMALL, **kw})


def _transformer(**kw):
    return AutoencoderTransformer(**{**dict(hidden_layer_sizes=(4,), max_iter=5, random_state=0), **kw})


_FLOAT32_ROUNDING = ("float32 network: a row's output depends on the batch it is computed in by a few ulp (the "
                     "dense forward's summation order changes with the number of rows: 2.4e-7 measured on an output "
                     "of 2.7), while these checks allow 1e-7, i.e. float64 rounding; "
                     "test_predictions_do_not_depend_on_the_batch checks the property at float32 tolerance")


def _expected_failed_checks(estimator):
    """Checks that cannot pass, with the reason (every other check applies and passes)."""
    if isinstance(estimator, (PretrainedMLPClassifier, PretrainedMLPRegressor)):
        return {"check_methods_subset_invariance": _FLOAT32_ROUNDING,
                "check_methods_sample_order_invariance": _FLOAT32_ROUNDING}
    return {}


@parametrize_with_checks([_classifier(), _regressor(), _transformer()], expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_contract(estimator, check):
    """Each scikit-learn check asserts internally and raises on a violation."""
    check(estimator)


def _blobs(n=150, seed=0):
    X, y = make_blobs(n_samples=n, centers=3, n_features=5, random_state=seed)
    return StandardScaler().fit_transform(X), y


def test_import_fastdl_does_not_import_sklearn():
    code = "import sys, fastdl; assert 'sklearn' not in sys.modules, 'fastdl imported sklearn'; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=FASTDL_HOME, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_string_labels_round_trip_and_classes_are_sorted():
    X, y = _blobs()
    names = np.array(["pear", "apple", "fig"])[y]
    clf = _classifier().fit(X, names)
    assert clf.classes_.tolist() == ["apple", "fig", "pear"]
    assert clf.predict(X).dtype == names.dtype
    assert clf.score(X, names) > 0.95
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


def test_same_seed_same_model_and_pretraining_changes_the_start():
    X, y = _blobs()
    a, b = _classifier().fit(X, y), _classifier().fit(X, y)
    np.testing.assert_array_equal(a.model_.arena.params, b.model_.arena.params)
    c = _classifier(pretrain_epochs=0).fit(X, y)
    assert not np.array_equal(a.model_.arena.params, c.model_.arena.params)
    assert a.model_.pretrain_report_ is not None and len(a.model_.pretrain_report_) == 1
    assert c.model_.pretrain_report_ is None


def test_pickle_and_deepcopy_keep_predictions_and_training_state():
    X, y = _blobs()
    clf = _classifier().fit(X, y)
    for twin in (pickle.loads(pickle.dumps(clf)), copy.deepcopy(clf)):
        np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
        # the restored layers must still be views of the restored arena, and the optimizer state must
        # carry over: one more epoch on both gives the same weights
        twin.partial_fit(X, y)
    clf.partial_fit(X, y)
    np.testing.assert_array_equal(twin.model_.arena.params, clf.model_.arena.params)
    ae = _transformer().fit(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ae)).transform(X), ae.transform(X))


def test_predictions_do_not_depend_on_the_batch():
    X, y = _blobs()
    clf, reg = _classifier().fit(X, y), _regressor().fit(X, X[:, 0])
    order = np.random.default_rng(0).permutation(len(X))
    for method in (clf.predict_proba, reg.predict):
        full = method(X)
        np.testing.assert_allclose(np.concatenate([method(X[i:i + 1]) for i in range(10)]), full[:10], rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(method(X[order]), full[order], rtol=1e-5, atol=1e-6)


def test_alpha_is_the_l2_penalty_on_mlpclassifier_scale():
    X, y = _blobs()
    clf = _classifier(alpha=0.32, batch_size=32).fit(X, y)
    assert clf.model_.optimizer_.weight_decay == pytest.approx(0.32 / 32)
    assert type(clf.model_.optimizer_).__name__ == "Adam" and clf.model_.optimizer_.lr == pytest.approx(1e-2)


def test_clone_gives_an_unfitted_copy_with_the_same_parameters():
    clf = _classifier(hidden_layer_sizes=(6, 4), corruption=("mask", 0.1), dropout=0.2).fit(*_blobs())
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    assert not hasattr(twin, "model_") and not hasattr(twin, "classes_")


def test_grid_search_picks_a_grid_point_and_refits():
    X, y = _blobs(n=90)
    grid = GridSearchCV(_classifier(max_iter=10), {"hidden_layer_sizes": [(4,), (8,)], "alpha": [0.0, 1e-3]}, cv=2)
    grid.fit(X, y)
    assert grid.best_params_["hidden_layer_sizes"] in [(4,), (8,)]
    assert len(grid.cv_results_["mean_test_score"]) == 4
    assert grid.best_score_ > 0.9
    assert grid.best_estimator_.score(X, y) > 0.9


def test_regressor_single_and_multi_output():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    Y = np.column_stack([X @ [1.0, -2.0, 0.5, 0.0], np.tanh(X[:, 0]) + X[:, 1]])
    multi = _regressor(hidden_layer_sizes=(16,), max_iter=60).fit(X, Y)
    assert multi.n_outputs_ == 2 and multi.predict(X).shape == (200, 2)
    assert multi.predict(X).dtype == np.float64
    assert multi.score(X, Y) > 0.9
    single = _regressor(hidden_layer_sizes=(16,), max_iter=60).fit(X, Y[:, 0])
    assert single.n_outputs_ == 1 and single.predict(X).shape == (200,)
    assert single.score(X, Y[:, 0]) > 0.9


def test_early_stopping_holds_out_a_validation_fraction():
    X, y = _blobs()
    clf = _classifier(early_stopping=True, validation_fraction=0.2, n_iter_no_change=2, tol=10.0).fit(X, y)
    # tol=10 means no epoch ever improves enough: training stops after 1 + n_iter_no_change epochs
    assert clf.n_iter_ == 3
    assert len(clf.loss_curve_) == len(clf.validation_loss_curve_) == 3
    assert clf.loss_ == clf.loss_curve_[-1]


def test_warm_start_and_partial_fit_continue_training():
    X, y = _blobs()
    clf = _classifier(max_iter=3, warm_start=True, n_iter_no_change=np.inf).fit(X, y)
    weights = clf.model_.arena.params.copy()
    clf.fit(X, y)
    assert clf.n_iter_ == 6 and len(clf.loss_curve_) == 6
    assert not np.array_equal(weights, clf.model_.arena.params)
    # partial_fit: the first call needs every class, even one its batch lacks
    inc = _classifier()
    inc.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])
    assert inc.model_.classes_.tolist() == [0, 1, 2]  # the model knows the absent class from the start
    for _ in range(20):
        inc.partial_fit(X, y)
    assert inc.n_iter_ == 21 and inc.classes_.tolist() == [0, 1, 2]
    assert inc.score(X, y) > 0.95
    with pytest.raises(ValueError, match="classes"):
        inc.partial_fit(X, np.where(y == 2, 7, y))


def test_bad_parameters_and_inputs_are_rejected_with_clear_errors():
    X, y = _blobs()
    with pytest.raises(ValueError, match="activation"):
        _classifier(activation="softmax").fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        _classifier(hidden_layer_sizes=(8, 0)).fit(X, y)
    with pytest.raises(ValueError, match="corruption"):
        _classifier(corruption=("salt", 0.1)).fit(X, y)
    clf = _classifier().fit(X, y)
    with pytest.raises(ValueError, match="X has 4 features"):
        clf.predict(X[:, :4])


def test_autoencoder_transform_inverse_transform_and_score():
    X, _ = _blobs()
    ae = _transformer(hidden_layer_sizes=(4, 2), max_iter=30).fit(X)
    codes = ae.transform(X)
    assert codes.shape == (len(X), 2) and codes.dtype == np.float32
    recon = ae.inverse_transform(codes)
    assert recon.shape == X.shape
    expected = -0.5 * np.mean(np.sum((X.astype(np.float32) - recon).astype(np.float64) ** 2, axis=1))
    assert ae.score(X) == pytest.approx(expected, rel=1e-5)
    assert ae.score(X) > -0.5 * np.mean(np.sum(X ** 2, axis=1))  # beats reconstructing zeros
    assert [len(curve) for curve in ae.loss_curves_] == [30, 30]
    assert ae.get_feature_names_out().tolist() == ["autoencodertransformer0", "autoencodertransformer1"]
    ae.partial_fit(X)
    assert [len(curve) for curve in ae.loss_curves_] == [31, 31]
    with pytest.raises(ValueError, match="2 codes"):
        ae.inverse_transform(X)


def test_digits_pipeline_autoencoder_matches_pca_of_the_same_size():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    pca = make_pipeline(StandardScaler(), PCA(16, random_state=0), LogisticRegression(max_iter=2000))
    ae = make_pipeline(StandardScaler(),
                       AutoencoderTransformer((16,), max_iter=50, learning_rate_init=1e-2, batch_size=32,
                                              random_state=0),
                       LogisticRegression(max_iter=2000))
    pca_accuracy = pca.fit(X_train, y_train).score(X_test, y_test)
    ae_accuracy = ae.fit(X_train, y_train).score(X_test, y_test)
    # measured: PCA 0.943, autoencoder 0.943; "comparable" means within 2 points
    assert pca_accuracy > 0.9
    assert ae_accuracy >= pca_accuracy - 0.02

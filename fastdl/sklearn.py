"""scikit-learn estimators over fastdl models.

``import fastdl.sklearn`` needs scikit-learn; ``import fastdl`` never imports this module.

- :class:`AutoencoderTransformer`: a stack of (optionally denoising, tied) autoencoders trained
  greedily; ``transform`` gives the top codes, ``inverse_transform`` decodes them back through the
  stack, ``score`` is the negative mean reconstruction error ``-mean_i ½‖xᵢ − x̂ᵢ‖²``.
- :class:`PretrainedMLPClassifier` / :class:`PretrainedMLPRegressor`: a
  :class:`~fastdl.models.StackedAutoencoder` pre-trained greedily on ``X`` (``pretrain_epochs``
  per hidden layer, ``pretrain_epochs=0`` for a random initialisation) then fine-tuned with a
  softmax (cross-entropy) or identity (squared error, one or several outputs) head.

The estimators hold no math and no training loop: they translate scikit-learn's parameters
(named as in ``MLPClassifier`` where the concept is the same) into model calls:

=======================  =============================================================
``max_iter``             epochs of fine-tuning (of each autoencoder for the transformer)
``learning_rate_init``   the optimizer's ``lr`` (pre-training uses the same)
``alpha``                L2 penalty on MLPClassifier's scale: α‖θ‖² / (2·batch_size) added to
                         the mean batch loss, i.e. the optimizer's ``weight_decay = α / batch_size``
                         (biases included; decoupled for ``optimizer="adamw"``)
``batch_size="auto"``    ``min(200, n_samples)``
``early_stopping``       hold out ``validation_fraction`` and stop once the validation loss
                         has not improved by ``tol`` for ``n_iter_no_change`` epochs; without
                         it the training loss is watched the same way. The best epoch's
                         weights are put back.
``random_state``         draws the model's seed (init, shuffling, corruption, dropout masks)
``verbose``              a progress bar per training call
``warm_start``           ``fit`` continues from the fitted weights (no new pre-training)
``corruption``           ``None``, ``("mask", p)`` or ``("gaussian", sigma)`` for pre-training
=======================  =============================================================

``partial_fit`` runs one epoch over the given batch from the current weights, without
pre-training and without early stopping (the optimizer and its state carry over).
Fitted estimators pickle and copy as their models do (config, parameters, state, optimizer state).
"""
from numbers import Integral, Real

import numpy as np
from sklearn.base import (BaseEstimator, ClassifierMixin, ClassNamePrefixFeaturesOutMixin, RegressorMixin,
                          TransformerMixin, _fit_context)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import _check_partial_fit_first_call, check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from fastdl._kernels.registry import ACTIVATIONS
from fastdl.models import OPTIMIZERS, Autoencoder, StackedAutoencoder

__all__ = ["AutoencoderTransformer", "PretrainedMLPClassifier", "PretrainedMLPRegressor"]

#: scikit-learn's name for the sigmoid, accepted beside fastdl's own names
_ALIASES = {"logistic": "sigmoid"}
_HIDDEN_ACTIVATIONS = (set(ACTIVATIONS) - {"softmax"}) | set(_ALIASES)


class _FastdlEstimator(BaseEstimator):
    """Parameters and the translation to model calls shared by the three estimators."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(_HIDDEN_ACTIVATIONS)],
        "tied": ["boolean"],
        "corruption": [None, tuple, list],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "dtype": [StrOptions({"float32", "float64"}), Options(type, {np.float32, np.float64})],
    }

    # --- parameter translation -----------------------------------------------------------------
    def _hidden_sizes(self):
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.ndim != 1 or sizes.size == 0 or sizes.dtype.kind not in "iu" or (sizes < 1).any():
            raise ValueError(f"hidden_layer_sizes must be a positive int or a non-empty sequence of "
                             f"positive ints, got {self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _activation(self):
        return _ALIASES.get(self.activation, self.activation)

    def _dtype(self):
        return np.dtype(self.dtype)

    def _seed(self):
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _validate_X(self, X, reset):
        return validate_data(self, X, reset=reset, dtype=self._dtype(), order="C")

    def _fit_options(self, n_samples, incremental):
        """Keyword arguments of ``model.fit`` for one training call."""
        batch_size = min(200, n_samples) if self.batch_size == "auto" else self.batch_size
        options = {"epochs": 1 if incremental else self.max_iter, "batch_size": batch_size,
                   "optimizer": self.optimizer, "lr": self.learning_rate_init,
                   "optimizer_params": {"weight_decay": self.alpha / batch_size}, "shuffle": self.shuffle,
                   "progress": bool(self.verbose)}
        if not incremental:
            if self.early_stopping:
                options["validation_fraction"] = self.validation_fraction
            if self.n_iter_no_change != np.inf:
                options.update(patience=int(self.n_iter_no_change), min_delta=self.tol)
        return options

    def _record(self, history, restart):
        """Append a training call's loss curves to the fitted attributes."""
        if restart:
            self.loss_curve_, self.validation_loss_curve_ = [], []
        self.loss_curve_.extend(history["loss"])
        if history.records and "val_loss" in history.records[0]:
            self.validation_loss_curve_.extend(history["val_loss"])
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None


class _PretrainedMLP(_FastdlEstimator):
    """Greedy pre-training then fine-tuning of a :class:`~fastdl.models.StackedAutoencoder`."""

    _parameter_constraints: dict = {
        **_FastdlEstimator._parameter_constraints,
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }
    _output = None  # the model's head: "softmax" or "identity"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, pretrain_epochs=5, corruption=None,
                 tied=True, dropout=0.0, optimizer="adam", alpha=1e-4, batch_size="auto",
                 learning_rate_init=1e-3, max_iter=200, shuffle=True, tol=1e-4, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, random_state=None, verbose=False,
                 warm_start=False, dtype="float32"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.pretrain_epochs = pretrain_epochs
        self.corruption = corruption
        self.tied = tied
        self.dropout = dropout
        self.optimizer = optimizer
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.dtype = dtype

    def _new_model(self, n_features, n_outputs):
        # the first autoencoder reconstructs arbitrary real inputs: a linear decoder
        return StackedAutoencoder([n_features] + self._hidden_sizes(), n_outputs, activation=self._activation(),
                                  output=self._output, tied=self.tied, corruption=self.corruption,
                                  decoder_activation="identity", dropout=self.dropout, dtype=self._dtype(),
                                  seed=self._seed())

    def _train(self, X, targets, *, new_model, incremental, classes=None):
        """Fine-tune ``model_`` on validated X and kernel-ready targets (``classes``: the labels a
        classifier's model sees), pre-training it first when it was just built (and
        ``pretrain_epochs > 0``)."""
        history = self.model_.fit(X, targets, classes=classes, pretrain=new_model and not incremental and self.pretrain_epochs > 0,
                                  pretrain_epochs=self.pretrain_epochs, pretrain_optimizer=self.optimizer,
                                  pretrain_lr=self.learning_rate_init,
                                  **self._fit_options(len(X), incremental))
        self.n_iter_ = self.model_.epoch_
        self._record(history, restart=new_model)
        return self


class PretrainedMLPClassifier(ClassifierMixin, _PretrainedMLP):
    """Multi-layer perceptron classifier with greedy layer-wise autoencoder pre-training.

    ``fit`` pre-trains each hidden layer as an autoencoder on the codes of the layers below it
    (``pretrain_epochs`` epochs each, with ``corruption`` as denoising noise), then fine-tunes
    the whole network with softmax cross-entropy ``-log softmax(z)_y`` for ``max_iter`` epochs.
    Labels may be of any sortable type; ``classes_`` holds them in sorted order.

    Fitted attributes: ``classes_``, ``model_`` (the :class:`~fastdl.models.StackedAutoencoder`),
    ``n_iter_`` (fine-tuning epochs run), ``loss_``, ``loss_curve_``, ``validation_loss_curve_``,
    ``n_features_in_``, ``feature_names_in_``.
    """

    _output = "softmax"

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Pre-train then fine-tune on ``X`` (n_samples, n_features) and labels ``y``."""
        return self._fit(X, y, classes=None, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None):
        """One epoch over ``(X, y)`` from the current weights; the first call needs ``classes``
        (every label that will ever occur) and builds the network without pre-training."""
        return self._fit(X, y, classes=classes, incremental=True)

    def _fit(self, X, y, *, classes, incremental):
        continuing = (self.warm_start or incremental) and hasattr(self, "model_")
        if incremental:
            # sets classes_ on the first call, checks classes against classes_ on later ones
            first = _check_partial_fit_first_call(self, classes)
            continuing = not first
        X, y = validate_data(self, X, y, reset=not continuing, dtype=self._dtype(), order="C")
        check_classification_targets(y)
        labels = np.unique(y)
        if not continuing and not incremental:
            self.classes_ = labels
        unknown = np.setdiff1d(labels, self.classes_)
        if unknown.size:
            raise ValueError(f"y holds labels not in classes_ {self.classes_.tolist()}: {unknown[:5].tolist()}")
        if not continuing:
            self.model_ = self._new_model(X.shape[1], len(self.classes_))
        # the model sees indices into classes_, all of them from its first fit on
        return self._train(X, np.searchsorted(self.classes_, y), new_model=not continuing, incremental=incremental,
                           classes=np.arange(len(self.classes_)))

    def predict_proba(self, X):
        """Class probabilities softmax(z), columns in the order of ``classes_``."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self.model_.predict_proba(X).astype(np.float64)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    def predict(self, X):
        """The most probable label of each sample."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class PretrainedMLPRegressor(RegressorMixin, _PretrainedMLP):
    """Multi-layer perceptron regressor with greedy layer-wise autoencoder pre-training.

    As :class:`PretrainedMLPClassifier`, with an identity head trained on the squared error
    ``½‖ŷ − y‖²`` per sample; ``y`` of shape (n_samples,) or (n_samples, n_outputs).

    Fitted attributes: ``model_``, ``n_outputs_``, ``n_iter_``, ``loss_``, ``loss_curve_``,
    ``validation_loss_curve_``, ``n_features_in_``, ``feature_names_in_``.
    """

    _output = "identity"

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Pre-train then fine-tune on ``X`` (n_samples, n_features) and targets ``y``."""
        return self._fit(X, y, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y):
        """One epoch over ``(X, y)`` from the current weights (the first call builds the network,
        without pre-training)."""
        return self._fit(X, y, incremental=True)

    def _fit(self, X, y, *, incremental):
        continuing = (self.warm_start or incremental) and hasattr(self, "model_")
        X, y = validate_data(self, X, y, reset=not continuing, multi_output=True, y_numeric=True,
                             dtype=self._dtype(), order="C")
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if continuing and n_outputs != self.n_outputs_:
            raise ValueError(f"y has {n_outputs} outputs, but the fitted network has {self.n_outputs_}")
        if not continuing:
            self.n_outputs_ = n_outputs
            self.model_ = self._new_model(X.shape[1], n_outputs)
        return self._train(X, y, new_model=not continuing, incremental=incremental)

    def predict(self, X):
        """The network's output: shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        pred = self.model_.predict(X).astype(np.float64)
        return pred.reshape(len(X), -1) if self.n_outputs_ > 1 else pred.reshape(-1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _FastdlEstimator):
    """A stack of autoencoders as a transformer: codes out, reconstructions back.

    Layer i is an :class:`~fastdl.models.Autoencoder` ``h = f(x̃ Wᵀ + b)``, ``x̂ = g(h W'ᵀ + c)``
    trained for ``max_iter`` epochs to reconstruct its input (the data for the first layer, whose
    decoder ``g`` is linear; the codes of layer i − 1 for the next, decoded with that layer's
    activation). ``corruption`` makes each layer denoising, ``tied`` uses ``W' = Wᵀ``.

    ``transform`` encodes through the stack, ``inverse_transform`` decodes back through it, and
    ``score(X)`` is ``-mean_i ½‖xᵢ − x̂ᵢ‖²``, the negative reconstruction error of the whole stack.

    Fitted attributes: ``autoencoders_`` (one per hidden layer), ``loss_curves_`` (per layer),
    ``n_iter_`` (the most epochs any layer has run), ``n_features_in_``, ``feature_names_in_``.
    """

    def __init__(self, hidden_layer_sizes=(32,), activation="relu", *, corruption=None, tied=True,
                 optimizer="adam", alpha=0.0, batch_size="auto", learning_rate_init=1e-3, max_iter=50,
                 shuffle=True, tol=1e-4, early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 random_state=None, verbose=False, warm_start=False, dtype="float32"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.corruption = corruption
        self.tied = tied
        self.optimizer = optimizer
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.dtype = dtype

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoders greedily, bottom to top, on ``X`` (n_samples, n_features)."""
        return self._fit(X, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """One epoch of each autoencoder, bottom to top, over ``X`` from the current weights."""
        return self._fit(X, incremental=True)

    def _fit(self, X, *, incremental):
        continuing = (self.warm_start or incremental) and hasattr(self, "autoencoders_")
        X = self._validate_X(X, reset=not continuing)
        if not continuing:
            self.autoencoders_ = self._new_autoencoders(X.shape[1])
            self.loss_curves_ = [[] for _ in self.autoencoders_]
            self._n_features_out = self.autoencoders_[-1].n_hidden
        codes = X
        for i, ae in enumerate(self.autoencoders_):
            history = ae.fit(codes, **self._fit_options(len(X), incremental))
            self.loss_curves_[i].extend(history["loss"])
            if i + 1 < len(self.autoencoders_):
                codes = ae.encode(codes)
        self.n_iter_ = max(ae.epoch_ for ae in self.autoencoders_)
        return self

    def _new_autoencoders(self, n_features):
        activation, sizes, seed = self._activation(), [n_features] + self._hidden_sizes(), self._seed()
        return [Autoencoder(n_in, n_out, activation, "identity" if i == 0 else activation, tied=self.tied,
                            corruption=self.corruption, dtype=self._dtype(), seed=seed + i)
                for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))]

    def transform(self, X):
        """The top layer's codes, shape (n_samples, hidden_layer_sizes[-1])."""
        check_is_fitted(self)
        codes = self._validate_X(X, reset=False)
        for ae in self.autoencoders_:
            codes = ae.encode(codes)
        return codes

    def inverse_transform(self, X):
        """Reconstructions of the inputs from codes ``X`` of shape (n_samples, n_codes)."""
        check_is_fitted(self)
        out = check_array(X, dtype=self._dtype(), order="C")
        if out.shape[1] != self._n_features_out:
            raise ValueError(f"X has {out.shape[1]} features, but {type(self).__name__} decodes "
                             f"{self._n_features_out} codes")
        for ae in reversed(self.autoencoders_):
            out = ae.decode(out)
        return out

    def score(self, X, y=None):
        """``-mean_i ½‖xᵢ − x̂ᵢ‖²``: the negative reconstruction error of the stack (higher is better)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        residual = X - self.inverse_transform(self.transform(X))
        return -0.5 * float(np.mean(np.einsum("ij,ij->i", residual, residual, dtype=np.float64)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # transform returns the model's dtype; an invalid dtype is reported by fit, not here
        valid = self.dtype in ("float32", "float64", np.float32, np.float64)
        tags.transformer_tags.preserves_dtype = [np.dtype(self.dtype).name if valid else "float32"]
        return tags

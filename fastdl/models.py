"""Models: a sequential network (and the ``MLP`` shortcut), the autoencoder, and the stacked
autoencoder that pre-trains greedily then fine-tunes.

Every model keeps its weights in one :class:`~fastdl.params.ParamArena`, trains with
:func:`fastdl.training.train`, and runs forward / backward through its layers over workspaces
allocated once per batch size. The public methods validate their inputs once; a rejected call
raises before anything is changed.

Common API (what the scikit-learn wrappers drive):

- ``fit(X, y, epochs=..., batch_size=..., optimizer="adam", lr=..., ...)`` trains from the
  current weights, so calling it again continues training (``partial_fit``-like); the optimizer
  and its state are kept between calls while its settings stay the same;
- ``predict``, ``predict_proba`` (classifiers), ``transform`` (codes), ``score``;
- ``get_config()`` / ``from_config()``, ``seed``, counters ``step_`` and ``epoch_`` that key the
  dropout / corruption masks and the shuffling, ``history_`` of the last fit.
"""
import time

import numpy as np

from fastdl import io as _io, optim
from fastdl._kernels import CPU_BACKENDS, name_of, ops as _active_ops, using
from fastdl._kernels.random import noise_key
from fastdl._validation import (check_finite, check_float_dtype, check_int, check_numeric_dtype,
                                check_probability, check_real, check_validation_fraction)
from fastdl._kernels.registry import check_activation
from fastdl.distributed import collective
from fastdl.layers import Dense, Dropout, layer_from_config
from fastdl.params import ParamArena
from fastdl.training import train

OPTIMIZERS = {"sgd": optim.SGD, "momentum": optim.Momentum, "adagrad": optim.Adagrad,
              "rmsprop": optim.RMSprop, "adam": optim.Adam, "adamw": optim.AdamW}

#: output name -> the loss it trains with (a key of LOSSES)
OUTPUTS = {"softmax": "softmax_cross_entropy", "sigmoid": "bce", "identity": "mse"}
#: loss name -> the loss kernel: kernel(x, target, grad, row_loss) -> the batch mean
LOSSES = {"mse": "mse_loss", "bce": "binary_cross_entropy_with_logits",
          "softmax_cross_entropy": "softmax_cross_entropy_labels"}

_EVAL_BATCH = 1024  # rows per forward pass when predicting: bounds the workspace
_CACHED_WORKSPACES = 4


def _kernel_array(arr, dtype, name):
    """``arr`` as a writable C-contiguous array of ``dtype``, copied only when it is not one;
    a NaN or infinity in it is an error naming ``name``.

    Writable because numba compiles a separate specialization of a kernel for read-only arrays
    (memmaps, the arrays joblib hands to parallel workers): about a dozen more compilations for
    one input. A copy here, once per call, keeps every kernel at one array type.
    """
    flags = arr.flags
    if not (arr.dtype == dtype and flags.c_contiguous and flags.writeable):
        arr = np.ascontiguousarray(arr, dtype=dtype)
        arr = arr if arr.flags.writeable else arr.copy()
    return check_finite(arr, name)


def _same(a, b):
    """Equal hyper-parameter values (betas may come back from JSON as a list)."""
    return tuple(a) == tuple(b) if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) else a == b


class _StepContext:
    """What a layer needs to draw its noise: the model seed, the global step, its stream, and the
    position of the step's first row in the whole batch (another process may hold the rows before)."""

    __slots__ = ("seed", "step", "stream", "first_row")

    def __init__(self, seed):
        self.seed, self.step, self.stream, self.first_row = seed, 0, 0, 0


class Model:
    """Shared machinery: the arena, workspaces, forward / backward, fit, validation, config.

    A subclass builds ``self.layers`` (the forward chain), names ``self.loss`` (a key of
    ``LOSSES``) and calls ``_build()``. The kernel backend active at construction (``self.ops``)
    runs the model for its whole life.
    """

    def _init_common(self, dtype, seed):
        self.ops = _active_ops()
        self.dtype = check_float_dtype(dtype, "dtype")
        self.seed = check_int(seed, "seed", 0)
        self.step_ = 0
        self.epoch_ = 0
        self.optimizer_ = None
        self.history_ = None
        self._workspaces = {}
        self._ctx = _StepContext(self.seed)

    def _build(self, named_layers):
        """Declare every layer's tensors in one arena, initialize them from the seed in host
        memory, put the arena on the backend and bind the layers to its views."""
        arena = ParamArena(self.dtype)
        for name, layer in named_layers:
            for tensor, shape in layer.param_specs():
                arena.add(f"{name}.{tensor}", shape)
        arena.allocate()
        rng = np.random.default_rng(self.seed)
        names = [(name, layer, [tensor for tensor, _ in layer.param_specs()])
                 for name, layer in named_layers]
        for name, layer, tensors in names:
            layer.init_params({t: arena.param(f"{name}.{t}") for t in tensors}, rng)
        arena.place(self.ops)
        for name, layer, tensors in names:
            layer.bind({t: arena.param(f"{name}.{t}") for t in tensors},
                       {t: arena.grad(f"{name}.{t}") for t in tensors}, self.ops)
        self.arena = arena
        self._loss_kernel = getattr(self.ops, LOSSES[self.loss])
        self._zero_grad_each_step = any(getattr(layer, "accumulate", False) for _, layer in named_layers)

    # --- shapes -----------------------------------------------------------------------------
    @property
    def n_inputs(self):
        return self.layers[0].n_in

    @property
    def n_outputs(self):
        return self.layers[-1].n_out

    # --- workspaces and passes ---------------------------------------------------------------
    def _workspace(self, n, training):
        """Buffers for ``n`` rows, allocated on first use and cached (a few batch sizes)."""
        key = (n, training)
        ws = self._workspaces.get(key)
        if ws is None:
            if len(self._workspaces) >= _CACHED_WORKSPACES:
                self._workspaces.pop(next(iter(self._workspaces)))
            empty = self.ops.empty
            ws = {"layers": [{name: empty(shape, self.dtype)
                              for name, shape in layer.workspace_specs(n, training).items()}
                             for layer in self.layers],
                  "row_loss": empty(n, np.float64)}
            if not training:  # the loss kernel writes a gradient even when only the value is wanted
                ws["loss_grad"] = empty((n, self.n_outputs), self.dtype)
            self._workspaces[key] = ws
        return ws

    def _forward(self, x, ws, training, stop=None):
        """Run ``self.layers[:stop]`` on ``x``; returns the last one's output."""
        # evaluation draws no noise, so it skips the step context; its own loop because one loop
        # with per-layer `if training` tests measured ~2 µs slower on a batch-1 predict_proba
        if not training:
            for layer, buffers in zip(self.layers[:stop], ws["layers"]):
                x = layer.forward(x, buffers, False, None)
            return x
        ctx = self._ctx
        ctx.step = self.step_
        for i, (layer, buffers) in enumerate(zip(self.layers[:stop], ws["layers"])):
            ctx.stream = i
            x = layer.forward(x, buffers, True, ctx)
        return x

    def _backward(self, x, ws):
        """From ∂L/∂output (already in the last layer's ``grad`` buffer) down to the first layer."""
        ctx = self._ctx
        layers, buffers = self.layers, ws["layers"]
        for i in range(len(layers) - 1, -1, -1):
            ctx.stream = i
            below = buffers[i - 1]["grad"] if i else None
            inputs = self._layer_input(i, x, ws)
            layers[i].backward(buffers[i]["grad"], inputs, buffers[i], below, ctx)

    def _layer_input(self, i, x, ws):
        """The array layer ``i`` read in the last training forward pass."""
        while i > 0:
            i -= 1
            out = ws["layers"][i].get("out")
            if out is not None:
                return out
        return x

    def _targets_of(self, xb, yb):
        return yb

    def _train_step(self, xb, yb, first_row=0):
        """One forward / backward of a batch whose rows start at ``first_row`` of the whole batch."""
        self._ctx.first_row = first_row
        ws = self._workspace(len(xb), True)
        if self._zero_grad_each_step:  # some layer accumulates its gradient (tied weights)
            self.arena.zero_grad()
        x = self._model_input(xb, ws)
        out = self._forward(x, ws, True)
        loss = self._loss_kernel(out, self._targets_of(xb, yb), ws["layers"][-1]["grad"], ws["row_loss"])
        self._backward(x, ws)
        return loss

    def _model_input(self, xb, ws):
        """The array the first layer reads (the autoencoder corrupts its input here)."""
        return xb

    def _output(self, X, head=None):
        """The last (Dense) layer's output for validated ``X``, in evaluation mode, in bounded
        chunks, written straight into the result. ``head`` (an activation name) replaces that
        layer's identity activation in its kernel: predict_proba's softmax or sigmoid costs no pass
        of its own."""
        n = len(X)
        X = self.ops.to_device(X)
        result = self.ops.empty((n, self.n_outputs), self.dtype)
        if n <= _EVAL_BATCH:  # whole arrays: fresh views cost the kernels' dispatch a few µs
            self._output_chunk(X, result, head)
        else:
            for start in range(0, n, _EVAL_BATCH):
                self._output_chunk(X[start:start + _EVAL_BATCH], result[start:start + _EVAL_BATCH],
                                   head)
        return self.ops.to_host(result)

    def _output_chunk(self, X, out, head):
        below = self._forward(X, self._workspace(len(X), False), False, stop=-1)
        self.layers[-1].apply(below, out, head=head)

    def _run(self, X, layers):
        """Evaluation-mode pass of validated ``X`` through ``layers`` only (a part of the model:
        the encoder, the decoder, the hidden stack), with buffers of its own; a host array."""
        X = self.ops.to_device(X)
        for layer in layers:
            buffers = {name: self.ops.empty(shape, self.dtype)
                       for name, shape in layer.workspace_specs(len(X), False).items()}
            X = layer.forward(X, buffers, False, self._ctx)
        return self.ops.to_host(X)

    def _loss_on(self, X, T, count_correct=False):
        """Mean loss of validated X against kernel-ready targets T (no training, no noise), and
        with ``count_correct`` the number of rows whose argmax output is the label in T."""
        total, correct = 0.0, 0
        to_device = self.ops.to_device
        for start in range(0, len(X), _EVAL_BATCH):
            labels = T[start:start + _EVAL_BATCH]
            chunk, targets = to_device(X[start:start + _EVAL_BATCH]), to_device(labels)
            ws = self._workspace(len(chunk), False)
            out = self._forward(chunk, ws, False)
            if count_correct:
                correct += int(np.count_nonzero(np.argmax(self.ops.to_host(out), axis=1) == labels))
            total += self._loss_kernel(out, targets, ws["loss_grad"], ws["row_loss"]) * len(chunk)
        return (total / len(X), correct) if count_correct else total / len(X)

    # --- validation -------------------------------------------------------------------------
    def _check_X(self, X, name="X"):
        """``X`` as a writable C-contiguous 2-D array of the model's dtype (see ``_kernel_array``),
        finite, with the right width."""
        arr = np.asarray(X)
        check_numeric_dtype(arr.dtype, name)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2-D (samples, features), got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} has no samples")
        if arr.shape[1] != self.n_inputs:
            raise ValueError(f"{name} has {arr.shape[1]} features, but the model expects {self.n_inputs}")
        return _kernel_array(arr, self.dtype, name)

    # --- training ---------------------------------------------------------------------------
    def _optimizer_class(self, optimizer):
        if isinstance(optimizer, optim.Optimizer):
            if not self.ops.shares_memory(optimizer.params, self.arena.params):
                raise ValueError("optimizer must be built over this model's arena (model.arena)")
            return type(optimizer)
        cls = OPTIMIZERS.get(str(optimizer).lower())
        if cls is None:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)} or an Optimizer, got {optimizer!r}")
        return cls

    def _make_optimizer(self, optimizer, lr, optimizer_params):
        if isinstance(optimizer, optim.Optimizer):
            return optimizer
        cls = self._optimizer_class(optimizer)
        settings = {"lr": lr, **(optimizer_params or {})}
        current = self.optimizer_
        if type(current) is cls and all(_same(getattr(current, k, None), v) for k, v in settings.items()):
            return current  # same settings: continue with its state (partial_fit-like)
        return cls(self.arena, **settings)

    def _fit_options(self, kwargs):
        """The fit keyword arguments completed with defaults and checked, before anything changes."""
        unknown = set(kwargs) - set(_FIT_DEFAULTS)
        if unknown:
            raise TypeError(f"fit() got unexpected keyword argument(s) {sorted(unknown)}")
        options = {**_FIT_DEFAULTS, **kwargs}
        options["epochs"] = check_int(options["epochs"], "epochs", 0)
        options["batch_size"] = check_int(options["batch_size"], "batch_size", 1)
        if options["patience"] is not None:
            options["patience"] = check_int(options["patience"], "patience", 1)
        options["validation_fraction"] = check_validation_fraction(options["validation_fraction"])
        options["lr"] = check_real(options["lr"], "lr", 0.0)
        self._optimizer_class(options["optimizer"])
        if options["comm"] is not None and name_of(self.ops) not in CPU_BACKENDS:
            raise ValueError(f"data-parallel training over MPI (comm=) runs on the CPU backends "
                             f"{list(CPU_BACKENDS)}; this model was built on {name_of(self.ops)!r}")
        return options

    def _fit(self, X, targets, *, optimizer, lr, optimizer_params, **options):
        """Run the training loop on checked data and options."""
        opt = self._make_optimizer(optimizer, lr, optimizer_params)
        self.optimizer_ = opt
        self.history_ = train(self, opt, X, targets, seed=self.seed, **options)
        return self.history_

    # --- persistence ------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_state(self):
        """Fitted state that is not a parameter (JSON-able)."""
        return {"step": self.step_, "epoch": self.epoch_}

    def set_state(self, state):
        self.step_, self.epoch_ = int(state["step"]), int(state["epoch"])

    def restore_optimizer(self, class_name, state_dict):
        """Rebuild the optimizer saved with the model (see :mod:`fastdl.io`) and its state."""
        cls = {c.__name__: c for c in OPTIMIZERS.values()}[class_name]
        opt = cls(self.arena, **state_dict["hyper"])  # "hyper" holds every constructor keyword
        opt.load_state_dict(state_dict)
        self.optimizer_ = opt

    def __reduce__(self):
        """Pickle and copy (``copy.copy`` and ``copy.deepcopy`` too) through the pieces a saved
        file holds: the copy is rebuilt from the config, so its layers are views of its own arena
        (pickling the live object would give them copies of the old one), and carries the
        parameters, the fitted state and the optimizer's state. ``history_``,
        ``pretrain_report_`` and the workspaces are not carried."""
        pieces = _io.model_pieces(self)
        return _io.model_from_pieces, (pieces["class"], pieces["config"], pieces["params"], pieces["layout"],
                                       pieces["state"], pieces["optimizer"])

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


_FIT_DEFAULTS = dict(epochs=10, batch_size=32, optimizer="adam", lr=1e-3, optimizer_params=None,
                     shuffle=True, validation_data=None, validation_fraction=0.0, patience=None,
                     min_delta=0.0, callbacks=(), lr_schedule=None, progress=False, comm=None)


class Network(Model):
    """A sequential network of ``Dense`` / ``Dropout`` layers with an output head.

    ``output`` picks the head and its loss: ``"softmax"`` (classification, softmax
    cross-entropy from the logits, labels of any type, ``classes_``), ``"sigmoid"`` (independent
    binary targets in [0, 1], binary cross-entropy from the logits) or ``"identity"`` (regression,
    mean squared error ½‖ŷ − y‖² per sample). The last ``Dense`` layer must have the identity
    activation: the head's non-linearity is applied by the loss and by ``predict_proba``.
    """

    def __init__(self, layers, output="softmax", dtype=np.float32, seed=0):
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {sorted(OUTPUTS)}, got {output!r}")
        layers = [layer_from_config(layer) if isinstance(layer, dict) else layer for layer in layers]
        if not layers or not isinstance(layers[0], Dense) or not isinstance(layers[-1], Dense):
            raise ValueError("layers must start and end with a Dense layer")
        if layers[-1].activation != "identity":
            raise ValueError(f"the last layer must have the identity activation (the {output!r} "
                             f"head applies its own), got {layers[-1].activation!r}")
        width = layers[0].n_in
        for i, layer in enumerate(layers):
            if isinstance(layer, Dropout):
                layer.n_in = layer.n_out = width
            elif layer.n_in != width:
                raise ValueError(f"layer {i} takes {layer.n_in} inputs, but the layer below gives {width}")
            width = layer.n_out
        self._init_common(dtype, seed)
        self.layers = layers
        self.output = output
        self.loss = OUTPUTS[output]
        self.classes_ = None
        self._build(self._named_layers())

    def _named_layers(self):
        return [(f"layer{i}", layer) for i, layer in enumerate(self.layers)]

    # --- targets ----------------------------------------------------------------------------
    def _check_y(self, y, n, name, classes):
        """Kernel-ready targets and the class labels: int64 indices into ``classes`` (softmax; the
        sorted labels of ``y`` when ``classes`` is None) or a float (n, n_outputs) array."""
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != n:
            raise ValueError(f"{name} has {len(y) if y.ndim else 0} entries, but X has {n} samples")
        if self.output == "softmax":
            if y.ndim != 1:
                raise ValueError(f"{name} must be 1-D class labels, got shape {y.shape}")
            if y.dtype.kind == "f":
                check_finite(y, name)
            if classes is None:
                classes = np.unique(y)
                if len(classes) > self.n_outputs:
                    raise ValueError(f"{name} has {len(classes)} classes, but the network has "
                                     f"{self.n_outputs} outputs")
            idx = np.searchsorted(classes, y)
            idx[idx >= len(classes)] = 0
            unknown = classes[idx] != y
            if unknown.any():
                raise ValueError(f"{name} holds labels the model was not fitted with: "
                                 f"{np.unique(y[unknown])[:5].tolist()} (classes are {classes.tolist()})")
            return idx.astype(np.int64), classes
        check_numeric_dtype(y.dtype, name)
        y2 = y.reshape(n, -1) if y.ndim == 1 else y
        if y2.ndim != 2 or y2.shape[1] != self.n_outputs:
            raise ValueError(f"{name} has shape {y.shape}, but the network has {self.n_outputs} outputs")
        y2 = _kernel_array(y2, self.dtype, name)
        if self.output == "sigmoid" and ((y2 < 0).any() or (y2 > 1).any()):
            raise ValueError(f"{name} must lie in [0, 1] for output='sigmoid'")
        return y2, None

    def _check_classes(self, classes):
        """The sorted labels of ``classes``, or ``classes_`` when None (None before the first fit)."""
        if classes is None:
            return self.classes_
        if self.output != "softmax":
            raise ValueError(f"classes is for a softmax head, this network has output={self.output!r}")
        labels = np.unique(np.asarray(classes))
        if labels.size == 0 or labels.size > self.n_outputs:
            raise ValueError(f"classes has {labels.size} labels, but the network has {self.n_outputs} outputs")
        if self.classes_ is not None and not np.array_equal(labels, self.classes_):
            raise ValueError(f"classes {labels.tolist()[:10]} differ from the fitted classes_ "
                             f"{self.classes_.tolist()[:10]}")
        return labels

    # --- public API -------------------------------------------------------------------------
    @collective
    def fit(self, X, y, *, classes=None, **kwargs):
        """Train from the current weights; returns the :class:`~fastdl.training.History`.

        ``classes`` (softmax head): every label the network will be trained on, as in
        scikit-learn's ``partial_fit``, for a first ``y`` that lacks some; by default the labels of
        the first ``y``. Once fitted, ``classes`` must equal ``classes_``.

        Other keyword arguments (defaults): epochs=10, batch_size=32, optimizer="adam" (a name or an
        Optimizer over ``model.arena``), lr=1e-3, optimizer_params=None (e.g. weight_decay),
        shuffle=True, validation_data=None, validation_fraction=0.0, patience=None,
        min_delta=0.0, callbacks=(), lr_schedule=None, progress=False, comm=None (an mpi4py
        communicator: train data-parallel with its other ranks, see :mod:`fastdl.distributed`).
        """
        return self._fit_checked(*self._check_fit(X, y, classes, kwargs))

    def _check_fit(self, X, y, classes, kwargs):
        options = self._fit_options(kwargs)
        X = self._check_X(X)
        targets, classes = self._check_y(y, len(X), "y", self._check_classes(classes))
        if options["validation_data"] is not None:
            Xv, yv = options["validation_data"]
            Xv = self._check_X(Xv, "validation_data X")
            options["validation_data"] = (Xv, self._check_y(yv, len(Xv), "validation_data y", classes)[0])
        return X, targets, classes, options

    def _fit_checked(self, X, targets, classes, options):
        self.classes_ = classes
        return self._fit(X, targets, **options)

    def _evaluate(self, X, T, batch_size):
        if self.output != "softmax":
            return {"loss": self._loss_on(X, T)}
        loss, correct = self._loss_on(X, T, count_correct=True)
        return {"loss": loss, "accuracy": correct / len(X)}

    def decision_function(self, X):
        """The last layer's raw output (logits for softmax / sigmoid heads)."""
        return self._output(self._check_X(X))

    def predict_proba(self, X):
        """Class probabilities (softmax head) or per-output probabilities (sigmoid head)."""
        if self.output == "identity":
            raise AttributeError("predict_proba needs a softmax or sigmoid output, this network regresses")
        return self._output(self._check_X(X), head=self.output)

    def predict(self, X):
        """Class labels (softmax), 0/1 per output (sigmoid), or the regression output."""
        out = self.decision_function(X)
        if self.output == "softmax":
            self._require_fitted()
            return self.classes_[np.argmax(out[:, :len(self.classes_)], axis=1)]
        if self.output == "sigmoid":
            return (out > 0).astype(np.int64)
        return out[:, 0] if self.n_outputs == 1 else out

    def score(self, X, y):
        """Accuracy for classification, R² for regression."""
        pred = self.predict(X)
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != len(pred) or (self.output != "identity" and y.ndim != 1):
            raise ValueError(f"y has shape {y.shape}, but X has {len(pred)} samples"
                             + ("" if self.output == "identity" else " (y: 1-D class labels)"))
        if self.output == "identity":
            y = np.asarray(y, dtype=np.float64).reshape(pred.shape)
            ss_res = np.sum((y - pred) ** 2)
            ss_tot = np.sum((y - y.mean(axis=0)) ** 2)
            return float(1.0 - ss_res / ss_tot)
        return float(np.mean(pred == np.asarray(y)))

    def _require_fitted(self):
        if self.classes_ is None:
            raise RuntimeError("the network has not been fitted yet: call fit(X, y) first")

    def get_config(self):
        return {"layers": [layer.get_config() for layer in self.layers], "output": self.output,
                "dtype": self.dtype.name, "seed": self.seed}

    def get_state(self):
        state = super().get_state()
        if self.classes_ is not None:
            state["classes"] = self.classes_.tolist()
            state["classes_dtype"] = self.classes_.dtype.str
        return state

    def set_state(self, state):
        super().set_state(state)
        if "classes" in state:
            self.classes_ = np.array(state["classes"], dtype=np.dtype(state["classes_dtype"]))


def _mlp_layers(sizes, activation, dropout, init, activation_params):
    layers = []
    dropout = check_probability(dropout, "dropout")
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(Dense(n_in, n_out, "identity" if last else activation, init,
                            **({} if last else activation_params)))
        if dropout and not last:
            layers.append(Dropout(dropout))
    return layers


class MLP(Network):
    """``MLP([784, 500, 10], activation="relu", output="softmax", dropout=0.0)``: Dense layers of
    the given sizes, ``activation`` between them, dropout after each hidden layer if > 0."""

    def __init__(self, sizes, activation="relu", output="softmax", dropout=0.0, init="auto",
                 dtype=np.float32, seed=0, **activation_params):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least an input and an output size, got {sizes}")
        self.sizes, self.activation, self.dropout, self.init = sizes, activation, dropout, init
        self.activation_params = activation_params
        super().__init__(_mlp_layers(sizes, activation, dropout, init, activation_params),
                         output=output, dtype=dtype, seed=seed)

    def get_config(self):
        return {"sizes": self.sizes, "activation": self.activation, "output": self.output,
                "dropout": self.dropout, "init": self.init, "dtype": self.dtype.name,
                "seed": self.seed, **self.activation_params}


def _check_corruption(corruption):
    if corruption is None:
        return None
    try:
        kind, level = corruption
    except (TypeError, ValueError):
        raise ValueError(f"corruption must be None, ('mask', p) or ('gaussian', sigma), got {corruption!r}") from None
    if kind == "mask":
        return ("mask", check_probability(level, "corruption p"))
    if kind == "gaussian":
        return ("gaussian", check_real(level, "corruption sigma", 0.0))
    raise ValueError(f"corruption must be None, ('mask', p) or ('gaussian', sigma), got {corruption!r}")


class Autoencoder(Model):
    """``h = f(x̃ Wᵀ + b)``, ``x̂ = g(h W' ᵀ + c)``, trained to reconstruct the clean ``x``.

    ``tied=True`` makes the decoder use ``W' = Wᵀ``, the very same array as the encoder (its own
    bias ``c``), so one tensor gets the gradient of both uses. ``corruption`` makes it denoising:
    ``("mask", p)`` zeroes each input with probability p, ``("gaussian", sigma)`` adds N(0, σ²);
    noise is drawn per step from the seed (counter-based), only while training.
    ``loss="mse"`` is ½‖x − x̂‖² per sample; ``loss="bce"`` is the cross-entropy of inputs in
    [0, 1] against x̂ = σ(logits), computed stably from the logits (the decoder is then sigmoid).
    """

    def __init__(self, n_visible, n_hidden, activation="sigmoid", decoder_activation="sigmoid",
                 tied=False, corruption=None, loss="mse", init="auto", dtype=np.float32, seed=0,
                 **activation_params):
        if loss not in ("mse", "bce"):
            raise ValueError(f"loss must be 'mse' or 'bce', got {loss!r}")
        if loss == "bce" and decoder_activation != "sigmoid":
            raise ValueError(f"loss='bce' reconstructs through a sigmoid: decoder_activation must be "
                             f"'sigmoid', got {decoder_activation!r}")
        check_activation(decoder_activation, {}, "decoder_activation")
        self._init_common(dtype, seed)
        self.n_visible, self.n_hidden = int(n_visible), int(n_hidden)
        self.activation, self.decoder_activation = activation, decoder_activation
        self.tied, self.init = bool(tied), init
        self.corruption = _check_corruption(corruption)
        self.loss = loss
        self.activation_params = activation_params
        self.encoder = Dense(n_visible, n_hidden, activation, init, **activation_params)
        # with bce the decoder emits logits; the sigmoid lives in the loss and in reconstruct()
        self.decoder = Dense(n_hidden, n_visible, "identity" if loss == "bce" else decoder_activation,
                             init, tied_to=self.encoder if self.tied else None)
        self.layers = [self.encoder, self.decoder]
        self._build([("encoder", self.encoder), ("decoder", self.decoder)])

    def _workspace(self, n, training):
        ws = super()._workspace(n, training)
        if training and self.corruption is not None and "corrupted" not in ws:
            ws["corrupted"] = self.ops.empty((n, self.n_visible), self.dtype)
        return ws

    def _model_input(self, xb, ws):
        if self.corruption is None:
            return xb
        kind, level = self.corruption
        key = noise_key(self.seed, self.step_, 0xC0DE, self._ctx.first_row * self.n_visible)
        out = ws["corrupted"]
        if kind == "mask":
            self.ops.masking_noise(xb, level, key, out)
        else:
            self.ops.gaussian_noise(xb, level, key, out)
        return out

    def _targets_of(self, xb, yb):
        return xb

    def _evaluate(self, X, T, batch_size):
        return {"loss": self._loss_on(X, X)}

    # --- public API -------------------------------------------------------------------------
    @collective
    def fit(self, X, **kwargs):
        """Train to reconstruct ``X`` from the current weights; see :meth:`Network.fit` for the
        keyword arguments (``validation_data`` is an array X_val here)."""
        options = self._fit_options(kwargs)
        X = self._check_X(X)
        if options["validation_data"] is not None:
            Xv = self._check_X(options["validation_data"], "validation_data")
            options["validation_data"] = (Xv, None)
        return self._fit(X, None, **options)

    def encode(self, X):
        """The codes h = f(x Wᵀ + b) (no corruption)."""
        X = self._check_X(X)
        return self._run(X, [self.encoder])

    transform = encode

    def decode(self, H):
        """x̂ = g(h W'ᵀ + c) for codes ``H`` of shape (n, n_hidden)."""
        H = np.asarray(H)
        if H.ndim != 2 or H.shape[1] != self.n_hidden:
            raise ValueError(f"H must have shape (n, {self.n_hidden}), got {H.shape}")
        H = self.ops.to_device(_kernel_array(H, self.dtype, "H"))
        out = self.ops.empty((len(H), self.n_visible), self.dtype)
        self.decoder.apply(H, out, head=self._decoder_head)
        return self.ops.to_host(out)

    def reconstruct(self, X):
        """x̂ = g(f(x)) for clean inputs."""
        return self._output(self._check_X(X), head=self._decoder_head)

    @property
    def _decoder_head(self):
        """What decode and reconstruct fuse into the decoder's kernel: with bce the decoder emits
        logits (identity activation) and g is the sigmoid; otherwise its own activation."""
        return "sigmoid" if self.loss == "bce" else None

    def reconstruction_error(self, X):
        """The mean per-sample loss of reconstructing ``X`` (½‖x − x̂‖² or the cross-entropy)."""
        X = self._check_X(X)
        return self._loss_on(X, X)

    def score(self, X):
        return -self.reconstruction_error(X)

    def get_config(self):
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden, "activation": self.activation,
                "decoder_activation": self.decoder_activation, "tied": self.tied,
                "corruption": list(self.corruption) if self.corruption else None, "loss": self.loss,
                "init": self.init, "dtype": self.dtype.name, "seed": self.seed, **self.activation_params}


class StackedAutoencoder(Network):
    """A deep network ``sizes[0] → … → sizes[-1] → n_outputs`` whose hidden layers can be
    pre-trained greedily as autoencoders, then fine-tuned with a supervised head.

    ``fit(X, y, pretrain=True, ...)`` does both in one call: layer i is trained as an
    :class:`Autoencoder` on the codes of layers 0…i−1 (each layer with its own epochs, optimizer,
    learning rate and corruption, given per layer as a list or once for all), its encoder is
    written into this network's arena, and then the whole network is fine-tuned. With
    ``pretrain=False`` the same call gives the random-initialization baseline from the same seed.
    ``output`` is ``"softmax"`` (classification) or ``"identity"`` (regression).
    """

    def __init__(self, sizes, n_outputs, activation="sigmoid", output="softmax", tied=True,
                 corruption=None, ae_loss="mse", decoder_activation="sigmoid", dropout=0.0, init="auto",
                 dtype=np.float32, seed=0, **activation_params):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input size and at least one hidden size, got {sizes}")
        self.sizes, self.activation, self.tied, self.ae_loss = sizes, activation, bool(tied), ae_loss
        self.corruption, self.dropout, self.init = _check_corruption(corruption), dropout, init
        self.decoder_activation = decoder_activation
        self.activation_params = activation_params
        self.pretrain_report_ = None
        super().__init__(_mlp_layers(sizes + [int(n_outputs)], activation, dropout, init, activation_params),
                         output=output, dtype=dtype, seed=seed)
        self.hidden_layers = [layer for layer in self.layers[:-1] if isinstance(layer, Dense)]

    def transform(self, X):
        """The top hidden layer's codes."""
        return self._run(self._check_X(X), self.hidden_layers)

    @collective
    def pretrain(self, X, *, epochs=5, batch_size=32, optimizer="adam", lr=1e-3, corruption="default",
                 progress=False, comm=None):
        """Greedy layer-wise pre-training of the hidden layers; returns the per-layer report.

        ``epochs``, ``optimizer``, ``lr`` and ``corruption`` may each be one value for every layer
        or a list with one value per hidden layer.
        """
        X = self._check_X(X)
        return self._pretrain(X, self._pretrain_plan(epochs, batch_size, optimizer, lr, corruption),
                              batch_size, progress, comm)

    def _pretrain(self, X, plan, batch_size, progress, comm):
        """pretrain() on a checked X and plan."""
        report = []
        codes = X
        for i, (layer, (layer_epochs, layer_optimizer, layer_lr, layer_corruption)) in enumerate(
                zip(self.hidden_layers, plan)):
            started = time.perf_counter()
            # the first decoder reconstructs the data, a deeper one the codes of the layer below
            decoder_activation = self.decoder_activation if i == 0 else self.hidden_layers[i - 1].activation
            with using(self.ops):  # this network's backend, whichever is active now
                ae = Autoencoder(layer.n_in, layer.n_out, layer.activation, decoder_activation, tied=self.tied,
                                 corruption=layer_corruption, loss=self.ae_loss if i == 0 else "mse",
                                 init=layer.init, dtype=self.dtype, seed=self.seed + 1 + i,
                                 **self.activation_params)
            # start from this network's own initial encoder, train, write the encoder back
            self.ops.copy(self._layer_params(layer), ae.arena.group("encoder").params)
            history = ae.fit(codes, epochs=layer_epochs, batch_size=batch_size, optimizer=layer_optimizer,
                             lr=layer_lr, progress=progress, comm=comm)
            self.ops.copy(ae.arena.group("encoder").params, self._layer_params(layer))
            report.append({"layer": i, "sizes": (layer.n_in, layer.n_out), "loss": history["loss"],
                           "time": time.perf_counter() - started})
            if i + 1 < len(plan):
                codes = ae.encode(codes)
        self.pretrain_report_ = report
        return report

    def _pretrain_plan(self, epochs, batch_size, optimizer, lr, corruption):
        """(epochs, optimizer, lr, corruption) per hidden layer, each checked; a single value
        applies to every layer, a list gives one per layer."""
        n_layers = len(self.hidden_layers)

        def per_layer(value, name):
            single = not isinstance(value, (list, tuple)) or (
                name == "corruption" and len(value) == 2 and isinstance(value[0], str))
            values = [value] * n_layers if single else list(value)
            if len(values) != n_layers:
                raise ValueError(f"pretrain {name} has {len(values)} entries, but there are {n_layers} hidden layers")
            return values

        corruption = self.corruption if isinstance(corruption, str) and corruption == "default" else corruption
        plan = list(zip(per_layer(epochs, "epochs"), per_layer(optimizer, "optimizer"), per_layer(lr, "lr"),
                        [_check_corruption(c) for c in per_layer(corruption, "corruption")]))
        for layer_epochs, layer_optimizer, layer_lr, _ in plan:
            self._fit_options({"epochs": layer_epochs, "batch_size": batch_size, "optimizer": layer_optimizer,
                               "lr": layer_lr})
        return plan

    def _layer_params(self, layer):
        name = next(n for n, l in self._named_layers() if l is layer)
        return self.arena.group(name).params

    @collective
    def fit(self, X, y, *, classes=None, pretrain=True, pretrain_epochs=5, pretrain_optimizer="adam",
            pretrain_lr=1e-3, pretrain_corruption="default", **kwargs):
        """Greedy pre-training (unless ``pretrain=False``), then supervised fine-tuning with the
        :meth:`Network.fit` keyword arguments. Returns the fine-tuning history; the pre-training
        report is in ``pretrain_report_``."""
        checked = self._check_fit(X, y, classes, kwargs)  # everything is checked before any weight changes
        options = checked[-1]
        if pretrain:
            plan = self._pretrain_plan(pretrain_epochs, options["batch_size"], pretrain_optimizer, pretrain_lr,
                                       pretrain_corruption)
            self._pretrain(checked[0], plan, options["batch_size"], options["progress"], options["comm"])
        return self._fit_checked(*checked)

    def get_config(self):
        return {"sizes": self.sizes, "n_outputs": self.n_outputs, "activation": self.activation,
                "output": self.output, "tied": self.tied,
                "corruption": list(self.corruption) if self.corruption else None, "ae_loss": self.ae_loss,
                "decoder_activation": self.decoder_activation, "dropout": self.dropout, "init": self.init, "dtype": self.dtype.name, "seed": self.seed,
                **self.activation_params}


MODEL_CLASSES = {cls.__name__: cls for cls in (Network, MLP, Autoencoder, StackedAutoencoder)}


def _warmup(dtype):
    """Fit and run each kind of model once on a few rows of ``dtype`` (``fastdl.warmup`` calls
    this): what the models compile beyond the functional kernels, such as a tied decoder's
    transposed weights, corruption, dropout, every loss and the fused output heads."""
    X = np.random.default_rng(0).random((5, 4)).astype(dtype)
    labels = np.arange(5) % 2
    net = StackedAutoencoder([4, 3], 2, activation="relu", corruption=("mask", 0.2), dropout=0.1,
                             dtype=dtype)
    net.fit(X, labels, pretrain_epochs=1, epochs=1, batch_size=2)
    net.predict_proba(X)
    ae = Autoencoder(4, 3, corruption=("gaussian", 0.1), loss="bce", dtype=dtype)
    ae.fit(X, epochs=1, batch_size=2)
    ae.reconstruct(X)
    ae.decode(ae.encode(X))
    for output, targets in (("sigmoid", X[:, :2]), ("identity", X[:, :2])):
        mlp = MLP([4, 3, 2], output=output, dtype=dtype)
        mlp.fit(X, targets, epochs=1, batch_size=2)
        mlp.predict(X)

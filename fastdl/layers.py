"""Layers: thin objects over the kernels, with their parameters living in a model's arena.

A layer declares its tensors (``param_specs``), is bound to views of the model's parameter and
gradient arenas (``bind``), and runs forward / backward on buffers the model preallocated for a
batch size (``workspace_specs``). Layers own no math: every formula is a kernel's.

``Dense(n_in, n_out, activation, init)``: ``y = act(x Wᵀ + b)`` with ``W`` of shape
``(n_out, n_in)`` (PyTorch's ``Linear`` layout). PReLU's alpha and Swish's beta are arena tensors
too, so the optimizer trains them with the weights.

``Dropout(p)``: inverted dropout, ``y = x ⊙ m / (1 − p)`` with ``m_ij ~ Bernoulli(1 − p)`` drawn
by the counter-based generator from ``(seed, step, layer, i, j)``, so a seed gives the same masks
whatever the thread count; backward recomputes the mask instead of storing it; the identity (no
copy) in evaluation mode.
"""
import numpy as np

from fastdl import init as initializers
from fastdl._kernels.random import noise_key
from fastdl._kernels.registry import ACTIVATIONS, IDS, KERNELS, check_activation, kernel_name
from fastdl._validation import check_int, check_probability

class Dense:
    """Fully connected layer ``y = act(x Wᵀ + b)``; see the module docstring."""

    def __init__(self, n_in, n_out, activation="identity", init="auto", *, tied_to=None, **activation_params):
        self.n_in = check_int(n_in, "n_in", 1)
        self.n_out = check_int(n_out, "n_out", 1)
        self.activation = activation
        self.activation_params = check_activation(activation, activation_params)
        self.kernel = kernel_name(activation, self.activation_params)
        self.init = initializers.resolve(init, activation)
        self.kernel_id = IDS[self.kernel]
        self.ops = None  # the kernel backend, set by bind
        self.W = self.b = self.dW = self.db = None
        self.p = self.dp = None  # the activation's parameter as the kernels take it, and its gradient
        # tied_to=encoder: this layer's W is Wₑᵀ, the transposed view of the encoder's own Wₑ (the
        # kernels read it in place); its weight gradient is stored into dWₑ (through dWₑᵀ) first,
        # then the encoder's backward adds its own.
        self.tied_to = tied_to
        self.accumulate = False  # set on an encoder whose W also receives a tied decoder's gradient
        self.reverse = False  # the direction of the last forward's walk over W (a cache hint)
        if tied_to is not None:
            if (tied_to.n_in, tied_to.n_out) != (self.n_out, self.n_in):
                raise ValueError(f"a tied layer {n_in}->{n_out} needs an encoder {n_out}->{n_in}, "
                                 f"got {tied_to.n_in}->{tied_to.n_out}")
            tied_to.accumulate = True

    @property
    def param_key(self):
        """The keyword of the activation's kernel parameter (alpha, beta, negative_slope), or None."""
        return ACTIVATIONS[self.activation].kernel_param

    @property
    def n_act_params(self):
        """Length of the learnable activation tensor (PReLU alpha, Swish beta), 0 if none."""
        if not KERNELS[self.kernel].learnable:
            return 0
        return 1 if self.activation_params.get("shared", True) else self.n_out

    def param_specs(self):
        specs = [("b", (self.n_out,))] if self.tied_to is not None else [("W", (self.n_out, self.n_in)), ("b", (self.n_out,))]
        if self.n_act_params:
            specs.append((self.param_key, (self.n_act_params,)))
        return specs

    def bind(self, params, grads, ops):
        """Take this layer's views of the arena (dicts keyed by the names of ``param_specs``) and
        the kernel backend ``ops`` that runs it."""
        self.ops = ops
        if self.tied_to is not None:
            self.W, self.dW = ops.transposed(self.tied_to.W), ops.transposed(self.tied_to.dW)
        else:
            self.W, self.dW = params["W"], grads["W"]
        self.b, self.db = params["b"], grads["b"]
        if self.param_key in params:  # learnable: the arena's tensor is the kernel's parameter
            self.p, self.dp = params[self.param_key], grads[self.param_key]
        else:  # fixed (LeakyReLU's slope, ELU's alpha) or unused: a one-element array
            self.p = ops.to_device(np.full(1, self.scalar_param(), dtype=self.b.dtype))
            self._unused_dp = ops.zeros(1, self.b.dtype)  # the kernel's dp slot, never read

    def init_params(self, params, rng):
        """Fill this layer's tensors, given as host arrays by the names of ``param_specs``."""
        if "W" in params:  # a tied decoder's W is its encoder's
            initializers.initialize(params["W"], self.init, rng)
        params["b"][...] = 0
        if self.param_key in params:
            params[self.param_key][...] = self.activation_params[self.param_key]

    def scalar_param(self):
        """The fixed parameter of the activation (slope / alpha), 0 where there is none."""
        return float(self.activation_params[self.param_key]) if self.param_key else 0.0

    def workspace_specs(self, n, training):
        """Buffers for ``n`` rows: the output; in training the gradient with respect to it, the
        pre-activation if the derivative reads it, dz if the parameter's gradient needs the
        upstream gradient intact."""
        specs = {"out": (n, self.n_out)}
        if training:
            specs["grad"] = (n, self.n_out)
            if KERNELS[self.kernel].grad_from == "input":
                specs["pre"] = (n, self.n_out)
            if self.dp is not None:
                specs["dz"] = (n, self.n_out)
        return specs

    def forward(self, x, ws, training, ctx):
        self.apply(x, ws["out"], ws.get("pre") if training else None)
        return ws["out"]

    def apply(self, x, out, pre=None, head=None):
        """y = f(x Wᵀ + b) into ``out``; the pre-activation into ``pre`` when given. ``head`` (a
        kernel name) replaces f: a model's output head fused into its last layer. Each call walks
        W the other way round from the previous one (the kernel's ``reverse``, a cache hint)."""
        kind = self.kernel_id if head is None else IDS[head]
        self.reverse = not self.reverse
        self.ops.dense_forward(kind, x, self.W, self.b, self.p, out if pre is None else pre, out,
                               self.reverse)

    def backward(self, grad, x, ws, grad_in, ctx):
        """``grad`` = ∂L/∂y (may be overwritten); writes ∂L/∂W, ∂L/∂b (and the activation
        parameter's gradient) into the arena and ∂L/∂x into ``grad_in`` unless it is None:
        dz = grad ⊙ f'(·) (in place when f has no parameter), dW, db, dp, then dx = dz W. A tied
        decoder's W and dW are the transposed views of its encoder's: its dW is written into the
        encoder's, which then adds its own."""
        v = ws["pre"] if KERNELS[self.kernel].grad_from == "input" else ws["out"]
        dz = grad if self.dp is None else ws["dz"]
        dp = self.dp if self.dp is not None else self._unused_dp
        need_dx = grad_in is not None
        self.ops.dense_backward(self.kernel_id, grad, x, self.W, v, self.p, dz,
                                grad_in if need_dx else grad, self.dW, self.db, dp, need_dx,
                                self.accumulate)
        return grad_in

    def get_config(self):
        params = dict(self.activation_params)
        return {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out, "activation": self.activation,
                "init": self.init, **params}


class Dropout:
    """Inverted dropout with drop probability ``p``; the identity in evaluation mode."""

    def __init__(self, p=0.5):
        self.p = check_probability(p, "p")
        self.n_in = self.n_out = None  # set by the network from the layer below
        self.ops = None  # the kernel backend, set by bind

    def param_specs(self):
        return []

    def bind(self, params, grads, ops):
        self.ops = ops

    def init_params(self, params, rng):
        pass

    def workspace_specs(self, n, training):
        if not training:
            return {}
        if self.p == 0.0:
            return {"grad": (n, self.n_out)}
        return {"out": (n, self.n_out), "grad": (n, self.n_out)}

    def _key(self, ctx):
        """The mask of this step and layer; a slice of a batch draws its rows' part of it."""
        return noise_key(ctx.seed, ctx.step, ctx.stream, ctx.first_row * self.n_out)

    def forward(self, x, ws, training, ctx):
        if not training or self.p == 0.0:
            return x
        self.ops.dropout(x, self.p, self._key(ctx), ws["out"])
        return ws["out"]

    def backward(self, grad, x, ws, grad_in, ctx):
        """The forward mask, recomputed from the same (seed, step, layer) key, times ``grad``."""
        if self.p == 0.0:  # the identity: the gradient passes through unchanged
            self.ops.copy(grad, grad_in)
        else:
            self.ops.dropout_backward(grad, self.p, self._key(ctx), grad_in)
        return grad_in

    def get_config(self):
        return {"type": "Dropout", "p": self.p}


def layer_from_config(config):
    config = dict(config)
    kind = config.pop("type")
    if kind == "Dense":
        return Dense(**config)
    if kind == "Dropout":
        return Dropout(**config)
    raise ValueError(f"unknown layer type {kind!r}")

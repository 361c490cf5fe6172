"""Optimizers over one flat parameter buffer, ``torch.optim``-like.

An optimizer updates a pair of equal-length 1-D contiguous arrays: the parameters and their
gradient, either a whole :class:`fastdl.params.ParamArena` (``arena.params, arena.grads``) or one
layer's :meth:`~fastdl.params.ParamArena.group`. Each :meth:`~Optimizer.step` is one kernel call,
whatever the number of tensors, and allocates nothing after the first (which allocates the state).

Common to all: hyper-parameters are keyword arguments and plain attributes; ``lr`` may be changed
between steps (a schedule); ``step_count`` counts the updates made; ``state_dict()`` /
``load_state_dict()`` save and restore the step count, hyper-parameters and state (numpy arrays),
and a restored optimizer continues bit-identically. Flags that decide the layout of the state
(``amsgrad``, ``centered``, whether RMSprop uses momentum) are fixed at construction.

Non-finite gradients: with ``check_finite=True`` (the default) a step first reads the gradient,
and if it holds a NaN or an inf raises ``FloatingPointError`` without changing the parameters,
the state or the step count. That read costs one pass over the gradient (the update itself reads
and writes 3 to 7 passes). ``check_finite=False`` skips it, and NaN/inf then propagate into the
parameters as in ``torch.optim``.

Weight decay λ adds λθ to the gradient (L2 regularisation) in every optimizer except AdamW, where
it is decoupled. It applies to every element of the buffer, biases included, as torch does for a
single parameter group; give biases their own group/optimizer to exempt them.
"""
import math

import numpy as np

from fastdl._kernels import name_of, ops, using
from fastdl._validation import check_bool, check_float_dtype, check_real

__all__ = ["Optimizer", "SGD", "Momentum", "Adagrad", "RMSprop", "Adam", "AdamW",
           "clip_grad_norm"]


def _backend_of(params):
    """The kernel backend that holds ``params``: an arena's own, else the active one."""
    return getattr(params, "ops", None) or ops()


def _as_pair(params, grads, backend):
    """The (parameters, gradients) pair of flat arrays of ``backend``, checked once here."""
    if grads is None:
        if not (hasattr(params, "params") and hasattr(params, "grads")):
            raise TypeError("params must be a ParamArena, a ParamGroup or a 1-D array with grads "
                            f"given, got {type(params).__name__}")
        params, grads = params.params, params.grads
    for name, arr in (("params", params), ("grads", grads)):
        if not backend.holds(arr):
            kind = "a numpy.ndarray" if isinstance(arr, np.ndarray) else type(arr).__name__
            raise TypeError(f"{name} must be an array of the {name_of(backend)!r} backend (a "
                            f"model's arena is on the backend it was built with), got {kind}")
        contiguous = arr.flags["C_CONTIGUOUS"]
        if arr.ndim != 1 or not contiguous:
            raise ValueError(f"{name} must be a 1-D C-contiguous array (a flat buffer), got "
                             f"shape {arr.shape}" + ("" if contiguous else ", not contiguous"))
        check_float_dtype(arr.dtype, name)
    if grads.dtype != params.dtype:
        raise TypeError(f"grads has dtype {grads.dtype}, but params has dtype {params.dtype}")
    if grads.shape != params.shape:
        raise ValueError(f"grads has {grads.size} elements, but params has {params.size}")
    if isinstance(params, np.ndarray) and not params.flags.writeable:
        raise ValueError("params is read-only")
    if params.size and backend.shares_memory(params, grads):
        raise ValueError("params and grads overlap; they must be separate buffers")
    return params, grads


class _SetOnce:
    """A flag that decides which state buffers exist: set in ``__init__``, unchangeable after."""

    def __set_name__(self, owner, name):
        self.name, self.slot = name, "_" + name

    def __get__(self, obj, owner=None):
        return self if obj is None else getattr(obj, self.slot)

    def __set__(self, obj, value):
        value = check_bool(value, self.name)
        if hasattr(obj, self.slot) and getattr(obj, self.slot) != value:
            raise AttributeError(f"{self.name} is fixed at construction (it decides the state "
                                 f"buffers); build a new {type(obj).__name__} with "
                                 f"{self.name}={value}")
        setattr(obj, self.slot, value)


class Optimizer:
    """Base class: state handling, the checked kernel call, ``state_dict``.

    A subclass sets ``_hyper`` (its constructor's keyword arguments other than ``lr`` and
    ``check_finite``, so that ``cls(params, **state_dict()["hyper"])`` rebuilds it), ``_state_rows``
    (names of its state buffers), ``_kernel`` (the name of its step kernel in the backend
    interface, which ``_kernel_flags`` completes) and ``_n_scalars``, and implements
    ``_scalars_for`` (the kernel's per-step scalars, computed in float64) and optionally
    ``_initial_state``. The kernel backend active at construction runs every step.
    """

    _hyper = ()
    _state_rows = ()
    _kernel_flags = ()

    def __init__(self, params, grads=None, *, lr, check_finite=True):
        # an arena's tensor table, to name the tensor in error messages
        self._specs = getattr(params, "specs", ()) if grads is None else ()
        self._ops = _backend_of(params)
        self.params, self.grads = _as_pair(params, grads, self._ops)
        self.lr = lr
        self.check_finite = check_bool(check_finite, "check_finite")
        self.step_count = 0
        self._state = None
        self._sc = np.empty(self._n_scalars, dtype=self.params.dtype)
        self._step_kernel = getattr(self._ops, self._kernel)

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = check_real(value, "lr", 0.0)

    @property
    def state(self):
        """The state buffers by name (live views; empty before the first step)."""
        if self._state is None:
            return {}
        return dict(zip(self._state_rows, self._state))

    def step(self):
        """Update the parameters in place from the current gradient."""
        if self._state is None:
            self._allocate_state()
        self._sc[:] = self._scalars_for(self.step_count + 1)
        if not self._step_kernel(self.params, self.grads, self._state, self._sc, self.check_finite,
                                 *self._kernel_flags):
            bad = np.flatnonzero(~np.isfinite(self._ops.to_host(self.grads)))
            first = int(bad[0])
            where = "".join(f" (in {s.name!r})" for s in self._specs
                            if s.offset <= first < s.offset + s.size)
            raise FloatingPointError(
                f"{type(self).__name__}.step refused: the gradient holds {bad.size} non-finite "
                f"value(s) (NaN or inf), the first at flat index {first}{where}; parameters and "
                f"state are unchanged. Skip the batch, lower the learning rate or clip the "
                f"gradient (check_finite=False lets them through, as torch.optim does)")
        self.step_count += 1

    def zero_grad(self):
        """Set the gradient to zero (one fill)."""
        self._ops.fill(self.grads, 0)

    def state_dict(self):
        """``{"step": int, "hyper": {keyword: value}, "state": {name: array copy}}``; ``hyper``
        holds every constructor keyword (plain Python values) but ``check_finite``; the state
        arrays are numpy arrays whatever the backend."""
        state_dict = self._state_dict_reusing(None)
        state_dict["state"] = {name: self._ops.to_host(row) for name, row in state_dict["state"].items()}
        return state_dict

    def _state_dict_reusing(self, previous):
        """:meth:`state_dict`, its state copied into the arrays of ``previous`` (an earlier
        state_dict of this optimizer, or None) when it has them: a restore point refreshed every
        epoch then allocates no arrays. The copies are the backend's arrays."""
        state, backend = self.state, self._ops
        if previous is not None and previous["state"].keys() == state.keys():
            copies = previous["state"]
            for name, row in state.items():
                backend.copy(row, copies[name])
        else:  # no earlier one, or the (lazy) state appeared since
            copies = {name: backend.copy(row, backend.empty(row.shape, row.dtype))
                      for name, row in state.items()}
        return {"step": self.step_count,
                "hyper": {name: getattr(self, name) for name in ("lr",) + self._hyper},
                "state": copies}

    def load_state_dict(self, state_dict):
        """Restore what :meth:`state_dict` returned (copied into this optimizer's buffers).
        A state_dict that does not fit is refused before anything changes."""
        hyper, state = state_dict["hyper"], state_dict["state"]
        if set(hyper) != {"lr", *self._hyper}:
            raise ValueError(f"state_dict has hyper-parameters {sorted(hyper)}, but "
                             f"{type(self).__name__} has {sorted(('lr',) + self._hyper)}")
        # validates every value, and tells which state buffers those settings keep
        with using(self._ops):
            rows = type(self)(self.params, self.grads, **hyper)._state_rows
        if rows != self._state_rows or (state and set(state) != set(rows)):
            raise ValueError(f"state_dict holds state {sorted(state) or sorted(rows)}, but this "
                             f"{type(self).__name__} keeps {sorted(self._state_rows)}: build it "
                             f"with the saved settings, cls(params, **state_dict['hyper'])")
        for name, row in state.items():
            if np.shape(row) != self.params.shape:
                raise ValueError(f"state {name!r} has shape {np.shape(row)}, but params has "
                                 f"shape {self.params.shape}")
        if state:
            if self._state is None:
                self._allocate_state()
            for name, row in zip(self._state_rows, self._state):
                self._ops.copy(state[name], row)
        else:
            self._state = None
        for name, value in hyper.items():
            setattr(self, name, value)
        self.step_count = int(state_dict["step"])

    def __repr__(self):
        hyper = ", ".join(f"{name}={getattr(self, name)!r}" for name in ("lr",) + self._hyper)
        return f"{type(self).__name__}({self.params.size} {self.params.dtype.name}, {hyper})"

    def _allocate_state(self):
        self._state = self._ops.zeros((len(self._state_rows), self.params.size), self.params.dtype)
        self._initial_state(self._state)

    def _initial_state(self, state):
        """Fill freshly zeroed state; zeros suit every optimizer but Adagrad."""


class SGD(Optimizer):
    """Plain gradient descent, the seed's rule: θ ← θ − η (∇L + λθ)."""

    _hyper = ("weight_decay",)
    _kernel = "sgd_step"
    _n_scalars = 2

    def __init__(self, params, grads=None, *, lr, weight_decay=0.0, check_finite=True):
        self.weight_decay = check_real(weight_decay, "weight_decay", 0.0)
        super().__init__(params, grads, lr=lr, check_finite=check_finite)

    def _scalars_for(self, t):
        return self.lr, self.weight_decay


class Momentum(Optimizer):
    """Gradient descent with momentum in the seed's form, with η inside the velocity:

        g = ∇L + λθ,   u ← μu + η(1 − τ)g   (u ← ηg on the first step),   θ ← θ − u,
        Nesterov:  θ ← θ − (ηg + μu)   (with the new u).

    Relation to ``torch.optim.SGD(momentum=μ, dampening=τ, nesterov=...)``, which keeps
    b ← μb + (1 − τ)g (b ← g first) and steps θ ← θ − η b: while η is constant u = η·b and the two
    produce the same parameters (to rounding). They differ when η changes: here a new η scales
    only the gradients that arrive from then on, whereas torch rescales the whole accumulated
    velocity at once.
    """

    _hyper = ("momentum", "dampening", "nesterov", "weight_decay")
    _state_rows = ("velocity",)
    _kernel = "momentum_step"
    _n_scalars = 5

    def __init__(self, params, grads=None, *, lr, momentum=0.9, dampening=0.0, nesterov=False,
                 weight_decay=0.0, check_finite=True):
        self.momentum = check_real(momentum, "momentum", 0.0)
        self.dampening = check_real(dampening, "dampening", 0.0, 1.0)
        self.nesterov = check_bool(nesterov, "nesterov")
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0, got "
                             f"momentum={self.momentum}, dampening={self.dampening}")
        self.weight_decay = check_real(weight_decay, "weight_decay", 0.0)
        super().__init__(params, grads, lr=lr, check_finite=check_finite)

    def _scalars_for(self, t):
        u_coef = self.lr if t == 1 else self.lr * (1.0 - self.dampening)
        return self.weight_decay, self.momentum, u_coef, self.lr, float(self.nesterov)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), the real one, as ``torch.optim.Adagrad``:

        g = ∇L + λθ,   s ← s + g²,   θ ← θ − η_t g / (√s + ε),   η_t = η / (1 + (t − 1)·lr_decay),

    with s starting at ``initial_accumulator_value``.
    """

    _hyper = ("lr_decay", "eps", "initial_accumulator_value", "weight_decay")
    _state_rows = ("sum",)
    _kernel = "adagrad_step"
    _n_scalars = 3

    def __init__(self, params, grads=None, *, lr=1e-2, lr_decay=0.0, eps=1e-10,
                 initial_accumulator_value=0.0, weight_decay=0.0, check_finite=True):
        self.lr_decay = check_real(lr_decay, "lr_decay", 0.0)
        self.eps = check_real(eps, "eps", 0.0)
        self.initial_accumulator_value = check_real(initial_accumulator_value, "initial_accumulator_value", 0.0)
        self.weight_decay = check_real(weight_decay, "weight_decay", 0.0)
        super().__init__(params, grads, lr=lr, check_finite=check_finite)

    def _scalars_for(self, t):
        return self.weight_decay, self.lr / (1.0 + (t - 1) * self.lr_decay), self.eps

    def _initial_state(self, state):
        self._ops.fill(state, self.initial_accumulator_value)


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton), as ``torch.optim.RMSprop``; the seed calls this "Adagrad":

        g = ∇L + λθ,   v ← αv + (1 − α)g²,
        centered:   ḡ ← αḡ + (1 − α)g,   v̂ = v − ḡ²   (else v̂ = v),
        d = g / (√v̂ + ε),   with momentum μ > 0:  b ← μb + d,  θ ← θ − ηb;   else θ ← θ − ηd.
    """

    _hyper = ("alpha", "eps", "momentum", "centered", "weight_decay")
    _kernel = "rmsprop_step"
    _n_scalars = 6
    centered = _SetOnce()

    def __init__(self, params, grads=None, *, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0,
                 centered=False, weight_decay=0.0, check_finite=True):
        self.alpha = check_real(alpha, "alpha", 0.0, 1.0)
        self.eps = check_real(eps, "eps", 0.0)
        self.momentum = momentum
        self.centered = centered
        self.weight_decay = check_real(weight_decay, "weight_decay", 0.0)
        with_momentum = self.momentum > 0
        self._state_rows = (("square_avg",) + (("grad_avg",) if self.centered else ())
                            + (("momentum_buffer",) if with_momentum else ()))
        self._kernel_flags = (self.centered, with_momentum)
        super().__init__(params, grads, lr=lr, check_finite=check_finite)

    @property
    def momentum(self):
        return self._momentum

    @momentum.setter
    def momentum(self, value):
        value = check_real(value, "momentum", 0.0)
        if hasattr(self, "_momentum") and (value > 0) != (self._momentum > 0):
            raise ValueError(f"momentum cannot change between 0 and > 0 after construction (it "
                             f"decides the state buffers), got {value} after {self._momentum}")
        self._momentum = value

    def _scalars_for(self, t):
        return (self.weight_decay, self.alpha, 1.0 - self.alpha, self.eps, self.lr,
                self.momentum)


class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam``: bias-corrected, ε outside the root.

        g = ∇L + λθ,   m ← β₁m + (1 − β₁)g,   v ← β₂v + (1 − β₂)g²,
        AMSGrad:  v_max ← max(v_max, v), used for v below,
        θ ← θ − η/(1 − β₁ᵗ) · m / (√(v / (1 − β₂ᵗ)) + ε).

    ``seed_variant=True`` gives the seed's formula instead: no bias correction and ε inside the
    root, θ ← θ − η m / √(v + ε) (slower start, and ε then means a different scale).
    """

    _hyper = ("betas", "eps", "weight_decay", "amsgrad", "seed_variant")
    _kernel = "adam_step"
    _n_scalars = 10
    _decoupled = False
    amsgrad = _SetOnce()

    def __init__(self, params, grads=None, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0, amsgrad=False, seed_variant=False, check_finite=True):
        self.betas = betas
        self.eps = check_real(eps, "eps", 0.0)
        self.weight_decay = check_real(weight_decay, "weight_decay", 0.0)
        self.amsgrad = amsgrad
        self.seed_variant = check_bool(seed_variant, "seed_variant")
        self._state_rows = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
        self._kernel_flags = (self.amsgrad,)
        super().__init__(params, grads, lr=lr, check_finite=check_finite)

    @property
    def betas(self):
        return self._betas

    @betas.setter
    def betas(self, value):
        beta1, beta2 = value
        self._betas = (check_real(beta1, "betas[0]", 0.0, 1.0, high_open=True),
                       check_real(beta2, "betas[1]", 0.0, 1.0, high_open=True))

    def _scalars_for(self, t):
        beta1, beta2 = self._betas
        if self._decoupled:
            coupled_wd, decay = 0.0, 1.0 - self.lr * self.weight_decay
        else:
            coupled_wd, decay = self.weight_decay, 1.0
        if self.seed_variant:
            step_size, inv_bc2_sqrt, eps_in, eps_out = self.lr, 1.0, self.eps, 0.0
        else:
            step_size = self.lr / (1.0 - beta1 ** t)
            inv_bc2_sqrt = 1.0 / math.sqrt(1.0 - beta2 ** t)
            eps_in, eps_out = 0.0, self.eps
        return (coupled_wd, decay, beta1, 1.0 - beta1, beta2, 1.0 - beta2, step_size,
                inv_bc2_sqrt, eps_in, eps_out)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``:
    θ ← (1 − ηλ)θ first, then the Adam step on the plain gradient ∇L."""

    _decoupled = True

    def __init__(self, params, grads=None, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=1e-2, amsgrad=False, seed_variant=False, check_finite=True):
        super().__init__(params, grads, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, seed_variant=seed_variant, check_finite=check_finite)


def clip_grad_norm(grads, max_norm, *, error_if_nonfinite=False):
    """Scale the gradient so that its global L2 norm is at most ``max_norm``; return the norm.

    ``grads`` is a flat gradient buffer (or anything with ``.grads``: an arena, a group). The
    norm ‖g‖₂ is accumulated in float64 over fixed chunks, then the chunk sums in order, so it
    does not depend on the thread count. As ``torch.nn.utils.clip_grad_norm_``: if
    ``max_norm / (‖g‖₂ + 10⁻⁶) < 1``, g ← g · max_norm / (‖g‖₂ + 10⁻⁶). A NaN or inf norm leaves
    the gradient unchanged (torch would fill it with NaN) and raises ``FloatingPointError`` with
    ``error_if_nonfinite=True``; otherwise the optimizer's own check will then refuse the step.
    """
    backend = _backend_of(grads)
    if hasattr(grads, "grads"):
        grads = grads.grads
    if not backend.holds(grads) or grads.ndim != 1 or not grads.flags["C_CONTIGUOUS"]:
        raise ValueError(f"grads must be a 1-D C-contiguous array of the {name_of(backend)!r} "
                         "backend (a flat gradient buffer)")
    check_float_dtype(grads.dtype, "grads")
    max_norm = check_real(max_norm, "max_norm", 0.0, finite=False)  # inf: no clipping
    norm = math.sqrt(backend.sum_squares(grads))
    if not math.isfinite(norm):
        if error_if_nonfinite:
            raise FloatingPointError(f"the gradient norm is {norm}; the gradient was left "
                                     "unchanged")
        return norm
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        if isinstance(grads, np.ndarray) and not grads.flags.writeable:
            raise ValueError("grads is read-only")
        backend.scale(grads, coef)
    return norm


def _warmup(dtype):
    """Compile every optimizer kernel for ``dtype`` (run by ``fastdl.warmup()``)."""
    p, g = np.zeros(1, dtype), np.ones(1, dtype)
    for opt in (SGD(p, g, lr=0.0), Momentum(p, g, lr=0.0), Adagrad(p, g),
                *(RMSprop(p, g, centered=c, momentum=m) for c in (False, True) for m in (0, 0.5)),
                Adam(p, g), Adam(p, g, amsgrad=True)):
        opt.step()
    clip_grad_norm(g, 0.5)

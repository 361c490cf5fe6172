"""The activations: the one table that every layer, model, functional call and backend reads.

:data:`ACTIVATIONS` maps a public name to its kernels, the parameters it takes (defaults and
valid ranges), and the initializer ``init="auto"`` picks for it. The formulas and derivatives are
tabulated in the README ("The math"); every backend's ``activations`` module computes them.

:data:`KERNELS` numbers the kernels: a kernel's id is its position there. Layers and the
functional layer pass ids and each backend dispatches on them, so this is the one place that
numbers them. GELU has two kernels (exact, and ``gelu_tanh`` for ``approximate="tanh"``);
``identity`` is the dense layers' no-op activation.

``grad_from`` says which tensor a kernel's derivative reads: the output y where that is cheaper
(sigmoid, tanh, relu, elu, softmax, identity), the input x otherwise. ELU's derivative from the
output, y + alpha for y <= 0, holds only for alpha >= 0, hence that parameter's range.
``learnable`` kernels (PReLU's alpha, Swish's beta) also return the gradient of their parameter;
``default`` is the kernel's parameter default (0.0 where a kernel takes none).
"""
import math
from typing import NamedTuple

from fastdl._validation import check_real


class Kernel(NamedTuple):
    grad_from: str  # "input" or "output"
    learnable: bool = False
    default: float = 0.0


class Number(NamedTuple):
    """A real-valued activation parameter: its default and closed valid range."""
    default: float
    low: float = -math.inf
    high: float = math.inf

    def check(self, value, name):
        return check_real(value, name, self.low, self.high)


class Choice(NamedTuple):
    """A parameter taking one of a few values."""
    default: object
    values: tuple

    def check(self, value, name):
        if isinstance(value, bool) is not isinstance(self.default, bool) or value not in self.values:
            raise ValueError(f"{name} must be one of {list(self.values)}, got {value!r}")
        return value


class Activation(NamedTuple):
    kernels: tuple  # kernel names; the first is the default one
    params: dict = {}  # keyword -> Number or Choice
    init: str = "glorot_uniform"  # what init="auto" means: He for the ReLU family

    @property
    def kernel_param(self):
        """The keyword whose value the kernel takes as its parameter p (None if it takes none)."""
        return next((key for key, param in self.params.items() if isinstance(param, Number)), None)


KERNELS = {
    "identity": Kernel("output"),
    "sigmoid": Kernel("output"),
    "tanh": Kernel("output"),
    "relu": Kernel("output"),
    "leaky_relu": Kernel("input", default=0.01),
    "prelu": Kernel("input", learnable=True, default=0.25),
    "elu": Kernel("output", default=1.0),
    "softmax": Kernel("output"),
    "gelu": Kernel("input"),
    "gelu_tanh": Kernel("input"),
    "swish": Kernel("input", learnable=True, default=1.0),
    "silu": Kernel("input"),
}
_HE = "he_uniform"
#: public activation name -> Activation
ACTIVATIONS = {
    "identity": Activation(("identity",)),
    "sigmoid": Activation(("sigmoid",)),
    "tanh": Activation(("tanh",)),
    "relu": Activation(("relu",), init=_HE),
    "leaky_relu": Activation(("leaky_relu",), {"negative_slope": Number(KERNELS["leaky_relu"].default)},
                             init=_HE),
    # learnable: the initial alpha, one per feature unless shared
    "prelu": Activation(("prelu",), {"alpha": Number(KERNELS["prelu"].default),
                                     "shared": Choice(False, (False, True))}, init=_HE),
    "elu": Activation(("elu",), {"alpha": Number(KERNELS["elu"].default, low=0.0)}, init=_HE),
    "softmax": Activation(("softmax",)),
    "gelu": Activation(("gelu", "gelu_tanh"), {"approximate": Choice("none", ("none", "tanh"))},
                       init=_HE),
    "swish": Activation(("swish",), {"beta": Number(KERNELS["swish"].default)}, init=_HE),  # learnable
    "silu": Activation(("silu",), init=_HE),
}
#: kernel name -> id
IDS = {name: i for i, name in enumerate(KERNELS)}
SOFTMAX = IDS["softmax"]
#: names of the kernels with a learnable parameter
LEARNABLE = tuple(name for name, kernel in KERNELS.items() if kernel.learnable)


def check_activation(activation, params, name="activation"):
    """``params`` checked against their ranges and completed with defaults; a ValueError for an
    unknown activation or a value out of range, a TypeError for an unknown keyword."""
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"{name} must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    spec = ACTIVATIONS[activation].params
    unknown = set(params) - set(spec)
    if unknown:
        raise TypeError(f"{name}={activation!r} takes no parameter(s) {sorted(unknown)}"
                        f" (it takes {sorted(spec) or 'none'})")
    return {key: param.check(params[key], key) if key in params else param.default
            for key, param in spec.items()}


def kernel_name(activation, params):
    """The kernel for an activation and its checked keyword ``params``: GELU's tanh approximation
    is its own kernel."""
    kernels = ACTIVATIONS[activation].kernels
    return kernels[params.get("approximate") == "tanh"] if len(kernels) > 1 else kernels[0]

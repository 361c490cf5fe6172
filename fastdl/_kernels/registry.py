"""The activation kernels every backend implements, by name and id.

A kernel's id is its position in :data:`KERNELS`: layers and the functional layer pass ids, and
each backend dispatches on them, so this table is the one place that numbers them. GELU has two
kernels (exact, and ``gelu_tanh`` for ``approximate="tanh"``); ``identity`` is the dense layers'
no-op activation.

``grad_from`` says which tensor a kernel's derivative reads: the output y where that is cheaper
(sigmoid, tanh, relu, elu, softmax, identity), the input x otherwise. ``learnable`` kernels
(PReLU's alpha, Swish's beta) also return the gradient of their parameter; ``default`` is the
parameter's default value (0.0 where a kernel takes none).
"""
from typing import NamedTuple


class Kernel(NamedTuple):
    grad_from: str  # "input" or "output"
    learnable: bool = False
    default: float = 0.0


#: kernel name -> Kernel, in id order
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
#: kernel name -> id
IDS = {name: i for i, name in enumerate(KERNELS)}
SOFTMAX = IDS["softmax"]
#: names of the kernels with a learnable parameter
LEARNABLE = tuple(name for name, kernel in KERNELS.items() if kernel.learnable)


def kernel_name(activation, params):
    """The kernel for an activation and its keyword ``params``: GELU's tanh approximation is its
    own kernel. ``approximate`` (default "none") is checked here only."""
    if activation != "gelu":
        return activation
    approximate = params.get("approximate", "none")
    if approximate == "none":
        return "gelu"
    if approximate == "tanh":
        return "gelu_tanh"
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")

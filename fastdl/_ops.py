"""The kernel calls layers and models make, in one place: which kernel, with which buffers.

No math lives here: the formulas are the kernels' (``fastdl._kernels``). This module only maps a
layer's configuration (activation name, fixed or learnable parameter, tied weights) onto the
kernel-level entry points, which take preallocated buffers and validate nothing; the models
validate their inputs once at the public boundary. :func:`kernel_name` also serves the functional
layer, so GELU's ``approximate`` is checked and mapped in one place.
"""
from fastdl._kernels import losses as _losses
from fastdl._kernels.dense import ACTIVATION_IDS, GRAD_FROM, dense_backward as _dense_backward, \
    dense_forward as _dense_forward

#: loss name -> kernel(x, target, grad, row_loss) -> float (the batch mean)
LOSSES = {
    "mse": _losses.mse_loss,
    "bce": _losses.binary_cross_entropy_with_logits,
    "softmax_cross_entropy": _losses.softmax_cross_entropy_labels,
}


def kernel_name(activation, params):
    """The kernel table's name for an activation and its keyword ``params``: GELU's tanh
    approximation is its own kernel. ``approximate`` (default "none") is checked here only."""
    if activation != "gelu":
        return activation
    approximate = params.get("approximate", "none")
    if approximate == "none":
        return "gelu"
    if approximate == "tanh":
        return "gelu_tanh"
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


def kernel_id(name):
    return ACTIVATION_IDS[name]


def grad_from(name):
    """'input' when the activation's derivative reads the pre-activation, else 'output'."""
    return GRAD_FROM[name]


def dense_forward(layer, x, out, pre=None, activation=None):
    """y = f(x Wᵀ + b) into ``out``; the pre-activation into ``pre`` when given. ``activation``
    (a kernel name) replaces the layer's own f: a model's output head fused into its last layer.
    Each call walks W the other way round from the layer's previous one (the kernel's
    ``reverse``)."""
    kind = layer.kernel_id if activation is None else ACTIVATION_IDS[activation]
    layer.reverse = not layer.reverse
    _dense_forward(kind, x, layer.W, layer.b, layer.p, out if pre is None else pre, out,
                   layer.reverse)


def dense_backward(layer, grad, x, ws, grad_in):
    """dz = grad ⊙ f'(·) (in place when f has no parameter), then dW, db, dp into the arena and
    dx = dz W into ``grad_in`` (skipped when None). A tied decoder's W and dW are the transposed
    views of its encoder's: its dW is written into the encoder's, which then adds its own."""
    kind = layer.kernel_id
    v = ws["pre"] if GRAD_FROM[layer.kernel] == "input" else ws["out"]
    dz = grad if layer.dp is None else ws["dz"]
    dp = layer.dp if layer.dp is not None else layer._unused_dp
    need_dx = grad_in is not None
    dx = grad_in if need_dx else grad
    _dense_backward(kind, grad, x, layer.W, v, layer.p, dz, dx, layer.dW, layer.db, dp, need_dx,
                    layer.accumulate)


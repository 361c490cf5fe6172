"""Weight initializers, writing in place into arena views.

Each initializer fills ``w`` (shape ``(n_out, n_in)``, so ``fan_in = n_in`` and ``fan_out = n_out``)
from a ``numpy.random.Generator``; biases start at zero. Initialization runs once per model, so it
uses NumPy's generator rather than a kernel.

==================  ==========================================================
name                distribution
==================  ==========================================================
``glorot_uniform``  U(-a, a),  a = sqrt(6 / (fan_in + fan_out))   (Glorot & Bengio 2010)
``glorot_normal``   N(0, s²),  s = sqrt(2 / (fan_in + fan_out))
``he_uniform``      U(-a, a),  a = sqrt(6 / fan_in)                (He et al. 2015)
``he_normal``       N(0, s²),  s = sqrt(2 / fan_in)
``lecun_uniform``   U(-a, a),  a = sqrt(3 / fan_in)                (LeCun et al. 1998)
``lecun_normal``    N(0, s²),  s = sqrt(1 / fan_in)
``zeros``           0
==================  ==========================================================

``xavier_*`` and ``kaiming_*`` are aliases of ``glorot_*`` and ``he_*``. ``"auto"`` picks He for the
ReLU family (relu, leaky_relu, prelu, elu, gelu, silu, swish) and Glorot otherwise, as the
activation registry (``fastdl._kernels.registry.ACTIVATIONS``) says.
"""
import math

from fastdl._kernels.registry import ACTIVATIONS


def _uniform(scale):
    def init(w, rng):
        fan_out, fan_in = w.shape
        a = math.sqrt(scale(fan_in, fan_out))
        w[...] = rng.uniform(-a, a, size=w.shape)
    return init


def _normal(scale):
    def init(w, rng):
        fan_out, fan_in = w.shape
        w[...] = rng.normal(0.0, math.sqrt(scale(fan_in, fan_out) / 3.0), size=w.shape)
    return init


def _glorot(fan_in, fan_out):
    return 6.0 / (fan_in + fan_out)


def _he(fan_in, fan_out):
    return 6.0 / fan_in


def _lecun(fan_in, fan_out):
    return 3.0 / fan_in


def zeros(w, rng):
    w[...] = 0


# _normal divides the uniform bound² by 3: a U(-a, a) has variance a²/3, so both share one scale.
INITIALIZERS = {
    "glorot_uniform": _uniform(_glorot),
    "glorot_normal": _normal(_glorot),
    "he_uniform": _uniform(_he),
    "he_normal": _normal(_he),
    "lecun_uniform": _uniform(_lecun),
    "lecun_normal": _normal(_lecun),
    "zeros": zeros,
}
INITIALIZERS.update({
    "xavier_uniform": INITIALIZERS["glorot_uniform"],
    "xavier_normal": INITIALIZERS["glorot_normal"],
    "kaiming_uniform": INITIALIZERS["he_uniform"],
    "kaiming_normal": INITIALIZERS["he_normal"],
})


def resolve(init, activation):
    """The name of the initializer ``init`` means for a layer with ``activation``."""
    if init == "auto":
        return ACTIVATIONS[activation].init
    if init not in INITIALIZERS:
        raise ValueError(f"init must be 'auto' or one of {sorted(INITIALIZERS)}, got {init!r}")
    return init


def initialize(w, init, rng):
    """Fill the 2-D weight view ``w`` in place with initializer ``init`` (a name) drawn from ``rng``."""
    INITIALIZERS[init](w, rng)

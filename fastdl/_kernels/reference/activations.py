"""Plain-numpy float64 reference of every activation: the specification the kernels are tested against.

``FORWARD[name](x, p)`` is f(x); ``DERIVATIVE[name](x, p)`` is f'(x), always from the input x (the
fast kernels may read the output instead). Derivatives at the kinks take the left value, as torch:
relu'(0) = 0, leaky_relu'(0) = prelu'(0) = slope, elu'(0) = alpha. NaN propagates through every
forward and ±inf give the mathematical limits.
"""
import numpy as np
from scipy.special import erfcx, expit


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _scaled(x, w):
    """x·w with 0 where w is 0 (the limit when w decays faster than x grows: -inf·σ(-inf) = 0)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(w == 0, 0.0, x * w)


def _dsigmoid(z):
    """σ(z) σ(-z), accurate in both tails."""
    return expit(z) * expit(-z)


def identity(x, p=None):
    return _f64(x).copy()


def identity_derivative(x, p=None):
    return np.ones_like(_f64(x))


def sigmoid(x, p=None):
    return expit(_f64(x))


def sigmoid_derivative(x, p=None):
    return _dsigmoid(_f64(x))


def tanh(x, p=None):
    return np.tanh(_f64(x))


def tanh_derivative(x, p=None):
    with np.errstate(over="ignore"):
        return 1.0 / np.cosh(_f64(x)) ** 2


def relu(x, p=None):
    x = _f64(x)
    return np.where(x < 0, 0.0, x)


def relu_derivative(x, p=None):
    x = _f64(x)
    return np.where(x > 0, 1.0, 0.0)


def leaky_relu(x, slope=0.01):
    x = _f64(x)
    return np.where(x < 0, slope * x, x)


def leaky_relu_derivative(x, slope=0.01):
    x = _f64(x)
    return np.where(x > 0, 1.0, slope)


prelu = leaky_relu
prelu_derivative = leaky_relu_derivative


def prelu_dalpha(x, alpha):
    """∂prelu/∂alpha = x for x ≤ 0, else 0."""
    x = _f64(x)
    return np.where(x > 0, 0.0, x)


def elu(x, alpha=1.0):
    x = _f64(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def elu_derivative(x, alpha=1.0):
    x = _f64(x)
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0)))


def _normal_pdf(x):
    """φ(x) = e^{-x²/2}/√(2π), relatively accurate in the tails: x²/2 = hi + lo split exactly
    (Dekker's product), e^{-lo} = 1 - lo to float64 precision. |x| is clipped to 40, where φ is 0."""
    x = np.clip(x, -40.0, 40.0)
    c = 134217729.0 * x  # 2^27 + 1: x = xh + xl, each half of x's bits, xh² and xh·xl exact
    xh = c - (c - x)
    xl = x - xh
    square = x * x
    error = ((xh * xh - square) + 2 * xh * xl) + xl * xl
    return np.exp(-0.5 * square) * (1 - 0.5 * error) / np.sqrt(2 * np.pi)


def _normal_cdf(x):
    """Φ(x), relatively accurate in the left tail: Φ(-t) = φ(t) √(π/2) erfcx(t/√2) (erfc(t/√2)
    itself would carry t² times the rounding error of t/√2; erfcx barely amplifies it)."""
    t = np.abs(x)
    tail = _normal_pdf(t) * np.sqrt(np.pi / 2) * erfcx(t / np.sqrt(2))
    return np.where(x < 0, tail, 1 - tail)


def gelu(x, p=None):
    """x Φ(x), Φ the standard normal CDF."""
    x = _f64(x)
    return _scaled(x, _normal_cdf(x))


def gelu_derivative(x, p=None):
    """Φ(x) + x φ(x)."""
    x = _f64(x)
    return _normal_cdf(x) + _scaled(x, _normal_pdf(x))


def _gelu_tanh_2u(x):
    with np.errstate(over="ignore", invalid="ignore"):
        return 2 * np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)


def gelu_tanh(x, p=None):
    """x (1 + tanh(√(2/π)(x + 0.044715 x³)))/2."""
    x = _f64(x)
    return _scaled(x, expit(_gelu_tanh_2u(x)))


def gelu_tanh_derivative(x, p=None):
    x = _f64(x)
    z = _gelu_tanh_2u(x)
    with np.errstate(over="ignore"):
        dz = 2 * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x * x)
    return expit(z) + _scaled(x * dz, _dsigmoid(z))


def swish(x, beta=1.0):
    """x σ(βx)."""
    x = _f64(x)
    with np.errstate(over="ignore", invalid="ignore"):
        return _scaled(x, expit(beta * x))


def swish_derivative(x, beta=1.0):
    x = _f64(x)
    with np.errstate(over="ignore", invalid="ignore"):
        z = beta * x
    return expit(z) + _scaled(z, _dsigmoid(z))


def swish_dbeta(x, beta=1.0):
    """∂swish/∂beta = x² σ(βx) σ(-βx)."""
    x = _f64(x)
    with np.errstate(over="ignore"):
        return _scaled(x * x, _dsigmoid(beta * x))


def silu(x, p=None):
    return swish(x, 1.0)


def silu_derivative(x, p=None):
    return swish_derivative(x, 1.0)


def softmax(z):
    """Row-wise over the last axis: e^{z - max} / Σ e^{z - max}; NaN rows where any NaN or all -inf."""
    z = _f64(z)
    with np.errstate(invalid="ignore"):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(g, y):
    """The softmax JVP (diag(y) - y yᵀ) g = y ⊙ (g - Σ g ⊙ y), row-wise."""
    g, y = _f64(g), _f64(y)
    return y * (g - (g * y).sum(axis=-1, keepdims=True))


FORWARD = {
    name: globals()[name]
    for name in ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "gelu",
                 "gelu_tanh", "swish", "silu")
}
DERIVATIVE = {name: globals()[f"{name}_derivative"] for name in FORWARD}

"""Activation functions: scalar elements, then the array kernels built from them.

Element functions take one float32/float64 scalar ``x`` and the activation's parameter ``p``
(LeakyReLU's slope, ELU's alpha, PReLU's alpha, Swish's beta; ignored elsewhere) of the same type,
and return that type: constants are written ``T(c)`` with ``T = type(x)`` so float32 math never
widens to float64. The dense kernels fuse the same elements into their GEMM epilogue, so each
formula exists exactly once.

``<name>_grad`` is the derivative f'(·) evaluated from the tensor named in ``GRAD_FROM``: the
output y where that is cheaper (sigmoid, tanh, relu, elu) and the input x otherwise.
"""
from fastdl._kernels import vmath
from fastdl._kernels._jit import jit

_SQRT1_2 = 0.7071067811865476  # 1/sqrt(2)
_SQRT2_PI = 0.7978845608028654  # sqrt(2/pi)
_INV_SQRT2PI = 0.3989422804014327  # 1/sqrt(2*pi)


@jit
def sigmoid_elem(x, p):
    """σ(x) = 1 / (1 + e^{-x}); exact 0 / 1 in the tails, NaN in → NaN out."""
    T = type(x)
    return T(1.0) / (T(1.0) + vmath.exp(-x))


@jit
def sigmoid_grad(y, p):
    """σ'(x) = y (1 - y), from the output y."""
    return y * (type(y)(1.0) - y)


@jit
def tanh_elem(x, p):
    return vmath.tanh(x)


@jit
def tanh_grad(y, p):
    """tanh'(x) = 1 - y², from the output y."""
    return type(y)(1.0) - y * y


@jit
def relu_elem(x, p):
    """max(x, 0); NaN propagates."""
    return x if not x < 0 else type(x)(0.0) * x


@jit
def relu_grad(y, p):
    """1 where y > 0, else 0 (0 at x = 0, as torch)."""
    T = type(y)
    return T(1.0) if y > 0 else T(0.0)

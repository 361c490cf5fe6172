"""Vectorizable transcendental functions for numba kernels (float32 and float64).

PLACEHOLDER: these call libm through ``math`` and therefore stay scalar in loops (numba lost
SVML in 0.62). They define the interface: ``exp, expm1, log, log1p, tanh, erf, erfc`` of one
float32 or float64 scalar, returning the same type.
"""
import math

from fastdl._kernels._jit import jit


@jit
def exp(x):
    return math.exp(x)


@jit
def expm1(x):
    return math.expm1(x)


@jit
def log(x):
    return math.log(x)


@jit
def log1p(x):
    return math.log1p(x)


@jit
def tanh(x):
    return math.tanh(x)


@jit
def erf(x):
    return math.erf(x)


@jit
def erfc(x):
    return math.erfc(x)

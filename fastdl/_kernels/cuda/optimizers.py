"""The optimizer steps on the GPU: in place over the flat parameters p, gradient g and state
(k, n), with the CPU backends' update rules, state rows and step scalars ``sc`` (``numba/
optimizers.py`` gives the formulas; ``sc`` is a small host array, passed as kernel arguments).

With ``check_finite`` a reduction over g runs first and, if g holds a NaN or an inf, the step
returns False having written nothing; reading that flag back is the step's one transfer.
"""
import math

from fastdl._kernels.cuda import reduce
from fastdl._kernels.cuda._device import THREADS, blocks, cuda

_SGD, _MOMENTUM, _ADAGRAD, _RMSPROP, _ADAM, _SCALE = range(6)
_N_SCALARS = 10


@cuda.jit
def _update(rule, p, g, state, s, centered, with_momentum, amsgrad):
    """One element per thread iteration; ``s`` the step's scalars, in ``sc``'s order per rule."""
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        pi = p[i]
        if rule == _SCALE:  # s = [factor]
            p[i] = pi * s[0]
        elif rule == _SGD:  # s = [lr, weight_decay]
            p[i] = pi - s[0] * (g[i] + s[1] * pi)
        elif rule == _MOMENTUM:  # s = [weight_decay, momentum, u_coef, lr, nesterov]
            gi = g[i] + s[0] * pi
            ui = s[1] * state[0, i] + s[2] * gi
            state[0, i] = ui
            p[i] = pi - (s[3] * gi + s[1] * ui if s[4] != 0 else ui)
        elif rule == _ADAGRAD:  # s = [weight_decay, lr_t, eps]
            gi = g[i] + s[0] * pi
            si = state[0, i] + gi * gi
            state[0, i] = si
            p[i] = pi - s[1] * gi / (math.sqrt(si) + s[2])
        elif rule == _RMSPROP:  # s = [weight_decay, alpha, 1 - alpha, eps, lr, momentum]
            gi = g[i] + s[0] * pi
            sq = s[1] * state[0, i] + s[2] * gi * gi
            state[0, i] = sq
            if centered:
                ga = s[1] * state[1, i] + s[2] * gi
                state[1, i] = ga
                sq = sq - ga * ga
            d = gi / (math.sqrt(sq) + s[3])
            if with_momentum:
                row = 2 if centered else 1
                d = s[5] * state[row, i] + d
                state[row, i] = d
            p[i] = pi - s[4] * d
        else:  # Adam; s = [coupled_wd, decay, β1, 1 − β1, β2, 1 − β2, step, 1/√bc2, eps_in, eps_out]
            gi = g[i] + s[0] * pi
            m = s[2] * state[0, i] + s[3] * gi
            v = s[4] * state[1, i] + s[5] * gi * gi
            state[0, i] = m
            state[1, i] = v
            if amsgrad:
                v = max(state[2, i], v)
                state[2, i] = v
            p[i] = pi * s[1] - s[6] * m / (math.sqrt(v + s[8]) * s[7] + s[9])


def _step(rule, p, g, state, sc, check_finite, centered=False, with_momentum=False,
          amsgrad=False):
    if check_finite and reduce.reduce(reduce.NON_FINITE, g) != 0:
        return False
    if p.size:
        s = tuple(sc[k] if k < len(sc) else sc.dtype.type(0) for k in range(_N_SCALARS))
        _update[blocks(p.size), THREADS](rule, p, g, state, s, centered, with_momentum, amsgrad)
    return True


def sgd_step(p, g, state, sc, check_finite):
    return _step(_SGD, p, g, state, sc, check_finite)


def momentum_step(p, g, state, sc, check_finite):
    return _step(_MOMENTUM, p, g, state, sc, check_finite)


def adagrad_step(p, g, state, sc, check_finite):
    return _step(_ADAGRAD, p, g, state, sc, check_finite)


def rmsprop_step(p, g, state, sc, check_finite, centered, with_momentum):
    return _step(_RMSPROP, p, g, state, sc, check_finite, centered, with_momentum)


def adam_step(p, g, state, sc, check_finite, amsgrad):
    return _step(_ADAM, p, g, state, sc, check_finite, amsgrad=amsgrad)


def sum_squares(g):
    return reduce.reduce(reduce.SQUARES, g)


def scale(g, factor):
    if g.size:
        s = (g.dtype.type(factor),) * _N_SCALARS
        _update[blocks(g.size), THREADS](_SCALE, g, g, g.reshape(1, g.size), s, False, False, False)


def all_finite(a):
    return reduce.reduce(reduce.NON_FINITE, a) == 0

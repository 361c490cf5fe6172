"""In-place optimizer updates over one flat parameter buffer and its flat gradient.

Every step kernel has the signature ``step(p, g, state, sc, check_finite) -> bool``:

- ``p``, ``g``: 1-D C-contiguous arrays of one dtype (float32 or float64) and equal length, the
  whole parameter arena or one layer's slice of it; ``p`` is updated in place;
- ``state``: a C-contiguous ``(k, n)`` array of the same dtype, one row per state buffer
  (momentum, second moment, ...), updated in place; ``k`` may be 0;
- ``sc``: the per-step scalars, already combined in Python (float64) and cast to the dtype of
  ``p``, so the loop carries no literal constant that would widen float32 math to float64;
- ``check_finite``: when true a read-only pass over ``g`` runs first (in parallel when large), and
  if ``g`` holds a NaN or an inf the kernel returns False without writing anything. Otherwise it
  returns True.

Work is split into the fixed chunks of ``split.py`` (results never depend on the thread count;
small buffers stay on the calling thread). Hyper-parameter flags that only
change arithmetic (Nesterov, AdamW's decoupled decay, the seed's Adam variant) arrive as scalars
and become selects; flags that change which state rows exist (AMSGrad, centered RMSprop, RMSprop
momentum) pick a kernel compiled for that layout.
"""
import math

import numpy as np
from numba import prange

from fastdl._kernels.numba._jit import jit, pjit, specialize
from fastdl._kernels.numba.checks import all_finite, chunk_bounds
from fastdl._kernels.split import CHUNK, SERIAL_MAX


def _step_template(p, g, state, sc, check_finite):
    """Run ``UPDATE(p, g, state, sc, lo, hi)`` over every chunk (``UPDATE`` bound by _make_step)."""
    n = p.size
    n_chunks = (n + CHUNK - 1) // CHUNK
    # The check must finish before any write: a pass of its own (parallel when g is large).
    if check_finite and not all_finite(g):
        return False
    if n <= SERIAL_MAX:
        for c in range(n_chunks):
            UPDATE(p, g, state, sc, *chunk_bounds(c, n))  # noqa: F821 (bound by specialize)
    else:
        for c in prange(n_chunks):
            UPDATE(p, g, state, sc, *chunk_bounds(c, n))  # noqa: F821
    return True


def _make_step(name, update):
    """The step kernel ``name`` for ``update``, specialised (not a closure, which numba's cache
    would miss on every run: it hashes captured dispatchers by a per-process id)."""
    return specialize(_step_template, name, pjit, UPDATE=update)


# --- SGD ------------------------------------------------------------------------------------
# sc = [lr, weight_decay]

@jit
def _sgd_update(p, g, state, sc, lo, hi):
    lr = sc[0]
    wd = sc[1]
    for i in range(lo, hi):
        p[i] = p[i] - lr * (g[i] + wd * p[i])


sgd_step = _make_step("sgd_step", _sgd_update)


# --- Momentum (the seed's form, lr inside the velocity) --------------------------------------
# state = [u]; sc = [weight_decay, momentum, u_coef, lr, nesterov (0/1)]
# u_coef is lr*(1 - dampening), or lr on the first step (torch starts its buffer at g undamped).

@jit
def _momentum_update(p, g, state, sc, lo, hi):
    u = state[0]
    wd = sc[0]
    mu = sc[1]
    u_coef = sc[2]
    lr = sc[3]
    nesterov = sc[4] != 0
    for i in range(lo, hi):
        gi = g[i] + wd * p[i]
        ui = mu * u[i] + u_coef * gi
        u[i] = ui
        p[i] = p[i] - (lr * gi + mu * ui if nesterov else ui)


momentum_step = _make_step("momentum_step", _momentum_update)


# --- Adagrad ---------------------------------------------------------------------------------
# state = [sum]; sc = [weight_decay, lr_t, eps]

@jit
def _adagrad_update(p, g, state, sc, lo, hi):
    s = state[0]
    wd = sc[0]
    lr = sc[1]
    eps = sc[2]
    for i in range(lo, hi):
        gi = g[i] + wd * p[i]
        si = s[i] + gi * gi
        s[i] = si
        p[i] = p[i] - lr * gi / (math.sqrt(si) + eps)


adagrad_step = _make_step("adagrad_step", _adagrad_update)


# --- RMSprop ---------------------------------------------------------------------------------
# state = [square_avg, (grad_avg if centered), (buf if momentum)];
# sc = [weight_decay, alpha, 1 - alpha, eps, lr, momentum]

def _make_rmsprop_update(centered, with_momentum):
    buf_row = 2 if centered else 1

    @jit
    def update(p, g, state, sc, lo, hi):
        sq = state[0]
        ga = state[1] if centered else state[0]
        buf = state[buf_row] if with_momentum else state[0]
        wd = sc[0]
        alpha = sc[1]
        one_minus_alpha = sc[2]
        eps = sc[3]
        lr = sc[4]
        mu = sc[5]
        for i in range(lo, hi):
            gi = g[i] + wd * p[i]
            sqi = alpha * sq[i] + one_minus_alpha * gi * gi
            sq[i] = sqi
            if centered:
                gai = alpha * ga[i] + one_minus_alpha * gi
                ga[i] = gai
                sqi = sqi - gai * gai
            di = gi / (math.sqrt(sqi) + eps)
            if with_momentum:
                di = mu * buf[i] + di
                buf[i] = di
            p[i] = p[i] - lr * di

    return update


#: (centered, with_momentum) -> step kernel
rmsprop_steps = {
    (centered, with_momentum): _make_step(f"rmsprop_step_c{centered:d}_m{with_momentum:d}",
                                          _make_rmsprop_update(centered, with_momentum))
    for centered in (False, True) for with_momentum in (False, True)
}


# --- Adam / AdamW ----------------------------------------------------------------------------
# state = [exp_avg, exp_avg_sq, (max_exp_avg_sq if amsgrad)];
# sc = [coupled_wd, decay, beta1, 1 - beta1, beta2, 1 - beta2, step_size, 1/sqrt(bc2), eps_in, eps_out]
# Adam: coupled_wd = weight_decay, decay = 1; AdamW: coupled_wd = 0, decay = 1 - lr*weight_decay.
# Kingma & Ba: step_size = lr/bc1, eps_in = 0, eps_out = eps; the seed: bc = 1, eps_in = eps, eps_out = 0.

def _make_adam_update(amsgrad):

    @jit
    def update(p, g, state, sc, lo, hi):
        m = state[0]
        v = state[1]
        vmax = state[2] if amsgrad else state[1]
        wd = sc[0]
        decay = sc[1]
        beta1 = sc[2]
        one_minus_beta1 = sc[3]
        beta2 = sc[4]
        one_minus_beta2 = sc[5]
        step_size = sc[6]
        inv_bc2_sqrt = sc[7]
        eps_in = sc[8]
        eps_out = sc[9]
        for i in range(lo, hi):
            pi = p[i]
            gi = g[i] + wd * pi
            mi = beta1 * m[i] + one_minus_beta1 * gi
            vi = beta2 * v[i] + one_minus_beta2 * gi * gi
            m[i] = mi
            v[i] = vi
            if amsgrad:
                vi = max(vmax[i], vi)
                vmax[i] = vi
            denom = math.sqrt(vi + eps_in) * inv_bc2_sqrt + eps_out
            p[i] = pi * decay - step_size * mi / denom

    return update


#: amsgrad -> step kernel
adam_steps = {amsgrad: _make_step(f"adam_step_amsgrad{amsgrad:d}", _make_adam_update(amsgrad))
              for amsgrad in (False, True)}


# --- global gradient norm --------------------------------------------------------------------

@jit
def _chunk_sum_squares(g, lo, hi):
    acc = 0.0
    for i in range(lo, hi):
        x = np.float64(g[i])
        acc += x * x
    return acc


@pjit
def sum_squares(g):
    """Σ g² accumulated in float64: per fixed chunk, then the chunk sums in order."""
    n = g.size
    n_chunks = (n + CHUNK - 1) // CHUNK
    partial = np.empty(n_chunks, dtype=np.float64)
    if n <= SERIAL_MAX:
        for c in range(n_chunks):
            partial[c] = _chunk_sum_squares(g, *chunk_bounds(c, n))
    else:
        for c in prange(n_chunks):
            partial[c] = _chunk_sum_squares(g, *chunk_bounds(c, n))
    total = 0.0
    for c in range(n_chunks):
        total += partial[c]
    return total


@jit
def _scale_update(p, g, state, sc, lo, hi):
    factor = sc[0]
    for i in range(lo, hi):
        p[i] = p[i] * factor


#: ``scale_step(g, g, state0, [factor], False)`` scales g in place (g is only read as ``p``)
scale_step = _make_step("scale_step", _scale_update)

"""Plain-numpy references of the optimizer updates, in the readable form of each method.

Each function updates ``p`` and its state arrays in place, in whole-array numpy, and is the
specification that ``fastdl/_kernels/optimizers.py`` and ``fastdl.optim`` are tested against.
``step`` is 1 on the first update.
"""
import numpy as np


def sgd(p, g, *, lr, weight_decay=0.0):
    """θ ← θ − η (∇L + λθ)."""
    p -= lr * (g + weight_decay * p)


def momentum(p, g, u, *, step, lr, momentum, dampening=0.0, nesterov=False, weight_decay=0.0):
    """The seed's form: u ← μu + η(1 − τ)g (u ← ηg on the first step), θ ← θ − u;
    Nesterov: θ ← θ − (ηg + μu). Here g = ∇L + λθ."""
    g = g + weight_decay * p
    coef = lr if step == 1 else lr * (1.0 - dampening)
    u *= momentum
    u += coef * g
    p -= lr * g + momentum * u if nesterov else u


def adagrad(p, g, s, *, step, lr, lr_decay=0.0, eps=1e-10, weight_decay=0.0):
    """s ← s + g², θ ← θ − η_t g / (√s + ε), η_t = η / (1 + (t − 1)·lr_decay), g = ∇L + λθ."""
    g = g + weight_decay * p
    s += g * g
    p -= lr / (1.0 + (step - 1) * lr_decay) * g / (np.sqrt(s) + eps)


def rmsprop(p, g, sq, grad_avg=None, buf=None, *, lr, alpha=0.99, eps=1e-8, momentum=0.0,
            weight_decay=0.0):
    """v ← αv + (1 − α)g²; centered (``grad_avg`` given): ḡ ← αḡ + (1 − α)g, v̂ = v − ḡ²;
    d = g / (√v̂ + ε); with ``buf``: b ← μb + d, θ ← θ − ηb, else θ ← θ − ηd. g = ∇L + λθ."""
    g = g + weight_decay * p
    sq *= alpha
    sq += (1.0 - alpha) * g * g
    var = sq
    if grad_avg is not None:
        grad_avg *= alpha
        grad_avg += (1.0 - alpha) * g
        var = sq - grad_avg * grad_avg
    d = g / (np.sqrt(var) + eps)
    if buf is not None:
        buf *= momentum
        buf += d
        d = buf
    p -= lr * d


def adam(p, g, m, v, vmax=None, *, step, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
         decoupled=False, seed_variant=False):
    """Kingma & Ba: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ)
    (AMSGrad, ``vmax`` given: v̂ from vmax ← max(vmax, v)), θ ← θ − η m̂ / (√v̂ + ε).
    Weight decay: g = ∇L + λθ, or with ``decoupled`` (AdamW) θ ← (1 − ηλ)θ first.
    ``seed_variant``: no bias correction and ε inside the root, θ ← θ − η m / √(v + ε)."""
    if decoupled:
        p *= 1.0 - lr * weight_decay
    else:
        g = g + weight_decay * p
    b1, b2 = betas
    m *= b1
    m += (1.0 - b1) * g
    v *= b2
    v += (1.0 - b2) * g * g
    vhat = v
    if vmax is not None:
        np.maximum(vmax, v, out=vmax)
        vhat = vmax
    if seed_variant:
        p -= lr * m / np.sqrt(vhat + eps)
    else:
        bc1 = 1.0 - b1 ** step
        bc2 = 1.0 - b2 ** step
        p -= lr / bc1 * m / (np.sqrt(vhat / bc2) + eps)


def clip_grad_norm(g, max_norm):
    """‖g‖₂; if above ``max_norm``, g ← g · max_norm / (‖g‖₂ + 10⁻⁶) (torch's rule)."""
    norm = float(np.sqrt(np.sum(np.asarray(g, dtype=np.float64) ** 2)))
    if np.isfinite(norm) and norm + 1e-6 > max_norm:
        g *= max_norm / (norm + 1e-6)
    return norm

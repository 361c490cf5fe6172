"""Float64 numpy references for every backend's losses: each returns ``(loss, grad)``.

Every loss is the per-sample loss averaged over the batch of N rows; the gradient is ∂L/∂x.
"""
import numpy as np


def mse_loss(pred, target):
    """L = (1/(2N)) Σ_ij (p − t)²; grad = (p − t)/N."""
    diff = np.asarray(pred, np.float64) - np.asarray(target, np.float64)
    n = diff.shape[0]
    return 0.5 * np.sum(diff * diff) / n, diff / n


def binary_cross_entropy_with_logits(logits, target):
    """L = (1/N) Σ_ij max(z,0) − z·t + log1p(e^{−|z|}); grad = (σ(z) − t)/N."""
    z = np.asarray(logits, np.float64)
    t = np.asarray(target, np.float64)
    n = z.shape[0]
    e = np.exp(-np.abs(z))
    loss = np.maximum(z, 0.0) - z * t + np.log1p(e)
    sigmoid = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return np.sum(loss) / n, (sigmoid - t) / n


def softmax_cross_entropy(logits, target):
    """L = −(1/N) Σ_ij t_ij log softmax(z_i)_j; grad = (softmax(z)·Σ_j t_ij − t)/N.

    ``target`` is int class indices (N,) (t = one-hot) or probability rows (N, C).
    """
    z = np.asarray(logits, np.float64)
    n, c = z.shape
    target = np.asarray(target)
    if target.ndim == 1:
        target = np.eye(c)[target]
    t = target.astype(np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    terms = np.where(t != 0, t * log_softmax, 0.0)
    mass = t.sum(axis=1, keepdims=True)
    return -np.sum(terms) / n, (np.exp(log_softmax) * mass - t) / n

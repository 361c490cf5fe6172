"""fastdl.functional activations: values and gradients against torch autograd, and the public
boundary (dtype rule, shapes, out=, caller's arrays untouched)."""
import numpy as np
import pytest

import fastdl
import fastdl._warmup
import fastdl.functional as F
from fastdl._kernels.reference import activations as R


def _x(dtype=np.float64, shape=(6, 5), seed=0):
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    x.reshape(-1)[:3] = [0.0, 1e4, -1e4]
    return x.astype(dtype)


# name: (fastdl forward(x), fastdl backward(g, x, y) -> dx, torch forward(t)); parameters fixed
def _torch_cases():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    return {
        "sigmoid": (F.sigmoid, lambda g, x, y: F.sigmoid_backward(g, y), torch.sigmoid),
        "tanh": (F.tanh, lambda g, x, y: F.tanh_backward(g, y), torch.tanh),
        "relu": (F.relu, lambda g, x, y: F.relu_backward(g, y), torch.relu),
        "leaky_relu": (lambda x: F.leaky_relu(x, 0.2),
                       lambda g, x, y: F.leaky_relu_backward(g, x, 0.2),
                       lambda t: tf.leaky_relu(t, 0.2)),
        "elu": (lambda x: F.elu(x, 1.3), lambda g, x, y: F.elu_backward(g, y, 1.3),
                lambda t: tf.elu(t, 1.3)),
        "softmax": (F.softmax, lambda g, x, y: F.softmax_backward(g, y),
                    lambda t: torch.softmax(t, -1)),
        "gelu": (F.gelu, lambda g, x, y: F.gelu_backward(g, x), tf.gelu),
        "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                      lambda g, x, y: F.gelu_backward(g, x, approximate="tanh"),
                      lambda t: tf.gelu(t, approximate="tanh")),
        "silu": (F.silu, lambda g, x, y: F.silu_backward(g, x), tf.silu),
    }


CASES = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax", "gelu", "gelu_tanh", "silu"]
TOL = {np.float32: dict(rtol=2e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


def _torch_grad(torch_forward, x, g, *params):
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, requires_grad=True)
    tensors = [torch.tensor(np.asarray(p), requires_grad=True) for p in params]
    y = torch_forward(t, *tensors)
    y.backward(torch.tensor(g))
    return (y.detach().numpy(), t.grad.numpy(), *[p.grad.numpy() for p in tensors])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", CASES)
def test_matches_torch_autograd(name, dtype):
    forward, backward, torch_forward = _torch_cases()[name]
    x = _x(dtype)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    want_y, want_dx = _torch_grad(torch_forward, x, g)
    y = forward(x)
    dx = backward(g, x, y)
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_allclose(y, want_y, **TOL[dtype])
    np.testing.assert_allclose(dx, want_dx, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha_shape", [(), (1,), (5,)])
def test_prelu_matches_torch(alpha_shape, dtype):
    torch = pytest.importorskip("torch")
    x = _x(dtype)
    g = np.random.default_rng(2).standard_normal(x.shape).astype(dtype)
    alpha = np.random.default_rng(3).uniform(0.1, 0.5, alpha_shape).astype(dtype)
    want_y, want_dx, want_da = _torch_grad(
        lambda t, a: torch.nn.functional.prelu(t, a.reshape(-1)), x, g, alpha)
    np.testing.assert_allclose(F.prelu(x, alpha), want_y, **TOL[dtype])
    dx, da = F.prelu_backward(g, x, alpha)
    assert da.shape == alpha.shape and da.dtype == dtype
    np.testing.assert_allclose(dx, want_dx, **TOL[dtype])
    np.testing.assert_allclose(da, want_da, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta_shape", [(), (5,)])
def test_swish_matches_torch(beta_shape, dtype):
    torch = pytest.importorskip("torch")
    x = _x(dtype)
    g = np.random.default_rng(4).standard_normal(x.shape).astype(dtype)
    beta = np.random.default_rng(5).uniform(0.5, 2.0, beta_shape).astype(dtype)
    want_y, want_dx, want_db = _torch_grad(lambda t, b: t * torch.sigmoid(b * t), x, g, beta)
    np.testing.assert_allclose(F.swish(x, beta), want_y, **TOL[dtype])
    dx, db = F.swish_backward(g, x, beta)
    assert db.shape == beta.shape and db.dtype == dtype
    np.testing.assert_allclose(dx, want_dx, **TOL[dtype])
    np.testing.assert_allclose(db, want_db, **TOL[dtype])


def test_derivatives_at_zero_match_torch():
    torch = pytest.importorskip("torch")
    x, g = np.zeros(1), np.ones(1)
    for ours, theirs in [
        (F.relu_backward(g, F.relu(x)), torch.relu),
        (F.leaky_relu_backward(g, x, 0.2), lambda t: torch.nn.functional.leaky_relu(t, 0.2)),
        (F.prelu_backward(g, x, 0.3)[0],
         lambda t: torch.nn.functional.prelu(t, torch.tensor([0.3], dtype=t.dtype))),
    ]:
        np.testing.assert_array_equal(ours, _torch_grad(theirs, x, g)[1])


def test_prelu_per_feature_uses_the_last_axis():
    x = _x(shape=(2, 3, 4))
    alpha = np.array([0.1, 0.2, 0.3, 0.4])
    g = np.ones_like(x)
    np.testing.assert_array_equal(F.prelu(x, alpha), R.prelu(x, alpha))
    dx, dalpha = F.prelu_backward(g, x, alpha)
    np.testing.assert_array_equal(dx, R.prelu_derivative(x, alpha))
    np.testing.assert_allclose(dalpha, R.prelu_dalpha(x, alpha).sum(axis=(0, 1)), rtol=1e-14)


def test_gelu_tanh_option_and_defaults():
    x = _x()
    np.testing.assert_allclose(F.gelu(x, approximate="tanh"), R.gelu_tanh(x), rtol=1e-14)
    np.testing.assert_allclose(F.gelu(x), R.gelu(x), rtol=1e-14)
    np.testing.assert_allclose(F.leaky_relu(x), R.leaky_relu(x, 0.01), rtol=1e-15)
    np.testing.assert_allclose(F.elu(x), R.elu(x, 1.0), rtol=1e-14)
    np.testing.assert_array_equal(F.silu(x), F.swish(x, 1.0))


# ---------------------------------------------------------------------------- the boundary


def test_dtype_rule():
    ints = np.arange(-3, 3, dtype=np.int32)
    y = F.sigmoid(ints)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, R.sigmoid(ints), rtol=1e-15)
    assert F.relu(np.array([True, False])).dtype == np.float64
    assert F.tanh([0.5, 1.0]).dtype == np.float64  # lists go through numpy
    for dtype in (np.float32, np.float64):
        assert F.gelu(np.ones(3, dtype)).dtype == dtype
    # grad takes the dtype of the tensor it pairs with
    assert F.sigmoid_backward(np.ones(3), np.full(3, 0.5, np.float32)).dtype == np.float32
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        F.relu(np.ones(3, dtype=complex))
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        F.relu(np.array(["a"]))


def test_shape_and_parameter_errors():
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"grad has shape \(4, 2\), but y has shape \(4, 3\)"):
        F.sigmoid_backward(np.ones((4, 2)), x)
    with pytest.raises(ValueError, match=r"alpha has shape \(2,\)"):
        F.prelu(x, np.ones(2))
    with pytest.raises(ValueError, match=r"beta has shape \(3, 1\)"):
        F.swish_backward(x, x, np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"approximate must be one of \['none', 'tanh'\]"):
        F.gelu(x, approximate="erf")
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        F.leaky_relu(x, "0.1")
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        F.elu_backward(x, x, alpha=-1.0)
    with pytest.raises(ValueError, match="at least one axis"):
        F.softmax(np.float64(1.0))


def test_out_checks():
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    out = np.empty_like(x)
    assert F.tanh(x, out=out) is out
    np.testing.assert_array_equal(out, F.tanh(x))
    with pytest.raises(ValueError, match="out has shape"):
        F.tanh(x, out=np.empty((4, 3)))
    with pytest.raises(TypeError, match="out has dtype float32"):
        F.tanh(x, out=np.empty_like(x, dtype=np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        F.tanh(x, out=np.empty((3, 8))[:, ::2])
    read_only = np.empty_like(x)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        F.tanh(x, out=read_only)
    buffer = np.zeros(13)
    with pytest.raises(ValueError, match="partly overlaps"):
        F.tanh(buffer[:12].reshape(3, 4), out=buffer[1:].reshape(3, 4))


def test_in_place_and_callers_arrays_untouched():
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    kept = x.copy()
    y = F.softmax(x)
    g = np.ones_like(x)
    F.softmax_backward(g, y)
    F.prelu_backward(g, x, np.full(4, 0.1))
    np.testing.assert_array_equal(x, kept)
    np.testing.assert_array_equal(g, np.ones_like(x))
    # in place: out is the input
    z = x.copy()
    assert F.softmax(z, out=z) is z
    np.testing.assert_array_equal(z, y)
    dz = g.copy()
    F.swish_backward(dz, x, 1.5, out=dz)
    np.testing.assert_array_equal(dz, F.swish_backward(g, x, 1.5)[0])


def test_non_contiguous_inputs_are_copied_not_written():
    base = np.linspace(-3, 3, 40).reshape(5, 8)
    x = base[:, ::2]
    kept = base.copy()
    np.testing.assert_array_equal(F.elu(x), F.elu(np.ascontiguousarray(x)))
    np.testing.assert_array_equal(F.softmax(x.T), F.softmax(np.ascontiguousarray(x.T)))
    dx, dalpha = F.prelu_backward(x, x, np.full(4, 0.2))
    np.testing.assert_array_equal(dalpha, F.prelu_backward(*[np.ascontiguousarray(x)] * 2,
                                                             np.full(4, 0.2))[1])
    np.testing.assert_array_equal(base, kept)


def test_rejected_call_changes_nothing():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    out = np.full_like(x, 7.0)
    with pytest.raises(ValueError):
        F.prelu_backward(x, x, np.ones(5), out=out)
    with pytest.raises(ValueError):
        F.sigmoid_backward(np.ones(5), x, out=out)
    np.testing.assert_array_equal(out, 7.0)


def test_empty_arrays():
    empty = np.empty((0, 3), dtype=np.float32)
    assert F.sigmoid(empty).shape == (0, 3)
    assert F.softmax(empty).shape == (0, 3)
    dx, dalpha = F.prelu_backward(empty, empty, np.ones(3, np.float32))
    assert dx.shape == (0, 3)
    np.testing.assert_array_equal(dalpha, np.zeros(3, np.float32))
    dx, dbeta = F.swish_backward(empty, empty, 1.0)
    assert dbeta.shape == () and dbeta == 0


_WARMED = []


def _record_warmup(dtype):
    _WARMED.append(np.dtype(dtype))


def test_warmup_runs_each_step_for_both_dtypes(monkeypatch, capsys):
    # the activation step for real, plus a recording one; the other modules' steps are theirs
    monkeypatch.setattr(fastdl._warmup, "STEPS", ("fastdl.functional.activations:_warmup",
                                                  f"{__name__}:_record_warmup"))
    seconds = fastdl.warmup(verbose=True)
    assert seconds >= 0
    assert _WARMED == [np.float32, np.float64]
    assert "kernels ready" in capsys.readouterr().out

import numpy as np
import pytest

import fastdl
from fastdl import functional as F
from fastdl._kernels import ops
from fastdl._kernels.reference import losses as R
from fastdl._kernels.split import SERIAL_MAX

pytestmark = pytest.mark.usefixtures("backend")  # every test on every backend (conftest.py)

DTYPES = [np.float32, np.float64]
SMALL = (7, 13)  # serial path
LARGE = (48, 700)  # > SERIAL_MAX elements: rows in parallel
assert LARGE[0] * LARGE[1] > SERIAL_MAX >= SMALL[0] * SMALL[1]


def make_case(name, shape, dtype, rng, normalized=True):
    """(public function, x, target, reference function) for one loss."""
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    if name == "mse":
        return F.mse_loss, x, rng.standard_normal(shape).astype(dtype), R.mse_loss
    if name == "bce":
        return F.binary_cross_entropy_with_logits, x, rng.random(shape).astype(dtype), \
            R.binary_cross_entropy_with_logits
    if name == "xent_labels":
        return F.softmax_cross_entropy, x, rng.integers(0, shape[1], shape[0]), R.softmax_cross_entropy
    target = rng.random(shape)
    if normalized:
        target /= target.sum(axis=1, keepdims=True)
    return F.softmax_cross_entropy, x, target.astype(dtype), R.softmax_cross_entropy


NAMES = ["mse", "bce", "xent_labels", "xent_probs"]


def tolerances(dtype, n):
    """Loss rtol; gradient rtol/atol (the gradient is O(1/N), with absolute cancellation error)."""
    eps = float(np.finfo(dtype).eps)  # pytest.approx refuses numpy scalars as tolerances
    return 8 * eps, dict(rtol=16 * eps, atol=16 * eps / n)


@pytest.mark.parametrize("shape", [SMALL, LARGE])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_matches_reference(name, dtype, shape):
    rng = np.random.default_rng(1)
    fn, x, target, ref = make_case(name, shape, dtype, rng)
    x_before, target_before = x.copy(), target.copy()
    loss, grad = fn(x, target)
    ref_loss, ref_grad = ref(x, target)
    loss_rtol, grad_tol = tolerances(dtype, shape[0])
    assert isinstance(loss, float)
    assert grad.dtype == dtype and grad.shape == x.shape
    assert loss == pytest.approx(ref_loss, rel=loss_rtol)
    np.testing.assert_allclose(grad, ref_grad, **grad_tol)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(target, target_before)


def test_unnormalized_target_rows_get_the_exact_gradient():
    rng = np.random.default_rng(2)
    _, x, target, _ = make_case("xent_probs", SMALL, np.float64, rng, normalized=False)
    loss, grad = F.softmax_cross_entropy(x, 2.5 * target)
    ref_loss, ref_grad = R.softmax_cross_entropy(x, 2.5 * target)
    assert loss == pytest.approx(ref_loss, rel=1e-14)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_central_differences(name):
    rng = np.random.default_rng(3)
    fn, x, target, _ = make_case(name, (3, 5), np.float64, rng)
    _, grad = fn(x, target)
    h = 1e-6
    numeric = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = h
        numeric[idx] = (fn(x + step, target)[0] - fn(x - step, target)[0]) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_matches_torch_autograd(name, dtype):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(4)
    fn, x, target, _ = make_case(name, SMALL, dtype, rng)
    n, d = x.shape
    z = torch.tensor(x, requires_grad=True)
    t = torch.tensor(target)
    if name == "mse":
        expected = tf.mse_loss(z, t, reduction="sum") / (2 * n)  # ½‖·‖² per sample, batch mean
    elif name == "bce":
        expected = tf.binary_cross_entropy_with_logits(z, t, reduction="sum") / n
    else:
        expected = tf.cross_entropy(z, t)
    expected.backward()
    loss, grad = fn(x, target)
    loss_rtol, grad_tol = tolerances(dtype, n)
    assert loss == pytest.approx(expected.item(), rel=4 * loss_rtol)
    np.testing.assert_allclose(grad, z.grad.numpy(), **grad_tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_extreme_logits_are_exact(dtype):
    inf = np.inf
    z = np.array([[1e4, -1e4, 1e4, -1e4, inf, -inf, 0.0]], dtype)
    t = np.array([[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.5]], dtype)
    loss, grad = F.binary_cross_entropy_with_logits(z, t)
    assert loss == 2e4 + np.log(dtype(2.0))
    np.testing.assert_array_equal(grad, [[0, 0, 1, -1, 0, 0, 0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_xent_extreme_logits_are_exact(dtype):
    z = np.array([[1e4, 0.0], [1e4, 0.0], [0.0, -np.inf]], dtype)
    loss, grad = F.softmax_cross_entropy(z, np.array([0, 1, 0]))
    assert loss == 1e4 / 3
    np.testing.assert_array_equal(grad, np.array([[0, 0], [1, -1], [0, 0]], dtype) / dtype(3))
    loss, grad = F.softmax_cross_entropy(z, np.array([[1, 0], [0, 1], [1, 0]], dtype))
    assert loss == 1e4 / 3
    np.testing.assert_array_equal(grad, np.array([[0, 0], [1, -1], [0, 0]], dtype) / dtype(3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_subnormal_inputs_match_reference(name, dtype):
    fn, x, target, ref = make_case(name, SMALL, dtype, np.random.default_rng(9))
    x = x * np.finfo(dtype).smallest_subnormal * 1000
    if name == "mse":
        target = target * np.finfo(dtype).smallest_subnormal * 1000
    loss, grad = fn(x, target)
    ref_loss, ref_grad = ref(x, target)
    loss_rtol, grad_tol = tolerances(dtype, SMALL[0])
    assert loss == pytest.approx(ref_loss, rel=loss_rtol, abs=1e-300)
    np.testing.assert_allclose(grad, ref_grad, rtol=grad_tol["rtol"],
                               atol=max(grad_tol["atol"], np.finfo(dtype).smallest_subnormal))


@pytest.mark.parametrize("name", NAMES)
def test_nan_input_propagates(name):
    fn, x, target, _ = make_case(name, SMALL, np.float32, np.random.default_rng(5))
    x[2, 0] = np.nan
    loss, grad = fn(x, target)
    assert np.isnan(loss)
    assert np.isnan(grad[2]).any()
    assert np.isfinite(np.delete(grad, 2, axis=0)).all()


@pytest.mark.parametrize("name", NAMES)
def test_same_bits_for_any_thread_count_and_path(name):
    """LARGE runs rows in parallel; its first rows, alone, run serially: every row loss agrees."""
    fn, x, target, _ = make_case(name, LARGE, np.float32, np.random.default_rng(6))
    kernel = getattr(ops(), {"mse": "mse_loss", "bce": "binary_cross_entropy_with_logits",
                             "xent_labels": "softmax_cross_entropy_labels",
                             "xent_probs": "softmax_cross_entropy_probs"}[name])
    if name == "xent_labels":
        target = target.astype(np.intp)
    results = []
    threads = fastdl.get_num_threads()
    try:
        for n_threads in (1, 2):
            fastdl.set_num_threads(n_threads)
            grad, row_loss = np.empty_like(x), np.empty(x.shape[0])
            results.append((kernel(x, target, grad, row_loss), grad, row_loss))
    finally:
        fastdl.set_num_threads(threads)
    (loss1, grad1, rows1), (loss2, grad2, rows2) = results
    assert loss1 == loss2
    np.testing.assert_array_equal(grad1, grad2)
    np.testing.assert_array_equal(rows1, rows2)
    few = 4
    rows_serial = np.empty(few)
    kernel(x[:few], target[:few], np.empty_like(x[:few]), rows_serial)
    np.testing.assert_array_equal(rows_serial, rows1[:few])


@pytest.mark.parametrize("name", NAMES)
def test_grad_out_in_place_and_non_contiguous_inputs(name):
    fn, x, target, _ = make_case(name, SMALL, np.float64, np.random.default_rng(7))
    expected_loss, expected_grad = fn(x, target)
    wide = np.zeros((x.shape[0], 2 * x.shape[1]))
    wide[:, ::2] = x
    loss, grad = fn(wide[:, ::2], target)  # copied once to C order
    assert loss == expected_loss
    np.testing.assert_array_equal(grad, expected_grad)
    in_place = x.copy()
    loss, grad = fn(in_place, target, grad_out=in_place)
    # aliasing makes LLVM take its scalar loop: the float64 sums may round differently
    assert grad is in_place and loss == pytest.approx(expected_loss, rel=1e-15)
    np.testing.assert_allclose(grad, expected_grad, **tolerances(np.float64, x.shape[0])[1])


def test_images_are_flattened_per_sample():
    rng = np.random.default_rng(8)
    x, t = rng.standard_normal((4, 3, 5)), rng.random((4, 3, 5))
    loss, grad = F.binary_cross_entropy_with_logits(x, t)
    flat_loss, flat_grad = F.binary_cross_entropy_with_logits(x.reshape(4, 15), t.reshape(4, 15))
    assert loss == flat_loss and grad.shape == (4, 3, 5)
    np.testing.assert_array_equal(grad.reshape(4, 15), flat_grad)


def test_integer_targets_follow_the_input_dtype():
    x = np.zeros((2, 3), np.float32)
    loss, grad = F.mse_loss(x, np.ones((2, 3), np.int64))
    assert grad.dtype == np.float32 and loss == 1.5
    np.testing.assert_array_equal(grad, np.full((2, 3), -0.5, np.float32))


@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.mse_loss(x, np.zeros((4, 2))), ValueError, r"target has shape \(4, 2\), but pred"),
    (lambda x: F.mse_loss(x[0], x[0]), ValueError, r"pred must be an array of shape \(N, features"),
    (lambda x: F.mse_loss(x[:0], x[:0]), ValueError, "at least one sample"),
    (lambda x: F.binary_cross_entropy_with_logits(x, x.astype(complex)), TypeError, "target"),
    (lambda x: F.softmax_cross_entropy(x, np.array([0, 1, 3, 0])), ValueError, r"labels must lie in \[0, 3\)"),
    (lambda x: F.softmax_cross_entropy(x, np.array([0, -1, 2, 0])), ValueError, r"labels must lie in \[0, 3\)"),
    (lambda x: F.softmax_cross_entropy(x, np.array([0.0, 1, 2, 0])), TypeError, "integer class indices"),
    (lambda x: F.softmax_cross_entropy(x, np.array([0, 1, 2])), ValueError, "3 entries, but logits has 4"),
    (lambda x: F.softmax_cross_entropy(x, np.ones((4, 2))), ValueError, r"labels has shape \(4, 2\)"),
    (lambda x: F.softmax_cross_entropy(x[:, :0], np.zeros(4, int)), ValueError, "C >= 1"),
    (lambda x: F.softmax_cross_entropy(x.reshape(4, 3, 1), np.zeros(4, int)), ValueError, r"\(N, C\)"),
    (lambda x: F.mse_loss(x, x, grad_out=np.empty((4, 3), np.float32)), TypeError, "^grad_out has dtype"),
    (lambda x: F.mse_loss(x, x.copy(), grad_out=np.empty((3, 4))), ValueError, "^grad_out has shape"),
])
def test_rejected_calls_name_the_argument_and_change_nothing(call, error, match):
    x = np.arange(12, dtype=np.float64).reshape(4, 3) / 10
    before = x.copy()
    with pytest.raises(error, match=match):
        call(x)
    np.testing.assert_array_equal(x, before)


def test_grad_out_must_not_overlap_the_target():
    x, target = np.zeros((2, 3)), np.ones((2, 3))
    before = target.copy()
    with pytest.raises(ValueError, match="overlap the target"):
        F.softmax_cross_entropy(x, target, grad_out=target)
    np.testing.assert_array_equal(target, before)

import numpy as np
import pytest

import fastdl
from fastdl import optim
from fastdl._kernels import ops
from fastdl._kernels.reference import optimizers as ref
from fastdl._kernels.split import CHUNK, SERIAL_MAX
from fastdl.params import ParamArena

pytestmark = pytest.mark.usefixtures("backend")  # every test on every backend (conftest.py)

# large enough for the parallel path (more than SERIAL_MAX elements, a partial last chunk);
# long runs use N_SERIAL: launching threads hundreds of times is slow on a loaded machine.
N_PARALLEL = SERIAL_MAX + CHUNK + 3
N_SERIAL = 1000
RTOL = {np.float32: 1e-5, np.float64: 1e-12}

# id -> (fastdl class, hyper-parameters, torch class name, torch kwargs, reference step)
CASES = {
    "sgd-wd": (optim.SGD, {"lr": 0.1, "weight_decay": 0.01}, "SGD", {},
               lambda p, g, st, t, kw: ref.sgd(p, g, **kw)),
    "momentum-damp-wd": (optim.Momentum,
                         {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
                         "SGD", {}, None),
    "momentum-nesterov": (optim.Momentum, {"lr": 0.05, "momentum": 0.8, "nesterov": True},
                          "SGD", {}, None),
    "adagrad": (optim.Adagrad, {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01,
                                "initial_accumulator_value": 0.1}, "Adagrad", {},
                lambda p, g, st, t, kw: ref.adagrad(
                    p, g, st["sum"], step=t,
                    **{k: v for k, v in kw.items() if k != "initial_accumulator_value"})),
    "rmsprop": (optim.RMSprop, {"lr": 0.01, "weight_decay": 0.01}, "RMSprop", {}, None),
    "rmsprop-centered": (optim.RMSprop, {"lr": 0.01, "centered": True}, "RMSprop", {}, None),
    "rmsprop-momentum": (optim.RMSprop, {"lr": 0.01, "momentum": 0.9, "alpha": 0.9},
                         "RMSprop", {}, None),
    "rmsprop-centered-momentum-wd": (optim.RMSprop, {"lr": 0.01, "momentum": 0.5,
                                                     "centered": True, "weight_decay": 0.1},
                                     "RMSprop", {}, None),
    "adam-wd": (optim.Adam, {"lr": 0.01, "weight_decay": 0.01}, "Adam", {}, None),
    "adam-amsgrad": (optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "amsgrad": True},
                     "Adam", {}, None),
    "adamw": (optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}, "AdamW", {}, None),
    "adamw-amsgrad": (optim.AdamW, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True},
                      "AdamW", {}, None),
}


def _reference_step(case, p, g, state, t, opt):
    """One float64 reference step with ``opt``'s hyper-parameters and the given state rows."""
    cls, kw, _, _, custom = CASES[case]
    kw = dict(kw, lr=opt.lr)
    if custom is not None:
        return custom(p, g, state, t, kw)
    if cls is optim.Momentum:
        ref.momentum(p, g, state["velocity"], step=t, **kw)
    elif cls is optim.RMSprop:
        kw.pop("centered", None)
        ref.rmsprop(p, g, state["square_avg"], state.get("grad_avg"),
                    state.get("momentum_buffer"), **kw)
    else:
        ams = kw.pop("amsgrad", False)
        ref.adam(p, g, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                 step=t, decoupled=cls is optim.AdamW, **kw)
        assert ams == ("max_exp_avg_sq" in state)


def _problem(n, steps, dtype, seed=0):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(n).astype(dtype)
    scales = np.geomspace(1e-3, 10, steps)[rng.permutation(steps)]  # many magnitudes
    grads = (rng.standard_normal((steps, n)) * scales[:, None]).astype(dtype)
    return p0, grads


def _assert_close(actual, expected, rtol):
    # relative to the parameters' scale: a value that crossed zero has no relative accuracy
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def _schedule(cls, step):
    """A learning-rate schedule (halved after 50 steps); Momentum keeps lr constant, where
    it equals torch's SGD."""
    return 1.0 if cls is optim.Momentum or step < 50 else 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES)
def test_matches_torch_over_100_steps(case, dtype):
    torch = pytest.importorskip("torch")
    cls, kw, torch_name, torch_kw, _ = CASES[case]
    torch_kw = dict(kw, **torch_kw)
    if cls is optim.Momentum:
        torch_kw.setdefault("dampening", 0.0)
    p0, grads = _problem(N_SERIAL, 100, dtype)
    p = p0.copy()
    g = np.empty_like(p)
    opt = cls(p, g, **kw)
    tp = torch.tensor(p0.copy(), requires_grad=True)
    topt = getattr(torch.optim, torch_name)([tp], **torch_kw, foreach=False)
    for t, grad in enumerate(grads):
        opt.lr = kw["lr"] * _schedule(cls, t)
        topt.param_groups[0]["lr"] = opt.lr
        g[...] = grad
        opt.step()
        tp.grad = torch.from_numpy(grad.copy())
        topt.step()
    assert opt.step_count == 100
    _assert_close(p, tp.detach().numpy(), RTOL[dtype])


@pytest.mark.parametrize("n", [1, N_SERIAL], ids=["one-element", "many"])
@pytest.mark.parametrize("case", CASES)
def test_matches_reference(case, n):
    """Each optimizer against the plain-numpy reference: no torch needed, one-element arena too."""
    cls, kw, *_ = CASES[case]
    p0, grads = _problem(n, 30, np.float64, seed=1)
    p, expected = p0.copy(), p0.copy()
    g = np.empty_like(p)
    opt = cls(p, g, **kw)
    state = None
    for t, grad in enumerate(grads, start=1):
        opt.lr = kw["lr"] * (1.0 if t < 15 else 0.3)
        g[...] = grad
        opt.step()
        if state is None:
            state = {k: np.full(n, kw.get("initial_accumulator_value", 0.0)) for k in opt.state}
        _reference_step(case, expected, grad, state, t, opt)
    _assert_close(p, expected, 1e-12)
    for name, row in opt.state.items():
        _assert_close(row, state[name], 1e-12)


@pytest.fixture
def threads():
    """Sets the thread count for one test (at most what the backend allows), then restores it."""
    before = fastdl.get_num_threads()
    yield lambda n: fastdl.set_num_threads(min(n, ops().max_threads()))
    fastdl.set_num_threads(before)


@pytest.mark.parametrize("case", CASES)
def test_parallel_step_equals_chunk_by_chunk_steps(case, threads):
    """The parallel path (2 threads) gives the same bits as serial steps over each chunk."""
    cls, kw, *_ = CASES[case]
    p0, grads = _problem(N_PARALLEL, 3, np.float32, seed=9)
    p, q = p0.copy(), p0.copy()
    g = np.empty_like(p)
    whole = cls(p, g, **kw)
    parts = [cls(q[i:i + CHUNK], g[i:i + CHUNK], **kw)
             for i in range(0, N_PARALLEL, CHUNK)]
    threads(2)
    for grad in grads:
        g[...] = grad
        whole.step()
        for part in parts:
            part.step()
    np.testing.assert_array_equal(p, q)
    assert not np.array_equal(p, p0)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_seed_variant_has_no_bias_correction_and_eps_inside_the_root(amsgrad):
    p0, grads = _problem(50, 20, np.float64, seed=2)
    p, expected = p0.copy(), p0.copy()
    g = np.empty_like(p)
    opt = optim.Adam(p, g, lr=0.01, eps=1e-4, amsgrad=amsgrad, seed_variant=True)
    m, v, vmax = np.zeros(50), np.zeros(50), np.zeros(50) if amsgrad else None
    for t, grad in enumerate(grads, start=1):
        g[...] = grad
        opt.step()
        ref.adam(expected, grad, m, v, vmax, step=t, lr=0.01, eps=1e-4, seed_variant=True)
    _assert_close(p, expected, 1e-12)
    # the first step of the seed's rule: θ − η (1 − β₁)g / √((1 − β₂)g² + ε)
    q, g1 = p0.copy(), grads[0]
    optim.Adam(q, g1.copy(), lr=0.01, eps=1e-4, seed_variant=True).step()
    _assert_close(q, p0 - 0.01 * 0.1 * g1 / np.sqrt(0.001 * g1 * g1 + 1e-4), 1e-12)


def test_momentum_is_the_seed_formula_and_differs_from_torch_only_when_lr_changes():
    """u ← μu + ηg, θ ← θ − u: with η changing, torch's θ ← θ − η(μb + g) gives another path."""
    torch = pytest.importorskip("torch")
    p0, grads = _problem(20, 10, np.float64, seed=3)
    p = p0.copy()
    g = np.empty_like(p)
    opt = optim.Momentum(p, g, lr=0.1, momentum=0.9)
    u, expected = np.zeros(20), p0.copy()
    tp = torch.tensor(p0.copy(), requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9)
    for t, grad in enumerate(grads):
        lr = 0.1 / (1 + t)
        opt.lr = topt.param_groups[0]["lr"] = lr
        g[...] = grad
        opt.step()
        u = 0.9 * u + lr * grad
        expected -= u
        tp.grad = torch.from_numpy(grad.copy())
        topt.step()
    _assert_close(p, expected, 1e-12)
    assert np.abs(p - tp.detach().numpy()).max() > 1e-3


@pytest.mark.parametrize("case", ["momentum-damp-wd", "adagrad", "rmsprop-centered-momentum-wd",
                                  "adam-amsgrad", "adamw"])
def test_state_dict_restore_continues_bit_identically(case):
    cls, kw, *_ = CASES[case]
    p0, grads = _problem(N_SERIAL, 20, np.float32, seed=4)
    p = p0.copy()
    g = np.empty_like(p)
    opt = cls(p, g, **kw)
    assert opt.state_dict()["state"] == {}
    for grad in grads[:10]:
        g[...] = grad
        opt.step()
    opt.lr *= 0.5
    saved, saved_p = opt.state_dict(), p.copy()
    for grad in grads[10:]:
        g[...] = grad
        opt.step()
    assert saved["step"] == 10 and saved["hyper"]["lr"] == kw["lr"] * 0.5
    assert saved_p.tobytes() != p.tobytes()  # the saved copies did not move on

    q = saved_p.copy()
    h = np.empty_like(q)
    restored = cls(q, h, **dict(kw, lr=1.0))
    restored.load_state_dict(saved)
    assert restored.lr == opt.lr and restored.step_count == 10
    for grad in grads[10:]:
        h[...] = grad
        restored.step()
    np.testing.assert_array_equal(q, p)
    for name, row in opt.state.items():
        np.testing.assert_array_equal(restored.state[name], row)


@pytest.mark.parametrize("case", CASES)
def test_state_dict_hyper_rebuilds_the_optimizer(case):
    cls, kw, *_ = CASES[case]
    p = np.zeros(3)
    saved = cls(p, np.ones_like(p), **kw).state_dict()
    rebuilt = cls(p, np.ones_like(p), **saved["hyper"])
    assert rebuilt.state_dict()["hyper"] == saved["hyper"]
    assert all(saved["hyper"][k] == v for k, v in kw.items())


def test_state_dict_reusing_copies_into_the_arrays_of_an_earlier_one():
    opt = optim.Adam(np.zeros(5), np.ones(5))
    before_state = opt._state_dict_reusing(None)  # no state before the first step
    opt.step()
    first = opt._state_dict_reusing(before_state)  # the state appeared: new copies
    opt.step()
    second = opt._state_dict_reusing(first)
    assert all(second["state"][name] is row for name, row in first["state"].items())
    fresh = opt.state_dict()
    assert second["step"] == fresh["step"] == 2 and second["hyper"] == fresh["hyper"]
    assert second["state"].keys() == fresh["state"].keys() == {"exp_avg", "exp_avg_sq"}
    for name, row in fresh["state"].items():
        np.testing.assert_array_equal(second["state"][name], row)


def test_load_state_dict_refuses_another_layout_and_changes_nothing():
    p = np.zeros(4, np.float32)
    adam = optim.Adam(p, np.ones_like(p), amsgrad=True)
    adam.step()
    plain = optim.Adam(p, np.ones_like(p), lr=0.5)
    with pytest.raises(ValueError, match="max_exp_avg_sq"):
        plain.load_state_dict(adam.state_dict())
    assert plain.lr == 0.5 and plain.step_count == 0 and plain.state == {}
    with pytest.raises(ValueError, match="hyper-parameters"):
        optim.SGD(p, np.ones_like(p), lr=1).load_state_dict(adam.state_dict())
    with pytest.raises(AttributeError, match="amsgrad is fixed at construction"):
        plain.amsgrad = True
    rms = optim.RMSprop(p, np.ones_like(p), momentum=0.5)
    rms.momentum = 0.9
    with pytest.raises(ValueError, match="momentum cannot change between 0 and > 0"):
        rms.momentum = 0


@pytest.mark.parametrize("case", CASES)
def test_lr_zero_leaves_the_parameters_but_updates_the_state(case):
    cls, kw, *_ = CASES[case]
    p0, grads = _problem(5, 3, np.float32, seed=5)
    p = p0.copy()
    g = np.empty_like(p)
    opt = cls(p, g, **dict(kw, lr=0.0))
    for grad in grads:
        g[...] = grad
        opt.step()
    np.testing.assert_array_equal(p, p0)
    if cls is optim.Momentum:  # η sits inside the velocity: it stays zero
        np.testing.assert_array_equal(opt.state["velocity"], 0)
    else:  # the gradients reached the state
        assert all(np.any(row != row[0]) for row in opt.state.values())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("n", [7, N_PARALLEL], ids=["serial", "parallel"])
@pytest.mark.parametrize("case", ["sgd-wd", "momentum-nesterov", "rmsprop-centered", "adam-wd"])
def test_non_finite_gradient_is_refused_and_changes_nothing(case, n, bad):
    cls, kw, *_ = CASES[case]
    p0, grads = _problem(n, 2, np.float32, seed=6)
    p = p0.copy()
    g = grads[0].copy()
    opt = cls(p, g, **kw)
    opt.step()
    before_p, before_state = p.copy(), {k: v.copy() for k, v in opt.state.items()}
    g[...] = grads[1]
    g[n - 2] = bad
    with pytest.raises(FloatingPointError, match=f"1 non-finite value.*index {n - 2}.*unchanged"):
        opt.step()
    np.testing.assert_array_equal(p, before_p)
    for name, row in opt.state.items():
        np.testing.assert_array_equal(row, before_state[name])
    assert opt.step_count == 1

    opt.check_finite = False  # opting out: it propagates, as in torch.optim
    opt.step()
    assert opt.step_count == 2 and not np.isfinite(p[n - 2])
    assert np.isfinite(np.delete(p, n - 2)).all()


def test_optimizer_over_one_layer_of_an_arena_trains_only_that_layer():
    arena = ParamArena("float64")
    for layer, shape in (("l0", (3, 2)), ("l1", (2, 2)), ("l2", (2, 1))):
        arena.add(f"{layer}.W", shape)
        arena.add(f"{layer}.b", shape[1:])
    arena.allocate()
    arena.params[...] = 1.0
    arena.grads[...] = 0.5
    opt = optim.Adam(arena.group("l1"), lr=0.1)
    whole = optim.SGD(arena, lr=1.0)
    assert opt.params.size == 6 and whole.params.size == arena.size
    opt.step()
    np.testing.assert_allclose(arena.param("l1.W"), 0.9)
    np.testing.assert_allclose(arena.param("l1.b"), 0.9)
    np.testing.assert_array_equal(arena.param("l0.W"), 1.0)
    np.testing.assert_array_equal(arena.param("l2.b"), 1.0)
    opt.zero_grad()
    np.testing.assert_array_equal(arena.grads, np.r_[np.full(8, 0.5), np.zeros(6), [0.5] * 3])
    arena.grad("l2.b")[0] = np.inf
    with pytest.raises(FloatingPointError, match=r"index 16 \(in 'l2.b'\)"):
        whole.step()


def test_construction_errors_name_the_argument():
    p, g = np.zeros(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="grads has dtype float64, but params has dtype float32"):
        optim.SGD(p, g.astype(np.float64), lr=1)
    with pytest.raises(ValueError, match="grads has 3 elements, but params has 4"):
        optim.SGD(p, g[:3], lr=1)
    with pytest.raises(ValueError, match="params must be a 1-D C-contiguous"):
        optim.SGD(np.zeros(8, np.float32)[::2], g, lr=1)
    with pytest.raises(ValueError, match="overlap"):
        optim.SGD(p, p, lr=1)
    with pytest.raises(TypeError, match="params must be a ParamArena"):
        optim.SGD(p, lr=1)
    with pytest.raises(ValueError, match=r"lr must be a finite number >= 0, got -1.0"):
        optim.Adam(p, g, lr=-1)
    with pytest.raises(ValueError, match=r"betas\[1\] must be a finite number in \[0, 1\), got 1.0"):
        optim.Adam(p, g, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="nesterov needs momentum > 0 and dampening = 0"):
        optim.Momentum(p, g, lr=1, nesterov=True, dampening=0.1)
    opt = optim.SGD(p, g, lr=1)
    with pytest.raises(ValueError, match="lr must be"):
        opt.lr = float("nan")
    assert opt.lr == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("max_norm", [0.5, 1e9])
def test_clip_grad_norm_matches_torch(dtype, max_norm):
    torch = pytest.importorskip("torch")
    g = _problem(N_PARALLEL, 1, dtype, seed=7)[1][0]
    tg = torch.zeros(g.size, dtype=torch.float32 if dtype is np.float32 else torch.float64,
                     requires_grad=True)
    tg.grad = torch.from_numpy(g.copy())
    expected_norm = float(torch.nn.utils.clip_grad_norm_([tg], max_norm))
    mine = g.copy()
    norm = optim.clip_grad_norm(mine, max_norm)
    np.testing.assert_allclose(norm, expected_norm, rtol=RTOL[dtype])
    _assert_close(mine, tg.grad.numpy(), RTOL[dtype])
    assert (max_norm < norm) == (not np.array_equal(mine, g))


def test_clip_grad_norm_is_deterministic_and_refuses_non_finite(threads):
    g = _problem(N_PARALLEL, 1, np.float32, seed=8)[1][0]
    norms = []
    for n in (1, 2):
        threads(n)
        norms.append(optim.clip_grad_norm(g, np.inf))
    assert norms[0] == norms[1]
    np.testing.assert_allclose(norms[0], np.linalg.norm(g.astype(np.float64)), rtol=1e-12)
    g[3] = np.nan
    before = g.copy()
    assert np.isnan(optim.clip_grad_norm(g, 1.0))
    np.testing.assert_array_equal(g, before)
    with pytest.raises(FloatingPointError, match="norm is nan"):
        optim.clip_grad_norm(g, 1.0, error_if_nonfinite=True)

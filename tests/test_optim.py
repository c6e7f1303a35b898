"""Optimisers, schedulers and gradient clipping: hand-computed NumPy updates (no torch needed),
PyTorch parity when torch is installed, state dicts and every error message."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn import optim
from tinyrnn.optim import lr_scheduler

STEPS = 5


def _problem(seed=0, dtype=np.float64):
    """Two parameters and a fixed sequence of gradients (one per step)."""
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(4).astype(dtype)]
    grads = [[rng.standard_normal(p.shape).astype(dtype) for p in p0] for _ in range(STEPS)]
    return p0, grads


def _run_ours(cls, kwargs, p0, grads):
    params = [tr.nn.Parameter(tr.tensor(p)) for p in p0]
    opt = cls(params, **kwargs)
    for gs in grads:
        for p, g in zip(params, gs, strict=True):
            p.grad = tr.tensor(g)
        opt.step()
    return [p.data for p in params], opt


# ---- reference updates written out in NumPy, one function per optimiser ----


def _ref_sgd(p, gs, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    p, buf = p.copy(), None
    for g in gs:
        g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def _ref_adam(
    p, gs, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False
):
    p = p.copy()
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(gs, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        vmax = np.maximum(vmax, v)
        mhat = m / (1 - betas[0] ** t)
        vhat = (vmax if amsgrad else v) / (1 - betas[1] ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


def _ref_rmsprop(
    p, gs, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False
):
    p = p.copy()
    v, a, b = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in gs:
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g
        d = np.sqrt(v - a * a if centered else v) + eps
        if momentum:
            b = momentum * b + g / d
            p = p - lr * b
        else:
            p = p - lr * g / d
    return p


def _ref_adagrad(
    p, gs, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10
):
    p = p.copy()
    s = np.full_like(p, initial_accumulator_value)
    for t, g in enumerate(gs, start=1):
        g = g + weight_decay * p
        s = s + g * g
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
    return p


CASES = [
    (optim.SGD, _ref_sgd, {"lr": 0.1}),
    (optim.SGD, _ref_sgd, {"lr": 0.1, "momentum": 0.9}),
    (optim.SGD, _ref_sgd, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1}),
    (optim.SGD, _ref_sgd, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (optim.Adam, _ref_adam, {}),
    (optim.Adam, _ref_adam, {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.1}),
    (optim.Adam, _ref_adam, {"lr": 0.01, "amsgrad": True}),
    (
        optim.AdamW,
        lambda p, gs, **k: _ref_adam(p, gs, decoupled=True, weight_decay=0.01, **k),
        {"lr": 0.01},
    ),
    (
        optim.AdamW,
        lambda p, gs, **k: _ref_adam(p, gs, decoupled=True, **k),
        {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True},
    ),
    (optim.RMSprop, _ref_rmsprop, {}),
    (
        optim.RMSprop,
        _ref_rmsprop,
        {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 0.1},
    ),
    (optim.RMSprop, _ref_rmsprop, {"momentum": 0.9}),
    (optim.Adagrad, _ref_adagrad, {}),
    (
        optim.Adagrad,
        _ref_adagrad,
        {"lr": 0.1, "lr_decay": 0.5, "weight_decay": 0.2, "initial_accumulator_value": 0.1},
    ),
]


def _case_id(case):
    cls, _, kw = case
    return cls.__name__ + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_update_rule_matches_numpy_reference(case):
    cls, ref, kwargs = case
    p0, grads = _problem()
    ours, _ = _run_ours(cls, kwargs, p0, grads)
    for k, p in enumerate(ours):
        expected = ref(p0[k], [gs[k] for gs in grads], **kwargs)
        np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_update_rule_matches_torch(case):
    torch = pytest.importorskip("torch")
    cls, _, kwargs = case
    p0, grads = _problem(seed=1)
    ours, _ = _run_ours(cls, kwargs, p0, grads)
    tparams = [torch.tensor(p, requires_grad=True) for p in p0]
    topt = getattr(torch.optim, cls.__name__)(tparams, **kwargs)
    for gs in grads:
        for p, g in zip(tparams, gs, strict=True):
            p.grad = torch.tensor(g)
        topt.step()
    for a, b in zip(ours, tparams, strict=True):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-11, atol=1e-13)


def test_float32_parameters_stay_float32():
    p0, grads = _problem(dtype=np.float32)
    for cls, _, kwargs in CASES:
        ours, opt = _run_ours(cls, kwargs, p0, grads)
        assert all(p.dtype == np.float32 for p in ours), cls.__name__
        for st in opt.state.values():
            assert all(v.dtype == np.float32 for v in st.values() if isinstance(v, np.ndarray))


def test_step_updates_in_place_and_skips_params_without_grad():
    a = tr.nn.Parameter(tr.ones(2))
    b = tr.nn.Parameter(tr.ones(2))
    data = a.data
    opt = optim.SGD([a, b], lr=0.5)
    a.grad = tr.tensor([1.0, 2.0])
    opt.step()
    assert a.data is data
    np.testing.assert_array_equal(a.data, [0.5, 0.0])
    np.testing.assert_array_equal(b.data, [1.0, 1.0])
    assert b not in opt.state or not opt.state[b]


def test_maximize_flips_the_gradient():
    a = tr.nn.Parameter(tr.zeros(1))
    opt = optim.SGD([a], lr=1.0, maximize=True)
    a.grad = tr.tensor([2.0])
    opt.step()
    assert a.item() == 2.0


def test_closure_is_called_with_grad_enabled():
    w = tr.nn.Parameter(tr.tensor([3.0]))
    opt = optim.SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with tr.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 9.0
    assert w.item() == pytest.approx(3.0 - 0.1 * 6.0)


def test_zero_grad():
    w = tr.nn.Parameter(tr.ones(2))
    opt = optim.Adam([w])
    w.grad = tr.tensor([1.0, 1.0])
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.data, [0.0, 0.0])
    opt.zero_grad()
    assert w.grad is None


def test_param_groups_override_defaults():
    a, b = tr.nn.Parameter(tr.ones(1)), tr.nn.Parameter(tr.ones(1))
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["momentum"] == 0.9
    a.grad, b.grad = tr.tensor([1.0]), tr.tensor([1.0])
    opt.step()
    assert a.item() == pytest.approx(0.9) and b.item() == pytest.approx(0.5)
    c = tr.nn.Parameter(tr.ones(1))
    opt.add_param_group({"params": [c], "lr": 1.0})
    assert len(opt.param_groups) == 3
    assert "SGD (" in repr(opt) and "Parameter Group 2" in repr(opt)


def test_model_training_reduces_loss():
    tr.manual_seed(0)
    model = tr.nn.Sequential(tr.nn.Linear(3, 8), tr.nn.Linear(8, 1))
    x = tr.randn(32, 3)
    y = x.sum(1, keepdim=True) * 0.5
    for cls in (optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad):
        tr.manual_seed(1)
        model = tr.nn.Sequential(tr.nn.Linear(3, 8), tr.nn.Linear(8, 1))
        opt = cls(model.parameters(), lr=0.05)
        first = None
        for _ in range(60):
            opt.zero_grad()
            loss = tr.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            first = loss.item() if first is None else first
        assert loss.item() < 0.2 * first, cls.__name__


# ---- errors ----


def test_optimizer_given_no_parameters():
    with pytest.raises(ValueError, match=r"SGD: optimizer got an empty parameter list"):
        optim.SGD([], lr=0.1)
    model = tr.nn.Sequential()
    with pytest.raises(ValueError, match=r"Adam: optimizer got an empty parameter list"):
        optim.Adam(model.parameters())
    with pytest.raises(
        ValueError,
        match=r"SGD: optimizer got an empty parameter list in a "
        r"parameter group",
    ):
        optim.SGD([{"params": []}], lr=0.1)


def test_optimizer_bad_params():
    w = tr.nn.Parameter(tr.ones(2))
    with pytest.raises(
        TypeError,
        match=r"SGD: params should be an iterable of Tensors or dicts, "
        r"but got a Tensor; wrap it in a list",
    ):
        optim.SGD(w, lr=0.1)
    with pytest.raises(TypeError, match=r"SGD: params should be an iterable .* got int"):
        optim.SGD(3, lr=0.1)
    with pytest.raises(TypeError, match=r"SGD: can only optimize Tensors, got ndarray"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match=r"SGD: can't optimize a non-leaf Tensor \(shape \(2,\)\)"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(
        TypeError, match=r"SGD: can only optimize floating tensors, got dtype int64"
    ):
        optim.SGD([tr.tensor([1, 2])], lr=0.1)
    with pytest.raises(
        ValueError,
        match=r"SGD: a parameter group contains the same parameter "
        r"twice",
    ):
        optim.SGD([w, w], lr=0.1)
    with pytest.raises(
        ValueError,
        match=r"SGD: some parameters appear in more than one "
        r"parameter group",
    ):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(ValueError, match=r"SGD: a parameter group needs a 'params' entry"):
        optim.SGD([{"lr": 0.1}])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: optim.SGD(p, lr=-1), r"SGD: invalid learning rate -1; expected a number >= 0"),
        (lambda p: optim.SGD(p, momentum=-0.5), r"SGD: invalid momentum -0.5"),
        (lambda p: optim.SGD(p, weight_decay=-1), r"SGD: invalid weight_decay -1"),
        (
            lambda p: optim.SGD(p, nesterov=True),
            r"SGD: Nesterov momentum requires a momentum "
            r"and zero dampening",
        ),
        (
            lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True),
            r"SGD: Nesterov momentum requires",
        ),
        (
            lambda p: optim.Adam(p, betas=(1.0, 0.9)),
            r"Adam: invalid beta parameter at index 0 "
            r"1.0; expected a number in \[0.0, 1.0\)",
        ),
        (lambda p: optim.AdamW(p, betas=(0.9, -0.1)), r"AdamW: invalid beta parameter at index 1"),
        (lambda p: optim.Adam(p, betas=(0.9,)), r"Adam: betas must be a pair"),
        (lambda p: optim.Adam(p, eps=-1e-8), r"Adam: invalid epsilon value"),
        (lambda p: optim.Adam(p, lr="fast"), r"Adam: invalid learning rate 'fast'"),
        (lambda p: optim.RMSprop(p, alpha=-0.1), r"RMSprop: invalid alpha value -0.1"),
        (lambda p: optim.RMSprop(p, momentum=-1), r"RMSprop: invalid momentum value -1"),
        (lambda p: optim.Adagrad(p, lr_decay=-1), r"Adagrad: invalid lr_decay value -1"),
        (
            lambda p: optim.Adagrad(p, initial_accumulator_value=-1),
            r"Adagrad: invalid initial_accumulator_value -1",
        ),
        (lambda p: optim.Adagrad(p, lr=float("nan")), r"Adagrad: invalid learning rate nan"),
    ],
)
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make([tr.nn.Parameter(tr.ones(1))])


# ---- state dicts ----


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_state_dict_resume_is_bit_exact(case):
    cls, _, kwargs = case
    p0, grads = _problem(seed=2)
    full, _ = _run_ours(cls, kwargs, p0, grads)
    half, opt = _run_ours(cls, kwargs, p0, grads[:2])
    sd = opt.state_dict()
    params = [tr.nn.Parameter(tr.tensor(p)) for p in half]
    fresh = cls(params, **kwargs)
    fresh.load_state_dict(sd)
    for gs in grads[2:]:
        for p, g in zip(params, gs, strict=True):
            p.grad = tr.tensor(g)
        fresh.step()
    for a, b in zip(full, params, strict=True):
        np.testing.assert_array_equal(a, b.data)


def test_state_dict_layout_and_copies():
    a, b = tr.nn.Parameter(tr.ones(2)), tr.nn.Parameter(tr.ones(3))
    opt = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.1}])
    a.grad = tr.ones(2)
    opt.step()
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.1 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert list(sd["state"]) == [0] and sd["state"][0]["step"] == 1
    sd["state"][0]["exp_avg"][...] = 99.0
    assert opt.state[a]["exp_avg"][0] != 99.0  # a snapshot, not a view


def test_load_state_dict_casts_to_parameter_dtype():
    p64 = tr.nn.Parameter(tr.ones(2, dtype=tr.float64))
    opt64 = optim.SGD([p64], lr=0.1, momentum=0.9)
    p64.grad = tr.tensor([0.1, 0.2], dtype=tr.float64)
    opt64.step()
    p32 = tr.nn.Parameter(tr.ones(2))
    opt32 = optim.SGD([p32], lr=0.1, momentum=0.9)
    opt32.load_state_dict(opt64.state_dict())
    assert opt32.state[p32]["momentum_buffer"].dtype == np.float32


def test_load_state_dict_errors_leave_optimizer_untouched():
    a, b = tr.nn.Parameter(tr.ones(2)), tr.nn.Parameter(tr.ones(3))
    opt = optim.Adam([a, b], lr=0.01)
    a.grad, b.grad = tr.ones(2), tr.ones(3)
    opt.step()
    good = opt.state_dict()
    before = opt.state_dict()

    def unchanged():
        now = opt.state_dict()
        assert now["param_groups"] == before["param_groups"]
        for i in before["state"]:
            for k, v in before["state"][i].items():
                np.testing.assert_array_equal(now["state"][i][k], v)

    def broken(edit):
        sd = {
            "state": {i: dict(s) for i, s in good["state"].items()},
            "param_groups": [dict(g) for g in good["param_groups"]],
        }
        edit(sd)
        return sd

    cases = [
        (
            lambda sd: sd["state"][1].update(exp_avg=np.zeros(4)),
            r"Adam.load_state_dict: state 'exp_avg' of parameter 1 has shape \(4,\), the parameter "
            r"has shape \(3,\)",
        ),
        (
            lambda sd: sd["state"].update({5: {"step": 1}}),
            r"Adam.load_state_dict: state for parameter 5, but the parameter groups hold indices "
            r"\[0, 1\]",
        ),
        (
            lambda sd: sd["state"][0].update(momentum_buffer=np.zeros(2)),
            r"Adam.load_state_dict: state for parameter 0 has entries \['momentum_buffer'\]; Adam "
            r"keeps \['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'step'\]",
        ),
        (
            lambda sd: sd["param_groups"][0].update(params=[0]),
            r"Adam.load_state_dict: parameter group 0 has 1 parameter\(s\) in the state dict and 2 "
            r"in the optimizer",
        ),
        (
            lambda sd: sd["param_groups"].append({"params": []}),
            r"Adam.load_state_dict: loaded state dict has 2 parameter group\(s\), the optimizer "
            r"has 1",
        ),
        (
            lambda sd: sd["param_groups"][0].update(momentum=0.9),
            r"Adam.load_state_dict: parameter group 0 has hyperparameters \['momentum'\] that Adam "
            r"does not use",
        ),
        (
            lambda sd: sd["state"][0].update(step="x"),
            r"Adam.load_state_dict: state 'step' of parameter 0 must be a number",
        ),
        (
            lambda sd: sd.pop("state"),
            r"Adam.load_state_dict: expected a dict with keys 'state' and 'param_groups', got "
            r"\['param_groups'\]",
        ),
    ]
    for edit, message in cases:
        with pytest.raises(ValueError, match=message):
            opt.load_state_dict(broken(edit))
        unchanged()
    sgd = optim.SGD([a, b], lr=0.1, momentum=0.9)
    with pytest.raises(
        ValueError,
        match=r"SGD.load_state_dict: parameter group 0 has "
        r"hyperparameters \['amsgrad', 'betas', 'eps'\] that SGD does not use",
    ):
        sgd.load_state_dict(good)


# ---- learning-rate schedulers ----


def _lrs(make, n=12, lr=0.5):
    opt = optim.SGD([tr.nn.Parameter(tr.zeros(1))], lr=lr)
    sched = make(opt)
    out = []
    for _ in range(n):
        opt.step()
        out.append(sched.get_last_lr()[0])
        assert opt.param_groups[0]["lr"] == out[-1]
        sched.step()
    return out, sched, opt


def test_step_lr():
    lrs, _, _ = _lrs(lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.1))
    expected = [0.5 * 0.1 ** (t // 3) for t in range(12)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


def test_exponential_lr():
    lrs, _, _ = _lrs(lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9))
    np.testing.assert_allclose(lrs, [0.5 * 0.9**t for t in range(12)], rtol=1e-12)


def test_cosine_annealing_lr_closed_form_and_restart():
    T, eta = 5, 0.01
    lrs, _, _ = _lrs(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=T, eta_min=eta), n=16)
    closed = [eta + (0.5 - eta) * (1 + math.cos(math.pi * t / T)) / 2 for t in range(16)]
    np.testing.assert_allclose(lrs, closed, rtol=1e-10, atol=1e-15)
    assert lrs[5] == pytest.approx(eta) and lrs[10] == pytest.approx(0.5)


def test_schedulers_match_torch():
    torch = pytest.importorskip("torch")
    makers = [
        ("StepLR", {"step_size": 4, "gamma": 0.3}),
        ("ExponentialLR", {"gamma": 0.8}),
        ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.001}),
    ]
    for name, kw in makers:
        ours, _, _ = _lrs(lambda o, name=name, kw=kw: getattr(lr_scheduler, name)(o, **kw), n=20)
        topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
        tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
        ref = []
        for _ in range(20):
            topt.step()
            ref.append(tsched.get_last_lr()[0])
            tsched.step()
        np.testing.assert_allclose(ours, ref, rtol=1e-13, err_msg=name)


def test_scheduler_state_dict_round_trip_and_resume():
    _, sched, opt = _lrs(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10), n=4)
    sd = sched.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 4
    opt2 = optim.SGD([tr.nn.Parameter(tr.zeros(1))], lr=0.5)
    opt2.load_state_dict(opt.state_dict())
    sched2 = lr_scheduler.CosineAnnealingLR(opt2, T_max=10)
    sched2.load_state_dict(sd)
    for _ in range(3):
        sched.step()
        sched2.step()
        assert sched.get_last_lr() == sched2.get_last_lr()
    with pytest.raises(
        ValueError,
        match=r"StepLR.load_state_dict: unexpected key\(s\) "
        r"\['T_max', 'eta_min'\]",
    ):
        lr_scheduler.StepLR(opt2, step_size=2).load_state_dict(sd)


def test_scheduler_errors():
    opt = optim.SGD([tr.nn.Parameter(tr.zeros(1))], lr=0.5)
    with pytest.raises(TypeError, match=r"StepLR: expected an Optimizer, got list"):
        lr_scheduler.StepLR([], step_size=2)
    with pytest.raises(ValueError, match=r"StepLR: step_size must be a positive int, got 0"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(
        ValueError,
        match=r"CosineAnnealingLR: T_max must be a positive int, "
        r"got -3",
    ):
        lr_scheduler.CosineAnnealingLR(opt, T_max=-3)
    with pytest.raises(
        KeyError,
        match=r"ExponentialLR: param 'initial_lr' is not specified in "
        r"param_groups\[0\] when resuming a schedule with last_epoch=3",
    ):
        lr_scheduler.ExponentialLR(opt, gamma=0.5, last_epoch=3)


# ---- gradient clipping ----


def _with_grads(*grads):
    params = []
    for g in grads:
        p = tr.nn.Parameter(tr.zeros(*np.shape(g), dtype=tr.float64))
        p.grad = tr.tensor(np.array(g, dtype=np.float64))
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, float("inf")])
def test_clip_grad_norm(norm_type):
    rng = np.random.default_rng(0)
    gs = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    params = _with_grads(*gs)
    flat = np.concatenate([g.ravel() for g in gs])
    expected = np.linalg.norm(flat, ord=norm_type)
    total = tr.nn.utils.clip_grad_norm_(params, max_norm=0.5, norm_type=norm_type)
    assert isinstance(total, tr.Tensor) and total.shape == ()
    assert total.item() == pytest.approx(expected, rel=1e-12)
    coef = 0.5 / (expected + 1e-6)
    for p, g in zip(params, gs, strict=True):
        np.testing.assert_allclose(p.grad.data, g * coef, rtol=1e-12)
    new = np.concatenate([p.grad.data.ravel() for p in params])
    assert np.linalg.norm(new, ord=norm_type) <= 0.5


def test_clip_grad_norm_leaves_small_grads_and_skips_missing():
    params = _with_grads([0.3, 0.4])
    params.append(tr.nn.Parameter(tr.zeros(2)))  # no grad
    total = tr.nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert total.item() == pytest.approx(0.5)
    np.testing.assert_array_equal(params[0].grad.data, [0.3, 0.4])
    single = _with_grads([3.0, 4.0])[0]
    assert tr.nn.utils.clip_grad_norm_(single, 1.0).item() == pytest.approx(5.0)
    assert tr.nn.utils.clip_grad_norm_([tr.nn.Parameter(tr.zeros(2))], 1.0).item() == 0.0


def test_clip_grad_norm_non_finite():
    params = _with_grads([1.0, float("inf")], [2.0])
    with pytest.raises(
        RuntimeError,
        match=r"clip_grad_norm_: the total norm of order 2.0 of the "
        r"gradients is inf, so they cannot be clipped",
    ):
        tr.nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(params[1].grad.data, [2.0])  # untouched
    nan = _with_grads([1.0, float("nan")])
    total = tr.nn.utils.clip_grad_norm_(nan, 1.0)
    assert math.isnan(total.item()) and np.isnan(nan[0].grad.data).all()


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    gs = [rng.standard_normal((4, 4)) * 3, rng.standard_normal(7)]
    for norm_type in (2.0, 1.0, float("inf")):
        params = _with_grads(*gs)
        tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in gs]
        for p, g in zip(tparams, gs, strict=True):
            p.grad = torch.tensor(g)
        ours = tr.nn.utils.clip_grad_norm_(params, 1.5, norm_type)
        ref = torch.nn.utils.clip_grad_norm_(tparams, 1.5, norm_type)
        assert ours.item() == pytest.approx(ref.item(), rel=1e-13)
        for p, t in zip(params, tparams, strict=True):
            np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-13)


def test_clip_grad_value():
    params = _with_grads([[-3.0, 0.2], [0.7, 5.0]])
    assert tr.nn.utils.clip_grad_value_(params, 0.5) is None
    np.testing.assert_array_equal(params[0].grad.data, [[-0.5, 0.2], [0.5, 0.5]])


def test_clip_errors():
    with pytest.raises(
        ValueError,
        match=r"clip_grad_value_: clip_value must be non-negative, "
        r"got -1",
    ):
        tr.nn.utils.clip_grad_value_(_with_grads([1.0]), -1)
    with pytest.raises(ValueError, match=r"clip_grad_norm_: norm_type must be positive, got 0"):
        tr.nn.utils.clip_grad_norm_(_with_grads([1.0]), 1.0, norm_type=0)
    with pytest.raises(
        TypeError,
        match=r"clip_grad_norm_: expected a tensor or an iterable of "
        r"tensors, got float",
    ):
        tr.nn.utils.clip_grad_norm_(1.0, 1.0)
    with pytest.raises(TypeError, match=r"clip_grad_value_: expected tensors, got str"):
        tr.nn.utils.clip_grad_value_(["w"], 1.0)

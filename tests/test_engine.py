"""The graph engine: graph shapes, depth, retain_graph, grad modes, hooks, scopes, anomaly mode,
multi-output ops, user-defined Functions, and Value/Tensor agreement."""

from __future__ import annotations

import contextlib
import sys

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn.engine import STATE, Function
from tinyrnn.ops import fused


@contextlib.contextmanager
def recursion_limit(n: int):
    """Lower the recursion limit: an engine that recursed once per graph level would fail."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(n)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


# ---- graph shapes ----


def test_fan_out_sums_both_paths(rng):
    x = tr.tensor(rng.standard_normal(3), requires_grad=True)
    y = x.tanh()
    (y * y + y.exp()).sum().backward()  # y feeds two consumers
    t = np.tanh(x.data)
    np.testing.assert_allclose(x.grad.data, (2 * t + np.exp(t)) * (1 - t**2))


def test_diamond_tensor_and_value():
    a = tr.tensor(3.0, requires_grad=True)
    b = a + a
    c = b + b
    c.backward()
    assert a.grad.item() == 4.0
    v = tr.Value(3.0)
    w = v + v
    (w + w).backward()
    assert v.grad == 4.0


def test_diamond_with_nonlinear_reuse(rng):
    a = tr.tensor(rng.standard_normal((2, 2)), requires_grad=True)
    b = a * a
    c = b * b + b  # b reused by a non-leaf consumer: a**4 + a**2
    w = rng.standard_normal((2, 2))
    c.backward(tr.tensor(w))
    np.testing.assert_allclose(a.grad.data, w * (4 * a.data**3 + 2 * a.data))


H0 = np.array([0.3, -0.2, 0.5])


def _unroll(w, h, n):
    out = []
    for _ in range(n):
        h = (w @ h).tanh()  # shared weights, as in an unrolled recurrent net
        out.append(h)
    return out


def test_one_leaf_used_in_many_places(rng):
    w = tr.tensor(rng.standard_normal((3, 3)) * 0.5, requires_grad=True)
    assert tr.autograd.gradcheck(lambda w_: tr.stack(_unroll(w_, tr.tensor(H0), 20)), [w])


def _leaf(t):
    return tr.tensor(t.data.copy(), requires_grad=True)


def test_shared_weight_gradient_is_sum_over_steps(rng):
    w = tr.tensor(rng.standard_normal((3, 3)) * 0.5, requires_grad=True)
    total = sum(tr.stack(_unroll(w, tr.tensor(H0), 5)).sum(1)).sum()
    total.backward()
    got = w.grad.data.copy()
    # the same gradient, one step at a time, with every other step's weight held constant
    expected = np.zeros((3, 3))
    for k in range(5):
        ws = [tr.tensor(w.data, requires_grad=(j == k)) for j in range(5)]
        h, acc = tr.tensor(H0), tr.tensor(0.0, dtype=tr.float64)
        for j in range(5):
            h = (ws[j] @ h).tanh()
            acc = acc + h.sum()
        acc.backward()
        expected += ws[k].grad.data
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("n", [100_000])
def test_tensor_chain_of_100k_ops(n):
    x = tr.tensor(0.5, dtype=tr.float64, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * 1.00001  # 100,000 nodes deep
    with recursion_limit(200):
        y.backward()
    assert x.grad.item() == pytest.approx(1.00001**n, rel=1e-9)


@pytest.mark.parametrize("n", [100_000])
def test_value_chain_of_100k_ops(n):
    x = tr.Value(0.5)
    y = x
    for _ in range(n):
        y = y * 1.00001
    with recursion_limit(200):
        y.backward()
    assert x.grad == pytest.approx(1.00001**n, rel=1e-9)


def test_deep_graph_with_branches_does_not_recurse():
    a = tr.tensor(1.0, dtype=tr.float64, requires_grad=True)
    y = a
    for _ in range(5_000):
        y = (y + a) * 0.5  # every level also reuses the leaf
    with recursion_limit(200):
        y.backward()
    assert a.grad.item() == pytest.approx(1.0)


# ---- retain_graph and freeing ----


def test_retain_graph_allows_a_second_backward(rng):
    x = tr.tensor(rng.standard_normal(4), requires_grad=True)
    y = (x.tanh() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.data.copy()
    y.backward()  # accumulates
    np.testing.assert_allclose(x.grad.data, 2 * first)


def test_second_backward_without_retain_graph_raises(rng):
    x = tr.tensor(rng.standard_normal(4), requires_grad=True)
    y = (x.tanh() * x).sum()
    y.backward()
    grad = x.grad.data.copy()
    expected = r"second time \(op Sum, scope \(none\)\).*retain_graph=True"
    with pytest.raises(RuntimeError, match=expected):
        y.backward()
    np.testing.assert_array_equal(x.grad.data, grad)  # untouched by the failed sweep


def test_backward_frees_saved_arrays_unless_retained(rng):
    x = tr.tensor(rng.standard_normal(3), requires_grad=True)
    y = x * x
    y.sum().backward(retain_graph=True)
    assert y.grad_fn.saved_tensors is not None and not y.grad_fn.freed
    y.sum().backward()
    assert y.grad_fn.saved_tensors is None and y.grad_fn.freed


def test_value_second_backward_raises():
    a = tr.Value(2.0)
    b = a * a
    b.backward()
    with pytest.raises(RuntimeError, match="second time"):
        b.backward()


# ---- grad mode ----


def test_no_grad_and_enable_grad_context_managers(rng):
    x = tr.tensor(rng.standard_normal(2), requires_grad=True)
    with tr.no_grad():
        assert not tr.is_grad_enabled()
        y = x * 2
        with tr.enable_grad():
            assert tr.is_grad_enabled()
            z = x * 2
        assert not tr.is_grad_enabled()
    assert tr.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert z.requires_grad and z.grad_fn is not None


def test_grad_modes_as_decorators(rng):
    x = tr.tensor(rng.standard_normal(2), requires_grad=True)

    @tr.no_grad()
    def frozen(t):
        return t * 3

    @tr.enable_grad()
    def tracked(t):
        return t * 3

    assert frozen.__name__ == "frozen"
    assert not frozen(x).requires_grad
    with tr.no_grad():
        assert tracked(x).requires_grad
    assert tr.is_grad_enabled()


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(ZeroDivisionError), tr.no_grad():
        raise ZeroDivisionError
    assert tr.is_grad_enabled()


def test_inputs_without_requires_grad_get_no_gradient(rng):
    x = tr.tensor(rng.standard_normal(3), requires_grad=True)
    c = tr.tensor(rng.standard_normal(3))
    d = x.detach()
    (x * c + d).sum().backward()
    assert c.grad is None and d.grad is None
    assert not d.requires_grad and d.data is x.data


def test_gradients_accumulate_across_backward_calls(rng):
    x = tr.tensor(rng.standard_normal(3), requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, 5.0)


# ---- hooks and retain_grad ----


def test_leaf_hook_sees_the_total_gradient_and_can_replace_it():
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    handle = x.register_hook(lambda g: g * 10)
    (x * 2 + x * 3).sum().backward()
    assert seen == [[5.0, 5.0]]  # once, after both paths were summed
    assert x.grad.tolist() == [50.0, 50.0]
    handle.remove()
    handle.remove()  # removing twice is harmless
    x.grad = None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_nonleaf_hook_changes_the_gradient_flowing_on():
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g * 0.5)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.data, 0.5 * 2 * y.data * 3)


def test_hook_on_one_output_of_a_multi_output_op(rng):
    gates = tr.tensor(rng.standard_normal((2, 8)), requires_grad=True)
    c0 = tr.tensor(rng.standard_normal((2, 2)))
    h, c = fused.LSTMCellStep.apply(gates, c0)
    got = []
    c.register_hook(lambda g: got.append(g.data.copy()))
    (h.sum() + c.sum()).backward()
    np.testing.assert_array_equal(got[0], np.ones((2, 2)))


def test_hook_handle_remove_on_nonleaf():
    x = tr.tensor([1.0], requires_grad=True)
    y = x * 2
    handle = y.register_hook(lambda g: g * 100)
    handle.remove()
    y.sum().backward()
    assert x.grad.tolist() == [2.0]


def test_retain_grad_keeps_nonleaf_gradients():
    x = tr.tensor([1.0, -1.0], requires_grad=True)
    y = x * 2
    z = y * y
    y.retain_grad()
    z.sum().backward()
    assert y.grad.tolist() == [4.0, -4.0]
    assert z.grad is None  # not retained
    x.retain_grad()  # a leaf keeps its gradient anyway
    assert x.grad.tolist() == [8.0, -8.0]


def test_retain_grad_twice_keeps_one_copy():
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.retain_grad()
    (y * y).sum().backward()
    assert y.grad.tolist() == [4.0, 8.0]


def test_hook_on_root():
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g * 3)
    y.backward(tr.tensor([1.0, 1.0]))
    assert x.grad.tolist() == [6.0, 6.0]


def test_keep_grads_records_every_op_output_gradient():
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    z = y.sum()
    STATE.keep_grads = True
    try:
        z.backward()
    finally:
        STATE.keep_grads = False
    assert [g.tolist() for g in y.grad_fn.out_grads] == [[1.0, 1.0]]
    assert z.grad_fn.out_grads[0].tolist() == 1.0


# ---- scopes ----


def test_scope_stamps_every_node():
    x = tr.tensor([1.0], requires_grad=True)
    with tr.scope("rnn"):
        with tr.scope("t0"):
            a = x * 2
            assert tr.engine.current_scope() == ("rnn", "t0")
        b = a + 1
    c = b.tanh()
    assert a.grad_fn.scope == ("rnn", "t0")
    assert b.grad_fn.scope == ("rnn",)
    assert c.grad_fn.scope == ()
    assert tr.engine.current_scope() == ()


def test_scope_applies_to_values_too():
    v = tr.Value(1.0)
    with tr.scope("neuron"):
        w = v * 2
    assert w.grad_fn.scope == ("neuron",)


@pytest.mark.parametrize("bad", ["", None, 3])
def test_scope_needs_a_name(bad):
    with pytest.raises(TypeError, match="scope: expected a non-empty string name"):
        tr.scope(bad)


# ---- anomaly detection ----


def test_detect_anomaly_names_op_scope_and_shapes_in_forward():
    x = tr.tensor([[1.0, -1.0, 2.0]], requires_grad=True)
    with tr.autograd.detect_anomaly(), tr.scope("layer"), tr.scope("t3"):
        with pytest.raises(RuntimeError) as e:
            x.log()
    msg = str(e.value)
    assert "Log.forward" in msg and "layer/t3" in msg and "(1, 3)" in msg
    assert not STATE.anomaly
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.log().data).any()  # no error outside the context


def test_detect_anomaly_names_op_scope_and_shapes_in_backward():
    x = tr.tensor([0.0, 4.0], requires_grad=True)
    with tr.scope("enc"):
        y = x.sqrt()  # finite forward, infinite gradient at 0
    with tr.autograd.detect_anomaly():
        with pytest.raises(RuntimeError) as e:
            y.sum().backward()
    msg = str(e.value)
    assert "Sqrt.backward" in msg and "scope enc" in msg and "(2,)" in msg
    assert "non-finite gradient for input 0" in msg


def test_detect_anomaly_on_values():
    with tr.autograd.detect_anomaly(), pytest.raises(RuntimeError, match="SExp.forward"):
        tr.Value(1000.0).exp()


def test_without_anomaly_mode_nan_passes_silently():
    x = tr.tensor([0.0, 4.0], requires_grad=True)
    with np.errstate(divide="ignore"):
        x.sqrt().sum().backward()
    assert np.isinf(x.grad.data[0])


# ---- multi-output ops and user Functions ----


def test_multi_output_op_with_only_one_output_used(rng):
    gates = tr.tensor(rng.standard_normal((2, 8)), requires_grad=True)
    c0 = tr.tensor(rng.standard_normal((2, 2)), requires_grad=True)
    h, _ = fused.LSTMCellStep.apply(gates, c0)
    w = rng.standard_normal((2, 2))
    (h * tr.tensor(w)).sum().backward()
    assert gates.grad is not None and c0.grad is not None
    only_h = lambda g, c: fused.LSTMCellStep.apply(g, c)[0]  # noqa: E731
    assert tr.autograd.gradcheck(only_h, [_leaf(gates), _leaf(c0)])


class _SplitScale(Function):
    """Two outputs: (2x, 3x)."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x, 3 * x

    @staticmethod
    def backward(ctx, g1, g2):
        return 2 * g1 + 3 * g2


def test_user_function_with_two_outputs_only_second_used():
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    _, b = _SplitScale.apply(x)
    b.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]  # the unused output got a zero gradient


class _ScaleBy(Function):
    """y = x * k for a constant k passed positionally, with an option passed by keyword."""

    @staticmethod
    def forward(ctx, x, k, *, shift=0.0):
        ctx.k = k
        return x * k + shift

    @staticmethod
    def backward(ctx, g):
        assert ctx.needs_input_grad == (True, False)
        return g * ctx.k, None


def test_user_function_with_constant_and_option():
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    y = _ScaleBy.apply(x, 5.0, shift=1.0)
    assert y.tolist() == [6.0, 11.0]
    y.sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]


def test_user_function_on_values():
    a = tr.Value(2.0)
    y = _ScaleBy.apply(a, 4.0)
    assert isinstance(y, tr.Value) and y.data == 8.0
    y.backward()
    assert a.grad == 4.0


def test_needs_input_grad_reflects_requires_grad():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b):
            seen.append(ctx.needs_input_grad)
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g, g

    a = tr.tensor([1.0], requires_grad=True)
    b = tr.tensor([1.0])
    Probe.apply(a, b)
    Probe.apply(b, a)
    with tr.no_grad():
        Probe.apply(a, b)
    assert seen == [(True, False), (False, True), (False, False)]


# ---- Value and Tensor agree ----


def _expr(a, b, c):
    d = a * b + c / b - (a - c) ** 2
    e = d.tanh() * a.sigmoid() + (b * 0.3).exp() + (a * a + 1.0).log()
    return (e * c).relu() + 2.0 ** (e * 0.1) - e * 0.5


def test_value_and_tensor_give_the_same_gradients():
    vals = [0.7, -1.3, 0.4]
    vs = [tr.Value(v) for v in vals]
    out_v = _expr(*vs)
    out_v.backward()
    ts = [tr.tensor(v, dtype=tr.float64, requires_grad=True) for v in vals]
    out_t = _expr(*ts)
    out_t.backward()
    assert out_v.data == pytest.approx(out_t.item(), rel=1e-12)
    for v, t in zip(vs, ts, strict=True):
        assert v.grad == pytest.approx(t.grad.item(), rel=1e-10)


def test_value_gradients_match_finite_differences():
    vals = [0.7, -1.3, 0.4]
    vs = [tr.Value(v) for v in vals]
    _expr(*vs).backward()
    eps = 1e-6
    for i in range(3):
        up = list(vals)
        up[i] += eps
        down = list(vals)
        down[i] -= eps
        numeric = (_expr(*map(tr.Value, up)).data - _expr(*map(tr.Value, down)).data) / (2 * eps)
        assert vs[i].grad == pytest.approx(numeric, rel=1e-5, abs=1e-7)

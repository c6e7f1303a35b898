"""Value: the scalar front end on the same engine; every op against finite differences and
against the Tensor op of the same name."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinyrnn as tr

# name, Value function, Tensor function (the same expression), points to check
UNARY = [
    ("neg", lambda a: -a, lambda t: -t, [-1.3, 0.4]),
    ("exp", lambda a: a.exp(), lambda t: t.exp(), [-2.0, 0.5, 3.0]),
    ("log", lambda a: a.log(), lambda t: t.log(), [0.3, 2.0]),
    ("tanh", lambda a: a.tanh(), lambda t: t.tanh(), [-2.0, 0.1, 4.0]),
    ("sigmoid", lambda a: a.sigmoid(), lambda t: t.sigmoid(), [-30.0, -0.5, 0.5, 30.0]),
    ("relu", lambda a: a.relu(), lambda t: t.relu(), [-0.7, 0.7]),
    ("pow", lambda a: a**3, lambda t: t**3, [-1.5, 0.6]),
    ("pow_frac", lambda a: a**0.5, lambda t: t**0.5, [0.4, 2.0]),
    ("rpow", lambda a: 2.0**a, lambda t: 2.0**t, [-1.0, 1.5]),
    ("add_num", lambda a: a + 2, lambda t: t + 2, [0.5]),
    ("radd_num", lambda a: 2 + a, lambda t: 2 + t, [0.5]),
    ("sub_num", lambda a: a - 2, lambda t: t - 2, [0.5]),
    ("rsub_num", lambda a: 2 - a, lambda t: 2 - t, [0.5]),
    ("mul_num", lambda a: a * 3, lambda t: t * 3, [0.5]),
    ("rmul_num", lambda a: 3 * a, lambda t: 3 * t, [0.5]),
    ("div_num", lambda a: a / 4, lambda t: t / 4, [0.5]),
    ("rdiv_num", lambda a: 4 / a, lambda t: 4 / t, [0.5, -2.0]),
]
BINARY = [
    ("add", lambda a, b: a + b, [(0.3, -1.2)]),
    ("sub", lambda a, b: a - b, [(0.3, -1.2)]),
    ("mul", lambda a, b: a * b, [(0.3, -1.2)]),
    ("div", lambda a, b: a / b, [(0.3, -1.2)]),
    ("pow", lambda a, b: a**b, [(1.7, -0.4), (0.5, 2.5)]),
]


def _numeric(f, xs, i, eps=1e-6):
    up, down = list(xs), list(xs)
    up[i] += eps
    down[i] -= eps
    return (f(*map(tr.Value, up)).data - f(*map(tr.Value, down)).data) / (2 * eps)


@pytest.mark.parametrize(("name", "fv", "ft", "points"), UNARY, ids=[u[0] for u in UNARY])
def test_unary_ops_forward_and_gradient(name, fv, ft, points):
    for p in points:
        a = tr.Value(p)
        y = fv(a)
        y.backward()
        t = tr.tensor(p, dtype=tr.float64, requires_grad=True)
        yt = ft(t)
        yt.backward()
        assert isinstance(y, tr.Value)
        assert y.data == pytest.approx(yt.item(), rel=1e-12, abs=1e-300)
        assert a.grad == pytest.approx(t.grad.item(), rel=1e-12, abs=1e-300)
        assert a.grad == pytest.approx(_numeric(fv, [p], 0), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize(("name", "f", "points"), BINARY, ids=[b[0] for b in BINARY])
def test_binary_ops_forward_and_gradient(name, f, points):
    for xs in points:
        vs = [tr.Value(x) for x in xs]
        y = f(*vs)
        y.backward()
        ts = [tr.tensor(x, dtype=tr.float64, requires_grad=True) for x in xs]
        f(*ts).backward()
        assert y.data == pytest.approx(f(*xs), rel=1e-12)
        for i in range(2):
            assert vs[i].grad == pytest.approx(ts[i].grad.item(), rel=1e-12)
            assert vs[i].grad == pytest.approx(_numeric(f, xs, i), rel=1e-5, abs=1e-8)


def test_neuron_of_values():
    """A two-input neuron, as in the micrograd teaching example."""
    x1, x2 = tr.Value(2.0, label="x1"), tr.Value(0.0, label="x2")
    w1, w2 = tr.Value(-3.0, label="w1"), tr.Value(1.0, label="w2")
    b = tr.Value(6.8813735870195432, label="b")
    o = (x1 * w1 + x2 * w2 + b).tanh()
    o.backward()
    assert o.data == pytest.approx(math.sqrt(0.5), rel=1e-9)
    assert (x1.grad, w1.grad) == pytest.approx((-1.5, 1.0))
    assert (x2.grad, w2.grad) == pytest.approx((0.5, 0.0))
    assert x1.label == "x1" and x1.name == "x1"


def test_value_attributes_and_repr():
    a = tr.Value(3, label="a")
    assert a.data == 3.0 and isinstance(a.data, float) and a.grad == 0.0
    assert a.is_leaf and a.grad_fn is None and a.shape == ()
    b = a * a
    assert not b.is_leaf and b.grad_fn.name == "SMul" and b.label == ""
    b.label = "b"
    assert b.name == "b"
    assert repr(a) == "Value(data=3, grad=0, label='a')"
    assert tr.Value(a).data == 3.0


def test_gradients_accumulate_and_reuse_sums():
    a = tr.Value(1.5)
    y = a * a * a + a  # a used four times
    y.backward()
    assert a.grad == pytest.approx(3 * 1.5**2 + 1)


def test_relu_at_zero_and_sigmoid_extremes():
    z = tr.Value(0.0)
    z.relu().backward()
    assert z.grad == 0.0
    assert tr.Value(-800.0).sigmoid().data == 0.0
    assert tr.Value(800.0).sigmoid().data == 1.0
    assert tr.Value(-40.0).sigmoid().data == pytest.approx(math.exp(-40.0), rel=1e-12)


def test_exp_overflow_gives_inf():
    assert tr.Value(1000.0).exp().data == math.inf


def test_pow_with_zero_base():
    a = tr.Value(0.0)
    b = tr.Value(2.0)
    (a**b).backward()
    assert a.grad == 0.0 and b.grad == 0.0  # d/db 0**b = 0 (no log(0))


def test_values_and_tensors_cannot_mix():
    with pytest.raises(TypeError, match="Value \\*: expected a Value or a real number, got Tensor"):
        tr.Value(1.0) * tr.ones(1)


def test_values_on_the_same_graph_engine():
    a = tr.Value(0.5)
    with tr.no_grad():
        b = a * 2
    assert b.grad_fn is None and not b.requires_grad
    c = a.tanh()
    assert np.isclose(c.data, np.tanh(0.5))

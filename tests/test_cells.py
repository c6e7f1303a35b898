"""Recurrent cells: parameters and init as PyTorch's, fused equals op by op, gradients, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn import nn

CELLS = {
    "rnn_tanh": lambda i, h, **kw: nn.RNNCell(i, h, nonlinearity="tanh", **kw),
    "rnn_relu": lambda i, h, **kw: nn.RNNCell(i, h, nonlinearity="relu", **kw),
    "lstm": nn.LSTMCell,
    "gru": nn.GRUCell,
}
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def gradcheck_each(fn, tensors):
    """``tr.autograd.gradcheck`` of ``fn()`` with respect to each tensor in turn (random output
    weights, float64); ``fn`` reads the tensors from its closure."""
    for t in tensors:
        assert tr.autograd.gradcheck(lambda _: fn(), [t])


def random_state(kind, batch, hidden):
    shape = (batch, hidden) if batch else (hidden,)
    h = tr.randn(*shape, dtype=tr.float64, requires_grad=True)
    if kind == "lstm":
        return (h, tr.randn(*shape, dtype=tr.float64, requires_grad=True))
    return h


def as_tuple(s):
    return s if isinstance(s, tuple) else (s,)


@pytest.mark.parametrize("kind", CELLS)
def test_parameter_names_shapes_and_init(kind):
    tr.manual_seed(0)
    cell = CELLS[kind](5, 16)
    g = GATES[kind] * 16
    shapes = {n: p.shape for n, p in cell.named_parameters()}
    assert shapes == {
        "weight_ih": (g, 5),
        "weight_hh": (g, 16),
        "bias_ih": (g,),
        "bias_hh": (g,),
    }
    bound = 1 / math.sqrt(16)
    w = np.concatenate([p.data.ravel() for p in cell.parameters()])
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound
    # U(-bound, bound): mean 0 and variance bound^2 / 3, within 4 standard errors
    n = w.size
    assert abs(w.mean()) < 4 * bound / math.sqrt(3 * n)
    assert abs(w.var() - bound**2 / 3) < 4 * bound**2 * math.sqrt(4 / 45 / n)


@pytest.mark.parametrize("kind", CELLS)
def test_no_bias(kind):
    cell = CELLS[kind](3, 4, bias=False)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh"]
    assert cell.bias_ih is None
    assert as_tuple(cell(tr.ones(2, 3)))[0].shape == (2, 4)


def test_default_dtype_applies_to_new_cells():
    tr.set_default_dtype(tr.float64)
    try:
        cell = nn.GRUCell(2, 3)
    finally:
        tr.set_default_dtype(tr.float32)
    assert cell.weight_ih.dtype == np.float64
    assert cell.initial_state(2).dtype == np.float64


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_fused_equals_op_by_op(kind):
    tr.manual_seed(1)
    cell = CELLS[kind](3, 5).double()
    x = tr.randn(4, 3, dtype=tr.float64, requires_grad=True)
    state = random_state(kind, 4, 5)
    results = []
    for fused in (True, False):
        cell.fused = fused
        cell.zero_grad()
        x.grad = None
        for s in as_tuple(state):
            s.grad = None
        out = as_tuple(cell(x, state))
        weights = [np.random.default_rng(2).standard_normal(o.shape) for o in out]
        loss = sum(
            ((o * tr.tensor(w)).sum() for o, w in zip(out, weights, strict=True)), tr.tensor(0.0)
        )
        loss.backward()
        grads = [x.grad.data] + [s.grad.data for s in as_tuple(state)]
        grads += [p.grad.data for p in cell.parameters()]
        results.append(([o.data for o in out], grads))
    (out_f, grads_f), (out_o, grads_o) = results
    for a, b in zip(out_f + grads_f, out_o + grads_o, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "opbyop"])
@pytest.mark.parametrize("kind", CELLS)
def test_gradcheck_cell(kind, fused):
    tr.manual_seed(3)
    cell = CELLS[kind](3, 4, fused=fused).double()
    x = tr.randn(2, 3, dtype=tr.float64, requires_grad=True)
    state = random_state(kind, 2, 4)
    gradcheck_each(lambda: cell(x, state), [x, *as_tuple(state), *cell.parameters()])


def test_fused_cells_make_one_node_per_step():
    cell = nn.LSTMCell(3, 4)
    h, c = cell(tr.ones(2, 3))
    assert h.grad_fn is c.grad_fn and h.grad_fn.name == "LSTMCellStep"
    cell.fused = False
    h, c = cell(tr.ones(2, 3))
    assert h.grad_fn.name == "Mul" and c.grad_fn.name == "Add"
    gru = nn.GRUCell(3, 4)
    assert gru(tr.ones(2, 3)).grad_fn.name == "GRUCellStep"


@pytest.mark.parametrize("kind", CELLS)
def test_unbatched_equals_batch_of_one(kind):
    tr.manual_seed(4)
    cell = CELLS[kind](3, 4).double()
    x = tr.randn(3, dtype=tr.float64)
    state = random_state(kind, 0, 4)
    single = as_tuple(cell(x, state))
    batched = as_tuple(
        cell(
            x.reshape(1, 3),
            tuple(s.reshape(1, 4) for s in as_tuple(state))
            if kind == "lstm"
            else state.reshape(1, 4),
        )
    )
    for a, b in zip(single, batched, strict=True):
        assert a.shape == (4,)
        np.testing.assert_array_equal(a.data, b.data[0])
    zero_state = as_tuple(cell(x))
    assert all(s.shape == (4,) for s in zero_state)


@pytest.mark.parametrize("kind", CELLS)
def test_state_none_means_zeros(kind):
    tr.manual_seed(5)
    cell = CELLS[kind](3, 4)
    x = tr.randn(2, 3)
    zeros = cell.initial_state(2)
    assert all(np.all(z.data == 0) and z.shape == (2, 4) for z in as_tuple(zeros))
    for a, b in zip(as_tuple(cell(x)), as_tuple(cell(x, zeros)), strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_rnn_cell_relu_matches_formula():
    tr.manual_seed(6)
    cell = nn.RNNCell(3, 4, nonlinearity="relu").double()
    x, h = tr.randn(2, 3, dtype=tr.float64), tr.randn(2, 4, dtype=tr.float64)
    w_ih, w_hh, b_ih, b_hh = (p.data for p in cell.parameters())
    want = np.maximum(x.data @ w_ih.T + b_ih + h.data @ w_hh.T + b_hh, 0)
    np.testing.assert_allclose(cell(x, h).data, want, rtol=1e-14)


def test_gru_cell_matches_formula():
    tr.manual_seed(7)
    cell = nn.GRUCell(3, 2).double()
    x, h = tr.randn(1, 3, dtype=tr.float64), tr.randn(1, 2, dtype=tr.float64)
    w_ih, w_hh, b_ih, b_hh = (p.data for p in cell.parameters())
    gi, gh = x.data @ w_ih.T + b_ih, h.data @ w_hh.T + b_hh
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    r, z = sig(gi[:, :2] + gh[:, :2]), sig(gi[:, 2:4] + gh[:, 2:4])
    n = np.tanh(gi[:, 4:] + r * gh[:, 4:])
    np.testing.assert_allclose(cell(x, h).data, (1 - z) * n + z * h.data, rtol=1e-14)


# ---- errors ----


def test_bad_constructor_arguments():
    with pytest.raises(
        ValueError, match="RNNCell: nonlinearity must be 'tanh' or 'relu', got 'gelu'"
    ):
        nn.RNNCell(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="LSTMCell: hidden_size must be a positive int, got 0"):
        nn.LSTMCell(3, 0)
    with pytest.raises(ValueError, match="GRUCell: input_size must be a positive int, got 2.5"):
        nn.GRUCell(2.5, 3)


@pytest.mark.parametrize("kind", CELLS)
def test_wrong_input_shape(kind):
    cell = CELLS[kind](3, 4)
    with pytest.raises(
        ValueError, match=r"expected input of shape \(batch, 3\) or \(3,\), got \(2, 5\)"
    ):
        cell(tr.ones(2, 5))
    with pytest.raises(ValueError, match=r"got \(1, 2, 3\)"):
        cell(tr.ones(1, 2, 3))
    with pytest.raises(TypeError, match="expected the input to be a Tensor, got list"):
        cell([1.0, 2.0, 3.0])


@pytest.mark.parametrize("kind", CELLS)
def test_wrong_state_shape(kind):
    cell = CELLS[kind](3, 4)
    bad = tr.zeros(2, 5)
    state = (bad, bad) if kind == "lstm" else bad
    with pytest.raises(
        ValueError,
        match=r"expected state of shape \(2, 4\) for input of shape \(2, 3\), got \(2, 5\)",
    ):
        cell(tr.ones(2, 3), state)


def test_lstm_state_must_be_a_pair():
    cell = nn.LSTMCell(3, 4)
    with pytest.raises(
        TypeError,
        match=r"LSTMCell: expected the state to be a tuple of 2 Tensors \(h, c\), got Tensor",
    ):
        cell(tr.ones(2, 3), tr.zeros(2, 4))
    with pytest.raises(TypeError, match="GRUCell: expected the state to be a Tensor, got tuple"):
        nn.GRUCell(3, 4)(tr.ones(2, 3), (tr.zeros(2, 4), tr.zeros(2, 4)))

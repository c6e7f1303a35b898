"""Memory of compiled cells: what the compiled loop keeps, frees and reuses, checked against
the unrolled graph (float64, plain-Python run of the generated code)."""

from __future__ import annotations

import cells_from_ops
import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn.compile import compile_cell, unroll

H, N_IN = 4, 3


@pytest.fixture
def python_mode(monkeypatch):
    monkeypatch.setenv("TINYRNN_KERNELS", "numpy")


def _param(rng, *shape):
    return tr.nn.Parameter(tr.tensor(rng.standard_normal(shape) * 0.5))


def LSTMFromOps(rng):
    return cells_from_ops.LSTMFromOps(rng, N_IN, H)


class SavedProjection(tr.nn.Module):
    """``p`` is computed before the loop (a matrix product reads it there too) and is a tanh
    output, which Tanh keeps for its own backward, as the product keeps its input: the loop's
    backward does not read ``p``, but its array must not be reused as a gradient buffer."""

    def __init__(self, rng):
        super().__init__()
        self.w, self.u, self.v = _param(rng, H, N_IN), _param(rng, H, H), _param(rng, H, H)

    def forward(self, x, h):
        p = (x @ self.w.T).tanh()
        return p + (h @ self.u.T).sigmoid() + p @ self.v.T


def _grads(cell, x, state, run, weights, retain=False, times=1):
    leaves = [x, *state, *cell.parameters()]
    for t in leaves:
        t.grad = None
    out, final = run(x, state)
    loss = (out * tr.tensor(weights[0])).sum() + (final[0] * tr.tensor(weights[1])).sum()
    for _ in range(times):
        loss.backward(retain_graph=retain)
    return out, [t.grad.data.copy() for t in leaves]


def _setup(rng, cell):
    x = tr.tensor(rng.standard_normal((5, 3, N_IN)), requires_grad=True)
    state = tuple(tr.tensor(rng.standard_normal((3, H)), requires_grad=True) for _ in range(2))
    weights = [rng.standard_normal((5, 3, H)), rng.standard_normal((3, H))]
    return x, state, weights


def test_projection_buffer_reused_for_its_gradient(python_mode):
    rng = np.random.default_rng(0)
    cell = LSTMFromOps(rng)
    x, state, weights = _setup(rng, cell)
    fast = compile_cell(cell)
    out, got = _grads(cell, x, state, lambda x, s: fast(x, s), weights)
    _, ref = _grads(cell, x, state, lambda x, s: unroll(cell, x, s), weights)
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-12)
    # the buffer was handed to the backward (and dropped by it)
    out, _ = fast(x, state)
    bufs = out.grad_fn.q_buffers
    assert bufs is not None and all(b is not None for b in bufs)
    assert bufs[0].shape == (5, 3, 4 * H)


def test_retained_graph_runs_backward_twice(python_mode):
    rng = np.random.default_rng(1)
    cell = LSTMFromOps(rng)
    x, state, weights = _setup(rng, cell)
    fast = compile_cell(cell)
    _, once = _grads(cell, x, state, lambda x, s: fast(x, s), weights)
    _, twice = _grads(cell, x, state, lambda x, s: fast(x, s), weights, retain=True, times=2)
    for a, b in zip(once, twice, strict=True):
        np.testing.assert_allclose(b, 2 * a, rtol=1e-12, atol=1e-12)


def _compare_with_unrolled(rng, cell, lengths, check_buffers):
    """Gradients of x, h and the parameters through the compiled loop and through the unrolled
    graph (random output weights) agree; ``check_buffers(q_buffers)`` runs on the loop's node."""
    x = tr.tensor(rng.standard_normal((5, 3, N_IN)), requires_grad=True)
    h = tr.tensor(rng.standard_normal((3, H)), requires_grad=True)
    w = rng.standard_normal((5, 3, H))
    fast = compile_cell(cell)
    grads = []
    for compiled in (True, False):
        for t in [x, h, *cell.parameters()]:
            t.grad = None
        out, _ = fast(x, h, lengths) if compiled else unroll(cell, x, h, lengths)
        if compiled:
            check_buffers(out.grad_fn.q_buffers)
        (out * tr.tensor(w)).sum().backward()
        grads.append([t.grad.data.copy() for t in [x, h, *cell.parameters()]])
    for a, b in zip(grads[1], grads[0], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-12)


def test_value_saved_by_its_op_is_not_reused(python_mode):
    rng = np.random.default_rng(2)

    def check(bufs):
        assert len(bufs) == 2 and bufs[0] is None  # p, held by Tanh and MatMul
        assert bufs[1] is not None  # p V^T: made here, read by nothing else

    _compare_with_unrolled(rng, SavedProjection(rng), None, check)


class ReadProjection(tr.nn.Module):
    """The backward of ``q * tanh(h)`` reads ``q = x W^T``: the loop's node keeps that input."""

    def __init__(self, rng):
        super().__init__()
        self.w, self.u = _param(rng, H, N_IN), _param(rng, H, H)

    def forward(self, x, h):
        return (x @ self.w.T) * h.tanh() + h @ self.u.T


def test_input_read_by_the_backward_is_kept(python_mode):
    rng = np.random.default_rng(3)

    def check(bufs):
        assert bufs == [None]  # kept for the backward, not reused

    _compare_with_unrolled(rng, ReadProjection(rng), [5, 2, 4], check)


@pytest.mark.parametrize("use", ["outputs", "final"])
def test_unused_outputs_get_no_zero_arrays(python_mode, use):
    """A loss on the final state alone (or on the outputs alone): the loop's backward gets
    None for the unused gradients and reads one zero row instead."""
    rng = np.random.default_rng(4)
    cell = LSTMFromOps(rng)
    x, state, weights = _setup(rng, cell)
    fast = compile_cell(cell)
    leaves = [x, *state, *cell.parameters()]
    grads = []
    for run in (lambda x, s: fast(x, s, [5, 3, 4]), lambda x, s: unroll(cell, x, s, [5, 3, 4])):
        for t in leaves:
            t.grad = None
        out, (h, c) = run(x, state)
        if use == "outputs":
            loss = (out * tr.tensor(weights[0])).sum()
        else:
            loss = (h * tr.tensor(weights[1])).sum()
        loss.backward()
        grads.append([t.grad.data.copy() for t in leaves])
    for a, b in zip(grads[1], grads[0], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("steps", "lengths"), [(1, None), (5, [5, 0, 2]), (4, [1, 4, 3])])
def test_h_before_each_step_from_the_outputs(python_mode, reverse, steps, lengths):
    """The backward reads h before a step from the previous step's output, or from the initial
    state where that sequence had no step before (its first step; in reverse, step L[b] - 1),
    including a single step and an empty sequence."""
    rng = np.random.default_rng(5)
    cell = LSTMFromOps(rng)
    x = tr.tensor(rng.standard_normal((steps, 3, N_IN)), requires_grad=True)
    state = tuple(tr.tensor(rng.standard_normal((3, H)), requires_grad=True) for _ in range(2))
    weights = [rng.standard_normal((steps, 3, H)), rng.standard_normal((3, H))]
    fast = compile_cell(cell)
    leaves = [x, *state, *cell.parameters()]
    grads = []
    for run in (fast, lambda x, s, L, r: unroll(cell, x, s, L, r)):
        for t in leaves:
            t.grad = None
        out, (h, c) = run(x, state, lengths, reverse)
        loss = (out * tr.tensor(weights[0])).sum() + (c * tr.tensor(weights[1])).sum()
        loss.backward()
        grads.append([out.data.copy(), *(t.grad.data.copy() for t in leaves)])
    for a, b in zip(grads[1], grads[0], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-12)

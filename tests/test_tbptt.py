"""Truncated BPTT: windows, detached state, equality with full BPTT for k = T, flat memory."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import reference_rnn as ref

import tinyrnn as tr
from tinyrnn import nn
from tinyrnn.engine import Context


def make_model(seed=0):
    tr.manual_seed(seed)
    return nn.LSTM(2, 5).double(), nn.Linear(5, 1).double()


def stream(steps, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps, 3, 2))
    # target: a mix of the current and the previous input (needs the carried state)
    y = 0.5 * x[..., :1] + 0.5 * np.concatenate([np.zeros((1, 3, 1)), x[:-1, :, 1:]], 0)
    return tr.tensor(x), tr.tensor(y)


def grads(*modules):
    return [p.grad.data.copy() for m in modules for p in m.parameters()]


def test_k_equal_to_the_length_is_full_bptt_exactly():
    x, y = stream(24)
    lstm, head = make_model()
    out, _ = lstm(x)
    ((head(out) - y) ** 2).mean().backward()
    full = grads(lstm, head)
    lstm.zero_grad()
    head.zero_grad()

    def step(xw, yw, state):
        out, state = lstm(xw, state)
        return ((head(out) - yw) ** 2).mean(), state

    losses = list(nn.truncated_bptt(step, x, y, k=24))
    assert len(losses) == 1
    for a, b in zip(grads(lstm, head), full, strict=True):
        np.testing.assert_array_equal(a, b)


def test_windows_carry_the_state_value_but_cut_the_gradient():
    """k < T: the forward values equal one full run; the gradients equal the sum over windows of
    BPTT inside each window with the incoming state held fixed (checked by hand in NumPy), and
    differ from full BPTT."""
    rng = np.random.default_rng(2)
    tr.manual_seed(2)
    rnn = nn.RNN(3, 4).double()
    xs = rng.standard_normal((10, 2, 3))
    u = rng.standard_normal((10, 2, 4))  # random output weights: loss = sum <u_t, h_t>
    seen_states, finals = [], []

    def step(xw, uw, h):
        seen_states.append(h)
        out, h = rnn(xw, h)
        finals.append(h)
        return (out * uw).sum(), h

    losses = list(nn.truncated_bptt(step, tr.tensor(xs), tr.tensor(u), k=4))
    assert len(losses) == 3  # windows of 4, 4 and 2 steps
    assert seen_states[0] is None
    assert all(not h.requires_grad for h in seen_states[1:])
    w = [p.data for p in rnn.parameters()]
    # NumPy: the same windows, state value carried, gradient stopped at window starts
    h = np.zeros((2, 4))
    want = {k: 0.0 for k in ("W_ih", "W_hh", "b_ih", "b_hh")}
    for start in range(0, 10, 4):
        hs, cache = ref.rnn_forward(xs[start : start + 4], h, *w)
        g = ref.rnn_backward(cache, u[start : start + 4], np.zeros((2, 4)))
        for k in want:
            want[k] = want[k] + g[k]
        h = hs[-1]
    np.testing.assert_allclose(finals[-1].data[0], h, rtol=1e-12)
    for p, k in zip(rnn.parameters(), ("W_ih", "W_hh", "b_ih", "b_hh"), strict=True):
        np.testing.assert_allclose(p.grad.data, want[k], rtol=1e-10)
    # and full BPTT is different
    _, cache = ref.rnn_forward(xs, np.zeros((2, 4)), *w)
    full = ref.rnn_backward(cache, u, np.zeros((2, 4)))
    assert not np.allclose(rnn.weight_hh_l0.grad.data, full["W_hh"])


def test_training_loop_with_an_optimizer():
    x, y = stream(200, seed=3)
    lstm, head = make_model(3)
    opt = tr.optim.Adam([*lstm.parameters(), *head.parameters()], lr=0.02)

    def step(xw, yw, state):
        out, state = lstm(xw, state)
        return ((head(out) - yw) ** 2).mean(), state

    epochs = []
    for _ in range(8):
        total = 0.0
        for loss in nn.truncated_bptt(step, x, y, k=20):
            opt.step()
            opt.zero_grad()
            total += loss.item()
        epochs.append(total)
    assert epochs[-1] < 0.5 * epochs[0]


def test_batch_first_windows_and_numpy_streams():
    x = tr.zeros(2, 7, 3)
    y = np.zeros((2, 7))
    shapes = [(a.shape, b.shape) for a, b in nn.time_windows(x, y, k=3, dim=1)]
    assert shapes == [((2, 3, 3), (2, 3)), ((2, 3, 3), (2, 3)), ((2, 1, 3), (2, 1))]


def test_detach_state_structures():
    h = tr.ones(2, requires_grad=True) * 3
    assert nn.detach_state(None) is None
    a, (b, c) = nn.detach_state((h, [h, h]))
    assert not (a.requires_grad or b.requires_grad or c.requires_grad)
    assert a.tolist() == [3.0, 3.0]


def test_errors():
    x = tr.zeros(6, 1, 2)
    with pytest.raises(ValueError, match="time_windows: k must be a positive int, got 0"):
        list(nn.time_windows(x, k=0))
    with pytest.raises(
        ValueError, match=r"streams must have the same length along dim 0, got \[6, 5\]"
    ):
        list(nn.time_windows(x, tr.zeros(5), k=2))
    with pytest.raises(ValueError, match="time dimension 3 is out of range for shape"):
        list(nn.time_windows(x, k=2, dim=3))
    with pytest.raises(
        TypeError, match="detach_state: expected a Tensor or a tuple/list of Tensors, got int"
    ):
        nn.detach_state(3)
    with pytest.raises(
        TypeError, match="step must return \\(loss, state\\) with a Tensor loss, got float"
    ):
        list(nn.truncated_bptt(lambda xw, s: (1.0, s), x, k=2))


def _live_contexts():
    return sum(1 for o in gc.get_objects() if type(o) is Context)


@pytest.mark.slow
@pytest.mark.parametrize(("fused", "window_nodes"), [(True, 5), ("step", 250)])
def test_memory_stays_flat_over_a_100000_step_stream(fused, window_nodes):
    """The number of live graph nodes (op contexts) after each window does not grow with the
    number of windows processed: every window's graph is freed. By default the RNN is one
    whole-sequence node per window (a few nodes in all); step by step, one node per op and
    step (more than 250)."""
    tr.manual_seed(4)
    rnn, head = nn.RNN(1, 8, fused=fused), nn.Linear(8, 1)
    opt = tr.optim.SGD([*rnn.parameters(), *head.parameters()], lr=0.01)
    x = tr.randn(100_000, 1, 1)
    y = x * 0.5
    during = []

    def step(xw, yw, h):
        out, h = rnn(xw, h)
        loss = ((head(out) - yw) ** 2).mean()
        if not during:
            during.append(_live_contexts())
        return loss, h

    # Collect what earlier tests left in reference cycles, then keep the collector off: each
    # window's graph must be freed by reference counting alone, as soon as its backward is done.
    gc.collect()
    baseline = _live_contexts()
    counts = []
    gc.disable()
    try:
        for i, _ in enumerate(nn.truncated_bptt(step, x, y, k=250)):
            opt.step()
            opt.zero_grad()
            if i % 80 == 0:
                counts.append(_live_contexts() - baseline)
    finally:
        gc.enable()
    assert len(counts) == 5  # 400 windows
    assert during[0] - baseline > window_nodes  # a window's graph is counted while alive...
    assert max(counts) <= 5 and counts[-1] == counts[0]  # ...and freed after its backward

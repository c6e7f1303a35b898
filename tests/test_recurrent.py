"""Unrolling: Recurrent, Bidirectional, RNN/LSTM/GRU layers, custom cells, BPTT by hand, errors."""

from __future__ import annotations

import numpy as np
import pytest
import reference_rnn as ref

import tinyrnn as tr
from tinyrnn import nn


def gradcheck_each(fn, tensors):
    """``tr.autograd.gradcheck`` of ``fn()`` (random output weights, float64) with respect to
    each tensor in turn; ``fn`` reads the tensors from its closure."""
    for t in tensors:
        assert tr.autograd.gradcheck(lambda _: fn(), [t])


def scopes_of(*roots):
    """Every scope tuple stamped on the graph behind ``roots`` (iterative walk)."""
    seen, found = set(), set()
    stack = [r.grad_fn for r in roots if r.grad_fn is not None]
    while stack:
        ctx = stack.pop()
        if id(ctx) in seen:
            continue
        seen.add(id(ctx))
        found.add(ctx.scope)
        stack.extend(p._ctx for p in ctx.parents if getattr(p, "_ctx", None) is not None)
    return found


def contexts(*roots):
    """Every op context behind ``roots`` (iterative walk)."""
    seen, found = set(), []
    stack = [r.grad_fn for r in roots if r.grad_fn is not None]
    while stack:
        ctx = stack.pop()
        if id(ctx) in seen:
            continue
        seen.add(id(ctx))
        found.append(ctx)
        stack.extend(p._ctx for p in ctx.parents if getattr(p, "_ctx", None) is not None)
    return found


def weighted_loss(rng, *tensors):
    """<u, t> summed over tensors, with random weights u (never a plain sum)."""
    loss = tr.tensor(0.0, dtype=tr.float64)
    for t in tensors:
        loss = loss + (t * tr.tensor(rng.standard_normal(t.shape))).sum()
    return loss


# ---- custom cells written by a user in a few lines ----


class MGU(nn.Module):
    """Minimal gated unit (Zhou et al. 2016): one forget gate does the work of GRU's two."""

    def __init__(self, n_in, n_hidden):
        super().__init__()
        self.hidden = n_hidden
        self.w_f = nn.Parameter(tr.randn(n_in + n_hidden, n_hidden) * 0.4)
        self.b_f = nn.Parameter(tr.zeros(n_hidden))
        self.w_h = nn.Parameter(tr.randn(n_in + n_hidden, n_hidden) * 0.4)
        self.b_h = nn.Parameter(tr.zeros(n_hidden))

    def initial_state(self, batch):
        return tr.zeros(batch, self.hidden, dtype=self.w_f.dtype)

    def forward(self, x, h):
        f = (tr.cat([x, h], 1) @ self.w_f + self.b_f).sigmoid()
        candidate = (tr.cat([x, f * h], 1) @ self.w_h + self.b_h).tanh()
        return (1 - f) * h + f * candidate


class PeepholeLSTM(nn.Module):
    """LSTM whose gates also read the cell state (Gers & Schmidhuber 2000)."""

    def __init__(self, n_in, n_hidden):
        super().__init__()
        self.hidden = n_hidden
        self.w = nn.Parameter(tr.randn(n_in, 4 * n_hidden) * 0.4)
        self.u = nn.Parameter(tr.randn(n_hidden, 4 * n_hidden) * 0.4)
        self.b = nn.Parameter(tr.zeros(4 * n_hidden))
        self.peep = nn.Parameter(tr.randn(3, n_hidden) * 0.4)

    def initial_state(self, batch):
        z = tr.zeros(batch, self.hidden, dtype=self.w.dtype)
        return z, z

    def forward(self, x, state):
        h, c = state
        i, f, g, o = (x @ self.w + h @ self.u + self.b).chunk(4, 1)
        i = (i + self.peep[0] * c).sigmoid()
        f = (f + self.peep[1] * c).sigmoid()
        c = f * c + i * g.tanh()
        o = (o + self.peep[2] * c).sigmoid()
        return o * c.tanh(), c


class NoInitialState(nn.Module):
    def forward(self, x, h):
        return (x + h).tanh()


@pytest.mark.parametrize("cell_cls", [MGU, PeepholeLSTM])
def test_custom_cell_gradcheck_through_20_steps(cell_cls):
    tr.manual_seed(0)
    cell = cell_cls(3, 4).double()
    rec = nn.Recurrent(cell)
    x = tr.randn(20, 1, 3, dtype=tr.float64, requires_grad=True)

    def run():
        out, final = rec(x)
        return (out, final)

    gradcheck_each(run, [x, *cell.parameters()])


@pytest.mark.parametrize("cell_cls", [MGU, PeepholeLSTM])
def test_custom_cell_trains_through_recurrent(cell_cls):
    """Plain gradient descent on a small sequence task (output the running mean of the input's
    first feature) lowers the loss a lot: BPTT through the user's cell works end to end."""
    tr.manual_seed(1)
    rng = np.random.default_rng(1)
    cell = cell_cls(2, 8).double()
    rec = nn.Recurrent(cell, batch_first=True)
    readout = tr.randn(8, 1, dtype=tr.float64) * 0.3
    readout.requires_grad_()
    params = [*cell.parameters(), readout]
    xs = rng.uniform(-1, 1, (16, 12, 2))
    target = tr.tensor(np.cumsum(xs[..., :1], 1) / np.arange(1, 13)[:, None])
    x = tr.tensor(xs)
    losses = []
    for _ in range(150):
        out, _ = rec(x)
        loss = ((out @ readout - target) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data -= 1.0 * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]


def test_custom_cell_without_initial_state_asks_for_a_state():
    rec = nn.Recurrent(NoInitialState())
    with pytest.raises(
        TypeError, match=r"NoInitialState has no initial_state\(batch_size\) method"
    ):
        rec(tr.ones(3, 2, 4))
    with pytest.raises(TypeError, match=r"pass the initial state explicitly: rec\(x, state\)"):
        rec(tr.ones(3, 2, 4))
    out, h = rec(tr.ones(3, 2, 4), tr.zeros(2, 4))
    assert out.shape == (3, 2, 4) and h.shape == (2, 4)


# ---- Recurrent is the loop, nothing more ----


@pytest.mark.parametrize("cell_cls", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_recurrent_equals_a_loop_of_cell_calls(cell_cls):
    tr.manual_seed(2)
    cell = cell_cls(3, 4).double()
    x = tr.randn(6, 2, 3, dtype=tr.float64)
    out, final = nn.Recurrent(cell)(x)
    state = None
    for t in range(6):
        state = cell(x[t], state)
        h = state[0] if isinstance(state, tuple) else state
        np.testing.assert_array_equal(out.data[t], h.data)
    for a, b in zip(
        final if isinstance(final, tuple) else (final,),
        state if isinstance(state, tuple) else (state,),
        strict=True,
    ):
        np.testing.assert_array_equal(a.data, b.data)


def test_recurrent_reverse_batch_first_and_unbatched():
    tr.manual_seed(3)
    cell = nn.GRUCell(3, 4).double()
    x = tr.randn(5, 2, 3, dtype=tr.float64)
    out, h = nn.Recurrent(cell, reverse=True)(x)
    state = None
    for t in reversed(range(5)):
        state = cell(x[t], state)
        np.testing.assert_array_equal(out.data[t], state.data)
    out_bf, h_bf = nn.Recurrent(cell, batch_first=True, reverse=True)(x.transpose(0, 1))
    # a transposed operand may take another BLAS path: equal up to rounding
    np.testing.assert_allclose(out_bf.data, out.data.transpose(1, 0, 2), rtol=1e-13, atol=1e-16)
    out_u, h_u = nn.Recurrent(cell, reverse=True)(x[:, 1], h[1] * 0)
    assert out_u.shape == (5, 4) and h_u.shape == (4,)
    np.testing.assert_allclose(out_u.data, out.data[:, 1], rtol=1e-13, atol=1e-16)


def test_steps_are_scoped_by_layer_and_time():
    tr.manual_seed(4)
    x = tr.randn(3, 2, 4, requires_grad=True)
    lstm = nn.LSTM(4, 5, num_layers=2, bidirectional=True, fused="step")
    out, (h, c) = lstm(x)
    found = {s for s in scopes_of(out, h, c) if s}
    layers = [f"lstm.l{k}{d}" for k in range(2) for d in ("", "_reverse")]
    steps = {(f"{layer}.t{t}",) for layer in layers for t in range(3)}
    # each layer's input projection is one product for all steps, outside the step scopes
    assert found == steps | {(layer,) for layer in layers}
    # by default each layer and direction is one whole-sequence node in the layer's scope,
    # which describes its steps (pictures draw them from that)
    lstm.fused = True
    out, (h, c) = lstm(x)
    assert {s for s in scopes_of(out, h, c) if s} == {(layer,) for layer in layers}
    nodes = sorted((ctx.scope, ctx) for ctx in contexts(out) if ctx.name == "LSTMSequence")
    assert [scope for scope, _ in nodes] == sorted((layer,) for layer in layers)
    for (scope,), ctx in nodes:
        info = ctx.sequence
        assert (info.cell, info.reverse, info.lengths.tolist()) == (
            "LSTM",
            scope.endswith("_reverse"),
            [3, 3],
        )
    out, _ = nn.Recurrent(MGU(4, 3), name="enc")(x)
    assert {s for s in scopes_of(out) if s} == {("enc.t0",), ("enc.t1",), ("enc.t2",)}
    with tr.scope("model"):
        out, _ = nn.Recurrent(nn.GRUCell(4, 3))(x)
    assert ("model", "grucell.t2") in scopes_of(out)


class LogCell(nn.Module):
    def forward(self, x, h):
        return (x + h).log()


def test_anomaly_report_names_the_time_step():
    rec = nn.Recurrent(LogCell(), name="logs")
    x = tr.ones(6, 1, 2)
    x.data[4] = -5.0  # log of a negative number at step 4
    with tr.autograd.detect_anomaly():
        with pytest.raises(
            RuntimeError, match=r"Log.forward produced a non-finite value .* scope logs.t4"
        ):
            rec(x, tr.ones(1, 2))


def test_fused_layer_has_one_node_per_sequence_or_one_cell_node_per_step():
    x = tr.randn(4, 1, 3)
    for fused, whole, cells in ((True, 1, 0), ("sequence", 1, 0), ("step", 0, 4), (False, 0, 0)):
        names = [ctx.name for ctx in contexts(nn.LSTM(3, 2, fused=fused)(x)[0])]
        assert names.count("LSTMSequence") == whole
        assert names.count("LSTMCellStep") == cells
        assert names.count("Sigmoid") == (3 * 4 if fused is False else 0)


# ---- BPTT agrees with a hand-written NumPy reference ----


def test_rnn_layer_matches_numpy_bptt():
    tr.manual_seed(5)
    rng = np.random.default_rng(5)
    rnn = nn.RNN(3, 4).double()
    xs, h0 = rng.standard_normal((7, 2, 3)), rng.standard_normal((1, 2, 4))
    dhs, dh_last = rng.standard_normal((7, 2, 4)), rng.standard_normal((1, 2, 4))
    x, h0_t = tr.tensor(xs, requires_grad=True), tr.tensor(h0, requires_grad=True)
    out, h_n = rnn(x, h0_t)
    ((out * tr.tensor(dhs)).sum() + (h_n * tr.tensor(dh_last)).sum()).backward()
    w = [p.data for p in rnn.parameters()]
    hs, cache = ref.rnn_forward(xs, h0[0], *w)
    grads = ref.rnn_backward(cache, dhs, dh_last[0])
    np.testing.assert_allclose(out.data, hs, rtol=1e-12)
    for name, key in zip(
        ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
        ("W_ih", "W_hh", "b_ih", "b_hh"),
        strict=True,
    ):
        np.testing.assert_allclose(getattr(rnn, name).grad.data, grads[key], rtol=1e-10)
    np.testing.assert_allclose(x.grad.data, grads["xs"], rtol=1e-10)
    np.testing.assert_allclose(h0_t.grad.data[0], grads["h0"], rtol=1e-10)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "opbyop"])
def test_lstm_through_recurrent_matches_numpy_bptt(fused):
    tr.manual_seed(6)
    rng = np.random.default_rng(6)
    cell = nn.LSTMCell(3, 4, fused=fused).double()
    xs = rng.standard_normal((8, 2, 3))
    h0, c0 = rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    dhs, dh_last, dc_last = (rng.standard_normal(s) for s in ((8, 2, 4), (2, 4), (2, 4)))
    x = tr.tensor(xs, requires_grad=True)
    h0_t, c0_t = tr.tensor(h0, requires_grad=True), tr.tensor(c0, requires_grad=True)
    out, (h, c) = nn.Recurrent(cell)(x, (h0_t, c0_t))
    loss = (out * tr.tensor(dhs)).sum() + (h * tr.tensor(dh_last)).sum()
    (loss + (c * tr.tensor(dc_last)).sum()).backward()
    w = [p.data for p in cell.parameters()]
    hs, c_T, cache = ref.lstm_forward(xs, h0, c0, *w)
    grads = ref.lstm_backward(cache, dhs, dh_last, dc_last)
    np.testing.assert_allclose(out.data, hs, rtol=1e-12)
    np.testing.assert_allclose(c.data, c_T, rtol=1e-12)
    for name, key in zip(
        ("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
        ("W_ih", "W_hh", "b_ih", "b_hh"),
        strict=True,
    ):
        np.testing.assert_allclose(getattr(cell, name).grad.data, grads[key], rtol=1e-10)
    np.testing.assert_allclose(x.grad.data, grads["xs"], rtol=1e-10)
    np.testing.assert_allclose(h0_t.grad.data, grads["h0"], rtol=1e-10)
    np.testing.assert_allclose(c0_t.grad.data, grads["c0"], rtol=1e-10)


# ---- layers: lengths, directions, layouts ----


@pytest.mark.parametrize("layer_cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_lengths_equal_running_each_sequence_alone(layer_cls):
    tr.manual_seed(7)
    rng = np.random.default_rng(7)
    layer = layer_cls(3, 4, num_layers=2, bidirectional=True).double()
    lengths = [3, 6, 1, 4]
    x = tr.tensor(rng.standard_normal((6, 4, 3)))
    out, state = layer(x, lengths=lengths)
    h_n = state[0] if isinstance(state, tuple) else state
    loss = weighted_loss(np.random.default_rng(0), out, h_n)
    loss.backward()
    batch_grads = {n: p.grad.data.copy() for n, p in layer.named_parameters()}
    layer.zero_grad()
    rng_w = np.random.default_rng(0)
    w_out, w_h = rng_w.standard_normal(out.shape), rng_w.standard_normal(h_n.shape)
    for b, n in enumerate(lengths):
        out_b, state_b = layer(x[:n, b : b + 1])
        h_b = state_b[0] if isinstance(state_b, tuple) else state_b
        np.testing.assert_allclose(out.data[:n, b], out_b.data[:, 0], rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(out.data[n:, b], 0.0)
        np.testing.assert_allclose(h_n.data[:, b], h_b.data[:, 0], rtol=1e-12, atol=1e-15)
        loss_b = (out_b * tr.tensor(w_out[:n, b : b + 1])).sum()
        (loss_b + (h_b * tr.tensor(w_h[:, b : b + 1])).sum()).backward()
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad.data, batch_grads[name], rtol=1e-10, atol=1e-13)


def test_lengths_order_does_not_matter():
    tr.manual_seed(8)
    layer = nn.GRU(2, 3, bidirectional=True).double()
    x = tr.randn(5, 3, 2, dtype=tr.float64)
    out, h = layer(x, lengths=[2, 5, 4])
    perm = [2, 0, 1]
    out_p, h_p = layer(x[:, perm], lengths=np.array([4, 2, 5]))
    np.testing.assert_allclose(out_p.data, out.data[:, perm], rtol=1e-14)
    np.testing.assert_allclose(h_p.data, h.data[:, perm], rtol=1e-14)
    out_t, _ = layer(x, lengths=tr.tensor([2, 5, 4]))
    np.testing.assert_array_equal(out_t.data, out.data)


def test_bidirectional_module_with_lengths():
    tr.manual_seed(9)
    fwd, bwd = nn.LSTMCell(3, 4).double(), nn.GRUCell(3, 2).double()
    bi = nn.Bidirectional(fwd, bwd)
    x = tr.randn(6, 2, 3, dtype=tr.float64)
    out, ((hf, cf), hb) = bi(x, lengths=[6, 3])
    assert out.shape == (6, 2, 6)
    out_f, (hf1, _) = nn.Recurrent(fwd)(x[:3, 1:])
    out_b, hb1 = nn.Recurrent(bwd, reverse=True)(x[:3, 1:])
    np.testing.assert_allclose(out.data[:3, 1, :4], out_f.data[:, 0], rtol=1e-13)
    np.testing.assert_allclose(out.data[:3, 1, 4:], out_b.data[:, 0], rtol=1e-13)
    np.testing.assert_array_equal(out.data[3:, 1], 0.0)
    np.testing.assert_allclose(hf.data[1], hf1.data[0], rtol=1e-13)
    np.testing.assert_allclose(hb.data[1], hb1.data[0], rtol=1e-13)
    x.requires_grad_()
    gradcheck_each(lambda: bi(x, lengths=[6, 3]), [x, *bi.parameters()])


@pytest.mark.parametrize("layer_cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_batch_first_and_unbatched_agree(layer_cls):
    tr.manual_seed(10)
    layer = layer_cls(3, 4, num_layers=2, bidirectional=True).double()
    x = tr.randn(5, 2, 3, dtype=tr.float64)
    out, state = layer(x)
    first = layer_cls(3, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    first.load_state_dict(layer.state_dict())
    out_bf, state_bf = first(x.transpose(0, 1))
    # batched and single-row products may round differently in the last bit
    tol = dict(rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out_bf.data, out.data.transpose(1, 0, 2), **tol)
    parts = state if isinstance(state, tuple) else (state,)
    parts_bf = state_bf if isinstance(state_bf, tuple) else (state_bf,)
    for a, b in zip(parts, parts_bf, strict=True):
        np.testing.assert_allclose(a.data, b.data, **tol)
    out_u, state_u = layer(x[:, 0])
    assert out_u.shape == (5, 8)
    np.testing.assert_allclose(out_u.data, out.data[:, 0], **tol)
    for a, b in zip(parts, state_u if isinstance(state_u, tuple) else (state_u,), strict=True):
        assert b.shape == (4, 4)
        np.testing.assert_allclose(b.data, a.data[:, 0], **tol)


@pytest.mark.parametrize("layer_cls", [nn.LSTM, nn.GRU])
def test_layer_fused_equals_op_by_op(layer_cls):
    tr.manual_seed(11)
    layer = layer_cls(3, 4, num_layers=2, bidirectional=True).double()
    x = tr.randn(5, 2, 3, dtype=tr.float64)
    grads = []
    for fused in (True, False):
        layer.fused = fused
        layer.zero_grad()
        out, state = layer(x, lengths=[5, 3])
        h = state[0] if isinstance(state, tuple) else state
        weighted_loss(np.random.default_rng(1), out, h).backward()
        grads.append([out.data] + [p.grad.data for p in layer.parameters()])
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


class PassiveProbe:
    """Sees every step and changes nothing (stepcheck's hook, without the check)."""

    def __init__(self):
        self.steps = []

    def enter(self, name, t, state):
        self.steps.append((name, t))
        return state

    def exit(self, name, t):
        pass


@pytest.mark.parametrize("layer_cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_step_by_step_path_equals_the_hoisted_input_projection(layer_cls):
    """Layers compute x W_ih^T for all steps at once; under a step probe (stepcheck) each step
    computes everything itself. Both give the same numbers."""
    from tinyrnn.autograd.stepcheck import STEP_PROBE

    tr.manual_seed(15)
    layer = layer_cls(3, 4, num_layers=2, bidirectional=True).double()
    x = tr.randn(5, 2, 3, dtype=tr.float64)
    results = []
    probe = PassiveProbe()
    for p in (None, probe):
        token = STEP_PROBE.set(p)
        try:
            layer.zero_grad()
            out, state = layer(x, lengths=[5, 2])
            h = state[0] if isinstance(state, tuple) else state
            weighted_loss(np.random.default_rng(3), out, h).backward()
        finally:
            STEP_PROBE.reset(token)
        results.append([out.data] + [p.grad.data for p in layer.parameters()])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # 4 layer-directions of 5 steps each, in execution order
    assert len(probe.steps) == 4 * 5
    assert probe.steps[:2] == [(f"{layer.scope_name}.l0", 0), (f"{layer.scope_name}.l0", 1)]


def test_layer_gradcheck_with_initial_state_and_lengths():
    tr.manual_seed(12)
    lstm = nn.LSTM(2, 3, num_layers=2).double()
    x = tr.randn(4, 2, 2, dtype=tr.float64, requires_grad=True)
    h0 = tr.randn(2, 2, 3, dtype=tr.float64, requires_grad=True)
    c0 = tr.randn(2, 2, 3, dtype=tr.float64, requires_grad=True)
    gradcheck_each(lambda: lstm(x, (h0, c0), lengths=[4, 2]), [x, h0, c0, *lstm.parameters()])


def test_dropout_between_layers():
    tr.manual_seed(13)
    lstm = nn.LSTM(3, 8, num_layers=2, dropout=0.5)
    x = tr.randn(4, 2, 3)
    a, _ = lstm(x)
    b, _ = lstm(x)
    assert not np.allclose(a.data, b.data)
    tr.manual_seed(99)
    c, _ = lstm(x)
    tr.manual_seed(99)
    d, _ = lstm(x)
    np.testing.assert_array_equal(c.data, d.data)
    lstm.eval()
    e, _ = lstm(x)
    f, _ = lstm(x)
    np.testing.assert_array_equal(e.data, f.data)
    no_dropout = nn.LSTM(3, 8, num_layers=2)
    no_dropout.load_state_dict(lstm.state_dict())
    np.testing.assert_array_equal(no_dropout(x)[0].data, e.data)


def test_unroll_10000_steps_forward_and_backward():
    tr.manual_seed(14)
    lstm = nn.LSTM(4, 32)
    x = tr.randn(10_000, 1, 4)
    out, (h, c) = lstm(x)
    loss = (out[-1] * tr.randn(1, 32)).sum() + (out * 1e-3).sum()
    loss.backward()
    for p in lstm.parameters():
        assert p.grad is not None and np.all(np.isfinite(p.grad.data))
    assert np.abs(lstm.weight_hh_l0.grad.data).max() > 0


def test_layer_init_is_uniform_in_one_over_sqrt_hidden_and_seeded():
    tr.manual_seed(16)
    gru = nn.GRU(3, 16, num_layers=2, bidirectional=True)
    w = np.concatenate([p.data.ravel() for p in gru.parameters()])
    assert w.dtype == np.float32
    assert np.abs(w).max() <= 0.25 and np.abs(w).max() > 0.24
    tr.manual_seed(16)
    again = nn.GRU(3, 16, num_layers=2, bidirectional=True)
    np.testing.assert_array_equal(np.concatenate([p.data.ravel() for p in again.parameters()]), w)
    again.reset_parameters()
    assert not np.array_equal(again.weight_hh_l1.data, gru.weight_hh_l1.data)


def test_repr_and_parameter_order():
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    assert repr(lstm) == "LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True)"
    assert [n for n, _ in lstm.named_parameters()][:5] == [
        "weight_ih_l0",
        "weight_hh_l0",
        "bias_ih_l0",
        "bias_hh_l0",
        "weight_ih_l0_reverse",
    ]
    assert lstm.weight_ih_l1.shape == (16, 8)
    assert repr(nn.RNN(2, 3, nonlinearity="relu", bias=False)) == "RNN(2, 3, bias=False)"


# ---- errors ----


def test_layer_rejects_bad_input():
    lstm = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"LSTM: expected input of shape \(T, B, I\).*got \(3,\)"):
        lstm(tr.ones(3))
    with pytest.raises(ValueError, match=r"LSTM: expected input of 2 \(unbatched\) or 3 dim"):
        lstm(tr.ones(2, 2, 2, 3))
    with pytest.raises(
        ValueError, match="input.size\\(-1\\) must be equal to input_size: expected 3, got 5"
    ):
        lstm(tr.ones(4, 2, 5))
    with pytest.raises(ValueError, match="GRU: the input has no time steps"):
        nn.GRU(3, 4)(tr.ones(0, 2, 3))
    with pytest.raises(TypeError, match="RNN: expected the input to be a Tensor, got ndarray"):
        nn.RNN(3, 4)(np.ones((2, 2, 3)))


def test_layer_rejects_bad_hidden_state():
    lstm = nn.LSTM(3, 4, num_layers=2)
    x = tr.ones(5, 2, 3)
    good = tr.zeros(2, 2, 4)
    with pytest.raises(
        ValueError, match=r"LSTM: expected hidden state c_0 of shape \(2, 2, 4\).*got \(1, 2, 4\)"
    ):
        lstm(x, (good, tr.zeros(1, 2, 4)))
    with pytest.raises(
        TypeError, match=r"LSTM: expected hx to be a tuple \(h_0, c_0\), got Tensor"
    ):
        lstm(x, good)
    gru = nn.GRU(3, 4, bidirectional=True)
    with pytest.raises(ValueError, match=r"GRU: expected hidden state h_0 of shape \(2, 2, 4\)"):
        gru(x, tr.zeros(1, 2, 4))
    with pytest.raises(ValueError, match=r"expected hidden state h_0 of shape \(2, 4\)"):
        gru(x[:, 0], tr.zeros(2, 1, 4))
    with pytest.raises(TypeError, match="GRU: expected hx to be a Tensor, got tuple"):
        gru(x, (good, good))


def test_layer_rejects_bad_lengths():
    gru = nn.GRU(3, 4)
    x = tr.ones(5, 2, 3)
    with pytest.raises(
        ValueError, match=r"lengths must be between 0 and the sequence length 5; got 6 in \[6, 2\]"
    ):
        gru(x, lengths=[6, 2])
    with pytest.raises(
        ValueError, match="GRU: lengths has 3 entries but the batch has 2 sequences"
    ):
        gru(x, lengths=[5, 2, 1])
    with pytest.raises(ValueError, match="got -1"):
        gru(x, lengths=[5, -1])
    with pytest.raises(TypeError, match="lengths must be a 1-D sequence of ints"):
        gru(x, lengths=[2.5, 1.0])
    rec = nn.Recurrent(nn.GRUCell(3, 4))
    with pytest.raises(ValueError, match=r"Recurrent\(GRUCell\): lengths has 1 entries"):
        rec(x, lengths=[5])


def test_layer_rejects_bad_constructor_arguments():
    with pytest.raises(ValueError, match="LSTM: hidden_size must be a positive int, got 0"):
        nn.LSTM(3, 0)
    with pytest.raises(
        ValueError, match="GRU: dropout must be a probability in \\[0, 1\\], got 1.5"
    ):
        nn.GRU(3, 4, dropout=1.5)
    with pytest.raises(
        ValueError, match="RNN: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"
    ):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="Recurrent: expected a cell \\(a Module\\), got int"):
        nn.Recurrent(3)


def test_bidirectional_rejects_bad_state():
    bi = nn.Bidirectional(nn.GRUCell(3, 4), nn.GRUCell(3, 4))
    with pytest.raises(
        TypeError,
        match=r"Bidirectional: state must be None or a pair \(forward_state, backward_state\)",
    ):
        bi(tr.ones(5, 2, 3), tr.zeros(2, 4))

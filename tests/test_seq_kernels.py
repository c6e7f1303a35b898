"""Whole-sequence kernels (``kernels.seq_reference`` / ``seq_jit``) and ops (``ops.sequence``).

The jitted kernels are checked against their NumPy twins in float32 and float64; the ops against
the same layer built op by op from tinyrnn ops (the unrolled graph), forward and every gradient,
with lengths masks and in both directions; and by numerical gradient checks in float64 with
random output weights.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference_rnn import lstm_backward, lstm_forward, rnn_backward, rnn_forward

import tinyrnn as tr
from tinyrnn import kernels
from tinyrnn.kernels import seq_jit, seq_reference
from tinyrnn.ops.sequence import GRUSequence, LSTMSequence, RNNSequence

CELLS = ["tanh", "relu", "lstm", "gru"]
GATES = {"tanh": 1, "relu": 1, "lstm": 4, "gru": 3}


@pytest.fixture(params=["numba", "numpy"])
def seq_backend(request):
    """Route ``kernels.*_seq_*`` to one backend for the test, then restore them."""
    before = {name: getattr(kernels, name) for name in kernels.SEQ_NAMES}
    module = seq_jit if request.param == "numba" else seq_reference
    for name in kernels.SEQ_NAMES:
        setattr(kernels, name, getattr(module, name))
    yield request.param
    for name, fn in before.items():
        setattr(kernels, name, fn)


# ---- kernel twins ----


def _kernel_run(K, cell, arrays, lengths, reverse, record=True):
    """Forward then backward of one kernel pair; every array both produce, in a list. The
    forward kernels of LSTM and GRU write the activated gates over xp, so each run gets a copy;
    the arrays a kernel fills start as NaN, so anything left unwritten shows."""
    xp, h0, c0, w, b, go, gh, gc = arrays
    xp = xp.copy()
    b2 = b[::-1].copy()
    (T, B), H = xp.shape[:2], h0.shape[1]

    def fill(*shape):
        return np.full(shape, np.nan, xp.dtype)

    if cell in ("tanh", "relu"):
        fwd = K.rnn_seq_fwd(xp, h0, w, b, lengths, reverse, cell == "relu", fill(T, B, H),
                            fill(T, B, H))  # fmt: skip
        bwd = K.rnn_seq_bwd(fwd[0], w, go, gh, lengths, reverse, cell == "relu", record,
                            fill(T, B, H))  # fmt: skip
    elif cell == "lstm":
        fwd = K.lstm_seq_fwd(xp, h0, c0, w, b, lengths, reverse, *(fill(T, B, H) for _ in "1234"))
        assert fwd[3] is xp
        bwd = K.lstm_seq_bwd(fwd[3], fwd[5], fwd[6], w, go, gh, gc, lengths, reverse, record,
                             fill(*xp.shape))  # fmt: skip
    else:
        fwd = K.gru_seq_fwd(xp, h0, w, b, b2, lengths, reverse, *(fill(T, B, H) for _ in "123"))
        assert fwd[2] is xp
        bwd = K.gru_seq_bwd(fwd[2], fwd[4], fwd[3], w, go, gh, lengths, reverse, record,
                            fill(*xp.shape), fill(*xp.shape))  # fmt: skip
    res = list(fwd) + list(bwd)
    assert not any(np.isnan(a).any() for a in res)
    return res


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T,B,H", [(6, 3, 5), (1, 1, 1), (4, 2, 7)])
def test_jit_kernels_match_numpy_twins(cell, dtype, reverse, T, B, H, rng):
    G = GATES[cell] * H
    shapes = [(T, B, G), (B, H), (B, H), (G, H), (G,), (T, B, H), (B, H), (B, H)]
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    arrays[3] *= 0.5
    lengths = rng.integers(0, T + 1, B).astype(np.int64)
    lengths[0] = T
    record = T != 4  # the recorded step gradients, and the empty array without them
    ref = _kernel_run(seq_reference, cell, arrays, lengths, reverse, record)
    jit = _kernel_run(seq_jit, cell, arrays, lengths, reverse, record)
    assert ref[-1].shape == ((T, B, H) if record else (0, B, H))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert len(ref) == len(jit)
    for k, (a, b) in enumerate(zip(ref, jit, strict=True)):
        assert a.dtype == b.dtype == dtype, k
        assert a.shape == b.shape, k
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol, err_msg=f"array {k}")


@pytest.mark.parametrize("K", [seq_reference, seq_jit], ids=["numpy", "numba"])
@pytest.mark.parametrize("cell", CELLS)
def test_backward_kernels_broadcast_one_output_gradient_row(K, cell, rng):
    """grad_out may be one (1, 1, H) row for every step and sequence (the ops pass a zero row
    when nothing used the outputs): the same results as the full (T, B, H) array."""
    T, B, H = 5, 3, 4
    G = GATES[cell] * H
    shapes = [(T, B, G), (B, H), (B, H), (G, H), (G,), (1, 1, H), (B, H), (B, H)]
    arrays = [rng.standard_normal(s) for s in shapes]
    lengths = np.array([5, 2, 0], np.int64)
    for row in (arrays[5], np.zeros((1, 1, H))):
        full = arrays[:5] + [np.broadcast_to(row, (T, B, H)).copy()] + arrays[6:]
        one = arrays[:5] + [row] + arrays[6:]
        for reverse in (False, True):
            want = _kernel_run(K, cell, full, lengths, reverse, True)
            got = _kernel_run(K, cell, one, lengths, reverse, True)
            for a, b in zip(want, got, strict=True):
                np.testing.assert_array_equal(b, a)


def test_sequence_ops_pass_no_zeros_for_unused_outputs():
    """With only h_n used, the op's backward gets None for the outputs (materialize_grads off)
    and the gradients equal those with an explicit zero gradient for them."""
    tr.manual_seed(3)
    lstm = tr.nn.LSTM(3, 4).double()
    x = tr.randn(6, 2, 3, dtype=tr.float64, requires_grad=True)
    out, (h_n, c_n) = lstm(x)
    w = tr.randn(*h_n.shape, dtype=tr.float64)
    (h_n * w).sum().backward(retain_graph=True)
    first = [p.grad.data.copy() for p in (x, *lstm.parameters())]
    for p in (x, *lstm.parameters()):
        p.grad = None
    ((h_n * w).sum() + (out * 0).sum()).backward()
    second = [p.grad.data for p in (x, *lstm.parameters())]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert out.grad_fn.materialize_grads is False


@pytest.mark.parametrize("cell", CELLS)
def test_kernels_empty_batch_and_time(cell):
    for T, B in ((0, 2), (3, 0)):
        H, G = 2, GATES[cell] * 2
        z = np.zeros
        arrays = [
            z((T, B, G)),
            z((B, H)),
            z((B, H)),
            z((G, H)),
            z(G),
            z((T, B, H)),
            z((B, H)),
            z((B, H)),
        ]
        lengths = np.full(B, T, np.int64)
        for K in (seq_reference, seq_jit):
            res = _kernel_run(K, cell, arrays, lengths, False)
            assert res[0].shape == (T, B, H)


# ---- ops against the unrolled graph ----


def _unrolled(cell, x, states, w_ih, w_hh, b_ih, b_hh, lengths, reverse):
    """The layer op by op from tinyrnn ops: the per-step graph, with where() masks."""
    T = x.shape[0]
    H = w_hh.shape[1]
    lengths = np.asarray(lengths)
    outs = [None] * T
    h = states[0]
    c = states[1] if cell == "lstm" else None
    for t in range(T - 1, -1, -1) if reverse else range(T):
        live = tr.tensor((lengths > t)[:, None])
        gi = x[t] @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        if cell in ("tanh", "relu"):
            pre = gi + gh
            new = pre.tanh() if cell == "tanh" else pre.relu()
        elif cell == "lstm":
            g = gi + gh
            i, f, gg, o = (
                g[:, :H].sigmoid(),
                g[:, H : 2 * H].sigmoid(),
                g[:, 2 * H : 3 * H].tanh(),
                g[:, 3 * H :].sigmoid(),
            )
            c_new = f * c + i * gg
            new = o * c_new.tanh()
            c = tr.where(live, c_new, c)
        else:
            r = (gi[:, :H] + gh[:, :H]).sigmoid()
            z = (gi[:, H : 2 * H] + gh[:, H : 2 * H]).sigmoid()
            n = (gi[:, 2 * H :] + r * gh[:, 2 * H :]).tanh()
            new = (1 - z) * n + z * h
        outs[t] = tr.where(live, new, 0.0)
        h = tr.where(live, new, h)
    out = tr.stack(outs, 0)
    return (out, h, c) if cell == "lstm" else (out, h)


def _sequence(cell, x, states, w_ih, w_hh, b_ih, b_hh, lengths, reverse):
    if cell in ("tanh", "relu"):
        return RNNSequence.apply(
            x,
            states[0],
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            lengths=lengths,
            reverse=reverse,
            nonlinearity=cell,
        )
    if cell == "lstm":
        return LSTMSequence.apply(
            x, *states, w_ih, w_hh, b_ih, b_hh, lengths=lengths, reverse=reverse
        )
    return GRUSequence.apply(x, states[0], w_ih, w_hh, b_ih, b_hh, lengths=lengths, reverse=reverse)


def _inputs(cell, rng, T=5, B=3, n_in=4, H=3, dtype=np.float64):
    G = GATES[cell] * H
    make = lambda *s: tr.tensor(rng.standard_normal(s).astype(dtype) * 0.6, requires_grad=True)  # noqa: E731
    x = make(T, B, n_in)
    states = [make(B, H) for _ in range(2 if cell == "lstm" else 1)]
    return x, states, make(G, n_in), make(G, H), make(G), make(G)


def _grads(fn, leaves, weights):
    for t in leaves:
        t.grad = None
    outs = fn()
    loss = None
    for o, w in zip(outs, weights, strict=True):
        term = (o * tr.tensor(w)).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    return [o.data.copy() for o in outs], [t.grad.data.copy() for t in leaves]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [5, 2, 0], [3, 5, 1]])
def test_sequence_op_matches_unrolled_graph(cell, reverse, lengths, rng, seq_backend):
    x, states, w_ih, w_hh, b_ih, b_hh = _inputs(cell, rng)
    leaves = [x, *states, w_ih, w_hh, b_ih, b_hh]
    args = (cell, x, states, w_ih, w_hh, b_ih, b_hh)
    full = [5, 5, 5] if lengths is None else lengths
    with tr.no_grad():
        shapes = [o.shape for o in _unrolled(*args, full, reverse)]
    weights = [rng.standard_normal(s) for s in shapes]
    ref_out, ref_g = _grads(lambda: _unrolled(*args, full, reverse), leaves, weights)
    out, g = _grads(lambda: _sequence(*args, lengths, reverse), leaves, weights)
    for a, b in zip(ref_out + ref_g, out + g, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-13)


def test_sequence_ops_match_hand_written_bptt(rng):
    x, (h0, c0), w_ih, w_hh, b_ih, b_hh = _inputs("lstm", rng)
    dhs, dh, dc = (
        rng.standard_normal((5, 3, 3)),
        rng.standard_normal((3, 3)),
        rng.standard_normal((3, 3)),
    )
    out, h_n, c_n = LSTMSequence.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    (
        (out * tr.tensor(dhs)).sum() + (h_n * tr.tensor(dh)).sum() + (c_n * tr.tensor(dc)).sum()
    ).backward()
    arrays = [a.data for a in (x, h0, c0, w_ih, w_hh, b_ih, b_hh)]
    hs, c_last, cache = lstm_forward(*arrays)
    want = lstm_backward(cache, dhs, dh, dc)
    np.testing.assert_allclose(out.data, hs, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(c_n.data, c_last, rtol=1e-12, atol=1e-13)
    for name, t in (
        ("W_ih", w_ih),
        ("W_hh", w_hh),
        ("b_ih", b_ih),
        ("xs", x),
        ("h0", h0),
        ("c0", c0),
    ):
        np.testing.assert_allclose(t.grad.data, want[name], rtol=1e-11, atol=1e-12, err_msg=name)

    x, (h0,), w_ih, w_hh, b_ih, b_hh = _inputs("tanh", rng)
    out, h_n = RNNSequence.apply(x, h0, w_ih, w_hh, b_ih, b_hh)
    ((out * tr.tensor(dhs)).sum() + (h_n * tr.tensor(dh)).sum()).backward()
    hs, cache = rnn_forward(*(a.data for a in (x, h0, w_ih, w_hh, b_ih, b_hh)))
    want = rnn_backward(cache, dhs, dh)
    np.testing.assert_allclose(out.data, hs, rtol=1e-12, atol=1e-13)
    for name, t in (("W_ih", w_ih), ("W_hh", w_hh), ("b_hh", b_hh), ("xs", x), ("h0", h0)):
        np.testing.assert_allclose(t.grad.data, want[name], rtol=1e-11, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_sequence_op_gradcheck(cell, rng):
    x, states, w_ih, w_hh, b_ih, b_hh = _inputs(cell, rng, T=4, B=2, n_in=3, H=2)
    if cell == "relu":  # keep pre-activations away from the kink at 0
        b_ih.data += 0.05

    def fn(x, *rest):
        n = len(states)
        return _sequence(cell, x, list(rest[:n]), *rest[n:], [4, 2], True)

    assert tr.autograd.gradcheck(fn, [x, *states, w_ih, w_hh, b_ih, b_hh], mode="full")


def test_sequence_op_without_biases_and_partial_grads(rng):
    x, (h0,), w_ih, w_hh, _, _ = _inputs("gru", rng)
    x.requires_grad = False
    w_ih.requires_grad = False
    out, h_n = GRUSequence.apply(x, h0, w_ih, w_hh, None, None, lengths=np.array([5, 1, 3]))
    (out * tr.tensor(rng.standard_normal(out.shape))).sum().backward()
    assert x.grad is None and w_ih.grad is None
    assert w_hh.grad.shape == w_hh.shape and h0.grad.shape == h0.shape
    with tr.no_grad():
        ref = _unrolled("gru", x, [h0], w_ih, w_hh, 0.0, 0.0, [5, 1, 3], False)
    np.testing.assert_allclose(out.data, ref[0].data, rtol=1e-12, atol=1e-13)


def test_sequence_op_float32_matches_float64(rng):
    x, states, *params = _inputs("lstm", rng)
    out64 = LSTMSequence.apply(x, *states, *params)[0].data
    cast = [tr.tensor(t.data.astype(np.float32)) for t in (x, *states, *params)]
    out32 = LSTMSequence.apply(*cast)[0]
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32.data, out64, rtol=1e-5, atol=1e-6)


def test_sequence_op_errors(rng):
    x, (h0, c0), w_ih, w_hh, b_ih, b_hh = _inputs("lstm", rng)
    with pytest.raises(
        ValueError, match=r"LSTMSequence: expected x of shape \(T, B, I\), got \(3, 4\)"
    ):
        LSTMSequence.apply(x[0], h0, c0, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(
        ValueError, match=r"LSTMSequence: expected w_hh of shape \(4\*H, H\), got \(10, 3\)"
    ):
        LSTMSequence.apply(x, h0, c0, w_ih, w_hh[:10], b_ih, b_hh)
    with pytest.raises(ValueError, match=r"expected state 1 of shape \(3, 3\) .* got \(2, 3\)"):
        LSTMSequence.apply(x, h0, c0[:2], w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(
        ValueError,
        match=r"GRUSequence: expected w_ih of shape \(9, 4\) for x \(5, 3, 4\) and w_hh "
        r"\(9, 3\), got \(12, 3\)",
    ):
        GRUSequence.apply(x, h0, w_ih[:12, :3], w_hh[:9], None, None)
    with pytest.raises(
        ValueError,
        match=r"lengths must hold one int in \[0, 5\] per batch item \(3\), got \[6, 1, 1\]",
    ):
        RNNSequence.apply(x, h0, w_ih[:3], w_hh[:3], None, None, lengths=[6, 1, 1])
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'gelu'"):
        RNNSequence.apply(x, h0, w_ih[:3], w_hh[:3], None, None, nonlinearity="gelu")


# ---- the layers: fused="sequence" (one node per layer and direction) against the other paths ----

LAYERS = {
    "rnn_tanh": lambda **kw: tr.nn.RNN(3, 4, **kw),
    "rnn_relu": lambda **kw: tr.nn.RNN(3, 4, nonlinearity="relu", **kw),
    "lstm": lambda **kw: tr.nn.LSTM(3, 4, **kw),
    "gru": lambda **kw: tr.nn.GRU(3, 4, **kw),
}
CONFIGS = {
    "2layers_bidirectional": {"num_layers": 2, "bidirectional": True},
    "batch_first_no_bias": {"batch_first": True, "bias": False},
    "plain": {},
}


def _layer_run(layer, x, hx, lengths, rng_seed=1):
    """Outputs and every gradient (input, initial state, parameters) under random weights."""
    leaves = [x, *([hx] if isinstance(hx, tr.Tensor) else list(hx or ())), *layer.parameters()]
    for t in leaves:
        t.grad = None
    out, state = layer(x, hx, lengths=lengths)
    parts = [out, *(state if isinstance(state, tuple) else (state,))]
    rng = np.random.default_rng(rng_seed)
    loss = sum((p * tr.tensor(rng.standard_normal(p.shape))).sum() for p in parts)
    loss.backward()
    return [p.data.copy() for p in parts] + [t.grad.data.copy() for t in leaves], out


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_sequence_path_matches_step_and_op_by_op(kind, config):
    tr.manual_seed(3)
    layer = LAYERS[kind](**CONFIGS[config]).double()
    rng = np.random.default_rng(0)
    bf = CONFIGS[config].get("batch_first", False)
    x = tr.tensor(rng.standard_normal((3, 5, 3) if bf else (5, 3, 3)), requires_grad=True)
    lead = layer.num_layers * (2 if layer.bidirectional else 1)
    parts = [
        tr.tensor(rng.standard_normal((lead, 3, 4)) * 0.5, requires_grad=True)
        for _ in range(2 if kind == "lstm" else 1)
    ]
    hx = tuple(parts) if kind == "lstm" else parts[0]
    results = {}
    for fused in ("sequence", "step", False):
        layer.fused = fused
        results[fused], out = _layer_run(layer, x, hx, [5, 2, 4])
        if fused == "sequence":
            names = _graph_names(out)
            assert sum(n.endswith("Sequence") for n in names) == lead
            assert not any(n.endswith("CellStep") for n in names)
    for other in ("step", False):
        for a, b in zip(results["sequence"], results[other], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def _graph_names(t):
    names, stack, seen = [], [t.grad_fn], set()
    while stack:
        ctx = stack.pop()
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        names.append(ctx.name)
        stack.extend(p._ctx for p in ctx.parents if getattr(p, "_ctx", None) is not None)
    return names


def test_layer_sequence_path_unbatched_no_grad_and_scope():
    tr.manual_seed(5)
    lstm = tr.nn.LSTM(3, 4, num_layers=2, fused="sequence")
    x = tr.randn(6, 3)  # unbatched
    out, (h, c) = lstm(x)
    lstm.fused = "step"
    ref, (h_ref, c_ref) = lstm(x)
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.data, c_ref.data, rtol=1e-5, atol=1e-6)
    lstm.fused = "sequence"
    with tr.no_grad():
        inferred, _ = lstm(x)
    assert inferred.grad_fn is None
    np.testing.assert_allclose(inferred.data, out.data)
    scopes = {ctx.scope for ctx in _contexts(out) if ctx.name == "LSTMSequence"}
    assert scopes == {("lstm.l0",), ("lstm.l1",)}


def _contexts(t):
    out, stack, seen = [], [t.grad_fn], set()
    while stack:
        ctx = stack.pop()
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        out.append(ctx)
        stack.extend(p._ctx for p in ctx.parents if getattr(p, "_ctx", None) is not None)
    return out


def test_layer_sequence_path_with_stepcheck_and_gradcheck():
    tr.manual_seed(6)
    gru = tr.nn.GRU(3, 2, bidirectional=True, fused="sequence").double()
    x = tr.randn(4, 2, 3, dtype=tr.float64, requires_grad=True)
    # stepcheck probes every step, so it runs the step path of the same layer
    assert tr.autograd.stepcheck(gru, x)
    assert tr.autograd.gradcheck(lambda x, *p: gru(x, lengths=[4, 3])[0], [x, *gru.parameters()])


def test_layer_fused_value_error():
    with pytest.raises(
        ValueError, match="LSTM: fused must be True, 'step', 'sequence' or False, got 'seq'"
    ):
        tr.nn.LSTM(3, 4, fused="seq")


def test_recorded_step_gradients_match_the_step_path():
    """Inside record_grads(), a sequence node keeps what a picture of its steps shows: the
    gradient of each step's hidden output (as the per-step cell nodes' out_grads) and of the
    input projection; and it describes itself in ctx.sequence."""
    from tinyrnn.viz import record_grads

    tr.manual_seed(7)
    for make in (lambda f: tr.nn.LSTM(3, 4, fused=f), lambda f: tr.nn.GRU(3, 4, fused=f)):
        layer = make("sequence").double()
        x = tr.randn(5, 2, 3, dtype=tr.float64)
        per_step = {}
        for fused in ("step", "sequence"):
            layer.fused = fused
            out, _ = layer(x, lengths=[5, 3])
            with record_grads():
                _layer_weighted(out).backward()
            ctxs = _contexts(out)
            if fused == "step":
                cells = [c for c in ctxs if c.name.endswith("CellStep")]
                per_step = {_step_of(c.scope): c.out_grads[0] for c in cells}
            else:
                (seq,) = [c for c in ctxs if c.name.endswith("Sequence")]
                info = seq.sequence
                assert info.inputs[0] == "x" and info.projected == ("x", "w_ih", "b_ih")
                assert info.lengths.tolist() == [5, 3] and info.reverse is False
                assert seq.grad_xp.shape[:2] == (5, 2) and seq.grad_h.shape == (5, 2, 4)
                for t, g in per_step.items():
                    live = np.array([5, 3]) > t
                    np.testing.assert_allclose(seq.grad_h[t][live], g[live], rtol=1e-12, atol=1e-14)
        out, _ = layer(x)
        _layer_weighted(out).backward()  # outside record_grads(): nothing kept
        (seq,) = [c for c in _contexts(out) if c.name.endswith("Sequence")]
        assert not hasattr(seq, "grad_h")


def _step_of(scope):
    """t from the scope element ``<layer>.t<t>`` (padded steps add a ``pad=k/B`` element)."""
    (t,) = [int(e.rsplit(".t", 1)[1]) for e in scope if ".t" in e]
    return t


def _layer_weighted(out):
    return (out * tr.tensor(np.random.default_rng(2).standard_normal(out.shape))).sum()


# ---- reused memory (ops.sequence.BUFFERS) ----


def test_small_arrays_are_not_pooled():
    from tinyrnn.ops.sequence import BufferPool

    pool = BufferPool(min_bytes=1024)
    small = pool.empty((4, 4), np.float32)
    big = pool.empty((32, 32), np.float32)
    assert pool.nbytes == big.nbytes and small.shape == (4, 4)


def test_buffers_are_reused_only_when_free(monkeypatch):
    from tinyrnn.ops.sequence import BUFFERS

    monkeypatch.setattr(BUFFERS, "min_bytes", 0)  # the arrays of this small layer are pooled too
    tr.manual_seed(8)
    lstm = tr.nn.LSTM(3, 4, fused="sequence").double()
    x = tr.randn(6, 2, 3, dtype=tr.float64, requires_grad=True)

    def grads(out):
        (out * tr.tensor(np.random.default_rng(3).standard_normal(out.shape))).sum().backward()
        return [p.grad.data.copy() for p in (x, *lstm.parameters())]

    lstm.zero_grad()
    x.grad = None
    ref_out = lstm(x)[0]
    ref = grads(ref_out)
    # two graphs alive at once, and every output kept: no array may be shared between them
    outs = [lstm(x)[0] for _ in range(3)]
    assert len({id(o.data) for o in outs}) == 3
    for o in outs:
        np.testing.assert_array_equal(o.data, ref_out.data)
    for o in outs:
        lstm.zero_grad()
        x.grad = None
        for a, b in zip(grads(o), ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    # a second backward through a retained graph sees the same saved arrays
    lstm.zero_grad()
    x.grad = None
    out = lstm(x)[0]
    w = tr.tensor(np.random.default_rng(3).standard_normal(out.shape))
    (out * w).sum().backward(retain_graph=True)
    lstm(x)  # another step in between reuses only what is free
    (out * w).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * ref[0], rtol=1e-13, atol=1e-15)
    # a training loop settles on the same memory
    sizes = []
    for _ in range(4):
        lstm.zero_grad()
        (lstm(x)[0] ** 2).sum().backward()
        sizes.append(BUFFERS.nbytes)
    assert sizes[-1] == sizes[-2]
    BUFFERS.clear()
    assert BUFFERS.nbytes == 0

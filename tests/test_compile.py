"""Compiled custom cells (``tinyrnn.compile``): the compiled loop against the unrolled graph.

Every supported op is checked in a small cell, forward and every gradient (input, initial
state, parameters), with lengths and in reverse, float64. These run the generated source as
plain Python (``TINYRNN_KERNELS=numpy``), which is exactly the code Numba compiles; the named
cells (Minimal Gated Unit, peephole LSTM, RNN/LSTM/GRU written from ops, the built-in fused
cells) and one cell that uses every op at once are compiled with Numba (slow the first time on
a machine, then served from the on-disk cache).
"""

from __future__ import annotations

import contextlib
import warnings

import cells_from_ops
import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn.compile import CompileWarning, compile_cell, runtime, unroll

H, N_IN = 4, 3


@pytest.fixture
def python_mode(monkeypatch):
    monkeypatch.setenv("TINYRNN_KERNELS", "numpy")


def _param(rng, *shape, scale=0.5):
    return tr.nn.Parameter(tr.tensor(np.asarray(rng.standard_normal(shape) * scale)))


class OpCell(tr.nn.Module):
    """``h' = fn(pre, h, x, self)`` with ``pre = x W^T + h U^T + b``: one op under test."""

    def __init__(self, fn, rng, n_in=N_IN):
        super().__init__()
        self.fn = fn
        self.W = _param(rng, H, n_in)
        self.U = _param(rng, H, H)
        self.b = _param(rng, H, scale=0.1)
        self.v = _param(rng, H)
        self.s = _param(rng)
        self.U2 = _param(rng, 2 * H, H)
        self.W2 = _param(rng, 2 * H, n_in)
        self.mask = rng.random(H) > 0.5

    def forward(self, x, h):
        pre = x @ self.W.T + h @ self.U.T + self.b
        return self.fn(pre, h, x, self)


def _chunk_cat(p, h, x, m):
    a, b = (x @ m.W2.T + h @ m.U2.T).chunk(2, 1)
    both = tr.cat([a.sigmoid(), b.tanh()], 1)
    return both[:, 1 : 1 + H] + 0.1 * tr.cat([p[:, :2], h[:, 2:]], 1)


OPS = {
    "add": lambda p, h, x, m: p + h + m.v + 0.25,
    "sub": lambda p, h, x, m: p - h - m.v - 0.5 + (1 - p),
    "mul": lambda p, h, x, m: p * h * m.v * 0.5 + 2 * p,
    "div": lambda p, h, x, m: p / (h * h + 1.5) + 1 / (p * p + 2) + h / m.s.abs().exp(),
    "pow_scalar": lambda p, h, x, m: (p**2) * 0.1 + (h * h + 0.5) ** 1.5,
    "pow_tensor": lambda p, h, x, m: (h * h + 0.5) ** p.sigmoid() + 2.0 ** (p * 0.1),
    "neg": lambda p, h, x, m: -p + h,
    "exp": lambda p, h, x, m: (p * 0.3).exp() - 1,
    "log": lambda p, h, x, m: (p * p + 1).log(),
    "sqrt": lambda p, h, x, m: (p * p + 1).sqrt() - 1,
    "abs": lambda p, h, x, m: p.abs() - h * 0.5,
    "tanh": lambda p, h, x, m: p.tanh(),
    "sigmoid": lambda p, h, x, m: p.sigmoid() * h,
    "relu": lambda p, h, x, m: p.relu() - h.relu() * 0.5,
    "clamp": lambda p, h, x, m: p.clamp(-0.5, 0.5) + h.clamp(min=0.0) + p.clamp(max=0.2),
    "where": lambda p, h, x, m: tr.where(m.mask, p, h * 0.5) + tr.where(m.mask, 0.0, p),
    "matmul_loop": lambda p, h, x, m: (p.tanh() @ m.U2.T)[:, :H] * 0.5 + h * 0.5,
    "chunk_cat": lambda p, h, x, m: _chunk_cat(p, h, x, m),
    "split_step": lambda p, h, x, m: tr.cat([p[:, ::2], h[:, 1::2]], 1).tanh(),
    "sum_mean": lambda p, h, x, m: h * p.sum(1, keepdim=True) * 0.1 + p.mean(1, keepdim=True),
    "scalar_param": lambda p, h, x, m: p * m.s + h * m.s.exp(),
    "x_in_loop": lambda p, h, x, m: (tr.cat([x, h], 1) @ tr.cat([m.W, m.U], 1).T).tanh() + x[:, :1],
    "invariant_ops": lambda p, h, x, m: (h @ (m.U * 0.5).tanh().T + m.b.reshape(1, H)).sigmoid(),
    "state_from_x": lambda p, h, x, m: (x @ m.W.T).tanh(),
}


def _run_both(cell, x, state, lengths=None, reverse=False, rng=None):
    """Outputs and gradients of the unrolled and of the compiled run (random output weights)."""
    rng = rng or np.random.default_rng(1)
    states = list(state) if isinstance(state, tuple) else [state]
    leaves = [x, *states, *cell.parameters()]
    weights = None
    results = []
    compiled = compile_cell(cell)
    for mode in ("unrolled", "compiled"):
        for t in leaves:
            t.grad = None
        if mode == "unrolled":
            out, final = unroll(cell, x, state, lengths, reverse)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error", CompileWarning)
                res = compiled.run(x, state, lengths, reverse)
            assert res is not None
            out, final = res
            assert out.grad_fn.name == "CompiledLoop"
        finals = list(final) if isinstance(final, tuple) else [final]
        if weights is None:
            weights = [rng.standard_normal(o.shape) for o in [out, *finals]]
        loss = sum((o * tr.tensor(w)).sum() for o, w in zip([out, *finals], weights, strict=True))
        loss.backward()
        for t in leaves[1 + len(states) :]:  # parameters get gradients in their own layout
            if t.grad is not None and t.data.flags.c_contiguous:
                assert t.grad.data.flags.c_contiguous, f"{mode}: {t.shape} gradient layout"
        grads = [np.zeros_like(t.data) if t.grad is None else t.grad.data.copy() for t in leaves]
        results.append([out.data.copy(), *(f.data.copy() for f in finals), *grads])
    return results


def _assert_close(results, rtol=1e-11, atol=1e-12):
    ref, got = results
    for k, (a, b) in enumerate(zip(ref, got, strict=True)):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=f"array {k}")


def _inputs(rng, T=5, B=3, n_in=N_IN, n_states=1):
    x = tr.tensor(rng.standard_normal((T, B, n_in)), requires_grad=True)
    states = [
        tr.tensor(rng.standard_normal((B, H)) * 0.5, requires_grad=True) for _ in range(n_states)
    ]
    return x, (tuple(states) if n_states > 1 else states[0])


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_supported_op_matches_unrolled(name, python_mode):
    rng = np.random.default_rng(0)
    cell = OpCell(OPS[name], rng)
    x, h = _inputs(rng)
    _assert_close(_run_both(cell, x, h))


@pytest.mark.parametrize("lengths,reverse", [([5, 2, 0], False), ([3, 5, 1], True), (None, True)])
def test_lengths_and_reverse_match_unrolled(lengths, reverse, python_mode):
    rng = np.random.default_rng(0)
    for name in ("chunk_cat", "sum_mean", "x_in_loop"):
        cell = OpCell(OPS[name], rng)
        x, h = _inputs(rng)
        _assert_close(_run_both(cell, x, h, lengths, reverse))


# ---- the named cells ----


def MGU(rng, n_in=N_IN, n=H):
    """Minimal Gated Unit (tests/cells_from_ops.py)."""
    return cells_from_ops.MGU(rng, n_in, n)


class PeepholeLSTM(tr.nn.Module):
    """LSTM whose gates also read the cell state (Gers and Schmidhuber's peepholes)."""

    def __init__(self, rng, n_in=N_IN, n=H):
        super().__init__()
        self.w, self.u, self.b = _param(rng, 4 * n, n_in), _param(rng, 4 * n, n), _param(rng, 4 * n)
        self.p_i, self.p_f, self.p_o = _param(rng, n), _param(rng, n), _param(rng, n)

    def forward(self, x, state):
        h, c = state
        i, f, g, o = (x @ self.w.T + h @ self.u.T + self.b).chunk(4, 1)
        i = (i + self.p_i * c).sigmoid()
        f = (f + self.p_f * c).sigmoid()
        c_new = f * c + i * g.tanh()
        o = (o + self.p_o * c_new).sigmoid()
        return o * c_new.tanh(), c_new


class ElmanFromOps(tr.nn.Module):
    def __init__(self, rng, n_in=N_IN, n=H):
        super().__init__()
        self.w_ih, self.w_hh = _param(rng, n, n_in), _param(rng, n, n)
        self.b_ih, self.b_hh = _param(rng, n), _param(rng, n)

    def forward(self, x, h):
        return (x @ self.w_ih.T + self.b_ih + h @ self.w_hh.T + self.b_hh).tanh()


def LSTMFromOps(rng, n_in=N_IN, n=H):
    return cells_from_ops.LSTMFromOps(rng, n_in, n)


class GRUFromOps(tr.nn.Module):
    def __init__(self, rng, n_in=N_IN, n=H):
        super().__init__()
        self.w_ih, self.w_hh = _param(rng, 3 * n, n_in), _param(rng, 3 * n, n)
        self.b_ih, self.b_hh = _param(rng, 3 * n), _param(rng, 3 * n)

    def forward(self, x, h):
        ir, iz, i_n = (x @ self.w_ih.T + self.b_ih).chunk(3, 1)
        hr, hz, hn = (h @ self.w_hh.T + self.b_hh).chunk(3, 1)
        r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
        n = (i_n + r * hn).tanh()
        return (1 - z) * n + z * h


class SwapCell(tr.nn.Module):
    """State parts passed through and swapped: (h, c) -> (tanh(x W + c U), h)."""

    def __init__(self, rng):
        super().__init__()
        self.w, self.u = _param(rng, H, N_IN), _param(rng, H, H)

    def forward(self, x, state):
        h, c = state
        return (x @ self.w.T + c @ self.u.T).tanh(), h


def _builtin(kind, rng):
    tr.manual_seed(int(rng.integers(1000)))
    with_dtype = {"lstm": tr.nn.LSTMCell, "gru": tr.nn.GRUCell, "rnn": tr.nn.RNNCell}[kind]
    prev = tr.get_default_dtype()
    tr.set_default_dtype(tr.float64)
    try:
        return with_dtype(N_IN, H)
    finally:
        tr.set_default_dtype(prev)


NAMED = {
    "mgu": (lambda rng: MGU(rng), 1),
    "peephole": (lambda rng: PeepholeLSTM(rng), 2),
    "elman_ops": (lambda rng: ElmanFromOps(rng), 1),
    "lstm_ops": (lambda rng: LSTMFromOps(rng), 2),
    "gru_ops": (lambda rng: GRUFromOps(rng), 1),
    "swap": (lambda rng: SwapCell(rng), 2),
    "LSTMCell": (lambda rng: _builtin("lstm", rng), 2),
    "GRUCell": (lambda rng: _builtin("gru", rng), 1),
    "RNNCell": (lambda rng: _builtin("rnn", rng), 1),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_cells_match_unrolled(name, python_mode):
    rng = np.random.default_rng(2)
    make, n_states = NAMED[name]
    cell = make(rng)
    x, state = _inputs(rng, n_states=n_states)
    _assert_close(_run_both(cell, x, state, lengths=[5, 1, 3], reverse=name == "peephole"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mgu", "peephole", "elman_ops", "lstm_ops", "gru_ops"])
def test_named_cells_compiled_with_numba(name):
    """The cells the issue names, compiled for real (the fused built-in cells are compiled in
    ``EveryOp``; every cell's generated code also runs as Python above)."""
    rng = np.random.default_rng(3)
    make, n_states = NAMED[name]
    cell = make(rng)
    x, state = _inputs(rng, T=6, B=2, n_states=n_states)
    _assert_close(_run_both(cell, x, state, lengths=[6, 4]), rtol=1e-10, atol=1e-12)


class EveryOp(tr.nn.Module):
    """One compact cell using every supported op once, so one Numba compile checks every code
    template (each ``OPS`` entry alone would be a compile of its own)."""

    def __init__(self, rng):
        super().__init__()
        self.m = OpCell(None, rng)
        self.u3 = _param(rng, H, H)
        self.lstm = _builtin("lstm", rng)
        self.gru = _builtin("gru", rng)

    def forward(self, x, state):
        h, c = state
        m = self.m
        p = x @ m.W.T + h @ m.U.T + m.b
        q = _chunk_cat(p, h, x, m) + tr.cat([p[:, ::2], h[:, 1::2]], 1)
        u = (p - h) * m.v / (h * h + 1.5) + (-p) + (p * 0.3).exp() + (p * p + 1).log()
        u = u + (p * p + 1).sqrt() + p.abs() + p.relu() + p**2 * 0.1 + 2.0 ** (p * 0.1)
        u = u + (h * h + 0.5) ** p.sigmoid() + p.clamp(-0.5, 0.5) + h.clamp(min=0.0)
        u = u + p.clamp(max=0.2) + tr.where(m.mask, p, 0.5 * h) + h * p.sum(1, keepdim=True)
        u = u + p * m.s + (tr.cat([x, h], 1) @ tr.cat([m.W, m.U], 1).T) + x[:, :1]
        u = u + p.tanh() @ self.u3.T
        h2, c2 = self.lstm(x, (h, c))
        return (0.1 * u + q + h2 + self.gru(x, h)).tanh(), c2


@pytest.mark.slow
def test_every_op_compiled_with_numba():
    rng = np.random.default_rng(4)
    cell = EveryOp(rng)
    x, state = _inputs(rng, T=4, B=2, n_states=2)
    _assert_close(_run_both(cell, x, state, lengths=[4, 2], reverse=True), rtol=1e-9, atol=1e-11)


def test_free_names_are_what_post_reads_and_does_not_assign():
    from tinyrnn.compile.codegen import _free_names

    lines = [
        "    if rev:",
        "        for b in range(B):",
        "            lb = L[b]",
        "            G0 += np.outer(S[b], D[lb - 1, b])",
        "    gemm(A.T, D, G0, 1.0)",
    ]
    assert sorted(_free_names(lines)) == ["A", "B", "D", "G0", "L", "S", "rev"]
    assert _free_names([]) == []


def test_weight_gradient_products_run_outside_the_one_thread_section(monkeypatch):
    """The time loop runs with one BLAS thread; the products for the weight gradients over all
    steps (``post``) run after it, with the caller's threads, and complete the gradients."""
    depth = [0]

    @contextlib.contextmanager
    def one_thread():
        depth[0] += 1
        try:
            yield
        finally:
            depth[0] -= 1

    monkeypatch.setattr(runtime, "one_blas_thread", one_thread)
    rng = np.random.default_rng(5)
    cell = MGU(rng)
    x, h = _inputs(rng, T=4, B=3)
    fast = compile_cell(cell)
    out, _ = fast(x, h)
    (program,) = fast._plans.values()
    assert program.layout.post_args and "def post(" in program.source
    seen = []
    for name in ("bwd", "post"):
        fn = getattr(program, name)
        monkeypatch.setattr(
            program, name, lambda *a, _fn=fn, _n=name: seen.append((_n, depth[0])) or _fn(*a)
        )
    w_out = tr.tensor(rng.standard_normal(out.shape))
    (out * w_out).sum().backward()
    assert seen == [("bwd", 1), ("post", 0)]
    got = [p.grad.data.copy() for p in cell.parameters()]
    for p in cell.parameters():
        p.grad = None
    (unroll(cell, x, h)[0] * w_out).sum().backward()
    for g, p in zip(got, cell.parameters(), strict=True):
        np.testing.assert_allclose(g, p.grad.data, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_float32_compiled_matches_float64():
    rng = np.random.default_rng(4)
    cell = MGU(rng)
    x, h = _inputs(rng, T=6, B=2)
    out64 = unroll(cell, x, h)[0].data
    for p in cell.parameters():
        p.data = p.data.astype(np.float32)
    x32, h32 = tr.tensor(x.data.astype(np.float32)), tr.tensor(h.data.astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        out32 = compile_cell(cell)(x32, h32)[0]
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32.data, out64, rtol=1e-5, atol=1e-6)


def test_gradcheck_through_compiled_mgu(python_mode):
    rng = np.random.default_rng(5)
    cell = MGU(rng)
    fast = compile_cell(cell)
    x, h = _inputs(rng, T=4, B=2)

    def fn(x, h, *params):
        return fast(x, h, lengths=[4, 3])

    assert tr.autograd.gradcheck(fn, [x, h, *cell.parameters()], mode="full")


# ---- plans, caches and training ----


def test_plan_reused_across_batch_sizes_and_programs_shared(python_mode):
    rng = np.random.default_rng(6)
    cell = MGU(rng)
    fast = compile_cell(cell)
    traces = runtime.STATS["traces"]
    for B in (3, 1, 5):
        x, h = _inputs(rng, B=B)
        np.testing.assert_allclose(fast(x, h)[0].data, unroll(cell, x, h)[0].data, rtol=1e-12)
    assert runtime.STATS["traces"] == traces + 1
    built = runtime.STATS["programs_built"]
    other = compile_cell(MGU(rng))  # same structure, dtype and sizes: the same program
    other(*_inputs(rng))
    assert runtime.STATS["traces"] == traces + 2
    assert runtime.STATS["programs_built"] == built


def test_parameter_updates_are_seen_and_replacement_replans(python_mode):
    rng = np.random.default_rng(7)
    cell = MGU(rng)
    fast = compile_cell(cell)
    x, h = _inputs(rng)
    first = fast(x, h)[0].data.copy()
    cell.u_f.data += 0.5  # an optimizer step
    second = fast(x, h)[0].data
    np.testing.assert_allclose(second, unroll(cell, x, h)[0].data, rtol=1e-12, atol=1e-13)
    assert not np.allclose(first, second)
    cell.u_h = tr.nn.Parameter(tr.tensor(rng.standard_normal((H, H))))
    traces = runtime.STATS["traces"]
    np.testing.assert_allclose(
        fast(x, h)[0].data, unroll(cell, x, h)[0].data, rtol=1e-12, atol=1e-13
    )
    assert runtime.STATS["traces"] == traces + 1


def test_program_source_written_to_cache_dir(tmp_path, monkeypatch):
    """Compiled mode writes the generated source to the cache folder (plain-Python mode, also
    forced by NUMBA_DISABLE_JIT, runs it from memory and writes nothing)."""
    monkeypatch.delenv("NUMBA_DISABLE_JIT", raising=False)
    monkeypatch.setenv("TINYRNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TINYRNN_KERNELS", "numpy")
    assert runtime.cache_dir() == tmp_path
    monkeypatch.setenv("TINYRNN_KERNELS", "numba")
    names = ("fwd", "bwd", "post")
    source = "\n\n".join(f"def {f}():\n    return {i}\n" for i, f in enumerate(names))
    fwd, bwd, post, digest = runtime.load_program(source)
    assert (fwd(), bwd(), post()) == (0, 1, 2)
    assert (tmp_path / f"tinyrnn_cell_{digest}.py").read_text() == source


# ---- fallback ----


class Fallback(tr.nn.Module):
    def __init__(self, fn, rng):
        super().__init__()
        self.fn = fn
        self.u = _param(rng, H, H)
        self.w = _param(rng, H, N_IN)

    def forward(self, x, h):
        return self.fn(x @ self.w.T + h @ self.u.T, h)


FALLBACKS = {
    "op Max is not supported inside the time loop": lambda p, h: p - p.max(1, keepdim=True)[0],
    "op Reshape is not supported inside the time loop": lambda p, h: p.reshape(-1, H).tanh(),
    "changes with the inputs": lambda p, h: tr.where(h > 0, p, 0.5 * p),
    "its value would be frozen": lambda p, h: p * h.detach(),
    "different ops on different inputs": lambda p, h: p.tanh() if p.shape[0] < 3 else p.sigmoid(),
    "first axis is the batch axis": lambda p, h: (p @ h.T)[:, :1] * h,
    "the cell failed when traced": lambda p, h: p + h[:2],
}


@pytest.mark.parametrize("reason", sorted(FALLBACKS))
def test_fallback_warns_why_and_matches_unrolled(reason, python_mode):
    rng = np.random.default_rng(8)
    cell = Fallback(FALLBACKS[reason], rng)
    x, h = _inputs(rng, B=2)
    fast = compile_cell(cell)
    with pytest.warns(CompileWarning, match=f"cannot compile Fallback: .*{reason}"):
        out, final = fast(x, h)
    assert reason in fast.last_reason
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        assert fast.run(x, h) is None  # remembered: no second warning, no second trace
    ref_out, ref_final = unroll(cell, x, h)
    np.testing.assert_allclose(out.data, ref_out.data)
    np.testing.assert_allclose(final.data, ref_final.data)


def test_dropout_in_training_falls_back(python_mode):
    rng = np.random.default_rng(9)
    import tinyrnn.nn.functional as F

    cell = Fallback(lambda p, h: F.dropout(p, 0.5, True).tanh(), rng)
    x, h = _inputs(rng, B=2)
    with pytest.warns(CompileWarning, match="dropout mask"):
        compile_cell(cell)(x, h)


def test_errors():
    with pytest.raises(TypeError, match="compile_cell: expected a cell \\(a Module\\), got int"):
        compile_cell(3)
    rng = np.random.default_rng(10)
    fast = compile_cell(MGU(rng))
    with pytest.raises(TypeError, match="MGU has no initial_state\\(batch_size\\) method"):
        fast(tr.zeros(2, 1, N_IN))


# ---- nn.Recurrent(cell, compile=True) and nn.Bidirectional(..., compile=True) ----


@pytest.mark.parametrize("batch_first", [False, True])
def test_recurrent_compile_matches_unrolled(batch_first, python_mode):
    rng = np.random.default_rng(11)
    cell = PeepholeLSTM(rng)
    x = tr.tensor(
        rng.standard_normal((2, 5, N_IN) if batch_first else (5, 2, N_IN)), requires_grad=True
    )
    state = tuple(tr.tensor(rng.standard_normal((2, H)), requires_grad=True) for _ in range(2))
    results = []
    for compile_ in (False, True):
        rec = tr.nn.Recurrent(cell, batch_first=batch_first, compile=compile_, name="peep")
        for t in (x, *state, *cell.parameters()):
            t.grad = None
        with warnings.catch_warnings():
            warnings.simplefilter("error", CompileWarning)
            out, (h, c) = rec(x, state, lengths=[5, 3])
        assert _loop_scope(out) == (("peep",) if compile_ else None)
        w = np.random.default_rng(1)
        loss = sum((p * tr.tensor(w.standard_normal(p.shape))).sum() for p in (out, h, c))
        loss.backward()
        results.append(
            [out.data, h.data, c.data]
            + [t.grad.data.copy() for t in (x, *state, *cell.parameters())]
        )
    _assert_close(results)


def _loop_scope(out):
    stack, seen = [out.grad_fn], set()
    while stack:
        ctx = stack.pop()
        if id(ctx) in seen:
            continue
        seen.add(id(ctx))
        if ctx.name == "CompiledLoop":
            return ctx.scope
        stack.extend(p._ctx for p in ctx.parents if getattr(p, "_ctx", None) is not None)
    return None


def test_bidirectional_compile_and_unbatched(python_mode):
    rng = np.random.default_rng(12)
    f_cell, b_cell = MGU(rng), GRUFromOps(rng)
    x = tr.tensor(rng.standard_normal((6, 2, N_IN)))
    state = (tr.zeros(2, H, dtype=tr.float64), tr.ones(2, H, dtype=tr.float64) * 0.1)
    ref = tr.nn.Bidirectional(f_cell, b_cell)(x, state, lengths=[6, 2])
    got = tr.nn.Bidirectional(f_cell, b_cell, compile=True)(x, state, lengths=[6, 2])
    np.testing.assert_allclose(got[0].data, ref[0].data, rtol=1e-12, atol=1e-13)
    for a, b in zip(got[1], ref[1], strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-13)
    rec = tr.nn.Recurrent(f_cell, compile=True)
    out, h = rec(x[:, 0], tr.zeros(H, dtype=tr.float64))  # one unbatched sequence
    ref_out, ref_h = tr.nn.Recurrent(f_cell)(x[:, 0], tr.zeros(H, dtype=tr.float64))
    assert out.shape == (6, H) and h.shape == (H,)
    np.testing.assert_allclose(out.data, ref_out.data, rtol=1e-12, atol=1e-13)


def test_recurrent_compile_falls_back_with_warning(python_mode):
    rng = np.random.default_rng(13)
    cell = Fallback(FALLBACKS["op Max is not supported inside the time loop"], rng)
    x, h = _inputs(rng, B=2)
    rec = tr.nn.Recurrent(cell, compile=True, name="fb")
    with pytest.warns(CompileWarning, match="op Max is not supported"):
        out, _ = rec(x, h)
    assert out.grad_fn.name != "CompiledLoop"
    np.testing.assert_allclose(out.data, tr.nn.Recurrent(cell)(x, h)[0].data)


def test_tensor_with_history_from_outside_falls_back(python_mode):
    rng = np.random.default_rng(14)
    w = _param(rng, H, H)
    outside = w * 2.0  # has a gradient history that began before the step

    class Closure(tr.nn.Module):
        def forward(self, x, h):
            return (h @ outside.T + x.sum(1, keepdim=True)).tanh()

    x, h = _inputs(rng, B=2)
    with pytest.warns(CompileWarning, match="reads a tensor with a gradient history .* Mul"):
        out, _ = compile_cell(Closure())(x, h)
    np.testing.assert_allclose(out.data, unroll(Closure(), x, h)[0].data)


def test_compile_cell_is_exported_at_top_level():
    import tinyrnn.compile

    assert tr.compile_cell is tinyrnn.compile.compile_cell

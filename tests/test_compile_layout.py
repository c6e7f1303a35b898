"""Compiled cells with the per-step matrix products run transposed (``W^T h^T`` instead of
``h W``, which packed BLAS runs faster for large matrices from ``B >= 16`` on), against the
unrolled graph. The rule (``codegen._big``) takes matrices far larger than a test needs, so
these tests widen it to every product and check that the generated source has the transposed
products; the other tests take the plain ones. In float32, where ``kernels.gemm`` has the
unpacked kernel (``DIRECT``), every product is plain whatever the rule says."""

from __future__ import annotations

import cells_from_ops
import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn.compile import codegen, compile_cell, unroll

B, H, N_IN, T = 16, 96, 5, 3


def LSTMFromOps(rng):
    return cells_from_ops.LSTMFromOps(rng, N_IN, H, scale=0.3)


def MGU(rng):
    return cells_from_ops.MGU(rng, N_IN, H, scale=0.3)


@pytest.fixture
def transposed(monkeypatch):
    """Every product of a generated program takes the transposed form (at ``B >= 16``)."""
    monkeypatch.setattr(codegen, "_big", lambda n, backward=False: True)


def _check(cell, n_states, lengths, reverse):
    rng = np.random.default_rng(7)
    x = tr.tensor(rng.standard_normal((T, B, N_IN)), requires_grad=True)
    states = [tr.tensor(rng.standard_normal((B, H)), requires_grad=True) for _ in range(n_states)]
    state = tuple(states) if n_states > 1 else states[0]
    leaves = [x, *states, *cell.parameters()]
    w_out = rng.standard_normal((T, B, H))
    w_fin = [rng.standard_normal((B, H)) for _ in range(n_states)]
    fast = compile_cell(cell)
    results = []
    for run in (fast.run, lambda x, s, L, r: unroll(cell, x, s, L, r)):
        for t in leaves:
            t.grad = None
        out, final = run(x, state, lengths, reverse)
        if run is fast.run:
            assert out.grad_fn.name == "CompiledLoop"
            (program,) = fast._plans.values()
            assert "gemm(PT" in program.source and "gemm(P0, " in program.source
        finals = list(final) if n_states > 1 else [final]
        loss = (out * tr.tensor(w_out)).sum()
        for f, w in zip(finals, w_fin, strict=True):
            loss = loss + (f * tr.tensor(w)).sum()
        loss.backward()
        results.append([out.data.copy(), *(t.grad.data.copy() for t in leaves)])
    for a, b in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
def test_transposed_products_match_unrolled_python(monkeypatch, transposed, reverse):
    monkeypatch.setenv("TINYRNN_KERNELS", "numpy")
    rng = np.random.default_rng(0)
    _check(LSTMFromOps(rng), 2, [3, 1, 2, 3] * 4, reverse)
    _check(MGU(rng), 1, None, reverse)


@pytest.mark.slow
def test_transposed_products_match_unrolled_numba(transposed):
    rng = np.random.default_rng(1)
    _check(LSTMFromOps(rng), 2, [3, 1, 2, 3] * 4, True)
    _check(MGU(rng), 1, None, False)


@pytest.mark.parametrize("direct", [False, True])
def test_float32_products_are_plain_with_the_unpacked_kernel(monkeypatch, transposed, direct):
    """The generated float32 source has the transposed forward product exactly when the
    unpacked kernel is absent (``DIRECT`` is read when the source is generated), and both
    programs agree with the unrolled graph to float32 round-off (run as Python: the
    compiled products are the float32 compile tests')."""
    monkeypatch.setenv("TINYRNN_KERNELS", "numpy")
    monkeypatch.setattr(codegen._gemm, "DIRECT", direct)
    rng = np.random.default_rng(3)
    cell = LSTMFromOps(rng)
    for p in cell.parameters():
        p.data = p.data.astype(np.float32)
    x = tr.tensor(rng.standard_normal((T, B, N_IN)).astype(np.float32))
    state = tuple(tr.tensor(rng.standard_normal((B, H)).astype(np.float32)) for _ in range(2))
    fast = compile_cell(cell)
    program = fast.plan(x, list(state), True)
    assert program is not None
    assert ("gemm(PT" in program.source) == (not direct)
    w_out = tr.tensor(rng.standard_normal((T, B, H)).astype(np.float32))
    grads = []
    for run in (fast.run, lambda x, s: unroll(cell, x, s)):
        for p in cell.parameters():
            p.grad = None
        out, _ = run(x, state)
        (out * w_out).sum().backward()
        grads.append([out.data.copy(), *(p.grad.data.copy() for p in cell.parameters())])
    for a, b in zip(grads[1], grads[0], strict=True):
        np.testing.assert_allclose(b, a, rtol=2e-4, atol=2e-4)

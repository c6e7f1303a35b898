"""Compiled cells at a size where the per-step matrix products run transposed (``B >= 16``
and a matrix of at least 32768 entries: ``W^T h^T`` instead of ``h W``, which BLAS runs
faster), against the unrolled graph. The other tests use small batches and matrices, which
take the plain products; the MGU here (96 x 96 matrices) does too, at this batch size."""

from __future__ import annotations

import cells_from_ops
import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn.compile import compile_cell, unroll

B, H, N_IN, T = 16, 96, 5, 3


def LSTMFromOps(rng):
    return cells_from_ops.LSTMFromOps(rng, N_IN, H, scale=0.3)


def MGU(rng):
    return cells_from_ops.MGU(rng, N_IN, H, scale=0.3)


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
        finals = list(final) if n_states > 1 else [final]
        loss = (out * tr.tensor(w_out)).sum()
        for f, w in zip(finals, w_fin, strict=True):
            loss = loss + (f * tr.tensor(w)).sum()
        loss.backward()
        results.append([out.data.copy(), *(t.grad.data.copy() for t in leaves)])
    for a, b in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
def test_transposed_products_match_unrolled_python(monkeypatch, reverse):
    monkeypatch.setenv("TINYRNN_KERNELS", "numpy")
    rng = np.random.default_rng(0)
    _check(LSTMFromOps(rng), 2, [3, 1, 2, 3] * 4, reverse)
    _check(MGU(rng), 1, None, reverse)


@pytest.mark.slow
def test_transposed_products_match_unrolled_numba():
    rng = np.random.default_rng(1)
    _check(LSTMFromOps(rng), 2, [3, 1, 2, 3] * 4, True)
    _check(MGU(rng), 1, None, False)

"""The seed article's worked RNN example, run by the engine at the Value and the Tensor level.

    h_t = tanh(W_h x_t + U_h h_{t-1} + b_h),  W_h = [[0.5, 0.2], [0.3, 0.8]],
    U_h = [[0.1, 0.4], [0.6, 0.7]],  b_h = [0.1, 0.2],  x_1 = [1, 0],  x_2 = [0, 1],  h_0 = 0.

By hand: W_h x_1 + b_h = (0.5 + 0.1, 0.3 + 0.2) = (0.6, 0.5), so h_1 = (tanh 0.6, tanh 0.5)
= (0.53705, 0.46212), which the article rounds to (0.537, 0.462). Then

    U_h h_1 = (0.1 * 0.53705 + 0.4 * 0.46212, 0.6 * 0.53705 + 0.7 * 0.46212) = (0.23855, 0.64571),

not the article's (0.1854, 0.7552), so the pre-activation of step 2 is (0.2 + 0.23855 + 0.1,
0.8 + 0.64571 + 0.2) = (0.53855, 1.64571) and h_2 = (0.49189, 0.92827), not (0.515, 0.942).
The tests below derive these numbers independently (plain arithmetic and NumPy) and check the
engine against them; the gradients of a loss on h_2 are checked by gradcheck, by a hand-written
NumPy backpropagation through time, and between the Value and Tensor engines.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinyrnn as tr

W_H = [[0.5, 0.2], [0.3, 0.8]]
U_H = [[0.1, 0.4], [0.6, 0.7]]
B_H = [0.1, 0.2]
XS = [[1.0, 0.0], [0.0, 1.0]]
V = [0.7, -1.3]  # loss L = V . h_2 (fixed, non-uniform output weights)


# ---- independent derivations ----


def _by_hand():
    """Plain arithmetic, written out element by element as in the article."""
    h1 = [math.tanh(0.5 * 1 + 0.2 * 0 + 0.1), math.tanh(0.3 * 1 + 0.8 * 0 + 0.2)]
    uh1 = [0.1 * h1[0] + 0.4 * h1[1], 0.6 * h1[0] + 0.7 * h1[1]]
    pre2 = [0.5 * 0 + 0.2 * 1 + uh1[0] + 0.1, 0.3 * 0 + 0.8 * 1 + uh1[1] + 0.2]
    return h1, uh1, pre2, [math.tanh(pre2[0]), math.tanh(pre2[1])]


def _numpy_forward(w, u, b):
    hs = [np.zeros(2)]
    for x in XS:
        hs.append(np.tanh(w @ np.array(x) + u @ hs[-1] + b))
    return hs


def _numpy_bptt(w, u, b):
    """Hand-written backpropagation through time of L = V . h_2."""
    hs = _numpy_forward(w, u, b)
    dw, du, db = np.zeros((2, 2)), np.zeros((2, 2)), np.zeros(2)
    dh = np.array(V)
    for t in (2, 1):
        da = dh * (1 - hs[t] ** 2)
        dw += np.outer(da, XS[t - 1])
        du += np.outer(da, hs[t - 1])
        db += da
        dh = u.T @ da
    return dw, du, db


def test_hand_derivation_matches_numpy_and_corrects_the_article():
    h1, uh1, pre2, h2 = _by_hand()
    hs = _numpy_forward(np.array(W_H), np.array(U_H), np.array(B_H))
    np.testing.assert_allclose(hs[1], h1, rtol=1e-15)
    np.testing.assert_allclose(hs[2], h2, rtol=1e-15)
    assert h1 == pytest.approx([0.537, 0.462], abs=5e-4)  # the article's h_1 is right
    assert uh1 == pytest.approx([0.23855, 0.64571], abs=1e-5)  # article: (0.1854, 0.7552)
    assert pre2 == pytest.approx([0.53855, 1.64571], abs=1e-5)  # article: (0.5702, 1.7552)
    assert h2 == pytest.approx([0.49189, 0.92827], abs=1e-5)  # article: (0.515, 0.942)
    assert abs(h2[0] - 0.515) > 0.02 and abs(h2[1] - 0.942) > 0.01


# ---- the engine, at the Tensor level ----


def _tensor_rnn(w, u, b):
    h = tr.zeros(2, dtype=tr.float64)
    hs = []
    for x in XS:
        h = (w @ tr.tensor(x, dtype=tr.float64) + u @ h + b).tanh()
        hs.append(h)
    return hs


def _params():
    return [tr.tensor(p, dtype=tr.float64, requires_grad=True) for p in (W_H, U_H, B_H)]


def test_tensor_forward_matches_the_derivation():
    h1, _, _, h2 = _by_hand()
    got1, got2 = _tensor_rnn(*_params())
    np.testing.assert_allclose(got1.data, h1, rtol=1e-14)
    np.testing.assert_allclose(got2.data, h2, rtol=1e-14)


def test_tensor_forward_in_float32():
    w, u, b = (tr.tensor(p) for p in (W_H, U_H, B_H))
    h = tr.zeros(2)
    for x in XS:
        h = (w @ tr.tensor(x) + u @ h + b).tanh()
    assert h.dtype == tr.float32
    np.testing.assert_allclose(h.data, _by_hand()[3], rtol=1e-6)


def test_tensor_gradients_by_gradcheck_and_by_hand():
    w, u, b = _params()
    loss = (_tensor_rnn(w, u, b)[1] * tr.tensor(V, dtype=tr.float64)).sum()
    loss.backward()
    dw, du, db = _numpy_bptt(np.array(W_H), np.array(U_H), np.array(B_H))
    np.testing.assert_allclose(w.grad.data, dw, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(u.grad.data, du, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(b.grad.data, db, rtol=1e-13, atol=1e-15)
    # gradcheck weights h_2 (and h_1) with random output weights of its own
    assert tr.autograd.gradcheck(lambda *p: _tensor_rnn(*p)[1], _params())
    assert tr.autograd.gradcheck(lambda *p: tuple(_tensor_rnn(*p)), _params())


# ---- the engine, at the Value level ----


def _value_rnn(w, u, b):
    """The same recurrence with one Value per number: sums of products, then tanh."""
    h = [0.0, 0.0]
    hs = []
    for x in XS:
        h = [
            (sum(w[i][j] * x[j] for j in range(2)) + sum(u[i][j] * h[j] for j in range(2)) + b[i])
            .tanh()
            for i in range(2)
        ]
        hs.append(h)
    return hs


def _value_params():
    w = [[tr.Value(v, label=f"W{i}{j}") for j, v in enumerate(row)] for i, row in enumerate(W_H)]
    u = [[tr.Value(v, label=f"U{i}{j}") for j, v in enumerate(row)] for i, row in enumerate(U_H)]
    b = [tr.Value(v, label=f"b{i}") for i, v in enumerate(B_H)]
    return w, u, b


def test_value_forward_matches_the_derivation():
    h1, _, _, h2 = _by_hand()
    got1, got2 = _value_rnn(*_value_params())
    assert [v.data for v in got1] == pytest.approx(h1, rel=1e-14)
    assert [v.data for v in got2] == pytest.approx(h2, rel=1e-14)


def test_value_gradients_equal_tensor_gradients():
    w, u, b = _value_params()
    h2 = _value_rnn(w, u, b)[1]
    (h2[0] * V[0] + h2[1] * V[1]).backward()
    wt, ut, bt = _params()
    (_tensor_rnn(wt, ut, bt)[1] * tr.tensor(V, dtype=tr.float64)).sum().backward()
    np.testing.assert_allclose([[v.grad for v in row] for row in w], wt.grad.data, rtol=1e-13)
    np.testing.assert_allclose([[v.grad for v in row] for row in u], ut.grad.data, rtol=1e-13)
    np.testing.assert_allclose([v.grad for v in b], bt.grad.data, rtol=1e-13)
    assert all(v.grad != 0.0 for row in u for v in row)  # h_1 feeds step 2: U_h gets gradient

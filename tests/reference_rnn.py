"""Hand-written NumPy forward passes and BPTT for the vanilla RNN and the LSTM.

Independent of tinyrnn (no autograd, no shared code): every gradient below is written out by
hand, in the style of Karpathy's min-char-rnn, so agreement with tinyrnn's unrolled-graph
gradients is evidence that both are right. Shapes: ``xs`` (T, B, I), states (B, H); weights in
PyTorch's layout (``W_ih`` (G*H, I), ``W_hh`` (G*H, H), biases (G*H,)), LSTM gates i, f, g, o.

The loss is taken to be ``sum_t <dhs[t], h_t> + <dh_T, h_T> (+ <dc_T, c_T>)`` for given
cotangents, so callers can use random output weights.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ---- vanilla RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) ----


def rnn_forward(xs, h0, W_ih, W_hh, b_ih, b_hh):
    """Returns hs (T, B, H) and the cache for ``rnn_backward``."""
    hs = []
    h = h0
    for x in xs:
        h = np.tanh(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        hs.append(h)
    return np.stack(hs), (xs, h0, W_ih, W_hh, np.stack(hs))


def rnn_backward(cache, dhs, dh_last):
    """BPTT: gradients of the loss w.r.t. W_ih, W_hh, b_ih, b_hh, xs and h0."""
    xs, h0, W_ih, W_hh, hs = cache
    dW_ih, dW_hh = np.zeros_like(W_ih), np.zeros_like(W_hh)
    db = np.zeros(W_ih.shape[0])
    dxs = np.zeros_like(xs)
    dh_next = dh_last.copy()
    for t in reversed(range(len(xs))):
        dh = dhs[t] + dh_next
        dpre = dh * (1.0 - hs[t] ** 2)  # tanh'
        h_prev = hs[t - 1] if t > 0 else h0
        dW_ih += dpre.T @ xs[t]
        dW_hh += dpre.T @ h_prev
        db += dpre.sum(axis=0)
        dxs[t] = dpre @ W_ih
        dh_next = dpre @ W_hh
    return {"W_ih": dW_ih, "W_hh": dW_hh, "b_ih": db, "b_hh": db.copy(), "xs": dxs, "h0": dh_next}


# ---- LSTM ----


def lstm_forward(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    """Returns hs (T, B, H), the final cell state c_T, and the cache for ``lstm_backward``."""
    H = h0.shape[1]
    h, c = h0, c0
    hs, steps = [], []
    for x in xs:
        a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
        i = sigmoid(a[:, :H])
        f = sigmoid(a[:, H : 2 * H])
        g = np.tanh(a[:, 2 * H : 3 * H])
        o = sigmoid(a[:, 3 * H :])
        c_prev, h_prev = c, h
        c = f * c_prev + i * g
        h = o * np.tanh(c)
        hs.append(h)
        steps.append((x, h_prev, c_prev, i, f, g, o, c))
    return np.stack(hs), c, (steps, W_ih, W_hh)


def lstm_backward(cache, dhs, dh_last, dc_last):
    """BPTT: gradients w.r.t. W_ih, W_hh, b_ih, b_hh, xs, h0 and c0."""
    steps, W_ih, W_hh = cache
    dW_ih, dW_hh = np.zeros_like(W_ih), np.zeros_like(W_hh)
    db = np.zeros(W_ih.shape[0])
    dxs = []
    dh_next, dc_next = dh_last.copy(), dc_last.copy()
    for t in reversed(range(len(steps))):
        x, h_prev, c_prev, i, f, g, o, c = steps[t]
        dh = dhs[t] + dh_next
        tc = np.tanh(c)
        do = dh * tc
        dc = dc_next + dh * o * (1.0 - tc**2)
        di, df, dg = dc * g, dc * c_prev, dc * i
        da = np.concatenate(
            [di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)], axis=1
        )
        dW_ih += da.T @ x
        dW_hh += da.T @ h_prev
        db += da.sum(axis=0)
        dxs.append(da @ W_ih)
        dh_next = da @ W_hh
        dc_next = dc * f
    return {
        "W_ih": dW_ih,
        "W_hh": dW_hh,
        "b_ih": db,
        "b_hh": db.copy(),
        "xs": np.stack(dxs[::-1]),
        "h0": dh_next,
        "c0": dc_next,
    }

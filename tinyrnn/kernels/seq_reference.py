"""Plain-NumPy whole-sequence kernels for the built-in recurrent layers: the specification of
``seq_jit.py`` (same names, signatures and results).

One call runs the time loop of one layer and direction, forward or backward. The input
projection ``xp = x W_ih^T + b_ih (+ b_hh)`` for all steps and the weight gradients are single
large matrix products done by the caller (``ops.sequence``); these kernels do what must happen
step by step: the recurrent product ``h W_hh^T``, the gate maths, the lengths masks, and in
backward the product ``dgates W_hh`` that carries the gradient to the previous step.

Shapes: ``T`` steps, ``B`` batch, ``H`` hidden, ``G`` gate width (``H``, ``4H`` for LSTM, ``3H``
for GRU). Arrays are time-major and C-contiguous. ``lengths`` (B,) int64: step ``t`` of sequence
``b`` is real when ``t < lengths[b]``; a finished sequence keeps its state and outputs zeros, so
``h_n`` is the state after its last real step. With ``reverse`` the loop runs from ``T - 1`` down
to 0 (each sequence then starts at its own last real step, as PyTorch's packed sequences).

In the backward kernels ``grad_out``, the gradient of every step's output, may also be one
(1, 1, H) row broadcast over all steps and sequences: a zero row when nothing used the outputs.

The large arrays a kernel fills are passed in (``out``, ``hprev``, ... and ``dgates``, ...) so
that the caller can reuse memory from call to call; whatever they hold is overwritten.
"""

from __future__ import annotations

import numpy as np


def _order(T, reverse, backward=False):
    """Time steps in processing order (forward pass), or in the reverse of it (backward pass)."""
    forward_order = range(T - 1, -1, -1) if reverse else range(T)
    return reversed(forward_order) if backward else forward_order


def _sig(x):
    with np.errstate(over="ignore"):  # exp(-x) = inf for x << 0 gives the right limit, 0
        return 1 / (1 + np.exp(-x))


# ---- Elman RNN ----


def rnn_seq_fwd(xp, h0, w_hh, bias, lengths, reverse, relu, out, hprev):
    """h_t = act(xp_t + bias + h_{t-1} W_hh^T), act = relu if ``relu`` else tanh.

    Args: xp (T, B, H) = x W_ih^T; h0 (B, H); w_hh (H, H); bias (H,) = b_ih + b_hh;
    lengths (B,); out, hprev (T, B, H) to fill.
    Returns: (out (T, B, H) zero past each sequence's end, h_n (B, H), hprev (T, B, H) the
    state entering every step).
    """
    T = xp.shape[0]
    h = h0.copy()
    for t in _order(T, reverse):
        live = (lengths > t)[:, None]
        hprev[t] = h
        pre = xp[t] + bias + h @ w_hh.T
        new = np.maximum(pre, 0) if relu else np.tanh(pre)
        h = np.where(live, new, h)
        out[t] = np.where(live, new, 0)
    return out, h, hprev


def rnn_seq_bwd(out, w_hh, grad_out, grad_hn, lengths, reverse, relu, record, dpre):
    """Backward of ``rnn_seq_fwd`` from its outputs' gradients.

    dpre_t = (grad_out_t + dh_t) * act'(h_t);  dh_{t-1} = dpre_t W_hh (past-the-end steps pass
    dh through unchanged).
    Returns: (dpre (T, B, H) the gradient of the pre-activations, dh0 (B, H), grad_h): with
    ``record``, grad_h (T, B, H) is the whole gradient reaching each step's output h_t
    (zero past a sequence's end; graph pictures show it), else an empty (0, B, H) array.
    dpre (T, B, H) is the array to fill.
    """
    T = out.shape[0]
    grad_h = np.zeros((T if record else 0,) + out.shape[1:], out.dtype)
    dh = grad_hn.copy()
    for t in _order(T, reverse, backward=True):
        live = (lengths > t)[:, None]
        y = out[t]
        deriv = (y > 0).astype(y.dtype) if relu else 1 - y * y
        if record:
            grad_h[t] = np.where(live, dh + grad_out[t % len(grad_out)], 0)
        dp = np.where(live, (dh + grad_out[t % len(grad_out)]) * deriv, 0)
        dpre[t] = dp
        dh = np.where(live, dp @ w_hh, dh)
    return dpre, dh, grad_h


# ---- LSTM ----


def lstm_seq_fwd(xp, h0, c0, w_hh, bias, lengths, reverse, out, hprev, cprev, tanh_c):
    """[i, f, g, o] = xp_t + bias + h_{t-1} W_hh^T; i, f, o = sigmoid, g = tanh;
    c_t = f c_{t-1} + i g;  h_t = o tanh(c_t).

    Args: xp (T, B, 4H) = x W_ih^T, overwritten with the activated gates (returned as
    ``acts``: the projection is not needed after the step that reads it, and reusing its
    memory saves an allocation as large); h0, c0 (B, H); w_hh (4H, H); bias (4H,) =
    b_ih + b_hh; lengths (B,); out, hprev, cprev, tanh_c (T, B, H) to fill.
    Returns: (out (T, B, H), h_n, c_n (B, H), acts (T, B, 4H) activated gates, hprev and cprev
    (T, B, H) the states entering every step, tanh_c (T, B, H) = tanh(c_t)).
    """
    T, B, G = xp.shape
    H = G // 4
    acts = xp
    h, c = h0.copy(), c0.copy()
    for t in _order(T, reverse):
        live = (lengths > t)[:, None]
        hprev[t], cprev[t] = h, c
        gates = xp[t] + bias + h @ w_hh.T
        a = acts[t]
        a[:, : 2 * H] = _sig(gates[:, : 2 * H])
        a[:, 2 * H : 3 * H] = np.tanh(gates[:, 2 * H : 3 * H])
        a[:, 3 * H :] = _sig(gates[:, 3 * H :])
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        c_new = f * c + i * g
        tanh_c[t] = np.tanh(c_new)
        h_new = o * tanh_c[t]
        h = np.where(live, h_new, h)
        c = np.where(live, c_new, c)
        out[t] = np.where(live, h_new, 0)
    return out, h, c, acts, hprev, cprev, tanh_c


def lstm_seq_bwd(
    acts, cprev, tanh_c, w_hh, grad_out, grad_hn, grad_cn, lengths, reverse, record, dgates
):
    """Backward of ``lstm_seq_fwd``::

        dh = grad_out_t + dh_t;  dc = dc_t + dh o (1 - tanh(c_t)^2)
        dgates = [dc g i(1-i), dc c_{t-1} f(1-f), dc i (1-g^2), dh tanh(c_t) o(1-o)]
        dh_{t-1} = dgates W_hh;  dc_{t-1} = dc f

    Returns: (dgates (T, B, 4H), dh0 (B, H), dc0 (B, H), grad_h), grad_h as in
    ``rnn_seq_bwd``; dgates is the array to fill.
    """
    T, B, G = acts.shape
    H = G // 4
    grad_h = np.zeros((T if record else 0, B, H), acts.dtype)
    dh, dc = grad_hn.copy(), grad_cn.copy()
    for t in _order(T, reverse, backward=True):
        live = (lengths > t)[:, None]
        a = acts[t]
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        tc = tanh_c[t]
        gh = dh + grad_out[t % len(grad_out)]
        if record:
            grad_h[t] = np.where(live, gh, 0)
        dct = dc + gh * o * (1 - tc * tc)
        d = np.concatenate(
            [
                dct * g * i * (1 - i),
                dct * cprev[t] * f * (1 - f),
                dct * i * (1 - g * g),
                gh * tc * o * (1 - o),
            ],
            axis=1,
        )
        d = np.where(live, d, 0)
        dgates[t] = d
        dh = np.where(live, d @ w_hh, dh)
        dc = np.where(live, dct * f, dc)
    return dgates, dh, dc, grad_h


# ---- GRU ----


def gru_seq_fwd(xp, h0, w_hh, b_ih, b_hh, lengths, reverse, out, hprev, ghn):
    """PyTorch's GRU: gi = xp_t + b_ih, gh = h_{t-1} W_hh^T + b_hh; r = sigmoid(gi_r + gh_r),
    z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r gh_n), h_t = (1 - z) n + z h_{t-1}.

    Args: xp (T, B, 3H) = x W_ih^T, overwritten with the activated gates (returned as
    ``acts``); h0 (B, H); w_hh (3H, H); b_ih, b_hh (3H,); lengths (B,); out, hprev, ghn
    (T, B, H) to fill.
    Returns: (out (T, B, H), h_n (B, H), acts (T, B, 3H) = [r, z, n], hprev (T, B, H),
    ghn (T, B, H) the n-part of gh).
    """
    T, B, G = xp.shape
    H = G // 3
    acts = xp
    h = h0.copy()
    for t in _order(T, reverse):
        live = (lengths > t)[:, None]
        hprev[t] = h
        gh = h @ w_hh.T + b_hh
        gi = xp[t] + b_ih
        a = acts[t]
        a[:, : 2 * H] = _sig(gi[:, : 2 * H] + gh[:, : 2 * H])
        r, z = a[:, :H], a[:, H : 2 * H]
        a[:, 2 * H :] = np.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
        ghn[t] = gh[:, 2 * H :]
        h_new = (1 - z) * a[:, 2 * H :] + z * h
        h = np.where(live, h_new, h)
        out[t] = np.where(live, h_new, 0)
    return out, h, acts, hprev, ghn


def gru_seq_bwd(acts, ghn, hprev, w_hh, grad_out, grad_hn, lengths, reverse, record, dgi, dgh):
    """Backward of ``gru_seq_fwd``::

        dh = grad_out_t + dh_t;  dn = dh (1 - z)(1 - n^2);  dz = dh (h_{t-1} - n) z(1-z)
        dr = dn gh_n r(1-r);  dgi = [dr, dz, dn];  dgh = [dr, dz, dn r]
        dh_{t-1} = dgh W_hh + dh z

    Returns: (dgi (T, B, 3H) the gradient of gi, dgh (T, B, 3H) the gradient of gh (it differs
    from dgi in its n-part, dn r), dh0 (B, H), grad_h as in ``rnn_seq_bwd``); dgi and dgh are
    the arrays to fill.
    """
    T, B, G = acts.shape
    H = G // 3
    grad_h = np.zeros((T if record else 0, B, H), acts.dtype)
    dh = grad_hn.copy()
    for t in _order(T, reverse, backward=True):
        live = (lengths > t)[:, None]
        a = acts[t]
        r, z, n = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
        g = dh + grad_out[t % len(grad_out)]
        if record:
            grad_h[t] = np.where(live, g, 0)
        dn = g * (1 - z) * (1 - n * n)
        dz = g * (hprev[t] - n) * z * (1 - z)
        dr = dn * ghn[t] * r * (1 - r)
        di = np.where(live, np.concatenate([dr, dz, dn], axis=1), 0)
        dhh = np.where(live, np.concatenate([dr, dz, dn * r], axis=1), 0)
        dgi[t], dgh[t] = di, dhh
        dh = np.where(live, dhh @ w_hh + g * z, dh)
    return dgi, dgh, dh, grad_h

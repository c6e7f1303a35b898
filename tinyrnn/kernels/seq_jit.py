"""Numba-jitted whole-sequence kernels, twins of ``seq_reference.py`` (same names, signatures and
results up to round-off).

The whole time loop runs inside one compiled call: the recurrent matrix products go to BLAS
through ``np.dot`` (Numba links SciPy's BLAS for it, hence SciPy as a dependency), written into
preallocated buffers, and the gate maths is one pass per step with no temporaries. So a step
costs a BLAS call and a loop, with no Python in between: this is what makes small batches fast.

``tanh`` is computed as ``2 / (1 + exp(-2x)) - 1``: without a vector maths library Numba calls
libm's scalar ``tanh``, which measured about three times slower than ``exp`` on the project
machine; the identity costs at most a few units of round-off in the last place near 0.
"""

from __future__ import annotations

import numba
import numpy as np


def _njit(fn):
    """``numba.njit(cache=True)``, falling back to no cache where no cache locator is writable."""
    try:
        return numba.njit(cache=True)(fn)
    except RuntimeError:
        return numba.njit(cache=False)(fn)


@_njit
def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


@_njit
def _tanh(v):
    return 2.0 / (1.0 + np.exp(-2.0 * v)) - 1.0


# ---- Elman RNN ----


@_njit
def rnn_seq_fwd(xp, h0, w_hh, lengths, reverse, relu):
    """h_t = act(xp_t + h_{t-1} W_hh^T); see ``seq_reference.rnn_seq_fwd``."""
    T, B, H = xp.shape
    out = np.zeros_like(xp)
    hprev = np.empty_like(xp)
    h = h0.copy()
    gh = np.empty((B, H), xp.dtype)
    wt = w_hh.T
    for s in range(T):
        t = T - 1 - s if reverse else s
        hprev[t] = h
        np.dot(h, wt, gh)
        for b in range(B):
            if t < lengths[b]:
                for k in range(H):
                    v = xp[t, b, k] + gh[b, k]
                    y = (v if v > 0 else 0.0) if relu else _tanh(v)
                    h[b, k] = y
                    out[t, b, k] = y
    return out, h, hprev


@_njit
def rnn_seq_bwd(out, w_hh, grad_out, grad_hn, lengths, reverse, relu):
    """Backward of ``rnn_seq_fwd``; see ``seq_reference.rnn_seq_bwd``."""
    T, B, H = out.shape
    dpre = np.zeros_like(out)
    dh = grad_hn.copy()
    tmp = np.empty((B, H), out.dtype)
    for s in range(T):
        t = s if reverse else T - 1 - s
        dp = dpre[t]
        for b in range(B):
            if t < lengths[b]:
                for k in range(H):
                    y = out[t, b, k]
                    deriv = (1.0 if y > 0 else 0.0) if relu else 1.0 - y * y
                    dp[b, k] = (dh[b, k] + grad_out[t, b, k]) * deriv
        np.dot(dp, w_hh, tmp)
        for b in range(B):
            if t < lengths[b]:
                for k in range(H):
                    dh[b, k] = tmp[b, k]
    return dpre, dh


# ---- LSTM ----


@_njit
def lstm_seq_fwd(xp, h0, c0, w_hh, lengths, reverse):
    """LSTM over the sequence; see ``seq_reference.lstm_seq_fwd``."""
    T, B, G = xp.shape
    H = G // 4
    out = np.zeros((T, B, H), xp.dtype)
    acts = np.empty_like(xp)
    hprev = np.empty((T, B, H), xp.dtype)
    cprev = np.empty_like(hprev)
    tanh_c = np.empty_like(hprev)
    h = h0.copy()
    c = c0.copy()
    gates = np.empty((B, G), xp.dtype)
    wt = w_hh.T
    for s in range(T):
        t = T - 1 - s if reverse else s
        hprev[t] = h
        cprev[t] = c
        np.dot(h, wt, gates)
        for b in range(B):
            live = t < lengths[b]
            for k in range(H):
                i = _sig(xp[t, b, k] + gates[b, k])
                f = _sig(xp[t, b, H + k] + gates[b, H + k])
                g = _tanh(xp[t, b, 2 * H + k] + gates[b, 2 * H + k])
                o = _sig(xp[t, b, 3 * H + k] + gates[b, 3 * H + k])
                acts[t, b, k] = i
                acts[t, b, H + k] = f
                acts[t, b, 2 * H + k] = g
                acts[t, b, 3 * H + k] = o
                cn = f * c[b, k] + i * g
                tc = _tanh(cn)
                tanh_c[t, b, k] = tc
                if live:
                    hn = o * tc
                    h[b, k] = hn
                    c[b, k] = cn
                    out[t, b, k] = hn
    return out, h, c, acts, hprev, cprev, tanh_c


@_njit
def lstm_seq_bwd(acts, cprev, tanh_c, w_hh, grad_out, grad_hn, grad_cn, lengths, reverse):
    """Backward of ``lstm_seq_fwd``; see ``seq_reference.lstm_seq_bwd``."""
    T, B, G = acts.shape
    H = G // 4
    dgates = np.zeros_like(acts)
    dh = grad_hn.copy()
    dc = grad_cn.copy()
    tmp = np.empty((B, H), acts.dtype)
    for s in range(T):
        t = s if reverse else T - 1 - s
        d = dgates[t]
        for b in range(B):
            if t < lengths[b]:
                for k in range(H):
                    i = acts[t, b, k]
                    f = acts[t, b, H + k]
                    g = acts[t, b, 2 * H + k]
                    o = acts[t, b, 3 * H + k]
                    tc = tanh_c[t, b, k]
                    gh = dh[b, k] + grad_out[t, b, k]
                    dct = dc[b, k] + gh * o * (1.0 - tc * tc)
                    d[b, k] = dct * g * i * (1.0 - i)
                    d[b, H + k] = dct * cprev[t, b, k] * f * (1.0 - f)
                    d[b, 2 * H + k] = dct * i * (1.0 - g * g)
                    d[b, 3 * H + k] = gh * tc * o * (1.0 - o)
                    dc[b, k] = dct * f
        np.dot(d, w_hh, tmp)
        for b in range(B):
            if t < lengths[b]:
                for k in range(H):
                    dh[b, k] = tmp[b, k]
    return dgates, dh, dc


# ---- GRU ----


@_njit
def gru_seq_fwd(xp, h0, w_hh, b_hh, lengths, reverse):
    """PyTorch's GRU over the sequence; see ``seq_reference.gru_seq_fwd``."""
    T, B, G = xp.shape
    H = G // 3
    out = np.zeros((T, B, H), xp.dtype)
    acts = np.empty_like(xp)
    hprev = np.empty((T, B, H), xp.dtype)
    ghn = np.empty_like(hprev)
    h = h0.copy()
    gh = np.empty((B, G), xp.dtype)
    wt = w_hh.T
    for s in range(T):
        t = T - 1 - s if reverse else s
        hprev[t] = h
        np.dot(h, wt, gh)
        for b in range(B):
            live = t < lengths[b]
            for k in range(H):
                r = _sig(xp[t, b, k] + (gh[b, k] + b_hh[k]))
                z = _sig(xp[t, b, H + k] + (gh[b, H + k] + b_hh[H + k]))
                gn = gh[b, 2 * H + k] + b_hh[2 * H + k]
                n = _tanh(xp[t, b, 2 * H + k] + r * gn)
                acts[t, b, k] = r
                acts[t, b, H + k] = z
                acts[t, b, 2 * H + k] = n
                ghn[t, b, k] = gn
                if live:
                    hn = (1.0 - z) * n + z * h[b, k]
                    h[b, k] = hn
                    out[t, b, k] = hn
    return out, h, acts, hprev, ghn


@_njit
def gru_seq_bwd(acts, ghn, hprev, w_hh, grad_out, grad_hn, lengths, reverse):
    """Backward of ``gru_seq_fwd``; see ``seq_reference.gru_seq_bwd``."""
    T, B, G = acts.shape
    H = G // 3
    dgi = np.zeros_like(acts)
    dgh = np.zeros_like(acts)
    dh = grad_hn.copy()
    tmp = np.empty((B, H), acts.dtype)
    for s in range(T):
        t = s if reverse else T - 1 - s
        for b in range(B):
            if t < lengths[b]:
                for k in range(H):
                    r = acts[t, b, k]
                    z = acts[t, b, H + k]
                    n = acts[t, b, 2 * H + k]
                    g = dh[b, k] + grad_out[t, b, k]
                    dn = g * (1.0 - z) * (1.0 - n * n)
                    dz = g * (hprev[t, b, k] - n) * z * (1.0 - z)
                    dr = dn * ghn[t, b, k] * r * (1.0 - r)
                    dgi[t, b, k] = dr
                    dgi[t, b, H + k] = dz
                    dgi[t, b, 2 * H + k] = dn
                    dgh[t, b, k] = dr
                    dgh[t, b, H + k] = dz
                    dgh[t, b, 2 * H + k] = dn * r
                    dh[b, k] = g * z
        np.dot(dgh[t], w_hh, tmp)
        for b in range(B):
            if t < lengths[b]:
                for k in range(H):
                    dh[b, k] += tmp[b, k]
    return dgi, dgh, dh

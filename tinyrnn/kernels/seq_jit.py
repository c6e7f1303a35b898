"""Numba-jitted whole-sequence kernels, twins of ``seq_reference.py`` (same names, signatures and
results up to round-off).

The whole time loop runs inside one compiled call: the recurrent matrix products go to NumPy's
BLAS through ``gemm.gemm`` (its ``np.dot`` fallback links SciPy's BLAS, hence SciPy as a
dependency), written into preallocated buffers, and the gate maths is a few passes per step with
no temporaries. So a step
costs a BLAS call and a few loops, with no Python in between: this is what makes small batches
fast.

Transcendentals: Numba has no vector maths library here, so ``np.exp``/``np.tanh`` in a loop are
scalar libm calls (measured 6-20 ns per element, more than the matrix products of a step at
B=32, H=128). ``_exp`` below is the classic range reduction ``exp(x) = 2^n exp(r)``,
``|r| <= ln2/2``, with a polynomial for ``exp(r)`` (Cephes' for float32; degree-12 Taylor for
float64, error below 1e-16) and ``2^n`` built from its bits: branch-free, so LLVM vectorises
the loops (0.7 ns per float32 sigmoid). ``sigmoid = 1 / (1 + exp(-x))`` and ``tanh = 2 sigmoid(2x)
- 1`` use it; their error is a few units in the last place (absolute, for tanh near 0). Inputs
are clamped to the range where ``exp`` is finite, which leaves sigmoid and tanh unchanged to
round-off. ``error_model="numpy"`` drops Python's zero-division check, which would otherwise
stop vectorisation. The one fast-math flag used, ``contract``, lets LLVM fuse ``a * b + c`` into
one multiply-add with a single rounding (more accurate, not less; no reassociation, no
approximate division): the polynomial and the gate maths then take fewer instructions (LSTM
gate maths at B=32, H=128, T=64: 1.12 -> 0.91 ms). With ``NUMBA_DISABLE_JIT=1`` the helpers
are plain NumPy.

Loop shape: the gate maths is written as several short loops over one contiguous row each
(``for k: g[k] += a[k] + bias[k]``, then ``for k: a[k] = _sig(g[k])``, ...), not as one loop
whose body reads and writes the four gates of a unit at once. LLVM vectorises the short loops;
the combined body it left scalar (B=32, H=128, T=64, float32, the same results to the bit:
LSTM forward 6.7 -> 5.7 ms, backward 5.5 -> 4.8 ms; GRU forward 5.0 -> 3.4 ms).

BLAS threads: the per-step products are small (B x H times H x G), and OpenBLAS threads on them
measured 7.8 ms -> 990 ms (median of 20) for an LSTM forward at B=32, H=128 while the other
core of the 2-core machine was busy; with two threads asked for, a training step with these
kernels also ran 1.3-2.4x slower than with one (SciPy's and NumPy's OpenBLAS each keep their
own spinning threads). So every kernel here runs with NumPy's and SciPy's OpenBLAS on one
thread, restored afterwards; the large products outside the time loop stay with NumPy and its
thread settings.

Outputs: the large arrays a kernel fills are passed in (``out``, ``hprev``, ``dgates``, ...), so
the caller can reuse memory between calls (``ops.sequence`` does); their old contents do not
matter, every element is written.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from .gemm import gemm
from .openblas import bundled_openblas_paths, controls


def _njit(fn):
    """``numba.njit(cache=True)``, falling back to no cache where no cache locator is writable;
    ``a * b + c`` may become one fused multiply-add (see the module docstring)."""
    opts = {"error_model": "numpy", "fastmath": {"contract"}}
    try:
        return numba.njit(cache=True, **opts)(fn)
    except RuntimeError:
        return numba.njit(cache=False, **opts)(fn)


@functools.lru_cache(maxsize=1)
def _blas_controls() -> tuple[tuple[Any, Any], ...]:
    """(get, set) thread-count functions of SciPy's and NumPy's OpenBLAS (those found)."""
    found = []
    for package in ("scipy", "numpy"):
        try:
            pair = controls(bundled_openblas_paths(package))
        except Exception:  # no SciPy, another BLAS: leave that one's threads as they are
            pair = None
        if pair is not None:
            found.append(pair)
    return tuple(found)


def _limit_threads() -> list[tuple[Any, int]]:
    """Set every OpenBLAS found to one thread; return ``(set, old count)`` of those changed."""
    changed = []
    for get, put in _blas_controls():
        n = get()
        if n != 1:  # most often already 1 (OPENBLAS_NUM_THREADS=1): no call to make
            put(1)
            changed.append((put, n))
    return changed


def _restore(changed: list[tuple[Any, int]]) -> None:
    for put, n in changed:
        put(n)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with SciPy's and NumPy's OpenBLAS on one thread (see the module
    docstring)."""
    changed = _limit_threads()
    try:
        yield
    finally:
        _restore(changed)


def _single_threaded(kernel):
    """The jitted ``kernel`` called with one BLAS thread, keeping its name and docs."""

    @functools.wraps(kernel)
    def call(*args):
        changed = _limit_threads()
        try:
            return kernel(*args)
        finally:
            _restore(changed)

    call.jitted = kernel  # type: ignore[attr-defined]
    return call


# ---- vectorisable exp, sigmoid and tanh (scalar functions; LLVM inlines them into the loops) ----


@intrinsic
def _f32_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@intrinsic
def _f64_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


def _is32(v) -> bool:
    return isinstance(v, types.Float) and v.bitwidth == 32


def _exp(x):
    """exp(x) (compiled: the branch-free polynomial version)."""
    return np.exp(x)


def _sig(v):
    """1 / (1 + exp(-v))."""
    return 1 / (1 + np.exp(-v))


def _tanh(v):
    """tanh(v) = 2 sigmoid(2v) - 1."""
    return np.tanh(v)


@overload(_exp)
def _exp_compiled(x):
    if _is32(x):
        f = np.float32
        lo, hi, log2e, half, one = f(-87.0), f(88.0), f(1.4426950408889634), f(0.5), f(1.0)
        ln2_hi, ln2_lo = f(0.693359375), f(-2.12194440e-4)
        p0, p1, p2 = f(1.9875691500e-4), f(1.3981999507e-3), f(8.3334519073e-3)
        p3, p4, p5 = f(4.1665795894e-2), f(1.6666665459e-1), f(5.0000001201e-1)

        def exp32(x):
            x = min(max(x, lo), hi)
            n = np.floor(x * log2e + half)
            r = x - n * ln2_hi - n * ln2_lo
            p = ((((p0 * r + p1) * r + p2) * r + p3) * r + p4) * r + p5
            p = p * r * r + r + one
            return p * _f32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))  # type: ignore[call-arg]

        return exp32

    def exp64(x):
        x = min(max(x, -708.0), 709.0)
        n = np.floor(x * 1.4426950408889634 + 0.5)
        r = x - n * 0.6931471803691238 - n * 1.9082149292705877e-10
        p = 2.08767569878681e-09  # 1/12!
        p = p * r + 2.505210838544172e-08
        p = p * r + 2.755731922398589e-07
        p = p * r + 2.7557319223985893e-06
        p = p * r + 2.48015873015873e-05
        p = p * r + 0.0001984126984126984
        p = p * r + 0.001388888888888889
        p = p * r + 0.008333333333333333
        p = p * r + 0.041666666666666664
        p = p * r + 0.16666666666666666
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        return p * _f64_from_bits((np.int64(n) + np.int64(1023)) << np.int64(52))  # type: ignore[call-arg]

    return exp64


@overload(_sig)
def _sig_compiled(v):
    one = np.float32(1.0) if _is32(v) else 1.0

    def sig(v):
        return one / (one + _exp(-v))

    return sig


@overload(_tanh)
def _tanh_compiled(v):
    one, two = (np.float32(1.0), np.float32(2.0)) if _is32(v) else (1.0, 2.0)

    def tanh(v):
        return two / (one + _exp(-two * v)) - one

    return tanh


# ---- Elman RNN ----


@_single_threaded
@_njit
def rnn_seq_fwd(xp, h0, w_hh, bias, lengths, reverse, relu, out, hprev):
    """h_t = act(xp_t + bias + h_{t-1} W_hh^T); see ``seq_reference.rnn_seq_fwd``."""
    T, B, H = xp.shape
    h = h0.copy()
    pre = np.empty((B, H), xp.dtype)
    zero = xp.dtype.type(0)
    wt = np.ascontiguousarray(w_hh.T)  # a plain (NN) product is faster than a transposed one
    for s in range(T):
        t = T - 1 - s if reverse else s
        hprev[t] = h
        gemm(h, wt, pre)
        for b in range(B):
            if t < lengths[b]:
                x, p, hb, o = xp[t, b], pre[b], h[b], out[t, b]
                for k in range(H):
                    p[k] += x[k] + bias[k]
                if relu:
                    for k in range(H):
                        hb[k] = p[k] if p[k] > zero else zero
                else:
                    for k in range(H):
                        hb[k] = _tanh(p[k])
                for k in range(H):
                    o[k] = hb[k]
            else:
                out[t, b] = zero
    return out, h, hprev


@_single_threaded
@_njit
def rnn_seq_bwd(out, w_hh, grad_out, grad_hn, lengths, reverse, relu, record, dpre):
    """Backward of ``rnn_seq_fwd``; see ``seq_reference.rnn_seq_bwd``."""
    n_go, b_go = grad_out.shape[0], grad_out.shape[1]  # (1, 1, H): one row for all
    T, B, H = out.shape
    grad_h = np.zeros((T if record else 0, B, H), out.dtype)
    dh = grad_hn.copy()
    tmp = np.empty((B, H), out.dtype)
    zero, one = out.dtype.type(0), out.dtype.type(1)
    for s in range(T):
        t = s if reverse else T - 1 - s
        for b in range(B):
            if t < lengths[b]:
                y, g, d, dp = (
                    out[t, b],
                    grad_out[t % n_go, b % b_go],
                    dh[b],
                    dpre[t, b],
                )
                if record:
                    for k in range(H):
                        grad_h[t, b, k] = d[k] + g[k]
                if relu:
                    for k in range(H):
                        dp[k] = d[k] + g[k] if y[k] > zero else zero
                else:
                    for k in range(H):
                        dp[k] = (d[k] + g[k]) * (one - y[k] * y[k])
            else:
                dpre[t, b] = zero
        gemm(dpre[t], w_hh, tmp)
        for b in range(B):
            if t < lengths[b]:
                dh[b] = tmp[b]
    return dpre, dh, grad_h


# ---- LSTM ----


@_single_threaded
@_njit
def lstm_seq_fwd(xp, h0, c0, w_hh, bias, lengths, reverse, out, hprev, cprev, tanh_c):
    """LSTM over the sequence; ``xp`` is overwritten with the activated gates, returned as
    ``acts``; see ``seq_reference.lstm_seq_fwd``."""
    T, B, G = xp.shape
    H = G // 4
    acts = xp
    zero = xp.dtype.type(0)
    h = h0.copy()
    c = c0.copy()
    gates = np.empty((B, G), xp.dtype)
    wt = np.ascontiguousarray(w_hh.T)
    for s in range(T):
        t = T - 1 - s if reverse else s
        hprev[t] = h
        cprev[t] = c
        gemm(h, wt, gates)
        for b in range(B):
            g, a, tc, cb = gates[b], acts[t, b], tanh_c[t, b], c[b]
            for k in range(G):
                g[k] += a[k] + bias[k]
            for k in range(2 * H):
                a[k] = _sig(g[k])
            for k in range(H):  # (k from 0: loops with an offset start vectorise worse)
                a[2 * H + k] = _tanh(g[2 * H + k])
            for k in range(H):
                a[3 * H + k] = _sig(g[3 * H + k])
            if t < lengths[b]:
                hb, o = h[b], out[t, b]
                for k in range(H):
                    cb[k] = a[H + k] * cb[k] + a[k] * a[2 * H + k]
                for k in range(H):
                    tc[k] = _tanh(cb[k])
                for k in range(H):
                    hb[k] = a[3 * H + k] * tc[k]
                for k in range(H):
                    o[k] = hb[k]
            else:
                for k in range(H):
                    g[k] = a[H + k] * cb[k] + a[k] * a[2 * H + k]
                for k in range(H):
                    tc[k] = _tanh(g[k])
                out[t, b] = zero
    return out, h, c, acts, hprev, cprev, tanh_c


@_single_threaded
@_njit
def lstm_seq_bwd(
    acts, cprev, tanh_c, w_hh, grad_out, grad_hn, grad_cn, lengths, reverse, record, dgates
):
    """Backward of ``lstm_seq_fwd``; see ``seq_reference.lstm_seq_bwd``."""
    n_go, b_go = grad_out.shape[0], grad_out.shape[1]  # (1, 1, H): one row for all
    T, B, G = acts.shape
    H = G // 4
    zero = acts.dtype.type(0)
    grad_h = np.zeros((T if record else 0, B, H), acts.dtype)
    dh = grad_hn.copy()
    dc = grad_cn.copy()
    tmp = np.empty((B, H), acts.dtype)
    gh = np.empty(H, acts.dtype)
    dct = np.empty(H, acts.dtype)
    one = acts.dtype.type(1)
    for s in range(T):
        t = s if reverse else T - 1 - s
        for b in range(B):
            if t < lengths[b]:
                a, tc, cp, d = acts[t, b], tanh_c[t, b], cprev[t, b], dgates[t, b]
                go, dhb, dcb = grad_out[t % n_go, b % b_go], dh[b], dc[b]
                for k in range(H):
                    gh[k] = dhb[k] + go[k]
                if record:
                    grad_h[t, b] = gh
                for k in range(H):
                    dct[k] = dcb[k] + gh[k] * a[3 * H + k] * (one - tc[k] * tc[k])
                for k in range(H):
                    d[k] = dct[k] * a[2 * H + k] * a[k] * (one - a[k])
                for k in range(H):
                    d[H + k] = dct[k] * cp[k] * a[H + k] * (one - a[H + k])
                for k in range(H):
                    d[2 * H + k] = dct[k] * a[k] * (one - a[2 * H + k] * a[2 * H + k])
                for k in range(H):
                    d[3 * H + k] = gh[k] * tc[k] * a[3 * H + k] * (one - a[3 * H + k])
                for k in range(H):
                    dcb[k] = dct[k] * a[H + k]
            else:
                dgates[t, b] = zero
        gemm(dgates[t], w_hh, tmp)
        for b in range(B):
            if t < lengths[b]:
                dh[b] = tmp[b]
    return dgates, dh, dc, grad_h


# ---- GRU ----


@_single_threaded
@_njit
def gru_seq_fwd(xp, h0, w_hh, b_ih, b_hh, lengths, reverse, out, hprev, ghn):
    """PyTorch's GRU over the sequence; ``xp`` is overwritten with the activated gates,
    returned as ``acts``; see ``seq_reference.gru_seq_fwd``."""
    T, B, G = xp.shape
    H = G // 3
    acts = xp
    zero = xp.dtype.type(0)
    h = h0.copy()
    gh = np.empty((B, G), xp.dtype)
    one = xp.dtype.type(1)
    wt = np.ascontiguousarray(w_hh.T)
    for s in range(T):
        t = T - 1 - s if reverse else s
        hprev[t] = h
        gemm(h, wt, gh)
        for b in range(B):
            g, a, gn = gh[b], acts[t, b], ghn[t, b]
            for k in range(G):
                g[k] += b_hh[k]
            for k in range(G):
                a[k] += b_ih[k]
            for k in range(2 * H):
                g[k] += a[k]
            for k in range(2 * H):
                a[k] = _sig(g[k])
            for k in range(H):
                gn[k] = g[2 * H + k]
            for k in range(H):
                g[2 * H + k] = a[2 * H + k] + a[k] * gn[k]
            for k in range(H):
                a[2 * H + k] = _tanh(g[2 * H + k])
            if t < lengths[b]:
                hb, o = h[b], out[t, b]
                for k in range(H):
                    hb[k] = (one - a[H + k]) * a[2 * H + k] + a[H + k] * hb[k]
                for k in range(H):
                    o[k] = hb[k]
            else:
                out[t, b] = zero
    return out, h, acts, hprev, ghn


@_single_threaded
@_njit
def gru_seq_bwd(acts, ghn, hprev, w_hh, grad_out, grad_hn, lengths, reverse, record, dgi, dgh):
    """Backward of ``gru_seq_fwd``; see ``seq_reference.gru_seq_bwd``."""
    n_go, b_go = grad_out.shape[0], grad_out.shape[1]  # (1, 1, H): one row for all
    T, B, G = acts.shape
    H = G // 3
    grad_h = np.zeros((T if record else 0, B, H), acts.dtype)
    dh = grad_hn.copy()
    tmp = np.empty((B, H), acts.dtype)
    gg = np.empty(H, acts.dtype)
    one = acts.dtype.type(1)
    for s in range(T):
        t = s if reverse else T - 1 - s
        for b in range(B):
            if t < lengths[b]:
                a, gn, hp, go, dhb = (
                    acts[t, b],
                    ghn[t, b],
                    hprev[t, b],
                    grad_out[t % n_go, b % b_go],
                    dh[b],
                )
                di, dgb = dgi[t, b], dgh[t, b]
                for k in range(H):
                    gg[k] = dhb[k] + go[k]
                if record:
                    grad_h[t, b] = gg
                for k in range(H):
                    di[2 * H + k] = gg[k] * (one - a[H + k]) * (one - a[2 * H + k] * a[2 * H + k])
                for k in range(H):
                    di[H + k] = gg[k] * (hp[k] - a[2 * H + k]) * a[H + k] * (one - a[H + k])
                for k in range(H):
                    di[k] = di[2 * H + k] * gn[k] * a[k] * (one - a[k])
                for k in range(2 * H):
                    dgb[k] = di[k]
                for k in range(H):
                    dgb[2 * H + k] = di[2 * H + k] * a[k]
                for k in range(H):
                    dhb[k] = gg[k] * a[H + k]
            else:
                dgh[t, b] = 0
                dgi[t, b] = 0
        gemm(dgh[t], w_hh, tmp)
        for b in range(B):
            if t < lengths[b]:
                dh[b] += tmp[b]
    return dgi, dgh, dh, grad_h

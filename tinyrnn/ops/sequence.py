"""Whole-sequence ops: one graph node per layer and direction of a built-in recurrent layer.

``RNNSequence``, ``LSTMSequence`` and ``GRUSequence`` run the time loop of PyTorch's Elman RNN,
LSTM and GRU inside one kernel call forward and one backward (``kernels.*_seq_fwd/_bwd``),
instead of a dozen nodes per time step. The work is split as the FLOPs suggest:

- before the loop, the input projection of every step as ONE matrix product,
  ``xp = x.reshape(T*B, I) @ W_ih^T`` (the biases are added in the kernel's gate pass, and the
  kernel writes the activated gates over ``xp``, which is then not needed any more);
- in the loop (compiled), the recurrent product ``h W_hh^T`` through BLAS and the gate maths
  fused into one pass, saving only what backward needs (activated gates, states entering each
  step, ``tanh(c)``);
- after the backward loop, every weight gradient as ONE matrix product over the ``T*B`` rows:
  ``dW_ih = dG^T X``, ``dW_hh = dG^T H_prev``, ``db = sum(dG)``, ``dx = dG W_ih``.

Memory: the large arrays of a step (the projection, the outputs, the saved states, the gate
gradients) come from ``BUFFERS``, which keeps them once used and hands one out again when
nothing refers to it any more (the graph that saved it was freed by its backward, the output
tensor was dropped). A training loop then writes into the same pages step after step instead of
asking the OS for fresh ones: first-touch page faults had cost 17% of an LSTM step at
B=32, H=128 and 8% at B=64, H=512. ``BUFFERS.clear()`` gives the memory back.

Inputs are time-major: ``x`` (T, B, I), states (B, H). ``lengths`` (B,) ints (None: all ``T``):
a sequence's outputs past its end are zero and its final state is the state after its last
real step; with ``reverse=True`` the loop runs backwards in time and each sequence starts at its
own last real step. Gradients agree with the per-step graph to round-off (tests check it).
"""

from __future__ import annotations

import math
import sys
import threading
from typing import NamedTuple

import numpy as np

from .. import kernels as K
from ..engine import STATE, Function


class BufferPool:
    """Arrays kept for reuse: ``empty(shape, dtype)`` returns a kept array of that shape and
    dtype that nothing else refers to (its contents are garbage), or a new one, kept too.
    Arrays beyond ``max_bytes`` in total are forgotten, oldest first (those still in use live
    on as ordinary arrays); arrays under ``min_bytes`` are not kept (plain ``np.empty``).

    >>> pool = BufferPool(min_bytes=0)
    >>> a = pool.empty((2, 3), np.float32)
    >>> pool.empty((2, 3), np.float32) is a  # still referred to by ``a``
    False
    >>> del a
    >>> pool.empty((2, 3), np.float32).shape
    (2, 3)
    """

    def __init__(self, max_bytes: int = 512 << 20, min_bytes: int = 64 << 10):
        self.max_bytes = max_bytes
        self.min_bytes = min_bytes
        self._arrays: list[np.ndarray] = []
        self._lock = threading.Lock()

    def empty(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        if dtype.itemsize * math.prod(shape) < self.min_bytes:
            return np.empty(shape, dtype)  # small: malloc reuses its own memory, no page faults
        shape = tuple(int(n) for n in shape)
        with self._lock:
            for a in self._arrays:
                # free: referred to only by the list, this loop and getrefcount's argument
                if a.shape == shape and a.dtype == dtype and sys.getrefcount(a) <= 3:
                    return a
            a = np.empty(shape, dtype)
            self._arrays.append(a)
            total = sum(x.nbytes for x in self._arrays)
            while total > self.max_bytes and len(self._arrays) > 1:
                total -= self._arrays.pop(0).nbytes
            return a

    def clear(self) -> None:
        """Forget every kept array (memory in use elsewhere stays in use)."""
        with self._lock:
            self._arrays.clear()

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays kept now."""
        return sum(a.nbytes for a in self._arrays)


BUFFERS = BufferPool()


def _empty(*shape: int, dtype) -> np.ndarray:
    return BUFFERS.empty(shape, dtype)


class SequenceInfo(NamedTuple):
    """What a whole-sequence node did, for graph pictures (``ctx.sequence``): the cell
    (``"RNN"``, ``"LSTM"``, ``"GRU"``), the role of each positional input (``x``, ``h0``,
    ``c0``, ``w_ih``, ``w_hh``, ``b_ih``, ``b_hh``), the inputs of the projection done once for
    all steps and those read by every step, the sequence lengths and the direction."""

    cell: str
    inputs: tuple[str, ...]
    projected: tuple[str, ...]
    recurrent: tuple[str, ...]
    lengths: np.ndarray
    reverse: bool


_ROLES = {
    "RNN": ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"),
    "LSTM": ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"),
    "GRU": ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"),
}


def _describe(ctx, cell: str, lengths: np.ndarray, reverse: bool) -> None:
    ctx.sequence = SequenceInfo(
        cell, _ROLES[cell], ("x", "w_ih", "b_ih"), ("w_hh", "b_hh"), lengths, reverse
    )


def _record(ctx, grad_xp, grad_h) -> None:
    """Inside ``tr.viz.record_grads()`` keep the gradients a picture of the steps shows: of the
    projection (T, B, G) and of each step's hidden output (T, B, H)."""
    if STATE.keep_grads:
        ctx.grad_xp, ctx.grad_h = grad_xp, grad_h


def _lengths(op: str, lengths, T: int, B: int) -> np.ndarray:
    if lengths is None:
        return np.full(B, T, np.int64)
    arr = np.ascontiguousarray(lengths, dtype=np.int64)
    if arr.shape != (B,) or (B and (arr.min() < 0 or arr.max() > T)):
        raise ValueError(
            f"{op}: lengths must hold one int in [0, {T}] per batch item ({B}), got "
            f"{np.asarray(lengths).tolist()}"
        )
    return arr


def _check(op: str, gates: int, x, states, w_ih, w_hh, b_ih, b_hh) -> tuple[int, ...]:
    """Validate shapes; return (T, B, I, H, G)."""
    if x.ndim != 3:
        raise ValueError(f"{op}: expected x of shape (T, B, I), got {x.shape}")
    T, B, n_in = x.shape
    if w_hh.ndim != 2 or w_hh.shape[0] != gates * w_hh.shape[1]:
        raise ValueError(f"{op}: expected w_hh of shape ({gates}*H, H), got {w_hh.shape}")
    G, H = w_hh.shape
    want = {"w_ih": (w_ih, (G, n_in)), "b_ih": (b_ih, (G,)), "b_hh": (b_hh, (G,))}
    want.update({f"state {k}": (s, (B, H)) for k, s in enumerate(states)})
    for name, (arr, shape) in want.items():
        if arr is not None and arr.shape != shape:
            raise ValueError(
                f"{op}: expected {name} of shape {shape} for x {x.shape} and w_hh {w_hh.shape}, "
                f"got {arr.shape}"
            )
    return T, B, n_in, H, G


def _as(dtype, *arrays):
    return [None if a is None else np.ascontiguousarray(a, dtype=dtype) for a in arrays]


def _grads_in(dtype, out_shape, grad_out, *grad_states):
    """The output gradients a backward kernel reads, for an op that turned materialize_grads
    off: ``grad_out`` (T, B, H) or, when nothing used the outputs (a loss on the final state
    only), one zero row (1, 1, H) that the kernels broadcast, instead of a T*B*H array of
    zeros; a missing state gradient is zeros (B, H)."""
    T, B, H = out_shape
    g_out = np.zeros((1, 1, H), dtype) if grad_out is None else grad_out
    states = [np.zeros((B, H), dtype) if g is None else g for g in grad_states]
    return _as(dtype, g_out, *states)


def _bias(G: int, dtype, *biases):
    """The sum of the biases that are given (zeros when none is): added in the kernels, so the
    projection below is a bare product with no extra pass over its T*B*G result."""
    total = np.zeros(G, dtype)
    for b in biases:
        if b is not None:
            total += b
    return total


def _project(x2: np.ndarray, w_ih: np.ndarray, T: int, B: int) -> np.ndarray:
    """xp = x W_ih^T for all steps, one product, into a pooled (T, B, G) array."""
    xp = _empty(T, B, w_ih.shape[0], dtype=x2.dtype)
    np.matmul(x2, w_ih.T, out=xp.reshape(T * B, w_ih.shape[0]))
    return xp


def _weight_grads(ctx, dg, x2, w_ih, hprev, i_x, i_wih, i_whh, i_bih, i_bhh, dgh=None):
    """Gradients of x, W_ih, W_hh, b_ih, b_hh from the per-step gate gradients, as big products.

    dg (T, B, G) is the gradient of the gates: of the input projection, and of the recurrent
    product too, except for a GRU, whose recurrent product has its own, ``dgh`` (T, B, G).
    """
    need = ctx.needs_input_grad
    dg2 = dg.reshape(-1, dg.shape[-1])
    hp2 = None if hprev is None else hprev.reshape(-1, hprev.shape[-1])
    grads = {}
    if need[i_x]:
        dx = _empty(*ctx.x_shape, dtype=dg.dtype)
        np.matmul(dg2, w_ih, out=dx.reshape(dg2.shape[0], w_ih.shape[1]))
        grads[i_x] = dx
    if need[i_wih]:
        grads[i_wih] = dg2.T @ x2
    if need[i_bih] or (need[i_bhh] and dgh is None):
        db = dg2.sum(axis=0)
        if need[i_bih]:
            grads[i_bih] = db
    if dgh is None:
        if need[i_whh]:
            grads[i_whh] = dg2.T @ hp2
        if need[i_bhh]:  # both biases enter the gates the same way: the same gradient
            grads[i_bhh] = db.copy() if need[i_bih] else db
        return grads
    dgh2 = dgh.reshape(-1, dgh.shape[-1])
    if need[i_whh]:
        grads[i_whh] = dgh2.T @ hp2
    if need[i_bhh]:
        grads[i_bhh] = dgh2.sum(axis=0)
    return grads


class RNNSequence(Function):
    """Elman RNN layer over a sequence, one direction:
    ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``, act = tanh or relu.

    ``apply(x, h0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False, nonlinearity="tanh")``
    with x (T, B, I), h0 (B, H), w_ih (H, I), w_hh (H, H), biases (H,) or None; returns
    ``(output (T, B, H), h_n (B, H))``.

    >>> import tinyrnn as tr
    >>> from tinyrnn.ops.sequence import RNNSequence
    >>> x, h0 = tr.randn(5, 2, 3), tr.zeros(2, 4)
    >>> w_ih, w_hh = tr.randn(4, 3, requires_grad=True), tr.randn(4, 4, requires_grad=True)
    >>> out, h_n = RNNSequence.apply(x, h0, w_ih, w_hh, None, None, lengths=[5, 2])
    >>> out.shape, h_n.shape, out[2:, 1].abs().sum().item()
    ((5, 2, 4), (2, 4), 0.0)
    """

    @staticmethod
    def forward(
        ctx, x, h0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False, nonlinearity="tanh"
    ):
        op = "RNNSequence"
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"{op}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        T, B, n_in, H, G = _check(op, 1, x, (h0,), w_ih, w_hh, b_ih, b_hh)
        dt = np.result_type(*(a for a in (x, h0, w_ih, w_hh, b_ih, b_hh) if a is not None))
        x, h0, w_ih, w_hh, b_ih, b_hh = _as(dt, x, h0, w_ih, w_hh, b_ih, b_hh)
        L = _lengths(op, lengths, T, B)
        relu = nonlinearity == "relu"
        x2 = x.reshape(T * B, n_in)
        xp = _project(x2, w_ih, T, B)
        bias = _bias(G, dt, b_ih, b_hh)
        out, h_n, hprev = K.rnn_seq_fwd(
            xp, h0, w_hh, bias, L, bool(reverse), relu, _empty(T, B, H, dtype=dt),
            _empty(T, B, H, dtype=dt),
        )  # fmt: skip
        ctx.x_shape, ctx.opts = x.shape, (L, bool(reverse), relu)
        ctx.set_materialize_grads(False)  # see _grads_in
        _describe(ctx, "RNN", L, bool(reverse))
        ctx.save_for_backward(x2, out, hprev if ctx.needs_input_grad[3] else None, w_ih, w_hh)
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn):
        x2, out, hprev, w_ih, w_hh = ctx.saved_tensors
        L, reverse, relu = ctx.opts
        g_out, g_hn = _grads_in(out.dtype, out.shape, grad_out, grad_hn)
        dpre, dh0, grad_h = K.rnn_seq_bwd(
            out, w_hh, g_out, g_hn, L, reverse, relu, STATE.keep_grads,
            _empty(*out.shape, dtype=out.dtype),
        )  # fmt: skip
        _record(ctx, dpre, grad_h)
        grads = _weight_grads(ctx, dpre, x2, w_ih, hprev, 0, 2, 3, 4, 5)
        return (grads.get(0), dh0, grads.get(2), grads.get(3), grads.get(4), grads.get(5))


class LSTMSequence(Function):
    """LSTM layer over a sequence, one direction (PyTorch's gates i, f, g, o)::

        [i, f, g, o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
        c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g);  h_t = sigmoid(o) tanh(c_t)

    ``apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False)`` with x (T, B, I),
    h0 and c0 (B, H), w_ih (4H, I), w_hh (4H, H), biases (4H,) or None; returns
    ``(output (T, B, H), h_n (B, H), c_n (B, H))``.

    >>> import tinyrnn as tr
    >>> from tinyrnn.ops.sequence import LSTMSequence
    >>> x, h0 = tr.randn(5, 2, 3), tr.zeros(2, 4)
    >>> w_ih, w_hh = tr.randn(16, 3, requires_grad=True), tr.randn(16, 4, requires_grad=True)
    >>> out, h_n, c_n = LSTMSequence.apply(x, h0, h0, w_ih, w_hh, None, None, reverse=True)
    >>> bool((out[0] == h_n).all().item())
    True
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False):
        op = "LSTMSequence"
        T, B, n_in, H, G = _check(op, 4, x, (h0, c0), w_ih, w_hh, b_ih, b_hh)
        dt = np.result_type(*(a for a in (x, h0, c0, w_ih, w_hh, b_ih, b_hh) if a is not None))
        x, h0, c0, w_ih, w_hh, b_ih, b_hh = _as(dt, x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        L = _lengths(op, lengths, T, B)
        x2 = x.reshape(T * B, n_in)
        xp = _project(x2, w_ih, T, B)  # becomes the activated gates (acts) in place
        bias = _bias(G, dt, b_ih, b_hh)
        out, h_n, c_n, acts, hprev, cprev, tanh_c = K.lstm_seq_fwd(
            xp, h0, c0, w_hh, bias, L, bool(reverse),
            *(_empty(T, B, H, dtype=dt) for _ in range(4)),
        )  # fmt: skip
        ctx.x_shape, ctx.opts = x.shape, (L, bool(reverse))
        ctx.set_materialize_grads(False)  # see _grads_in
        _describe(ctx, "LSTM", L, bool(reverse))
        keep_h = hprev if ctx.needs_input_grad[4] else None
        ctx.save_for_backward(x2, acts, keep_h, cprev, tanh_c, w_ih, w_hh)
        return out, h_n, c_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn, grad_cn):
        x2, acts, hprev, cprev, tanh_c, w_ih, w_hh = ctx.saved_tensors
        L, reverse = ctx.opts
        g_out, g_hn, g_cn = _grads_in(acts.dtype, cprev.shape, grad_out, grad_hn, grad_cn)
        dg, dh0, dc0, grad_h = K.lstm_seq_bwd(
            acts, cprev, tanh_c, w_hh, g_out, g_hn, g_cn, L, reverse, STATE.keep_grads,
            _empty(*acts.shape, dtype=acts.dtype),
        )  # fmt: skip
        _record(ctx, dg, grad_h)
        grads = _weight_grads(ctx, dg, x2, w_ih, hprev, 0, 3, 4, 5, 6)
        return (grads.get(0), dh0, dc0, grads.get(3), grads.get(4), grads.get(5), grads.get(6))


class GRUSequence(Function):
    """GRU layer over a sequence, one direction (PyTorch's formulation, gates r, z, n)::

        gi = x_t W_ih^T + b_ih;  gh = h_{t-1} W_hh^T + b_hh
        r = sigmoid(gi_r + gh_r);  z = sigmoid(gi_z + gh_z);  n = tanh(gi_n + r gh_n)
        h_t = (1 - z) n + z h_{t-1}

    ``apply(x, h0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False)`` with x (T, B, I),
    h0 (B, H), w_ih (3H, I), w_hh (3H, H), biases (3H,) or None; returns
    ``(output (T, B, H), h_n (B, H))``.

    >>> import tinyrnn as tr
    >>> from tinyrnn.ops.sequence import GRUSequence
    >>> x, h0 = tr.randn(5, 2, 3), tr.zeros(2, 4)
    >>> w_ih, w_hh = tr.randn(12, 3, requires_grad=True), tr.randn(12, 4, requires_grad=True)
    >>> out, h_n = GRUSequence.apply(x, h0, w_ih, w_hh, None, None)
    >>> out.shape, bool((out[-1] == h_n).all().item())
    ((5, 2, 4), True)
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False):
        op = "GRUSequence"
        T, B, n_in, H, G = _check(op, 3, x, (h0,), w_ih, w_hh, b_ih, b_hh)
        dt = np.result_type(*(a for a in (x, h0, w_ih, w_hh, b_ih, b_hh) if a is not None))
        x, h0, w_ih, w_hh, b_ih, b_hh = _as(dt, x, h0, w_ih, w_hh, b_ih, b_hh)
        L = _lengths(op, lengths, T, B)
        x2 = x.reshape(T * B, n_in)
        xp = _project(x2, w_ih, T, B)  # becomes the activated gates (acts) in place
        bias_ih, bias_hh = _bias(G, dt, b_ih), _bias(G, dt, b_hh)
        out, h_n, acts, hprev, ghn = K.gru_seq_fwd(
            xp, h0, w_hh, bias_ih, bias_hh, L, bool(reverse),
            *(_empty(T, B, H, dtype=dt) for _ in range(3)),
        )  # fmt: skip
        ctx.x_shape, ctx.opts = x.shape, (L, bool(reverse))
        ctx.set_materialize_grads(False)  # see _grads_in
        _describe(ctx, "GRU", L, bool(reverse))
        ctx.save_for_backward(x2, acts, ghn, hprev, w_ih, w_hh)
        return out, h_n

    @staticmethod
    def backward(ctx, grad_out, grad_hn):
        x2, acts, ghn, hprev, w_ih, w_hh = ctx.saved_tensors
        L, reverse = ctx.opts
        g_out, g_hn = _grads_in(acts.dtype, hprev.shape, grad_out, grad_hn)
        dgi, dgh, dh0, grad_h = K.gru_seq_bwd(
            acts, ghn, hprev, w_hh, g_out, g_hn, L, reverse, STATE.keep_grads,
            _empty(*acts.shape, dtype=acts.dtype), _empty(*acts.shape, dtype=acts.dtype),
        )  # fmt: skip
        _record(ctx, dgi, grad_h)
        grads = _weight_grads(ctx, dgi, x2, w_ih, hprev, 0, 2, 3, 4, 5, dgh=dgh)
        return (grads.get(0), dh0, grads.get(2), grads.get(3), grads.get(4), grads.get(5))

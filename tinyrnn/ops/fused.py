"""Fused ops: several element-wise steps done in one kernel call, forward and backward.

They exist for speed and numerical stability (log-softmax, cross-entropy) and for the
gate-heavy recurrent cells, where one node per step replaces a dozen.
"""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from ..engine import Function


def _rows(x: np.ndarray, dim: int, op: str = "softmax") -> tuple[np.ndarray, int]:
    """Move ``dim`` last and flatten the rest: a contiguous (rows, size) view for a kernel."""
    nd = max(x.ndim, 1)
    if not -nd <= dim < nd:
        raise IndexError(
            f"{op}: dim {dim} out of range for a tensor of shape {x.shape} "
            f"(expected -{nd} <= dim < {nd})"
        )
    d = dim % nd
    if x.ndim == 0:
        return x.reshape(1, 1), d
    moved = np.moveaxis(x, d, -1)
    return np.ascontiguousarray(moved).reshape(-1, x.shape[d]), d


def _unrows(r: np.ndarray, shape: tuple[int, ...], d: int) -> np.ndarray:
    if len(shape) == 0:
        return r.reshape(())
    moved = list(shape)
    moved.append(moved.pop(d))
    return np.moveaxis(r.reshape(moved), -1, d)


def _check_targets(x: np.ndarray, target: np.ndarray, ignore_index: int) -> None:
    """The kernels index rows by class id without bounds checks: validate ids here."""
    if x.ndim != 2:
        raise ValueError(f"cross_entropy: expected logits of shape (N, C), got shape {x.shape}")
    if target.dtype.kind not in "iu" or target.shape != x.shape[:1]:
        raise ValueError(
            f"cross_entropy: expected integer class ids of shape ({x.shape[0]},) for logits of "
            f"shape {x.shape}, got {target.dtype} of shape {target.shape}"
        )
    ids = target[target != ignore_index]
    if ids.size and (ids.min() < 0 or ids.max() >= x.shape[1]):
        bad = ids[(ids < 0) | (ids >= x.shape[1])][0]
        raise IndexError(
            f"cross_entropy: target {bad} is out of range for {x.shape[1]} classes (logits of "
            f"shape {x.shape}); expected ids in [0, {x.shape[1]}) or ignore_index={ignore_index}"
        )


def _check_cell(op: str, n_gates: int, gates: dict[str, np.ndarray], state: np.ndarray) -> None:
    """Cell kernels index gates by position: check (B, n*H) gate arrays and a (B, H) state."""
    ok = np.ndim(state) == 2 and all(
        np.shape(a) == (np.shape(state)[0], n_gates * np.shape(state)[1]) for a in gates.values()
    )
    if not ok:
        shapes = ", ".join(f"{name} {np.shape(a)}" for name, a in gates.items())
        raise ValueError(
            f"{op}: got {shapes} and state {np.shape(state)}; expected gates of shape "
            f"(B, {n_gates}*H) for a state of shape (B, H)"
        )


class LogSoftmax(Function):
    """y = x - logsumexp(x, dim);  dL/dx = g - softmax(x) * sum(g, dim)

    Shapes: y has x's shape; ``dim`` is the softmax axis.

    >>> import tinyrnn as tr
    >>> LogSoftmax.apply(tr.tensor([[0.0, 0.0]]), dim=1).exp().tolist()
    [[0.5, 0.5]]
    """

    @staticmethod
    def forward(ctx, x, dim):
        r, d = _rows(x, dim, "log_softmax")
        y = K.log_softmax_fwd(r)
        ctx.save_for_backward(y, x.shape, d)
        return _unrows(y, x.shape, d)

    @staticmethod
    def backward(ctx, grad_output):
        y, shape, d = ctx.saved_tensors
        g, _ = _rows(grad_output, d)
        return _unrows(K.log_softmax_bwd(y, g), shape, d)


class Softmax(Function):
    """y = exp(x) / sum(exp(x), dim);  dL/dx = y * (g - sum(g * y, dim))

    Shapes: y has x's shape; ``dim`` is the softmax axis.

    >>> import tinyrnn as tr
    >>> Softmax.apply(tr.tensor([[0.0, 0.0]]), dim=1).tolist()
    [[0.5, 0.5]]
    """

    @staticmethod
    def forward(ctx, x, dim):
        r, d = _rows(x, dim)
        y = K.softmax_fwd(r)
        ctx.save_for_backward(y, x.shape, d)
        return _unrows(y, x.shape, d)

    @staticmethod
    def backward(ctx, grad_output):
        y, shape, d = ctx.saved_tensors
        g, _ = _rows(grad_output, d)
        return _unrows(K.softmax_bwd(y, g), shape, d)


class CrossEntropyRows(Function):
    """l_i = -log softmax(x_i)[t_i] (0 where t_i == ignore_index), for logits x (N, C);
    dl_i/dx_i = softmax(x_i) - onehot(t_i).

    Shapes: x (N, C) logits; target (N,) integer ids in [0, C) or ``ignore_index``; l (N,).

    >>> import numpy as np, tinyrnn as tr
    >>> x = tr.zeros(2, 4)
    >>> [round(v, 4) for v in CrossEntropyRows.apply(x, np.array([1, -100])).tolist()]
    [1.3863, 0.0]
    """

    @staticmethod
    def forward(ctx, x, target, ignore_index=-100):
        target = np.asarray(target)
        _check_targets(x, target, ignore_index)
        loss, probs = K.cross_entropy_fwd(np.ascontiguousarray(x), target, ignore_index)
        ctx.save_for_backward(probs, target, ignore_index)
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        probs, target, ignore_index = ctx.saved_tensors
        g = np.ascontiguousarray(grad_output, dtype=probs.dtype)
        return K.cross_entropy_bwd(probs, target, ignore_index, g), None


class SquaredError(Function):
    """Mean (or sum) of squared differences in one node: ``l = r(d * d)``, ``d = x - y``, with
    ``r`` the mean over every element (``reduction="mean"``), the sum (``"sum"``) or nothing
    (``"none"``); ``dl/dx = r'(2 d g)``, ``dl/dy = -dl/dx``.

    Shapes: x and y of one shape; l 0-d (mean, sum) or x's shape (none).

    >>> import tinyrnn as tr
    >>> SquaredError.apply(tr.tensor([1.0, 2.0]), tr.tensor([0.0, 0.0])).item()
    2.5
    """

    @staticmethod
    def forward(ctx, x, y, reduction="mean"):
        d = x - y
        ctx.save_for_backward(d, reduction)
        sq = d * d
        if reduction == "none":
            return sq
        total = sq.sum()
        return np.asarray(total / d.size if reduction == "mean" else total, dtype=sq.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        d, reduction = ctx.saved_tensors
        scale = 2.0 / d.size if reduction == "mean" else 2.0
        g = d * (grad_output * scale)
        need_x, need_y = ctx.needs_input_grad
        return (g if need_x else None), (-g if need_y else None)


class LSTMCellStep(Function):
    """One LSTM step after its affine part: (h, c) from gates (B, 4H) in order i, f, g, o and
    c_prev (B, H): c = f*c_prev + i*g, h = o*tanh(c). Backward in one kernel pass.

    Shapes: gates (B, 4H), c_prev (B, H) -> h (B, H), c (B, H).

    >>> import tinyrnn as tr
    >>> h, c = LSTMCellStep.apply(tr.zeros(1, 8), tr.ones(1, 2))
    >>> c.tolist(), h.shape
    ([[0.5, 0.5]], (1, 2))
    """

    @staticmethod
    def forward(ctx, gates, c_prev):
        _check_cell("LSTMCellStep", 4, {"gates": gates}, c_prev)
        gates = np.ascontiguousarray(gates)
        c_prev = np.ascontiguousarray(c_prev, dtype=gates.dtype)
        h, c, acts, tanh_c = K.lstm_cell_fwd(gates, c_prev)
        ctx.save_for_backward(acts, c_prev, tanh_c)
        return h, c

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        acts, c_prev, tanh_c = ctx.saved_tensors
        dgates, dc_prev = K.lstm_cell_bwd(
            acts, c_prev, tanh_c, np.ascontiguousarray(grad_h), np.ascontiguousarray(grad_c)
        )
        return dgates, dc_prev


class GRUCellStep(Function):
    """One GRU step after its affine parts: h from gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh
    (both (B, 3H), gates r, z, n) and h_prev (B, H), as PyTorch's GRU.

    Shapes: gi, gh (B, 3H), h_prev (B, H) -> h (B, H).

    >>> import tinyrnn as tr
    >>> GRUCellStep.apply(tr.zeros(1, 6), tr.zeros(1, 6), tr.ones(1, 2)).tolist()
    [[0.5, 0.5]]
    """

    @staticmethod
    def forward(ctx, gi, gh, h_prev):
        _check_cell("GRUCellStep", 3, {"gi": gi, "gh": gh}, h_prev)
        gi = np.ascontiguousarray(gi)
        gh = np.ascontiguousarray(gh, dtype=gi.dtype)
        h_prev = np.ascontiguousarray(h_prev, dtype=gi.dtype)
        h, acts = K.gru_cell_fwd(gi, gh, h_prev)
        ctx.save_for_backward(acts, gh, h_prev)
        return h

    @staticmethod
    def backward(ctx, grad_h):
        acts, gh, h_prev = ctx.saved_tensors
        return K.gru_cell_bwd(acts, gh, h_prev, np.ascontiguousarray(grad_h))

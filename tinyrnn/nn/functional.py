"""``tr.nn.functional`` (``F``): layers and losses as plain functions of tensors.

Everything here is a composition of ``Tensor`` operations, so no gradient is written in this
file; the one exception is the row-wise cross-entropy, which uses the fused
``ops.fused.CrossEntropyRows`` (softmax and its gradient in one kernel). Names, signatures and
defaults follow ``torch.nn.functional``.

>>> import tinyrnn as tr
>>> import tinyrnn.nn.functional as F
>>> logits = tr.tensor([[2.0, 0.0, -1.0]], requires_grad=True)
>>> loss = F.cross_entropy(logits, tr.tensor([0]))
>>> round(loss.item(), 4)
0.1698
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._random import generator
from ..ops.fused import CrossEntropyRows, SquaredError
from ..tensor import Tensor, where

__all__ = [
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "dropout",
    "embedding",
    "linear",
    "log_softmax",
    "mse_loss",
    "nll_loss",
    "softmax",
]

_REDUCTIONS = ("mean", "sum", "none")


def _tensor(op: str, name: str, x: Any) -> Tensor:
    if isinstance(x, Tensor):
        return x
    raise TypeError(f"{op}: expected {name} to be a Tensor, got {type(x).__name__}")


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss


# ---- layers ----


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Affine map ``y = x W^T + b``.

    Shapes: ``input`` (*, in), ``weight`` (out, in), ``bias`` (out,); result (*, out).

    >>> import tinyrnn as tr
    >>> import tinyrnn.nn.functional as F
    >>> x, w, b = tr.ones(2, 3), tr.ones(4, 3), tr.zeros(4)
    >>> F.linear(x, w, b).shape
    (2, 4)
    """
    x = _tensor("linear", "input", input)
    w = _tensor("linear", "weight", weight)
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got {w.shape}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not match weight of shape {w.shape}: the "
            f"last dimension of the input must be in_features={w.shape[1]}"
        )
    y = x @ w.T
    if bias is not None:
        b = _tensor("linear", "bias", bias)
        if b.shape != (w.shape[0],):
            raise ValueError(
                f"linear: bias must have shape ({w.shape[0]},) to match weight {w.shape}, "
                f"got {b.shape}"
            )
        y = y + b
    return y


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by
    ``1 / (1 - p)``, so the expected value is unchanged; the identity when not ``training``.

    The mask is drawn from the framework's generator (``tr.manual_seed`` makes it reproducible).

    >>> import tinyrnn as tr
    >>> import tinyrnn.nn.functional as F
    >>> _ = tr.manual_seed(0)
    >>> y = F.dropout(tr.ones(1000), p=0.2)
    >>> sorted(set(y.tolist()))
    [0.0, 1.25]
    >>> F.dropout(tr.ones(3), p=0.2, training=False).tolist()
    [1.0, 1.0, 1.0]
    """
    x = _tensor("dropout", "input", input)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be between 0 and 1, got {p!r}")
    if not training or p == 0.0:
        return x
    if x.dtype.kind != "f":
        raise TypeError(f"dropout: expected a floating tensor, got dtype {x.dtype}")
    if p == 1.0:
        return x * np.zeros((), dtype=x.dtype)
    keep = generator().random(x.shape) >= p
    mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return x * mask


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` picked by integer ids: ``y[..., :] = weight[input[...], :]``.

    The gradient adds into the picked rows (a row picked twice gets both gradients); the
    ``padding_idx`` row, when given, receives no gradient.

    Shapes: ``input`` (*) integers in [0, num_embeddings), ``weight`` (num_embeddings, dim);
    result (*, dim).

    >>> import tinyrnn as tr
    >>> import tinyrnn.nn.functional as F
    >>> w = tr.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> F.embedding(tr.tensor([1, 1, 0]), w).tolist()
    [[2.0, 3.0], [2.0, 3.0], [0.0, 1.0]]
    """
    w = _tensor("embedding", "weight", weight)
    ids = input.data if isinstance(input, Tensor) else np.asarray(input)
    if ids.dtype.kind not in "iu":
        raise TypeError(
            f"embedding: expected integer ids (an int32/int64 tensor), got dtype {ids.dtype}"
        )
    if w.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, dim), got {w.shape}")
    n = w.shape[0]
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        bad = ids[(ids < 0) | (ids >= n)].reshape(-1)[0]
        raise IndexError(
            f"embedding: id {int(bad)} is out of range for an embedding table of {n} rows "
            f"(weight {w.shape}); ids must be in [0, {n - 1}]"
        )
    ids = ids.astype(np.int64, copy=False)
    out = w[ids]
    if padding_idx is not None:
        pad = padding_idx % n if -n <= padding_idx < n else None
        if pad is None:
            raise ValueError(f"embedding: padding_idx {padding_idx} out of range for {n} rows")
        keep = (ids != pad)[..., None]
        out = where(keep, out, out.detach())
    return out


# ---- softmax ----


def softmax(input: Tensor, dim: int) -> Tensor:
    """``exp(x) / sum(exp(x), dim)``, computed stably (the max is subtracted first).

    >>> import tinyrnn as tr
    >>> import tinyrnn.nn.functional as F
    >>> F.softmax(tr.tensor([0.0, 0.0]), dim=0).tolist()
    [0.5, 0.5]
    """
    return _tensor("softmax", "input", input).softmax(dim)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    """``x - logsumexp(x, dim)``, computed stably.

    >>> import tinyrnn as tr
    >>> import tinyrnn.nn.functional as F
    >>> [round(v, 4) for v in F.log_softmax(tr.tensor([0.0, 0.0]), dim=0).tolist()]
    [-0.6931, -0.6931]
    """
    return _tensor("log_softmax", "input", input).log_softmax(dim)


# ---- classification losses ----


def _class_rows(op: str, x: Tensor, target: Any) -> tuple[Tensor, np.ndarray, tuple[int, ...]]:
    """Logits (N, C, d1, ...) or (C,) and class ids (N, d1, ...) or () as (rows, C) and (rows,).

    Returns the row logits, the flat ids and the shape of the unreduced loss.
    """
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if x.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension, got a 0-d tensor")
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: class-index targets must be integers (int64), got dtype {t.dtype} for "
            f"input of shape {x.shape}"
        )
    expected = () if x.ndim == 1 else (x.shape[0],) + x.shape[2:]
    if t.shape != expected:
        raise ValueError(
            f"{op}: target of shape {t.shape} does not match input of shape {x.shape}; "
            f"expected target shape {expected} (input is (N, C, d1, ...), target (N, d1, ...))"
        )
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    if x.ndim == 1:
        rows = x.reshape(1, C)
    elif x.ndim == 2:
        rows = x
    else:
        order = (0, *range(2, x.ndim), 1)
        rows = x.permute(*order).reshape(-1, C)
    return rows, t.reshape(-1).astype(np.int64), expected


def _check_ids(op: str, ids: np.ndarray, C: int, ignore_index: int, shape: tuple) -> np.ndarray:
    keep = ids != ignore_index
    bad = keep & ((ids < 0) | (ids >= C))
    if bad.any():
        raise IndexError(
            f"{op}: target id {int(ids[bad][0])} is out of range for input of shape {shape} "
            f"with {C} classes; ids must be in [0, {C - 1}] or equal ignore_index={ignore_index}"
        )
    return keep


def _class_weight(op: str, weight: Any, C: int, dtype: np.dtype) -> np.ndarray | None:
    if weight is None:
        return None
    w = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    if w.shape != (C,):
        raise ValueError(f"{op}: weight must have shape ({C},) (one per class), got {w.shape}")
    return w.astype(dtype)


def _weighted_reduce(loss: Tensor, row_w: np.ndarray, reduction: str, shape) -> Tensor:
    """Reduce per-row losses: 'mean' divides by the total weight of the kept rows (PyTorch)."""
    if reduction == "none":
        return loss.reshape(shape)
    total = loss.sum()
    if reduction == "sum":
        return total
    denom = float(row_w.sum())
    return total * (1.0 / denom if denom else math.nan)


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities: ``l_i = -w[t_i] * input[i, t_i]``.

    Shapes as ``cross_entropy``. With ``reduction="mean"`` the sum is divided by the total weight
    of the non-ignored targets (their count without ``weight``).

    >>> import tinyrnn as tr
    >>> import tinyrnn.nn.functional as F
    >>> logp = tr.tensor([[-0.1, -2.0], [-3.0, -0.5]])
    >>> round(F.nll_loss(logp, tr.tensor([0, 1])).item(), 4)
    0.3
    """
    x = _tensor("nll_loss", "input", input)
    _check_reduction("nll_loss", reduction)
    rows, ids, shape = _class_rows("nll_loss", x, target)
    C = rows.shape[1]
    keep = _check_ids("nll_loss", ids, C, ignore_index, x.shape)
    w = _class_weight("nll_loss", weight, C, x.dtype)
    safe = np.where(keep, ids, 0)
    row_w = keep.astype(x.dtype) if w is None else np.where(keep, w[safe], 0).astype(x.dtype)
    picked = rows[np.arange(rows.shape[0]), safe]
    return _weighted_reduce(-(picked * row_w), row_w, reduction, shape)


def cross_entropy(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy between logits and class ids (or class probabilities), as PyTorch's.

    For class ids: ``l_i = -w[t_i] * log softmax(x_i)[t_i]``; rows whose target equals
    ``ignore_index`` (padding) contribute nothing, and ``reduction="mean"`` averages over the
    others (weighted by ``w``). For a floating ``target`` of the input's shape (probabilities):
    ``l_i = -sum_c w_c * target_ic * log softmax(x_i)_c``, averaged over rows. With
    ``label_smoothing = e`` the target mixes ``1 - e`` of the given one with ``e`` of uniform.

    Shapes: ``input`` (N, C), (N, C, d1, ...) or (C,); ``target`` (N,), (N, d1, ...) or () with
    ids in [0, C); the unreduced loss has the target's shape.

    >>> import tinyrnn as tr
    >>> import tinyrnn.nn.functional as F
    >>> x = tr.tensor([[1.0, 2.0], [0.5, 0.5]], requires_grad=True)
    >>> round(F.cross_entropy(x, tr.tensor([1, -100])).item(), 4)
    0.3133
    """
    x = _tensor("cross_entropy", "input", input)
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind == "f":
        return _soft_cross_entropy(x, t, weight, reduction, label_smoothing)
    rows, ids, shape = _class_rows("cross_entropy", x, t)
    C = rows.shape[1]
    keep = _check_ids("cross_entropy", ids, C, ignore_index, x.shape)
    w = _class_weight("cross_entropy", weight, C, x.dtype)
    if w is None and label_smoothing == 0.0:
        loss = CrossEntropyRows.apply(rows, ids, ignore_index=ignore_index)
        return _weighted_reduce(loss, keep.astype(x.dtype), reduction, shape)
    logp = rows.log_softmax(1)
    nll = nll_loss(logp, ids, w, ignore_index, reduction)
    if label_smoothing == 0.0:
        return nll.reshape(shape) if reduction == "none" else nll
    # PyTorch's smoothing term: -sum_c w_c log p_ic per kept row, normalised like the nll part
    cw = np.ones(C, dtype=x.dtype) if w is None else w
    smooth = -(logp * cw).sum(1) * keep.astype(x.dtype)
    if reduction == "none":
        smooth = smooth.reshape(shape)
        nll = nll.reshape(shape)
    elif reduction == "sum":
        smooth = smooth.sum()
    else:
        denom = float(np.where(keep, cw[np.where(keep, ids, 0)], 0).sum())
        smooth = smooth.sum() * (1.0 / denom if denom else math.nan)
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / C)


def _soft_cross_entropy(x: Tensor, t: np.ndarray, weight, reduction, label_smoothing) -> Tensor:
    if t.shape != x.shape:
        raise ValueError(
            f"cross_entropy: a probability target must have the input's shape {x.shape}, "
            f"got {t.shape}"
        )
    dim = 0 if x.ndim == 1 else 1
    C = x.shape[dim]
    t = t.astype(x.dtype)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + label_smoothing / C
    w = _class_weight("cross_entropy", weight, C, x.dtype)
    if w is not None:
        t = t * w.reshape((C,) + (1,) * (x.ndim - dim - 1))
    loss = -(x.log_softmax(dim) * t).sum(dim)
    return _reduce(loss, reduction)


# ---- regression and binary losses ----


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(x - y)**2``, averaged (or summed) over every element.

    ``input`` and ``target`` must have the same shape (no silent broadcasting).

    >>> import tinyrnn as tr
    >>> import tinyrnn.nn.functional as F
    >>> F.mse_loss(tr.tensor([1.0, 2.0]), tr.tensor([0.0, 0.0])).item()
    2.5
    """
    x = _tensor("mse_loss", "input", input)
    _check_reduction("mse_loss", reduction)
    y = target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=x.dtype))
    if y.shape != x.shape:
        raise ValueError(
            f"mse_loss: target of shape {y.shape} does not match input of shape {x.shape}; "
            "they must be equal"
        )
    return SquaredError.apply(x, y, reduction=reduction)


def _softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)) without overflow, with the exact gradient sigmoid(x) everywhere.

    Each branch sees only the half of x it is stable on (the clamps), so the branch not picked
    by ``where`` stays finite and passes a zero gradient.
    """
    pos = x.clamp(min=0.0)
    neg = x.clamp(max=0.0)
    hi = pos + (1.0 + (-pos).exp()).log()
    lo = (1.0 + neg.exp()).log()
    return where(x.data >= 0, hi, lo)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Tensor:
    """Binary cross-entropy on logits, stable for any logit size:
    ``l = -w * (p * y * log sigmoid(x) + (1 - y) * log(1 - sigmoid(x)))`` with ``p = pos_weight``,
    computed as ``(1 - y) * x + (1 + (p - 1) * y) * softplus(-x)``.

    >>> import tinyrnn as tr
    >>> import tinyrnn.nn.functional as F
    >>> x = tr.tensor([0.0, 100.0])
    >>> [round(v, 4) for v in F.binary_cross_entropy_with_logits(
    ...     x, tr.tensor([1.0, 0.0]), reduction="none").tolist()]
    [0.6931, 100.0]
    """
    x = _tensor("binary_cross_entropy_with_logits", "input", input)
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    y = target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=x.dtype))
    if y.shape != x.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: target size {y.shape} must be the same as "
            f"input size {x.shape}"
        )
    sp = _softplus(-x)
    if pos_weight is None:
        loss = (1.0 - y) * x + sp
    else:
        lw = (_as_const(pos_weight, x) - 1.0) * y + 1.0
        loss = (1.0 - y) * x + lw * sp
    if weight is not None:
        loss = loss * _as_const(weight, x)
    return _reduce(loss, reduction)


def _as_const(v: Any, like: Tensor) -> Any:
    return v if isinstance(v, Tensor) else np.asarray(v, dtype=like.dtype)

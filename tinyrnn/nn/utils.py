"""``tr.nn.utils``: gradient clipping, applied to ``.grad`` in place after ``backward``."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(op: str, parameters: Any) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    if not isinstance(parameters, Iterable):
        raise TypeError(
            f"{op}: expected a tensor or an iterable of tensors, got {type(parameters).__name__}"
        )
    out = []
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: expected tensors, got {type(p).__name__}")
        if p.grad is not None:
            out.append(p.grad)
    return out


def clip_grad_norm_(
    parameters: Any,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    ``total = ||(||g_1||_p, ..., ||g_k||_p)||_p`` over every parameter's gradient (``p = inf``:
    the largest absolute value); each gradient is multiplied by ``min(1, max_norm / (total +
    1e-6))``, as PyTorch does.

    Args:
        parameters: a tensor or an iterable of tensors (those without ``.grad`` are skipped).
        max_norm: the largest allowed norm.
        norm_type: p of the p-norm (``float("inf")`` for the max norm).
        error_if_nonfinite: raise if the total norm is NaN or infinite (the gradients are left
            untouched); otherwise such a norm scales every gradient to NaN, as PyTorch.

    Returns:
        The total norm before clipping, as a 0-d tensor (float64 when any gradient is float64).

    >>> import tinyrnn as tr
    >>> w = tr.zeros(2, requires_grad=True)
    >>> (w * tr.tensor([3.0, 4.0])).sum().backward()
    >>> tr.nn.utils.clip_grad_norm_([w], max_norm=1.0).item()
    5.0
    >>> [round(g, 4) for g in w.grad.tolist()]
    [0.6, 0.8]
    """
    grads = _grads("clip_grad_norm_", parameters)
    p = float(norm_type)
    if not (p > 0):
        raise ValueError(f"clip_grad_norm_: norm_type must be positive, got {norm_type}")
    dtype = np.result_type(*[g.dtype for g in grads]) if grads else np.dtype(np.float32)
    if not grads:
        return Tensor(np.zeros((), dtype=dtype))
    if math.isinf(p):
        total = max(float(np.max(np.abs(g.data))) if g.data.size else 0.0 for g in grads)
    else:
        norms = [np.linalg.norm(g.data.reshape(-1).astype(np.float64), ord=p) for g in grads]
        total = float(np.linalg.norm(np.array(norms), ord=p))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"{total}, so they cannot be clipped; set error_if_nonfinite=False to clip anyway"
        )
    coef = max_norm / (total + 1e-6)
    if coef < 1.0 or math.isnan(coef):
        for g in grads:
            np.multiply(g.data, g.data.dtype.type(coef), out=g.data)
    return Tensor(np.asarray(total, dtype=dtype))


def clip_grad_value_(parameters: Any, clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place.

    >>> import tinyrnn as tr
    >>> w = tr.zeros(3, requires_grad=True)
    >>> (w * tr.tensor([-5.0, 0.5, 9.0])).sum().backward()
    >>> tr.nn.utils.clip_grad_value_(w, 1.0)
    >>> w.grad.tolist()
    [-1.0, 0.5, 1.0]
    """
    grads = _grads("clip_grad_value_", parameters)
    c = float(clip_value)
    if not c >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be non-negative, got {clip_value}")
    for g in grads:
        np.clip(g.data, -c, c, out=g.data)

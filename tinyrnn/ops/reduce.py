"""Reductions over one axis, several axes or all of them."""

from __future__ import annotations

import numpy as np

from ..engine import Function


def _axes(op: str, ndim: int, dim) -> tuple[int, ...]:
    """Normalise ``dim`` (None, int or tuple) to a tuple of non-negative axes, checking range."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(
                f"{op}: dimension {d} out of range for a tensor with {ndim} dimension(s) "
                f"(expected -{max(ndim, 1)} <= dim < {max(ndim, 1)})"
            )
        out.append(d % max(ndim, 1))
    return tuple(out) if ndim else ()


def _expand(grad: np.ndarray, shape: tuple[int, ...], axes: tuple[int, ...], keepdim: bool):
    """Broadcast a reduced gradient back over the reduced axes of an input of ``shape``."""
    if not keepdim and axes:
        grad = grad.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return np.broadcast_to(grad, shape)


class Sum(Function):
    """y = sum over ``dim`` of x;  dy/dx = 1 (broadcast back over the summed axes)

    Shapes: the axes in ``dim`` (int, tuple or None for all) are removed, or kept as size 1
    with ``keepdim``.

    >>> import tinyrnn as tr
    >>> Sum.apply(tr.ones(2, 3), dim=1).tolist()
    [3.0, 3.0]
    """

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        axes = _axes("sum", x.ndim, dim)
        ctx.save_for_backward(x.shape, axes, keepdim)
        return np.asarray(x.sum(axis=axes, keepdims=keepdim))

    @staticmethod
    def backward(ctx, grad_output):
        shape, axes, keepdim = ctx.saved_tensors
        return _expand(grad_output, shape, axes, keepdim)


class Max(Function):
    """y = max over ``dim`` of x;  dy/dx = 1 at the arg max (ties share the gradient equally
    when reducing everything, as PyTorch; with ``dim``, the first arg max gets it).

    Shapes: as ``Sum`` with ``dim`` an int or None. ``largest=False`` gives the minimum.

    >>> import tinyrnn as tr
    >>> x = tr.tensor([[1.0, 4.0], [3.0, 2.0]], requires_grad=True)
    >>> Max.apply(x, dim=1).sum().backward(); x.grad.tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False, largest=True):
        op = "max" if largest else "min"
        if x.size == 0:
            raise RuntimeError(f"{op}: expected a non-empty tensor, got shape {x.shape}")
        if dim is not None and not isinstance(dim, (int, np.integer)):
            raise TypeError(f"{op}: dim must be an int or None, got {dim!r}")
        axes = _axes(op, x.ndim, dim)
        y = x.max(axis=axes, keepdims=True) if largest else x.min(axis=axes, keepdims=True)
        if dim is None or x.ndim == 0:
            mask = x == y
            mask = mask / mask.sum()
        else:
            (a,) = axes
            idx = np.argmax(x, axis=a) if largest else np.argmin(x, axis=a)
            mask = np.zeros(x.shape, dtype=x.dtype)
            np.put_along_axis(mask, np.expand_dims(idx, a), 1, axis=a)
        ctx.save_for_backward(mask.astype(x.dtype, copy=False), axes, keepdim)
        return y if keepdim else np.squeeze(y, axis=axes)

    @staticmethod
    def backward(ctx, grad_output):
        mask, axes, keepdim = ctx.saved_tensors
        return _expand(grad_output, mask.shape, axes, keepdim) * mask

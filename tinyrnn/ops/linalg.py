"""Matrix product (NumPy's BLAS), with NumPy's ``matmul`` semantics for 1-D and batched operands."""

from __future__ import annotations

import numpy as np

from ..engine import Function


class MatMul(Function):
    """Z = X @ Y;  dL/dX = G @ Y^T, dL/dY = X^T @ G (1-D operands are promoted as in NumPy;
    batch dimensions broadcast and the engine sums them back).

    Shapes: (..., n, k) @ (..., k, m) -> (..., n, m); (k,) @ (k,) -> ().

    >>> import tinyrnn as tr
    >>> a = tr.ones(2, 3, requires_grad=True)
    >>> MatMul.apply(a, tr.ones(3, 4)).sum().backward(); a.grad.tolist()
    [[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]]
    """

    @staticmethod
    def forward(ctx, x, y):
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError(
                f"matmul: both operands need at least 1 dimension, got shapes {x.shape} and "
                f"{y.shape}"
            )
        kx = x.shape[-1]
        ky = y.shape[-2] if y.ndim > 1 else y.shape[0]
        if kx != ky:
            raise ValueError(
                f"matmul: shapes {x.shape} and {y.shape} are not aligned: the last dimension of "
                f"the first ({kx}) must equal the {'second-to-last' if y.ndim > 1 else 'only'} "
                f"dimension of the second ({ky})"
            )
        ctx.save_for_backward(x, y)
        try:
            return np.matmul(x, y)
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of shapes {x.shape} and {y.shape} do not broadcast"
            ) from None

    @staticmethod
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        nx, ny = ctx.needs_input_grad
        if x.ndim == 1 and y.ndim == 1:  # inner product
            return (grad_output * y if nx else None), (grad_output * x if ny else None)
        # promote 1-D operands to matrices as matmul does, so each gradient is one product
        x2 = x[None, :] if x.ndim == 1 else x
        y2 = y[:, None] if y.ndim == 1 else y
        g = grad_output
        if x.ndim == 1:
            g = g[..., None, :]
        if y.ndim == 1:
            g = g[..., None]
        gx = _product_like(x2, g, y2.swapaxes(-1, -2)) if nx else None
        gy = _product_like(y2, x2.swapaxes(-1, -2), g) if ny else None
        if gx is not None and x.ndim == 1:
            gx = gx[..., 0, :]
        if gy is not None and y.ndim == 1:
            gy = gy[..., 0]
        return gx, gy


def _product_like(operand: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b``, the gradient of ``operand``, in ``operand``'s memory order: for a column-major
    matrix (``W.T`` of a row-major ``W``) it is computed as ``(b^T a^T)^T``, so that after the
    transpose's own backward the gradient reaching ``W`` is row-major like ``W`` (as PyTorch's
    matmul backward does). Optimizer updates over mismatched layouts were several times slower.
    """
    f = operand.flags
    if operand.ndim == a.ndim == b.ndim == 2 and f.f_contiguous and not f.c_contiguous:
        return (b.T @ a.T).T
    return a @ b

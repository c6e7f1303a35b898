"""Element-wise ops with NumPy broadcasting. Gradients may have the output's shape: the engine
sums them back to each input's shape, so no op here handles broadcasting itself.

These ops are on the hot path of every model, so their forwards set ``ctx.saved_tensors``
directly, which is all ``ctx.save_for_backward(...)`` does, one Python call fewer per op.
"""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from ..engine import Function


def _broadcast_shape(op: str, a, b) -> None:
    """Raise a clear error when the shapes of ``a`` and ``b`` do not broadcast."""
    sa, sb = np.shape(a), np.shape(b)
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {sa} and {sb} cannot be broadcast together (each trailing dimension "
            "must match or be 1)"
        ) from None


class Add(Function):
    """z = x + y;  dz/dx = 1, dz/dy = 1

    Shapes: x and y broadcast together; z has the broadcast shape.

    >>> import tinyrnn as tr
    >>> Add.apply(tr.ones(2, 1), tr.tensor([1.0, 2.0])).tolist()
    [[2.0, 3.0], [2.0, 3.0]]
    """

    _exact_grads = 2

    @staticmethod
    def forward(ctx, x, y):
        try:
            return x + y
        except ValueError:
            _broadcast_shape("add", x, y)
            raise

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, grad_output


class Sub(Function):
    """z = x - y;  dz/dx = 1, dz/dy = -1

    Shapes: as ``Add``.

    >>> import tinyrnn as tr
    >>> Sub.apply(tr.tensor([3.0]), 1.0).tolist()
    [2.0]
    """

    _exact_grads = 2

    @staticmethod
    def forward(ctx, x, y):
        try:
            return x - y
        except ValueError:
            _broadcast_shape("sub", x, y)
            raise

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, (-grad_output if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """z = x * y;  dz/dx = y, dz/dy = x

    Shapes: as ``Add``.

    >>> import tinyrnn as tr
    >>> x = tr.tensor([2.0], requires_grad=True); Mul.apply(x, 5.0).backward(); x.grad.tolist()
    [5.0]
    """

    _exact_grads = 2

    @staticmethod
    def forward(ctx, x, y):
        ctx.saved_tensors = (x, y)
        try:
            return x * y
        except ValueError:
            _broadcast_shape("mul", x, y)
            raise

    @staticmethod
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        nx, ny = ctx.needs_input_grad
        return (grad_output * y if nx else None), (grad_output * x if ny else None)


class Div(Function):
    """z = x / y;  dz/dx = 1 / y, dz/dy = -x / y**2

    Shapes: as ``Add``.

    >>> import tinyrnn as tr
    >>> y = tr.tensor([2.0], requires_grad=True); Div.apply(1.0, y).backward(); y.grad.tolist()
    [-0.25]
    """

    _exact_grads = 2

    @staticmethod
    def forward(ctx, x, y):
        ctx.saved_tensors = (x, y)
        try:
            return x / y
        except ValueError:
            _broadcast_shape("div", x, y)
            raise

    @staticmethod
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        nx, ny = ctx.needs_input_grad
        gx = grad_output / y if nx else None
        gy = -grad_output * x / (y * y) if ny else None
        return gx, gy


class Pow(Function):
    """z = x ** y;  dz/dx = y * x**(y-1), dz/dy = x**y * log(x)

    Shapes: as ``Add``. Where x == 0 and y >= 0 the gradient for y is 0 (PyTorch's choice).

    >>> import tinyrnn as tr
    >>> x = tr.tensor([3.0], requires_grad=True); Pow.apply(x, 2.0).backward(); x.grad.tolist()
    [6.0]
    """

    @staticmethod
    def forward(ctx, x, y):
        try:
            z = x**y
        except ValueError:
            _broadcast_shape("pow", x, y)
            raise
        ctx.saved_tensors = (x, y, z)
        return z

    @staticmethod
    def backward(ctx, grad_output):
        x, y, z = ctx.saved_tensors
        nx, ny = ctx.needs_input_grad
        gx = grad_output * y * x ** (y - 1) if nx else None
        gy = None
        if ny:
            # log(x) is undefined for x <= 0; PyTorch gives 0 where x == 0 and z == 0.
            with np.errstate(divide="ignore", invalid="ignore"):
                gy = grad_output * z * np.log(x)
            gy = np.where((x == 0) & (np.asarray(y) >= 0), 0, gy)
        return gx, gy


class Neg(Function):
    """y = -x;  dy/dx = -1

    Shapes: y has x's shape.

    >>> import tinyrnn as tr
    >>> Neg.apply(tr.tensor([1.0, -2.0])).tolist()
    [-1.0, 2.0]
    """

    _exact_grads = 1

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad_output):
        return -grad_output


class Exp(Function):
    """y = exp(x);  dy/dx = y

    Shapes: y has x's shape.

    >>> import tinyrnn as tr
    >>> Exp.apply(tr.tensor([0.0])).tolist()
    [1.0]
    """

    _exact_grads = 1

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.saved_tensors = (y,)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output * y


class Log(Function):
    """y = log(x);  dy/dx = 1 / x

    Shapes: y has x's shape. log(0) = -inf, log(x < 0) = nan, without warnings.

    >>> import tinyrnn as tr
    >>> x = tr.tensor([4.0], requires_grad=True); Log.apply(x).backward(); x.grad.tolist()
    [0.25]
    """

    _exact_grads = 1

    @staticmethod
    def forward(ctx, x):
        ctx.saved_tensors = (x,)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / x


class Sqrt(Function):
    """y = sqrt(x);  dy/dx = 1 / (2 y)

    Shapes: y has x's shape.

    >>> import tinyrnn as tr
    >>> x = tr.tensor([4.0], requires_grad=True); Sqrt.apply(x).backward(); x.grad.tolist()
    [0.25]
    """

    _exact_grads = 1

    @staticmethod
    def forward(ctx, x):
        with np.errstate(invalid="ignore"):
            y = np.sqrt(x)
        ctx.saved_tensors = (y,)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        with np.errstate(divide="ignore"):
            return grad_output / (2 * y)


class Abs(Function):
    """y = |x|;  dy/dx = sign(x) (0 at x == 0, as PyTorch)

    Shapes: y has x's shape.

    >>> import tinyrnn as tr
    >>> x = tr.tensor([-2.0, 0.0], requires_grad=True)
    >>> Abs.apply(x).sum().backward(); x.grad.tolist()
    [-1.0, 0.0]
    """

    _exact_grads = 1

    @staticmethod
    def forward(ctx, x):
        ctx.saved_tensors = (x,)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * np.sign(x)


class Tanh(Function):
    """y = tanh(x);  dy/dx = 1 - y**2

    Shapes: y has x's shape. The output is saved; backward is the ``tanh_bwd`` kernel.

    >>> import tinyrnn as tr
    >>> x = tr.tensor([0.0], requires_grad=True); Tanh.apply(x).backward(); x.grad.tolist()
    [1.0]
    """

    _exact_grads = 1

    @staticmethod
    def forward(ctx, x):
        # NumPy's tanh is vectorised (SIMD); Numba calls libm per element, 10-40x slower here.
        y = np.tanh(x)
        if type(y) is not np.ndarray:  # a 0-d input gives a NumPy scalar; kernels take arrays
            y = np.asarray(y)
        ctx.saved_tensors = (y,)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return K.tanh_bwd(y, grad_output)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x));  dy/dx = y (1 - y). Stable for large |x|.

    Shapes: y has x's shape. Kernels ``sigmoid_fwd``/``sigmoid_bwd``; the output is saved.

    >>> import tinyrnn as tr
    >>> x = tr.tensor([0.0], requires_grad=True); Sigmoid.apply(x).backward(); x.grad.tolist()
    [0.25]
    """

    _exact_grads = 1

    @staticmethod
    def forward(ctx, x):
        y = K.sigmoid_fwd(x)
        ctx.saved_tensors = (y,)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return K.sigmoid_bwd(y, grad_output)


class Relu(Function):
    """y = max(x, 0);  dy/dx = 1 where x > 0 else 0

    Shapes: y has x's shape. Backward is the ``relu_bwd`` kernel.

    >>> import tinyrnn as tr
    >>> x = tr.tensor([-1.0, 2.0], requires_grad=True)
    >>> Relu.apply(x).sum().backward(); x.grad.tolist()
    [0.0, 1.0]
    """

    _exact_grads = 1

    @staticmethod
    def forward(ctx, x):
        ctx.saved_tensors = (x,)
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return K.relu_bwd(x, grad_output)


class Clamp(Function):
    """y = min(max(x, lo), hi);  dy/dx = 1 where lo <= x <= hi else 0 (as PyTorch)

    Shapes: y has x's shape; ``lo``/``hi`` are options (None: unbounded).

    >>> import tinyrnn as tr
    >>> Clamp.apply(tr.tensor([-3.0, 0.5, 3.0]), lo=-1.0, hi=1.0).tolist()
    [-1.0, 0.5, 1.0]
    """

    _exact_grads = 1

    @staticmethod
    def forward(ctx, x, lo=None, hi=None):
        keep = np.ones(x.shape, dtype=bool)
        if lo is not None:
            keep &= x >= lo
        if hi is not None:
            keep &= x <= hi
        ctx.saved_tensors = (keep,)
        return np.clip(x, lo, hi).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_output):
        (keep,) = ctx.saved_tensors
        return grad_output * keep


class Where(Function):
    """z = where(cond, x, y);  dz/dx = cond, dz/dy = not cond (cond gets no gradient)

    Shapes: cond (bool array, a constant), x and y broadcast together.

    >>> import numpy as np, tinyrnn as tr
    >>> Where.apply(np.array([True, False]), tr.ones(2), 0.0).tolist()
    [1.0, 0.0]
    """

    @staticmethod
    def forward(ctx, cond, x, y):
        ctx.saved_tensors = (cond,)
        try:
            return np.where(cond, x, y)
        except ValueError:
            raise ValueError(
                f"where: condition {np.shape(cond)}, x {np.shape(x)} and y {np.shape(y)} cannot "
                "be broadcast together (each trailing dimension must match or be 1)"
            ) from None

    @staticmethod
    def backward(ctx, grad_output):
        (cond,) = ctx.saved_tensors
        _, nx, ny = ctx.needs_input_grad
        zero = np.zeros((), grad_output.dtype)
        gx = np.where(cond, grad_output, zero) if nx else None
        gy = np.where(cond, zero, grad_output) if ny else None
        return None, gx, gy

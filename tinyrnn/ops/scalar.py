"""Scalar ops behind ``tr.Value``: the same ``Function`` mechanism on Python floats."""

from __future__ import annotations

import math

from ..engine import Function


class SAdd(Function):
    """z = x + y;  dz/dx = dz/dy = 1

    Payloads are Python floats.

    >>> import tinyrnn as tr
    >>> SAdd.apply(tr.Value(1.0), 2.0).data
    3.0
    """

    @staticmethod
    def forward(ctx, x, y):
        return float(x + y)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, grad_output


class SMul(Function):
    """z = x * y;  dz/dx = y, dz/dy = x

    Payloads are Python floats.

    >>> import tinyrnn as tr
    >>> a = tr.Value(3.0); SMul.apply(a, 4.0).backward(); a.grad
    4.0
    """

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return float(x * y)

    @staticmethod
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        return grad_output * y, grad_output * x


class SPow(Function):
    """z = x ** y;  dz/dx = y x**(y-1), dz/dy = x**y log(x)

    Payloads are Python floats; undefined powers raise ValueError.

    >>> import tinyrnn as tr
    >>> a = tr.Value(3.0); SPow.apply(a, 2.0).backward(); a.grad
    6.0
    """

    @staticmethod
    def forward(ctx, x, y):
        try:
            z = x**y
        except (ZeroDivisionError, OverflowError) as e:
            raise ValueError(f"pow: {x} ** {y} is undefined ({e})") from None
        if isinstance(z, complex):
            raise ValueError(f"pow: {x} ** {y} is not a real number")
        ctx.save_for_backward(x, y, float(z))
        return float(z)

    @staticmethod
    def backward(ctx, grad_output):
        x, y, z = ctx.saved_tensors
        gx = grad_output * y * x ** (y - 1) if ctx.needs_input_grad[0] else None
        gy = None
        if ctx.needs_input_grad[1]:
            gy = grad_output * z * math.log(x) if x > 0 else 0.0
        return gx, gy


class SNeg(Function):
    """y = -x;  dy/dx = -1

    Payloads are Python floats.

    >>> import tinyrnn as tr
    >>> SNeg.apply(tr.Value(2.0)).data
    -2.0
    """

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad_output):
        return -grad_output


class SExp(Function):
    """y = exp(x);  dy/dx = y

    Payloads are Python floats; overflow gives inf.

    >>> import tinyrnn as tr
    >>> SExp.apply(tr.Value(0.0)).data
    1.0
    """

    @staticmethod
    def forward(ctx, x):
        y = math.exp(x) if x < 709.78 else math.inf
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output * y


class SLog(Function):
    """y = log(x);  dy/dx = 1 / x

    Payloads are Python floats; x <= 0 raises ValueError.

    >>> import tinyrnn as tr
    >>> SLog.apply(tr.Value(1.0)).data
    0.0
    """

    @staticmethod
    def forward(ctx, x):
        if x <= 0:
            raise ValueError(f"log: expected a positive number, got {x}")
        ctx.save_for_backward(x)
        return math.log(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / x


class STanh(Function):
    """y = tanh(x);  dy/dx = 1 - y**2

    Payloads are Python floats.

    >>> import tinyrnn as tr
    >>> STanh.apply(tr.Value(0.0)).data
    0.0
    """

    @staticmethod
    def forward(ctx, x):
        y = math.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output * (1 - y * y)


class SSigmoid(Function):
    """y = 1 / (1 + exp(-x));  dy/dx = y (1 - y)

    Payloads are Python floats; stable for large |x|.

    >>> import tinyrnn as tr
    >>> SSigmoid.apply(tr.Value(-1000.0)).data
    0.0
    """

    @staticmethod
    def forward(ctx, x):
        if x >= 0:
            y = 1.0 / (1.0 + math.exp(-x))
        else:
            e = math.exp(x)
            y = e / (1.0 + e)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output * y * (1 - y)


class SRelu(Function):
    """y = max(x, 0);  dy/dx = 1 where x > 0 else 0

    Payloads are Python floats.

    >>> import tinyrnn as tr
    >>> SRelu.apply(tr.Value(-1.0)).data
    0.0
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x if x > 0 else 0.0

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output if x > 0 else 0.0

"""``Value``: a scalar node on the same graph engine as ``Tensor``, for teaching and pictures.

Each arithmetic operator is one ``ops.scalar`` Function; the backward sweep is the engine's, so
a ``Value`` network of any depth (100,000 chained operations) backpropagates without recursion.
"""

from __future__ import annotations

import math
from typing import Any

from .engine import Node, backward
from .ops import scalar as S


def _num(x: Any, op: str) -> Any:
    if isinstance(x, Value):
        return x
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"Value {op}: expected a Value or a real number, got {type(x).__name__}")
    return float(x)


class Value(Node):
    """A scalar that records the operations applied to it.

    Args:
        data: the number.
        label: a name shown in graph pictures (also available as ``.name``).

    ``+ - * / **`` take Values or Python numbers on either side (``a - b`` is ``a + (-b)`` and
    ``a / b`` is ``a * b**-1``, as in micrograd); ``.data`` and ``.grad`` are floats.

    >>> from tinyrnn import Value
    >>> a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    >>> c = a * b + a
    >>> c.backward()
    >>> a.grad, b.grad
    (-2.0, 2.0)
    >>> x = Value(0.5); y = (x * x + x).tanh(); y.backward(); round(x.grad, 6)
    1.193172
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_idx", "_hooks", "name", "__weakref__")

    def __init__(self, data: float, label: str = "", requires_grad: bool = True):
        if isinstance(data, Value):
            data = data.data
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise TypeError(f"Value: expected a real number, got {type(data).__name__}")
        if not math.isfinite(data):
            raise ValueError(f"Value: expected a finite number, got {data}")
        self.data = float(data)
        self.grad = 0.0
        self.requires_grad = requires_grad
        self._ctx = None
        self._idx = 0
        self._hooks = None
        self.name = label or None

    @classmethod
    def _from_op(cls, payload: Any, ctx: Any, idx: int) -> Value:
        v = object.__new__(Value)
        v.data = float(payload)
        v.grad = 0.0
        v.requires_grad = ctx is not None
        v._ctx = ctx
        v._idx = idx
        v._hooks = None
        v.name = None
        return v

    def _accumulate_grad(self, g: float) -> None:
        self.grad += g

    @property
    def label(self) -> str:
        """The name shown in graph pictures ("" when unnamed); settable.

        >>> from tinyrnn import Value
        >>> v = Value(1.0, label="w"); v.label = "weight"; v.label, v.name
        ('weight', 'weight')
        """
        return self.name or ""

    @label.setter
    def label(self, text: str) -> None:
        self.name = text or None

    @property
    def grad_fn(self) -> Any:
        """The op record that made this value (None for leaves).

        >>> from tinyrnn import Value
        >>> (Value(2.0) * 3).grad_fn
        <SMulBackward>
        """
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        """True for values made by the user rather than by an op.

        >>> from tinyrnn import Value
        >>> Value(1.0).is_leaf, (Value(1.0) + 1).is_leaf
        (True, False)
        """
        return self._ctx is None

    @property
    def shape(self) -> tuple[()]:
        """Always ``()``: a Value is a scalar (graph pictures read shapes uniformly).

        >>> from tinyrnn import Value
        >>> Value(1.0).shape
        ()
        """
        return ()

    def __repr__(self) -> str:
        name = f", label={self.name!r}" if self.name else ""
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g}{name})"

    def backward(self, retain_graph: bool = False) -> None:
        """Add d(self)/d(v) to ``v.grad`` for every Value ``v`` this one depends on.

        >>> from tinyrnn import Value
        >>> a = Value(3.0); b = a * a; b.backward(); a.grad
        6.0
        """
        backward(self, 1.0, retain_graph)

    def __add__(self, other: Any) -> Value:
        return S.SAdd.apply(self, _num(other, "+"))

    def __radd__(self, other: Any) -> Value:
        return S.SAdd.apply(_num(other, "+"), self)

    def __mul__(self, other: Any) -> Value:
        return S.SMul.apply(self, _num(other, "*"))

    def __rmul__(self, other: Any) -> Value:
        return S.SMul.apply(_num(other, "*"), self)

    def __pow__(self, other: Any) -> Value:
        return S.SPow.apply(self, _num(other, "**"))

    def __rpow__(self, other: Any) -> Value:
        return S.SPow.apply(_num(other, "**"), self)

    def __neg__(self) -> Value:
        return S.SNeg.apply(self)

    def __sub__(self, other: Any) -> Value:
        return self + (-_num(other, "-"))

    def __rsub__(self, other: Any) -> Value:
        return (-self) + _num(other, "-")

    def __truediv__(self, other: Any) -> Value:
        o = _num(other, "/")
        if (o.data if isinstance(o, Value) else o) == 0:
            raise ZeroDivisionError("Value /: division by zero")
        return self * o**-1

    def __rtruediv__(self, other: Any) -> Value:
        if self.data == 0:
            raise ZeroDivisionError("Value /: division by zero")
        return _num(other, "/") * self**-1

    def tanh(self) -> Value:
        """y = tanh x;  dy/dx = 1 - y**2.

        >>> from tinyrnn import Value
        >>> x = Value(0.0); y = x.tanh(); y.backward(); (y.data, x.grad)
        (0.0, 1.0)
        """
        return S.STanh.apply(self)

    def relu(self) -> Value:
        """y = max(x, 0);  dy/dx = 1 where x > 0, else 0.

        >>> from tinyrnn import Value
        >>> Value(-2.0).relu().data, Value(2.0).relu().data
        (0.0, 2.0)
        """
        return S.SRelu.apply(self)

    def sigmoid(self) -> Value:
        """y = 1 / (1 + e**-x), without overflow;  dy/dx = y (1 - y).

        >>> from tinyrnn import Value
        >>> x = Value(0.0); y = x.sigmoid(); y.backward(); (y.data, x.grad)
        (0.5, 0.25)
        """
        return S.SSigmoid.apply(self)

    def exp(self) -> Value:
        """y = e**x (inf past overflow);  dy/dx = y.

        >>> from tinyrnn import Value
        >>> x = Value(0.0); y = x.exp(); y.backward(); (y.data, x.grad)
        (1.0, 1.0)
        """
        return S.SExp.apply(self)

    def log(self) -> Value:
        """y = ln x for x > 0;  dy/dx = 1 / x.

        >>> from tinyrnn import Value
        >>> x = Value(2.0); x.log().backward(); x.grad
        0.5
        """
        return S.SLog.apply(self)

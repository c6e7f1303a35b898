"""``Tensor``: a NumPy array with a place in the autograd graph, and the tensor creation functions.

Every differentiable method is sugar over one ``ops.<Op>.apply`` call or a composition of them;
no gradient is written in this file.
"""

from __future__ import annotations

import math
import weakref
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _dtype
from ._random import generator
from .engine import Node, backward, is_grad_enabled
from .engine.function import _apply1, _apply2
from .ops import elementwise as E
from .ops import fused as Fu
from .ops import linalg as L
from .ops import movement as M
from .ops import reduce as R

MaxResult = namedtuple("MaxResult", ["values", "indices"])

_new_object = object.__new__
_ndarray = np.ndarray

# The operators and element-wise methods call the one- and two-argument paths of
# ``Function.apply`` directly: ``_apply2(_Add, a, b)`` is ``E.Add.apply(a, b)``.
_Add, _Sub, _Mul, _Div, _Pow = E.Add, E.Sub, E.Mul, E.Div, E.Pow
_Neg, _Exp, _Log, _Sqrt, _Tanh, _Sigmoid, _Relu = (
    E.Neg, E.Exp, E.Log, E.Sqrt, E.Tanh, E.Sigmoid, E.Relu
)  # fmt: skip


def _to_array(data: Any, dtype: Any = None, op: str = "tensor") -> np.ndarray:
    """Convert user data to an ndarray with tinyrnn's dtype rules, or raise a clear error."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (str, bytes)):
        raise TypeError(f"{op}: cannot make a tensor from a string ({data!r})")
    if isinstance(data, np.ndarray):
        arr = data
    else:
        try:
            arr = np.asarray(data)
        except ValueError as e:
            raise ValueError(
                f"{op}: could not make a tensor from ragged or irregular data: expected nested "
                f"sequences of equal lengths ({e})"
            ) from None
        if arr.dtype.kind == "f" and dtype is None:
            arr = arr.astype(_dtype.get_default_dtype())
    if arr.dtype.kind == "c":
        raise TypeError(f"{op}: complex data is not supported (got dtype {arr.dtype})")
    if arr.dtype.kind not in "fiub":
        raise TypeError(
            f"{op}: unsupported data of dtype {arr.dtype}: expected numbers, nested lists of "
            "numbers or a NumPy array"
        )
    if arr.dtype.kind == "f" and arr.dtype not in _dtype._FLOATS and dtype is None:
        arr = arr.astype(_dtype.get_default_dtype())
    if dtype is not None:
        arr = arr.astype(_dtype.to_dtype(dtype), copy=False)
    return arr


def _shape_args(shape: tuple[Any, ...], op: str) -> tuple[int, ...]:
    """``f(2, 3)`` and ``f((2, 3))`` both mean shape (2, 3); check the sizes."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(isinstance(s, (int, np.integer)) and s >= 0 for s in shape):
        raise ValueError(f"{op}: expected a shape of non-negative ints, got {shape}")
    return tuple(int(s) for s in shape)


def _index(index: Any) -> Any:
    """Turn tensors inside an index into arrays (indices and masks carry no gradient)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


class _HookHandle:
    """Returned by ``register_hook``; ``remove()`` takes the hook off."""

    def __init__(self, hooks: list[Any], fn: Any):
        self._hooks, self._fn = hooks, fn

    def remove(self) -> None:
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


class Tensor(Node):
    """An n-dimensional array that records the operations applied to it, for reverse-mode autograd.

    Args:
        data: numbers, nested lists or a NumPy array.
        dtype: ``tr.float32`` (default for Python floats), ``tr.float64`` or an integer dtype.
        requires_grad: record operations on this tensor so ``backward`` can fill ``.grad``.

    Operators follow NumPy's broadcasting: ``+ - * / **`` element-wise (a gradient is summed
    back over the dimensions an input was broadcast along), ``@`` is ``matmul`` (1-D, 2-D and
    batched), unary ``-``; comparisons and ``& | ^ ~`` give tensors without gradient; indexing
    takes ints, slices, None, Ellipsis, integer arrays and boolean masks (repeated indices add
    their gradients).

    >>> import tinyrnn as tr
    >>> x = tr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad.tolist()
    [[2.0, 4.0], [6.0, 8.0]]
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_idx", "_hooks", "name", "__weakref__")
    __array_priority__ = 1000  # make ndarray <op> Tensor defer to Tensor's reflected ops

    def __init__(self, data: Any, dtype: Any = None, requires_grad: bool = False, name=None):
        self.data = _to_array(data, dtype)
        self.grad: Tensor | None = None
        self._ctx = None
        self._idx = 0
        self._hooks: list[Any] | None = None
        self.name = name
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _from_op(payload: Any, ctx: Any, idx: int) -> Tensor:
        """Wrap an op's result (``ctx`` None: an untracked result). On the hot path of every op,
        so a static method (no bound method to make per call); subclasses get plain Tensors."""
        t = _new_object(Tensor)
        if type(payload) is not _ndarray:
            payload = np.asarray(payload)
        t.data = payload
        t.grad = None
        t._ctx = ctx
        t._idx = idx
        t._hooks = None
        t.name = None
        t.requires_grad = ctx is not None and payload.dtype.kind == "f"
        return t

    def _accumulate_grad(self, g: np.ndarray) -> None:
        if self.grad is None:
            self.grad = Tensor._from_op(np.array(g, dtype=self.data.dtype), None, 0)
        else:  # (asarray: NumPy gives a scalar, not an array, for the sum of two 0-d arrays)
            self.grad.data = np.asarray(self.grad.data + g)

    # ---- attributes ----

    @property
    def shape(self) -> tuple[int, ...]:
        """The sizes of the dimensions, a tuple of ints.

        >>> import tinyrnn as tr
        >>> tr.zeros(2, 3).shape
        (2, 3)
        """
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions (0 for a scalar tensor).

        >>> import tinyrnn as tr
        >>> tr.zeros(2, 3).ndim, tr.tensor(1.0).ndim
        (2, 0)
        """
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The element type, a NumPy dtype (``tr.float32 == np.float32``).

        >>> import tinyrnn as tr
        >>> tr.tensor([1.0]).dtype
        dtype('float32')
        """
        return self.data.dtype

    @property
    def grad_fn(self) -> Any:
        """The op record (``Context``) that made this tensor; None for leaves and for results
        computed without gradient.

        >>> import tinyrnn as tr
        >>> x = tr.ones(2, requires_grad=True)
        >>> x.grad_fn is None, (x * 2).grad_fn
        (True, <MulBackward>)
        """
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by a recorded op.

        >>> import tinyrnn as tr
        >>> x = tr.ones(2, requires_grad=True)
        >>> x.is_leaf, (x + 1).is_leaf
        (True, False)
        """
        return self._ctx is None

    @property
    def T(self) -> Tensor:
        """All dimensions reversed: for a matrix (m, n) the transpose (n, m).

        >>> import tinyrnn as tr
        >>> tr.tensor([[1.0, 2.0]]).T.tolist()
        [[1.0], [2.0]]
        """
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim: int | None = None) -> Any:
        """The shape, or the size of dimension ``dim``.

        >>> import tinyrnn as tr
        >>> tr.zeros(2, 3).size(), tr.zeros(2, 3).size(-1)
        ((2, 3), 3)
        """
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        """The number of elements, the product of the shape.

        >>> import tinyrnn as tr
        >>> tr.zeros(2, 3).numel()
        6
        """
        return int(self.data.size)

    def dim(self) -> int:
        """The number of dimensions (same as ``ndim``).

        >>> import tinyrnn as tr
        >>> tr.zeros(2, 3, 4).dim()
        3
        """
        return self.data.ndim

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype not in (_dtype.get_default_dtype(), _dtype.int64, _dtype.bool_):
            extra += f", dtype={self.data.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx.fn.__name__}Backward>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __array__(self, dtype=None, copy=None):
        if dtype is not None:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(
                f"bool: a tensor of shape {self.shape} has more than one value; use .any() or "
                ".all()"
            )
        return bool(self.data)

    __hash__ = object.__hash__

    # ---- conversion and graph control ----

    def numpy(self) -> np.ndarray:
        """The payload array itself (shared, not copied).

        >>> import tinyrnn as tr
        >>> x = tr.zeros(2); x.numpy()[0] = 5.0; x.tolist()
        [5.0, 0.0]
        """
        return self.data

    def item(self) -> Any:
        """The one element of the tensor as a Python number.

        >>> import tinyrnn as tr
        >>> tr.tensor([[2.5]]).item(), tr.tensor(3).item()
        (2.5, 3)
        """
        if self.data.size != 1:
            raise ValueError(
                f"item: only a tensor with one element can be converted to a Python number; "
                f"got shape {self.shape}"
            )
        return self.data.reshape(()).item()

    def tolist(self) -> Any:
        """The values as nested Python lists (a number for a 0-d tensor).

        >>> import tinyrnn as tr
        >>> tr.tensor([[1, 2], [3, 4]]).tolist()
        [[1, 2], [3, 4]]
        """
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut from the graph (no gradient flows back).

        >>> import tinyrnn as tr
        >>> x = tr.ones(2, requires_grad=True)
        >>> d = (x * 2).detach(); d.requires_grad, d.is_leaf
        (False, True)
        """
        return Tensor._from_op(self.data, None, 0)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Switch gradient recording for this leaf on (floating tensors only) or off; returns it.

        >>> import tinyrnn as tr
        >>> tr.zeros(2).requires_grad_().requires_grad
        True
        """
        if requires_grad and self.data.dtype.kind != "f":
            raise RuntimeError(
                f"requires_grad: only floating point tensors can require gradients; this one "
                f"has dtype {self.data.dtype}"
            )
        if not requires_grad and self._ctx is not None:
            raise RuntimeError(
                "requires_grad_(False): only leaf tensors can be changed; use detach()"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Fill ``.grad`` of every leaf this tensor depends on with d(self)/d(leaf).

        Args:
            gradient: d(loss)/d(self), of this tensor's shape; may be omitted for one element.
            retain_graph: keep the saved arrays so backward can run through the graph again.
        """
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implicitly created only for scalar outputs; this "
                    f"tensor has shape {self.shape}: pass gradient= of that shape"
                )
            g = np.ones(self.shape, dtype=self.data.dtype)
        else:
            g = _to_array(gradient, self.data.dtype, op="backward")
            if g.shape != self.shape:
                raise RuntimeError(
                    f"backward: gradient has shape {g.shape} but the tensor has shape {self.shape}"
                )
        backward(self, g, retain_graph)

    def register_hook(self, fn: Callable[[Tensor], Tensor | None]) -> _HookHandle:
        """Call ``fn(grad)`` when this tensor's gradient is computed; a returned tensor replaces it.

        >>> import tinyrnn as tr
        >>> x = tr.ones(2, requires_grad=True)
        >>> _ = x.register_hook(lambda g: g * 3)
        >>> (x * 2).sum().backward(); x.grad.tolist()
        [6.0, 6.0]
        """
        if not self.requires_grad:
            raise RuntimeError(
                "register_hook: cannot register a hook on a tensor that does not require grad"
            )

        def hook(g: np.ndarray) -> np.ndarray | None:
            out = fn(Tensor._from_op(g, None, 0))
            return None if out is None else _to_array(out, g.dtype, op="hook")

        if self._ctx is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            ctx = self._ctx
            if ctx.hooks is None:
                ctx.hooks = {}
            ctx.exact = False  # the backward's fast path does not run hooks
            hooks = ctx.hooks.setdefault(self._idx, [])
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in ``.grad`` after backward.

        >>> import tinyrnn as tr
        >>> x = tr.ones(2, requires_grad=True)
        >>> y = x * 3; y.retain_grad(); (y * y).sum().backward(); y.grad.tolist()
        [6.0, 6.0]
        """
        if self._ctx is None:
            return
        hooks = (self._ctx.hooks or {}).get(self._idx, ())
        if any(getattr(h, "retains_grad", False) for h in hooks):
            return  # already retained: a second hook would add the gradient twice
        ref = weakref.ref(self)

        def keep(g: Tensor) -> None:
            t = ref()
            if t is not None:
                t._accumulate_grad(g.data)

        self.register_hook(keep)._fn.retains_grad = True

    def zero_(self) -> Tensor:
        """Set every element to zero in place (for tensors that do not require grad, or grads).

        >>> import tinyrnn as tr
        >>> tr.ones(2).zero_().tolist()
        [0.0, 0.0]
        """
        if self.requires_grad and self._ctx is None and is_grad_enabled():
            raise RuntimeError("zero_: a leaf that requires grad cannot be changed in place")
        self.data[...] = 0
        return self

    # ---- casting ----

    def to(self, dtype: Any) -> Tensor:
        """This tensor converted to ``dtype`` (itself if it has it already); differentiable
        between float dtypes, the gradient coming back in the original dtype.

        >>> import tinyrnn as tr
        >>> tr.tensor([1.5]).to(tr.float64).dtype
        dtype('float64')
        """
        d = _dtype.to_dtype(dtype)
        return self if d == self.dtype else M.Cast.apply(self, dtype=d)

    def float(self) -> Tensor:
        """``to(tr.float32)``.

        >>> import tinyrnn as tr
        >>> tr.tensor([1]).float().dtype
        dtype('float32')
        """
        return self.to(_dtype.float32)

    def double(self) -> Tensor:
        """``to(tr.float64)``.

        >>> import tinyrnn as tr
        >>> tr.tensor([1.0]).double().dtype
        dtype('float64')
        """
        return self.to(_dtype.float64)

    def long(self) -> Tensor:
        """``to(tr.int64)``, rounding toward zero (no gradient).

        >>> import tinyrnn as tr
        >>> tr.tensor([1.7, -1.7]).long().tolist()
        [1, -1]
        """
        return self.to(_dtype.int64)

    # ---- arithmetic ----

    def __add__(self, other: Any) -> Tensor:
        return _apply2(_Add, self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _apply2(_Add, other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _apply2(_Sub, self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _apply2(_Sub, other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _apply2(_Mul, self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _apply2(_Mul, other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _apply2(_Div, self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _apply2(_Div, other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _apply2(_Pow, self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _apply2(_Pow, other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return L.MatMul.apply(self, _as_operand(other))

    def __rmatmul__(self, other: Any) -> Tensor:
        return L.MatMul.apply(_as_operand(other), self)

    def __neg__(self) -> Tensor:
        return _apply1(_Neg, self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return E.Abs.apply(self)

    # comparisons give boolean tensors and carry no gradient
    def _cmp(self, other: Any, fn: Callable[[Any, Any], Any]) -> Tensor:
        o = other.data if isinstance(other, Tensor) else other
        return Tensor._from_op(fn(self.data, o), None, 0)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._cmp(other, np.equal)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._cmp(other, np.not_equal)

    def __lt__(self, other: Any) -> Tensor:
        return self._cmp(other, np.less)

    def __le__(self, other: Any) -> Tensor:
        return self._cmp(other, np.less_equal)

    def __gt__(self, other: Any) -> Tensor:
        return self._cmp(other, np.greater)

    def __ge__(self, other: Any) -> Tensor:
        return self._cmp(other, np.greater_equal)

    def any(self) -> Tensor:
        """True (a 0-d bool tensor) if any element is non-zero.

        >>> import tinyrnn as tr
        >>> bool(tr.tensor([0.0, 2.0]).any()), bool(tr.zeros(2).any())
        (True, False)
        """
        return Tensor._from_op(np.any(self.data), None, 0)

    def all(self) -> Tensor:
        """True (a 0-d bool tensor) if every element is non-zero.

        >>> import tinyrnn as tr
        >>> bool((tr.ones(3) > 0).all())
        True
        """
        return Tensor._from_op(np.all(self.data), None, 0)

    # logical operators on bool (bitwise on integer) tensors, for masks; no gradient
    def __and__(self, other: Any) -> Tensor:
        return self._cmp(other, np.bitwise_and)

    def __or__(self, other: Any) -> Tensor:
        return self._cmp(other, np.bitwise_or)

    def __xor__(self, other: Any) -> Tensor:
        return self._cmp(other, np.bitwise_xor)

    def __invert__(self) -> Tensor:
        return Tensor._from_op(np.invert(self.data), None, 0)

    # ---- element-wise functions ----

    def exp(self) -> Tensor:
        """y = e**x element-wise;  dy/dx = y. Same shape.

        >>> import tinyrnn as tr
        >>> round(tr.tensor([1.0]).exp().item(), 4)
        2.7183
        """
        return _apply1(_Exp, self)

    def log(self) -> Tensor:
        """y = ln x element-wise (-inf at 0, nan below);  dy/dx = 1 / x. Same shape.

        >>> import tinyrnn as tr
        >>> tr.tensor([1.0, 0.0]).log().tolist()
        [0.0, -inf]
        """
        return _apply1(_Log, self)

    def sqrt(self) -> Tensor:
        """y = sqrt(x) element-wise;  dy/dx = 1 / (2 y). Same shape.

        >>> import tinyrnn as tr
        >>> tr.tensor([4.0, 9.0]).sqrt().tolist()
        [2.0, 3.0]
        """
        return _apply1(_Sqrt, self)

    def abs(self) -> Tensor:
        """y = |x| element-wise;  dy/dx = sign(x) (0 at 0). Same shape.

        >>> import tinyrnn as tr
        >>> tr.tensor([-2.0, 3.0]).abs().tolist()
        [2.0, 3.0]
        """
        return E.Abs.apply(self)

    def tanh(self) -> Tensor:
        """y = tanh x element-wise;  dy/dx = 1 - y**2. Same shape.

        >>> import tinyrnn as tr
        >>> tr.tensor([0.0, 100.0]).tanh().tolist()
        [0.0, 1.0]
        """
        return _apply1(_Tanh, self)

    def sigmoid(self) -> Tensor:
        """y = 1 / (1 + e**-x) element-wise, without overflow;  dy/dx = y (1 - y). Same shape.

        >>> import tinyrnn as tr
        >>> tr.tensor([0.0, -1000.0]).sigmoid().tolist()
        [0.5, 0.0]
        """
        return _apply1(_Sigmoid, self)

    def relu(self) -> Tensor:
        """y = max(x, 0) element-wise;  dy/dx = 1 where x > 0, else 0. Same shape.

        >>> import tinyrnn as tr
        >>> tr.tensor([-1.0, 2.0]).relu().tolist()
        [0.0, 2.0]
        """
        return _apply1(_Relu, self)

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 (PyTorch names)
        """y = min(max(x, min), max) element-wise (either bound may be None);
        dy/dx = 1 where min <= x <= max, else 0 (PyTorch's convention at the bounds).

        >>> import tinyrnn as tr
        >>> tr.tensor([-2.0, 0.5, 2.0]).clamp(-1.0, 1.0).tolist()
        [-1.0, 0.5, 1.0]
        """
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return E.Clamp.apply(self, lo=min, hi=max)

    def softmax(self, dim: int) -> Tensor:
        """y_i = e**x_i / sum_j e**x_j along ``dim`` (shifted by the max, so no overflow);
        dL/dx = y * (g - sum(g * y)). Same shape.

        >>> import tinyrnn as tr
        >>> tr.tensor([[0.0, 0.0], [1000.0, 0.0]]).softmax(1).tolist()
        [[0.5, 0.5], [1.0, 0.0]]
        """
        return Fu.Softmax.apply(self, dim=dim)

    def log_softmax(self, dim: int) -> Tensor:
        """y_i = x_i - log sum_j e**x_j along ``dim``, computed stably;
        dL/dx = g - softmax(x) * sum(g). Same shape.

        >>> import tinyrnn as tr
        >>> tr.tensor([1000.0, 0.0]).log_softmax(0).tolist()
        [0.0, -1000.0]
        """
        return Fu.LogSoftmax.apply(self, dim=dim)

    # ---- reductions ----

    def sum(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Sum over ``dim`` (an int, a tuple, or None for all); dy/dx = 1 for every summed
        element. The summed dimensions are dropped, or kept with size 1 if ``keepdim``.

        >>> import tinyrnn as tr
        >>> x = tr.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> x.sum().item(), x.sum(0).tolist(), x.sum(1, keepdim=True).shape
        (10.0, [4.0, 6.0], (2, 1))
        """
        return R.Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Average over ``dim`` (all elements when None): sum / count; shapes as ``sum``.

        >>> import tinyrnn as tr
        >>> tr.tensor([[1.0, 2.0], [3.0, 4.0]]).mean(1).tolist()
        [1.5, 3.5]
        """
        if self.dtype.kind != "f":
            raise TypeError(f"mean: expected a floating tensor, got dtype {self.dtype}")
        axes = R._axes("mean", self.ndim, dim)
        count = math.prod(self.shape[a] for a in axes)
        return self.sum(dim, keepdim) * (1.0 / count if count else math.nan)

    def max(self, dim: int | None = None, keepdim: bool = False) -> Any:
        """The largest element (0-d); with ``dim``, the named tuple ``(values, indices)`` along
        it. The gradient goes to the maximum (shared equally by ties when reducing everything;
        to the first one along ``dim``).

        >>> import tinyrnn as tr
        >>> x = tr.tensor([[1.0, 5.0], [7.0, 2.0]])
        >>> x.max().item(), x.max(dim=1).values.tolist(), x.max(dim=1).indices.tolist()
        (7.0, [5.0, 7.0], [1, 0])
        """
        return self._extreme(dim, keepdim, largest=True)

    def min(self, dim: int | None = None, keepdim: bool = False) -> Any:
        """The smallest element; with ``dim``, ``(values, indices)`` along it (as ``max``).

        >>> import tinyrnn as tr
        >>> tr.tensor([[1.0, 5.0], [7.0, 2.0]]).min(dim=0).values.tolist()
        [1.0, 2.0]
        """
        return self._extreme(dim, keepdim, largest=False)

    def _extreme(self, dim: int | None, keepdim: bool, largest: bool) -> Any:
        values = R.Max.apply(self, dim=dim, keepdim=keepdim, largest=largest)
        if dim is None:
            return values
        idx = self.argmax(dim, keepdim) if largest else self.argmin(dim, keepdim)
        return MaxResult(values, idx)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """The int64 index of the largest element (of the flattened tensor when ``dim`` is None).

        >>> import tinyrnn as tr
        >>> x = tr.tensor([[1.0, 5.0], [7.0, 2.0]])
        >>> x.argmax().item(), x.argmax(1).tolist()
        (2, [1, 0])
        """
        return self._arg(np.argmax, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """The int64 index of the smallest element (as ``argmax``).

        >>> import tinyrnn as tr
        >>> tr.tensor([3.0, 1.0, 2.0]).argmin().item()
        1
        """
        return self._arg(np.argmin, dim, keepdim)

    def _arg(self, fn: Any, dim: int | None, keepdim: bool) -> Tensor:
        if dim is None:
            return Tensor._from_op(np.asarray(fn(self.data), dtype=np.int64), None, 0)
        (a,) = R._axes(fn.__name__, self.ndim, dim) or (None,)  # 0-d: the one element
        if a is None:
            return Tensor._from_op(np.zeros((), dtype=np.int64), None, 0)
        return Tensor._from_op(fn(self.data, axis=a, keepdims=keepdim).astype(np.int64), None, 0)

    # ---- shape and movement ----

    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape (one size may be -1, inferred); the gradient is
        reshaped back. ``view`` is the same method.

        >>> import tinyrnn as tr
        >>> tr.arange(6).reshape(2, -1).shape, tr.arange(6).view((3, 2)).shape
        ((2, 3), (3, 2))
        """
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return M.Reshape.apply(self, shape=tuple(shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Dimensions ``start_dim`` to ``end_dim`` merged into one.

        >>> import tinyrnn as tr
        >>> tr.zeros(2, 3, 4).flatten().shape, tr.zeros(2, 3, 4).flatten(1).shape
        ((24,), (2, 12))
        """
        if self.ndim == 0:
            return self.reshape(1)
        s, e = start_dim % self.ndim, end_dim % self.ndim
        return self.reshape(self.shape[:s] + (-1,) + self.shape[e + 1 :])

    def permute(self, *dims: Any) -> Tensor:
        """Dimensions reordered: result dimension k is input dimension ``dims[k]``; the
        gradient is permuted back by the inverse permutation.

        >>> import tinyrnn as tr
        >>> tr.zeros(2, 3, 4).permute(2, 0, 1).shape
        (4, 2, 3)
        """
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return M.Permute.apply(self, dims=tuple(dims))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """Dimensions ``dim0`` and ``dim1`` swapped.

        >>> import tinyrnn as tr
        >>> tr.zeros(2, 3, 4).transpose(0, -1).shape
        (4, 3, 2)
        """
        n = max(self.ndim, 1)
        for d in (dim0, dim1):
            if not -n <= d < n:
                raise IndexError(f"transpose: dim {d} out of range for shape {self.shape}")
        order = list(range(self.ndim))
        order[dim0], order[dim1] = order[dim1], order[dim0]
        return self.permute(*order)

    def squeeze(self, dim: int | None = None) -> Tensor:
        """Dimensions of size 1 removed (only ``dim``, if given and of size 1).

        >>> import tinyrnn as tr
        >>> tr.zeros(1, 3, 1).squeeze().shape, tr.zeros(1, 3, 1).squeeze(-1).shape
        ((3,), (1, 3))
        """
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        (d,) = R._axes("squeeze", self.ndim, dim)
        if self.ndim == 0 or self.shape[d] != 1:
            return self
        return self.reshape(self.shape[:d] + self.shape[d + 1 :])

    def unsqueeze(self, dim: int) -> Tensor:
        """A dimension of size 1 inserted at position ``dim`` of the result.

        >>> import tinyrnn as tr
        >>> tr.zeros(3).unsqueeze(0).shape, tr.zeros(3).unsqueeze(-1).shape
        ((1, 3), (3, 1))
        """
        n = self.ndim + 1
        if not -n <= dim < n:
            raise IndexError(f"unsqueeze: dim {dim} out of range for a result with {n} dims")
        d = dim % n
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def __getitem__(self, index: Any) -> Tensor:
        return M.GetItem.apply(self, index=_index(index))

    def split(self, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
        """Pieces of ``split_size_or_sections`` elements along ``dim`` (the last may be smaller),
        or pieces of the listed sizes. Each piece is a differentiable slice.

        >>> import tinyrnn as tr
        >>> [p.shape for p in tr.zeros(5, 2).split(2)]
        [(2, 2), (2, 2), (1, 2)]
        >>> [p.shape for p in tr.zeros(2, 5).split([1, 4], dim=1)]
        [(2, 1), (2, 4)]
        """
        (d,) = R._axes("split", self.ndim, dim)
        n = self.shape[d]
        if isinstance(split_size_or_sections, (int, np.integer)):
            step = int(split_size_or_sections)
            if step <= 0:
                raise ValueError(f"split: split_size must be positive, got {step}")
            sizes = [min(step, n - i) for i in range(0, n, step)] or [0]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise ValueError(
                    f"split: sections {sizes} sum to {sum(sizes)} but dim {dim} has size {n}"
                )
        pieces, start = [], 0
        for s in sizes:
            index = (slice(None),) * d + (slice(start, start + s),)
            pieces.append(self[index])
            start += s
        return tuple(pieces)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        """``chunks`` nearly equal pieces along ``dim``, each of size ceil(n / chunks) except
        the last (PyTorch's rule, so fewer pieces may come back).

        >>> import tinyrnn as tr
        >>> [p.shape for p in tr.zeros(2, 8).chunk(4, dim=1)]
        [(2, 2), (2, 2), (2, 2), (2, 2)]
        """
        if chunks <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        (d,) = R._axes("chunk", self.ndim, dim)
        return self.split(max(1, -(-self.shape[d] // chunks)), dim)


# the built-in element-wise ops make their results directly (see ``Node._array_node``); results
# are plain Tensors, also for subclasses such as ``nn.Parameter``
Tensor._array_node = Tensor


def _as_operand(x: Any) -> Any:
    """Matmul needs arrays on both sides: wrap plain data, keep tensors."""
    return x if isinstance(x, Tensor) else _to_array(x, op="matmul")


# ---- creation functions ----


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (numbers, nested lists or an array).

    Python floats give the default dtype (float32), Python ints int64, bools bool; a NumPy
    float array keeps its dtype. Strings, objects, complex numbers and ragged lists are refused.

    >>> import tinyrnn as tr
    >>> tr.tensor([1, 2]).dtype, tr.tensor([1.0]).dtype, tr.tensor([[1.0], [2.0]]).shape
    (dtype('int64'), dtype('float32'), (2, 1))
    """
    return Tensor(np.array(_to_array(data, dtype), copy=True), None, requires_grad)


def from_numpy(a: np.ndarray) -> Tensor:
    """A tensor sharing memory with the NumPy array ``a`` (its dtype kept; float16 is promoted).

    >>> import numpy as np, tinyrnn as tr
    >>> a = np.zeros(2); t = tr.from_numpy(a); a[0] = 5.0; t.tolist()
    [5.0, 0.0]
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(a).__name__}")
    keep = a.dtype.kind != "f" or a.dtype in _dtype._FLOATS  # float16 becomes the default dtype
    return Tensor(_to_array(a, a.dtype if keep else None))


def _filled(op: str, fill: Callable[..., np.ndarray], shape, dtype, requires_grad) -> Tensor:
    d = _dtype.to_dtype(dtype) if dtype is not None else _dtype.get_default_dtype()
    return Tensor(fill(_shape_args(shape, op), d), requires_grad=requires_grad)


def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of the given shape: ``tr.zeros(2, 3)`` or ``tr.zeros((2, 3))``.

    >>> import tinyrnn as tr
    >>> tr.zeros(2, 3).shape, tr.zeros(()).shape
    ((2, 3), ())
    """
    return _filled("zeros", np.zeros, shape, dtype, requires_grad)


def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of the given shape.

    >>> import tinyrnn as tr
    >>> tr.ones(2, dtype=tr.float64).tolist()
    [1.0, 1.0]
    """
    return _filled("ones", np.ones, shape, dtype, requires_grad)


def empty(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of the given shape whose values are not initialised.

    >>> import tinyrnn as tr
    >>> tr.empty(3, 0).shape
    (3, 0)
    """
    return _filled("empty", np.empty, shape, dtype, requires_grad)


def full(size: Sequence[int], fill_value: float, dtype: Any = None, requires_grad=False) -> Tensor:
    """A tensor of shape ``size`` with every element ``fill_value``.

    >>> import tinyrnn as tr
    >>> tr.full((2, 2), 7.0).tolist()
    [[7.0, 7.0], [7.0, 7.0]]
    """

    def fill(s: tuple[int, ...], d: np.dtype) -> np.ndarray:
        return np.full(s, fill_value, d)

    return _filled("full", fill, (tuple(size),), dtype, requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``t``'s shape and (unless given) dtype.

    >>> import tinyrnn as tr
    >>> tr.zeros_like(tr.ones(2, 1, dtype=tr.float64)).dtype
    dtype('float64')
    """
    return zeros(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones of ``t``'s shape and (unless given) dtype.

    >>> import tinyrnn as tr
    >>> tr.ones_like(tr.zeros(2)).tolist()
    [1.0, 1.0]
    """
    return ones(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def randn(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Samples of N(0, 1) from the framework's generator (reproducible with ``tr.manual_seed``).

    >>> import tinyrnn as tr
    >>> _ = tr.manual_seed(0); a = tr.randn(2, 3)
    >>> _ = tr.manual_seed(0); bool((tr.randn(2, 3) == a).all()), a.shape
    (True, (2, 3))
    """

    def fill(s: tuple[int, ...], d: np.dtype) -> np.ndarray:
        return generator().standard_normal(s).astype(d)

    return _filled("randn", fill, shape, dtype, requires_grad)


def rand(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Samples of U[0, 1) from the framework's generator.

    >>> import tinyrnn as tr
    >>> x = tr.rand(100); bool(((x >= 0) & (x < 1)).all())
    True
    """

    def fill(s: tuple[int, ...], d: np.dtype) -> np.ndarray:
        return generator().random(s).astype(d)

    return _filled("rand", fill, shape, dtype, requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, dtype: Any = None) -> Tensor:
    """Values ``start, start + step, ...`` below ``end``; all-int arguments give int64.

    >>> import tinyrnn as tr
    >>> tr.arange(3).tolist(), tr.arange(1, 2, 0.5).tolist()
    ([0, 1, 2], [1.0, 1.5])
    """
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = _dtype.int64 if ints else _dtype.get_default_dtype()
    return Tensor(np.arange(start, end, step, dtype=_dtype.to_dtype(dtype)))


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """The n x m identity matrix (m = n by default).

    >>> import tinyrnn as tr
    >>> tr.eye(2).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    d = _dtype.to_dtype(dtype) if dtype is not None else _dtype.get_default_dtype()
    return Tensor(np.eye(n, m, dtype=d), requires_grad=requires_grad)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension ``dim``; all other sizes must match. Each input's
    gradient is its slice of the output's gradient.

    >>> import tinyrnn as tr
    >>> tr.cat([tr.zeros(2, 3), tr.ones(1, 3)]).shape, tr.cat([tr.zeros(2), tr.ones(2)]).tolist()
    ((3, 3), [0.0, 0.0, 1.0, 1.0])
    """
    return M.Cat.apply(*_tensors("cat", tensors), dim=dim)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of equal shape along a new dimension ``dim`` (k tensors of shape S give
    shape S with k inserted at ``dim``).

    >>> import tinyrnn as tr
    >>> tr.stack([tr.zeros(3), tr.ones(3)]).shape, tr.stack([tr.zeros(3)] * 4, dim=1).shape
    ((2, 3), (3, 4))
    """
    return M.Stack.apply(*_tensors("stack", tensors), dim=dim)


def _tensors(op: str, tensors: Sequence[Any]) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not len(tensors):
        raise TypeError(f"{op}: expected a non-empty list or tuple of tensors")
    return [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """z = x where ``condition`` holds, else y (the three broadcast together);
    dz/dx = condition, dz/dy = not condition; the condition gets no gradient.

    >>> import tinyrnn as tr
    >>> x = tr.tensor([1.0, -2.0, 3.0])
    >>> tr.where(x > 0, x, 0.0).tolist()
    [1.0, 0.0, 3.0]
    """
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        x = Tensor(x)
    return E.Where.apply(cond.astype(bool, copy=False), x, y)

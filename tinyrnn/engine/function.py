"""``Function``: the one funnel through which every graph node is created.

Subclasses define ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)`` as static methods
that take and return payloads (NumPy arrays for tensors, floats for values), never nodes, so a
backward cannot grow the graph. ``apply`` unwraps node inputs, runs ``forward``, and wraps the
result in the class of the first node input; grad mode, ``needs_input_grad``, scope stamps and
anomaly checks all live here.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .graph import Context, Node
from .mode import _SCOPE, STATE

# Serial numbers of recorded ops, in creation order (``ctx.serial``): the cell compiler orders a
# traced step by them and tells the step's own ops from those made before it.
SERIAL = itertools.count()


def _check_forward(cls: type, out: Any, args: tuple[Any, ...]) -> None:
    outs = out if isinstance(out, tuple) else (out,)
    for k, o in enumerate(outs):
        if isinstance(o, (np.ndarray, float, np.floating)) and not np.all(np.isfinite(o)):
            shapes = [getattr(p, "shape", ()) for p in args]
            where = "/".join(_SCOPE.get()) or "(no scope)"
            raise RuntimeError(
                f"detect_anomaly: {cls.__name__}.forward produced a non-finite value in output "
                f"{k} in scope {where}; input shapes {shapes}"
            )


_new = object.__new__
_scope = _SCOPE.get  # (bound once: reading ``get`` off the ContextVar is not specialised)
ndarray = np.ndarray
_NEEDS1 = (True,)
_NONE1 = (False,)


class Function:
    """Base class of every differentiable op, built-in or user-defined.

    >>> import numpy as np
    >>> import tinyrnn as tr
    >>> class Cube(tr.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x ** 3
    ...     @staticmethod
    ...     def backward(ctx, grad_output):
    ...         (x,) = ctx.saved_tensors
    ...         return 3 * x ** 2 * grad_output
    >>> x = tr.tensor([1.0, 2.0], requires_grad=True)
    >>> Cube.apply(x).sum().backward()
    >>> x.grad.tolist()
    [3.0, 12.0]
    """

    # For the built-in element-wise ops: 1 for a one-input op whose output and gradient have
    # the input's shape and dtype; 2 for a broadcasting two-input op whose gradients have the
    # output's shape and dtype. The engine then skips its shape and dtype checks where no
    # broadcast or type promotion happened (``Context.exact``). User Functions leave it at 0.
    _exact_grads = 0

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("Function subclasses must define a static forward(ctx, ...)")

    @staticmethod
    def backward(ctx: Context, *grad_outputs: Any) -> Any:
        raise NotImplementedError("Function subclasses must define a static backward(ctx, ...)")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward`` on the payloads of ``args`` and record the op if a gradient is needed.

        Tensor/Value arguments are graph inputs: ``forward`` gets their payloads. Other
        positional arguments (numbers, arrays) are passed through as constants; ``backward``
        still returns one (None) gradient for each. Keyword arguments go to ``forward`` as
        options and need no gradient. A tuple returned by ``forward`` gives several outputs.
        The result is wrapped in the class of the first node argument.

        >>> import numpy as np
        >>> import tinyrnn as tr
        >>> class Scale(tr.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x, k, *, bias=0.0):
        ...         ctx.k = k
        ...         return x * k + bias
        ...     @staticmethod
        ...     def backward(ctx, grad_output):
        ...         return grad_output * ctx.k, None   # no gradient for the constant k
        >>> x = tr.tensor([1.0, 2.0], requires_grad=True)
        >>> y = Scale.apply(x, 3.0, bias=1.0); y.tolist()
        [4.0, 7.0]
        >>> y.sum().backward(); x.grad.tolist()
        [3.0, 3.0]
        >>> Scale.apply(tr.Value(2.0), 3.0)         # the same op on a Value returns a Value
        Value(data=6, grad=0)
        """
        if not kwargs:
            n = len(args)
            if n == 2:
                return _apply2(cls, args[0], args[1])
            if n == 1:
                return _apply1(cls, args[0])
        return _apply(cls, args, kwargs)


_NO_OPTIONS: dict[str, Any] = {}  # (never written)


def _apply2(cls: type, a: Any, b: Any) -> Any:
    """``cls.apply(a, b)``: two arguments and no options, nearly every binary op (the Tensor
    operators call it directly). It does what ``_apply`` does for them, without building
    lists, and also finds whether the op is exact (see ``Context.exact``)."""
    grad_on = STATE.grad_enabled
    if isinstance(a, Node):
        first = a
        pa = a.data
        na = grad_on and a.requires_grad
        if isinstance(b, Node):
            pb = b.data
            nb = grad_on and b.requires_grad
        else:
            pb = b
            nb = False
    elif isinstance(b, Node):
        first = b
        pa = a
        na = False
        pb = b.data
        nb = grad_on and b.requires_grad
    else:
        raise _no_node(cls)
    ctx = _new(Context)
    ctx.fn = cls
    ctx.needs_input_grad = (na, nb)
    ctx.saved_tensors = ctx.parents = ctx.scope = ()
    ctx.serial = -1
    ctx.exact = False
    out = cls.forward(ctx, pa, pb)
    if type(out) is not ndarray or not out.ndim or STATE.anomaly:
        return _finish(cls, ctx, (a, b), _NO_OPTIONS, out, first, na or nb)
    if not (na or nb):
        return type(first)._from_op(out, None, 0)
    kind = cls._exact_grads
    if kind == 2:
        # exact when no broadcast or type promotion happened: two arrays of one shape and
        # dtype, or one array and a Python number
        ta, tb = type(pa), type(pb)
        if ta is ndarray:
            exact = (tb is float or tb is int) or (
                tb is ndarray and pa.dtype is pb.dtype and pa.shape == pb.shape
            )
        else:
            exact = tb is ndarray and (ta is float or ta is int)
    else:
        exact = kind == 1
    ctx.exact = exact
    ctx.parents = (a, b)
    ctx.scope = _scope()
    ctx.serial = next(SERIAL)
    node = type(first)._array_node
    # (inline: a call here would cost a tenth of the op); an exact op's result has the dtype
    # of a float input, a broadcast one may have been promoted (to complex, say)
    if node is not None and (exact or (kind and out.dtype.kind == "f")):
        t = _new(node)
        t.data = out
        t._ctx = ctx
        t._idx = 0
        t.grad = t._hooks = t.name = None
        t.requires_grad = True
        return t
    return type(first)._from_op(out, ctx, 0)


def _apply1(cls: type, x: Any) -> Any:
    """``cls.apply(x)``: one argument and no options (the unary Tensor methods call it
    directly); as ``_apply2``."""
    if not isinstance(x, Node):
        raise _no_node(cls)
    need = STATE.grad_enabled and x.requires_grad
    ctx = _new(Context)
    ctx.fn = cls
    ctx.needs_input_grad = _NEEDS1 if need else _NONE1
    ctx.saved_tensors = ctx.parents = ctx.scope = ()
    ctx.serial = -1
    ctx.exact = False
    out = cls.forward(ctx, x.data)
    if type(out) is not ndarray or not out.ndim or STATE.anomaly:
        return _finish(cls, ctx, (x,), _NO_OPTIONS, out, x, need)
    if not need:
        return type(x)._from_op(out, None, 0)
    ctx.exact = exact = cls._exact_grads == 1  # (then the result has the float input's dtype)
    ctx.parents = (x,)
    ctx.scope = _scope()
    ctx.serial = next(SERIAL)
    node = type(x)._array_node
    if exact and node is not None:
        t = _new(node)
        t.data = out
        t._ctx = ctx
        t._idx = 0
        t.grad = t._hooks = t.name = None
        t.requires_grad = True
        return t
    return type(x)._from_op(out, ctx, 0)


def _apply(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``Function.apply`` for any arguments."""
    payloads = []
    needs = []
    first = None
    any_need = False
    grad_on = STATE.grad_enabled
    for a in args:
        if isinstance(a, Node):
            if first is None:
                first = a
            payloads.append(a.data)
            need = grad_on and a.requires_grad
            needs.append(need)
            any_need = any_need or need
        else:
            payloads.append(a)
            needs.append(False)
    if first is None:
        raise _no_node(cls)
    ctx = _new(Context)
    ctx.fn = cls
    ctx.needs_input_grad = tuple(needs)
    ctx.saved_tensors = ctx.parents = ctx.scope = ()
    ctx.serial = -1
    ctx.exact = False
    out = cls.forward(ctx, *payloads, **kwargs)
    return _finish(cls, ctx, args, kwargs, out, first, any_need)


def _finish(
    cls: type,
    ctx: Context,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    out: Any,
    first: Any,
    any_need: bool,
) -> Any:
    """The rest of ``apply`` after ``forward``: anomaly check, wrapping, recording."""
    if STATE.anomaly:
        _check_forward(cls, out, args)
    make = type(first)._from_op
    multi = isinstance(out, tuple)
    if not any_need:
        return tuple(make(o, None, 0) for o in out) if multi else make(out, None, 0)
    ctx.parents = args
    ctx.scope = _scope()
    ctx.serial = next(SERIAL)
    if kwargs:
        ctx.options = kwargs
    if multi:
        ctx.exact = False
        ctx.n_out = len(out)
        ctx.out_meta = [
            (o.shape, o.dtype) if isinstance(o, np.ndarray) else (None, None) for o in out
        ]
        return tuple(make(o, ctx, k) for k, o in enumerate(out))
    # (a two-input op exact by its shapes takes the fast path of ``apply``; here, only
    # one-input ops can skip the checks)
    ctx.exact = cls._exact_grads == 1 and type(out) is ndarray and out.ndim != 0
    return make(out, ctx, 0)


def _no_node(cls: type) -> TypeError:
    return TypeError(f"{cls.__name__}.apply: expected at least one Tensor or Value input")

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


def _check_forward(cls: type, out: Any, payloads: list[Any]) -> None:
    outs = out if isinstance(out, tuple) else (out,)
    for k, o in enumerate(outs):
        if isinstance(o, (np.ndarray, float, np.floating)) and not np.all(np.isfinite(o)):
            shapes = [getattr(p, "shape", ()) for p in payloads]
            where = "/".join(_SCOPE.get()) or "(no scope)"
            raise RuntimeError(
                f"detect_anomaly: {cls.__name__}.forward produced a non-finite value in output "
                f"{k} in scope {where}; input shapes {shapes}"
            )


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
        grad_on = STATE.grad_enabled
        payloads = []
        needs = []
        first = None
        any_need = False
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
            raise TypeError(f"{cls.__name__}.apply: expected at least one Tensor or Value input")
        ctx = Context(cls, tuple(needs))
        out = cls.forward(ctx, *payloads, **kwargs)
        if STATE.anomaly:
            _check_forward(cls, out, payloads)
        make = type(first)._from_op
        if not any_need:
            if isinstance(out, tuple):
                return tuple(make(o, None, 0) for o in out)
            return make(out, None, 0)
        ctx.parents = args
        ctx.scope = _SCOPE.get()
        ctx.options = kwargs
        ctx.serial = next(SERIAL)
        if isinstance(out, tuple):
            ctx.n_out = len(out)
            ctx.out_meta = [
                (o.shape, o.dtype) if isinstance(o, np.ndarray) else (None, None) for o in out
            ]
            return tuple(make(o, ctx, k) for k, o in enumerate(out))
        return make(out, ctx, 0)

"""The graph core shared by ``Tensor`` and ``Value``: the node protocol and the backward sweep.

A graph is bipartite: data nodes (``Tensor``/``Value`` objects) and op contexts (``Context``, the
``grad_fn`` of a node). Each non-leaf node points to the context that made it and to its output
index there; each context points to its inputs (``parents``). Backward walks the contexts in
reverse topological order with an explicit work list (never recursion), so graphs of any depth
work: an unrolled sequence of 100,000 steps is an ordinary graph.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from .mode import STATE


class Node:
    """Marker base of graph nodes. Subclasses provide, as attributes:

    ``data`` (payload: ndarray or float), ``requires_grad`` (bool), ``_ctx`` (the ``Context``
    that made the node, None for leaves), ``_idx`` (output index within ``_ctx``), ``_hooks``
    (list of gradient hooks on a leaf, or None), ``name`` (label or None), and the methods
    ``_from_op(payload, ctx, idx)`` (a class or static method wrapping an op's result) and
    ``_accumulate_grad(g)`` (adds ``g`` to the node's ``.grad``).

    >>> import tinyrnn as tr
    >>> isinstance(tr.ones(2), Node), isinstance(tr.Value(1.0), Node)
    (True, True)
    """

    __slots__ = ()

    # The class of a recorded op's array result when ``Function.apply`` may make it directly
    # (setting the attributes above, with ``grad``, ``_hooks`` and ``name`` None and
    # ``_idx`` 0) instead of calling ``_from_op``; None: always call ``_from_op``.
    _array_node: type | None = None


class Context:
    """Per-call record of one op: what backward needs, and the edges of the graph.

    ``save_for_backward``/``saved_tensors``/``needs_input_grad`` follow PyTorch. Users may set
    other attributes on it inside ``forward``. Fields: ``fn`` (the Function class),
    ``parents`` (the positional arguments of ``apply``, in order), ``scope`` (the names of the
    active ``tr.scope`` blocks), ``n_out`` and ``out_meta`` (number, shapes and dtypes of the
    outputs), ``options`` (the keyword options ``apply`` passed to ``forward``), ``serial`` (a
    process-wide creation counter: recorded ops in execution order), ``hooks`` (output index ->
    gradient hooks), ``out_grads`` (the output gradients, kept while ``STATE.keep_grads`` is on)
    and ``freed`` (set by a backward without ``retain_graph``).

    >>> import tinyrnn as tr
    >>> x = tr.ones(2, requires_grad=True)
    >>> ctx = (x * 2).grad_fn
    >>> ctx.name, ctx.needs_input_grad, ctx.parents[0] is x, ctx.parents[1]
    ('Mul', (True, False), True, 2)
    """

    # The fields every op sets are slots, all written before ``forward`` runs (there is no
    # ``__getattr__`` for unset ones: defining it stops Python from specialising attribute
    # reads, and reading a context's fields is most of the backward sweep's work). The rarely
    # set ones (``n_out``, ``out_meta``, ``options``, ``hooks``, ``out_grads``) are class-level
    # defaults that an instance overrides in its ``__dict__`` only when it has something to say.
    __slots__ = (
        "fn",
        "parents",
        "needs_input_grad",
        "saved_tensors",
        "scope",
        "serial",
        "exact",
        "__dict__",
    )

    n_out = 1
    materialize_grads = True
    out_meta: list[Any] | None = None
    options: dict[str, Any] = {}  # shared and never written: an op given options gets its own
    hooks: dict[int, list[Any]] | None = None
    out_grads: list[Any] | None = None

    def __init__(self, fn: type, needs_input_grad: tuple[bool, ...]):
        self.fn = fn
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple[Any, ...] | None = ()
        self.parents: tuple[Any, ...] = ()
        self.scope: tuple[str, ...] = ()
        self.serial = -1
        # True when every input that needs a gradient has the output's shape and dtype, the
        # output has at least one dimension, and the op's backward is known to return arrays of
        # that shape and dtype (the built-in element-wise ops), and no hook is registered on
        # the output: the sweep skips its checks.
        self.exact = False

    @property
    def freed(self) -> bool:
        """Whether a backward without ``retain_graph`` went through this op (its saved arrays
        are gone).

        >>> import tinyrnn as tr
        >>> y = tr.ones(2, requires_grad=True).tanh(); f0 = y.grad_fn.freed
        >>> y.sum().backward(); f0, y.grad_fn.freed
        (False, True)
        """
        return self.saved_tensors is None

    def set_materialize_grads(self, value: bool) -> None:
        """Whether ``backward`` gets zeros (the default, True) or None for the gradient of an
        output that no gradient reached (PyTorch's ``ctx.set_materialize_grads``). An op whose
        unused outputs are large (a whole sequence's hidden states) can skip making zeros.

        >>> import tinyrnn as tr
        >>> class Two(tr.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         ctx.set_materialize_grads(False)
        ...         return x * 2, x * 3
        ...     @staticmethod
        ...     def backward(ctx, g2, g3):
        ...         return (0 if g2 is None else 2 * g2) + (0 if g3 is None else 3 * g3)
        >>> x = tr.ones(2, requires_grad=True)
        >>> Two.apply(x)[1].sum().backward(); x.grad.tolist()
        [3.0, 3.0]
        """
        self.materialize_grads = bool(value)

    def save_for_backward(self, *items: Any) -> None:
        """Keep arrays (or floats) for ``backward``; read them back from ``saved_tensors``.

        >>> import numpy as np
        >>> ctx = Context(object, (True,)); ctx.save_for_backward(np.ones(2), 3)
        >>> ctx.saved_tensors[1]
        3
        """
        self.saved_tensors = items

    @property
    def name(self) -> str:
        """The op's name (its Function class name).

        >>> import tinyrnn as tr
        >>> tr.ones(2, requires_grad=True).tanh().grad_fn.name
        'Tanh'
        """
        return self.fn.__name__

    def __repr__(self) -> str:
        return f"<{self.fn.__name__}Backward>"


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting (the one place this happens).

    >>> unbroadcast(np.ones((2, 3, 4)), (3, 1)).tolist()
    [[8.0], [8.0], [8.0]]
    """
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return np.asarray(grad)


def _fix_grad(ctx: Context, parent: Any, g: Any) -> Any:
    """Bring op ``ctx``'s gradient for input ``parent`` to the input's shape and dtype."""
    pdata = parent.data
    if not isinstance(pdata, np.ndarray):  # a scalar Value
        return float(g)
    if type(g) is not np.ndarray:
        g = np.asarray(g, dtype=pdata.dtype)
    if g.shape != pdata.shape:
        g = unbroadcast(g, pdata.shape)
        if g.shape != pdata.shape:
            i = next(k for k, q in enumerate(ctx.parents) if q is parent)
            raise RuntimeError(
                f"{ctx.fn.__name__}.backward returned a gradient of shape {g.shape} for input "
                f"{i}, which has shape {pdata.shape}; expected a shape that broadcasts to it"
            )
    if g.dtype != pdata.dtype:
        g = g.astype(pdata.dtype)
    return g


def _zeros(ctx: Context, idx: int) -> Any:
    meta = ctx.out_meta
    if meta is None:
        raise RuntimeError(f"{ctx.fn.__name__}: no gradient reached output {idx}")
    shape, dtype = meta[idx]
    return 0.0 if shape is None else np.zeros(shape, dtype)


def _output_grads(ctx: Context, gouts: list[Any]) -> list[Any] | None:
    """Run the tensor hooks of ``ctx``'s outputs, then fill unused outputs of a multi-output op
    with zeros (left None if the op turned ``materialize_grads`` off). None when no gradient
    reached any output."""
    if ctx.hooks:
        for idx, hooks in ctx.hooks.items():
            if gouts[idx] is not None:
                for hook in hooks:
                    out = hook(gouts[idx])
                    gouts[idx] = gouts[idx] if out is None else out
    if all(g is None for g in gouts):
        return None
    if not ctx.materialize_grads:
        return gouts
    return [_zeros(ctx, k) if g is None else g for k, g in enumerate(gouts)]


def _check_finite(ctx: Context, grads: tuple[Any, ...]) -> None:
    for i, g in enumerate(grads):
        if g is not None and not np.all(np.isfinite(g)):
            shapes = [getattr(p, "shape", ()) for p in ctx.parents]
            where = "/".join(ctx.scope) or "(no scope)"
            raise RuntimeError(
                f"detect_anomaly: {ctx.fn.__name__}.backward produced a non-finite gradient "
                f"for input {i} in scope {where}; input shapes {shapes}"
            )


def _freed_error(ctx: Context) -> RuntimeError:
    return RuntimeError(
        f"backward: trying to backward through the graph a second time (op "
        f"{ctx.fn.__name__}, scope {'/'.join(ctx.scope) or '(none)'}): its saved arrays "
        "were freed by the first backward; pass retain_graph=True to that one"
    )


def _run_leaf_hooks(leaf: Any, g: Any) -> Any:
    for hook in leaf._hooks or ():
        out = hook(g)
        g = g if out is None else out
    return g


def backward(root: Any, gradient: Any, retain_graph: bool = False) -> None:
    """Reverse-mode sweep from ``root`` seeded with ``gradient`` (same shape as ``root.data``).

    Each op's ``backward`` runs once, after every consumer of its outputs has contributed:
    gradients reaching a node along several paths are summed, and leaves get ``.grad``
    accumulated with ``+`` (after their hooks) at the end. Gradients are brought back to each
    input's shape and dtype here (``unbroadcast``), never in the ops. Without ``retain_graph``
    the saved arrays of every op visited are freed, and a second sweep through them raises.

    The ops run in decreasing creation order (``ctx.serial``), kept in a heap: an op's inputs
    exist before it does, so every consumer of a node has a larger serial number than the op
    that made it, and an op comes off the heap only after all its consumers (a topological
    order found without a separate pass over the graph, and without recursion).

    >>> import tinyrnn as tr
    >>> a = tr.tensor(3.0, requires_grad=True)
    >>> b = a + a; c = b + b          # the diamond: a reaches c along four paths
    >>> backward(c, np.ones((), np.float32)); a.grad.item()
    4.0
    """
    if not root.requires_grad:
        raise RuntimeError(
            "backward: element 0 of tensors does not require grad and does not have a grad_fn"
        )
    rctx = root._ctx
    if rctx is None:
        root._accumulate_grad(_run_leaf_hooks(root, gradient))
        return
    # The gradient reaching an op: the array itself for a one-output op, else a list with one
    # per output. The op to run next is ``nxt`` when it is the only one waiting (a chain, the
    # common case), and its gradient is ``nxt_g``; otherwise the heap holds every waiting op,
    # keyed by minus its serial number, and ``grads`` their gradients.
    nxt_g: Any = gradient if rctx.n_out == 1 else _entry(rctx, root._idx, gradient)
    nxt: Context | None = rctx
    grads: dict[Context, Any] = {}
    heap: list[tuple[int, Context]] = []
    leaves: dict[Any, Any] = {}  # leaf -> summed gradient (nodes hash by identity)
    keep = STATE.keep_grads
    anomaly = STATE.anomaly
    plain = not (keep or anomaly or retain_graph)
    ndarray = np.ndarray
    new = _NEW
    pop, push = heapq.heappop, heapq.heappush
    while True:
        if nxt is not None:
            ctx = nxt
            gout = nxt_g
            nxt = None
        elif heap:
            ctx = pop(heap)[1]
            gout = grads.pop(ctx)
        else:
            break
        exact = ctx.exact
        if exact and plain and gout is not None and ctx.saved_tensors is not None:
            # a built-in element-wise op, one output, no hooks (registering one clears
            # ``exact``): gradients that need no checks
            result = ctx.fn.backward(ctx, gout)
            ctx.saved_tensors = None  # frees the saved arrays; ``ctx.freed`` reads this
            if type(result) is not tuple:
                result = (result,)
        else:
            exact = False
            result = _run_op(ctx, gout, keep, anomaly, retain_graph)
        # (lengths checked in _run_op and right for the built-in ops; needs_input_grad has one
        # entry per parent by construction). An index, not zip: making a zip of three costs
        # more than the rest of this loop for a one- or two-input op.
        needs = ctx.needs_input_grad
        i = -1
        for p in ctx.parents:
            i += 1
            if needs[i]:
                g = result[i]
                if not exact and g is not None:
                    pdata = p.data  # the fast check; _fix_grad handles every other case
                    if type(g) is not type(pdata) or (
                        type(g) is ndarray and (g.shape != pdata.shape or g.dtype != pdata.dtype)
                    ):
                        g = _fix_grad(ctx, p, g)
                pc = p._ctx
                if pc is None:
                    if g is not None:
                        old = leaves.get(p)
                        leaves[p] = g if old is None else old + g
                    continue
                if nxt is None and not heap:
                    # nothing is waiting, so pc is reached for the first time (every op that
                    # ran had a larger serial than ctx, and pc's is smaller): it runs next
                    nxt = pc
                    nxt_g = g if pc.n_out == 1 else _entry(pc, p._idx, g)
                    continue
                if pc is nxt:  # reached again from this op's other inputs
                    if g is not None:
                        if pc.n_out == 1:
                            nxt_g = g if nxt_g is None else nxt_g + g
                        else:
                            _sum_into(nxt_g, p._idx, g)
                    continue
                if pc.n_out == 1:
                    old = grads.get(pc, new)
                    if old is not new:
                        if g is not None:
                            grads[pc] = g if old is None else old + g
                        continue
                else:
                    entry = grads.get(pc)
                    if entry is not None:
                        if g is not None:
                            _sum_into(entry, p._idx, g)
                        continue
                    g = _entry(pc, p._idx, g)
                # pc is reached for the first time and another op is waiting: both go to the
                # heap (pc's serial is below ctx's, as every op is recorded after its inputs)
                if nxt is not None:
                    grads[nxt] = nxt_g
                    push(heap, (-nxt.serial, nxt))
                    nxt = None
                grads[pc] = g
                push(heap, (-pc.serial, pc))
    for leaf, g in leaves.items():
        leaf._accumulate_grad(_run_leaf_hooks(leaf, g))


_NEW = object()  # marks "no gradient entry yet" (None is a valid entry: nothing flowed)


def _entry(ctx: Context, idx: int, g: Any) -> list[Any]:
    """The gradient list of multi-output op ``ctx``, holding ``g`` for output ``idx``."""
    entry: list[Any] = [None] * ctx.n_out
    entry[idx] = g
    return entry


def _sum_into(entry: list[Any], idx: int, g: Any) -> None:
    old = entry[idx]
    entry[idx] = g if old is None else old + g


def _run_op(ctx: Context, gout: Any, keep: bool, anomaly: bool, retain_graph: bool) -> tuple:
    """Run op ``ctx``'s backward on ``gout`` (its output gradient, or the list of them for a
    multi-output op; None where nothing flowed); return one gradient (or None) per parent."""
    if ctx.saved_tensors is None:
        raise _freed_error(ctx)
    parents = ctx.parents
    multi = ctx.n_out != 1
    gouts = _output_grads(ctx, gout if multi else [gout]) if multi or ctx.hooks else [gout]
    if gouts is None or (not multi and gouts[0] is None):
        result: tuple[Any, ...] = (None,) * len(parents)  # nothing flowed in: nothing flows out
    else:
        if keep:  # pictures show every output's gradient, zeros where none flowed
            ctx.out_grads = [_zeros(ctx, k) if g is None else g for k, g in enumerate(gouts)]
        result = ctx.fn.backward(ctx, *gouts)
        if type(result) is not tuple:
            result = (result,)
        if len(result) != len(parents):
            raise RuntimeError(
                f"{ctx.fn.__name__}.backward returned {len(result)} gradients; expected "
                f"{len(parents)} (one per forward input, None where not needed)"
            )
        if anomaly:
            _check_finite(ctx, result)
    if not retain_graph:
        ctx.saved_tensors = None  # frees the saved arrays; ``ctx.freed`` reads this
    return result

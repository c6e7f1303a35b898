"""Tracing one step of a cell into its op graph, and deciding how each value is computed.

``trace_cell`` calls the cell twice on fresh leaf tensors, once with the real batch size ``B``
and once with ``B + 1`` rows of other random numbers. The engine keeps, for every recorded op,
its class, positional arguments, keyword options (``ctx.options``), outputs and creation
order (``ctx.serial``). The graph itself is the engine's: the
contexts reached from the returned state through ``ctx.parents``. Comparing the two traces tells

- which axis of each value is the batch axis (the one that follows ``B``), so one compiled
  program serves every batch size;
- which constants are real constants: a tensor without gradient tracking whose value differs
  between the two traces was computed from the inputs (a comparison, ``.detach()``, a dropout
  mask or another random draw), and freezing it would be wrong, so such cells are not compiled;
- that the cell's structure does not depend on the data (the same ops in the same order).

Each value then gets a role: ``inv`` (parameters, constants and what is computed from them
alone: evaluated once per sequence by the ordinary engine), ``seq`` (computed from the input
``x_t`` and invariants alone, row by row: evaluated for all steps at once before the loop, so
``x_t W^T`` becomes one large matrix product) and ``loop`` (depends on the state: compiled into
the time loop). An x-only element-wise op or column slice read only by loop ops is moved into
the loop (``_sink``): ``x W^T + b`` is then one product before the loop and a bias added in the
loop's own pass, and a chunked projection is read in place rather than copied.
``Unsupported`` says, in words, why a cell cannot be compiled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import Node, enable_grad
from ..engine.function import SERIAL
from ..engine.mode import STATE
from ..ops import elementwise as E
from ..ops import fused as Fu
from ..ops import linalg as L
from ..ops import movement as M
from ..ops import reduce as R
from ..tensor import Tensor


class Unsupported(Exception):
    """A cell cannot be compiled; ``str(exc)`` says why."""


# Ops the loop compiler knows. Element-wise ones share one code template each (codegen.py).
ELEMENTWISE = (
    E.Add, E.Sub, E.Mul, E.Div, E.Pow, E.Neg, E.Exp, E.Log, E.Sqrt, E.Abs,
    E.Tanh, E.Sigmoid, E.Relu, E.Clamp, E.Where,
)  # fmt: skip
LOOP_OPS = (*ELEMENTWISE, L.MatMul, M.GetItem, M.Cat, R.Sum, Fu.LSTMCellStep, Fu.GRUCellStep)


@dataclass(eq=False)
class Value:
    """One value of the step graph.

    kind: ``x`` (the step input), ``state`` (k-th state part), ``param`` (a leaf that requires
    grad), ``const`` (an array without gradient), ``scalar`` (a Python number or other
    non-array argument), ``op`` (output ``out`` of node ``index``).
    """

    kind: str
    shape: tuple[int, ...] = ()
    index: int = -1
    out: int = 0
    data: Any = None
    batch: bool = False  # axis 0 is the batch axis
    role: str = ""  # "inv", "seq" or "loop"
    dtype: Any = None  # of op outputs

    @property
    def cols(self) -> int:
        """Width of a (rows, cols) value: its last dimension (1 for 0-d)."""
        return self.shape[-1] if self.shape else 1


@dataclass(eq=False)
class OpNode:
    fn: Any
    args: list[Value]
    kwargs: dict[str, Any]
    outs: list[Value]
    role: str = ""


@dataclass(eq=False)
class StepGraph:
    """The traced step: inputs, the op nodes in execution order, and the new state parts."""

    x: Value
    states: list[Value]
    params: list[Value]
    consts: list[Value]
    nodes: list[OpNode]
    outputs: list[Value]
    tuple_state: bool
    dtype: np.dtype
    batch: int
    param_tensors: list[Any] = field(default_factory=list)


# ---- running one step under trace ----


def _run_traced(fn, *args):
    """Call ``fn(*args)`` with gradients recorded; return its result and the first serial
    number (``ctx.serial``) of the ops it made. Every recorded op keeps its keyword options
    (``ctx.options``: ``dim=``, ``index=``, ``lo=``) and its serial, so the step's ops can be
    told from older ones and put in execution order."""
    start = next(SERIAL)
    anomaly = STATE.anomaly
    STATE.anomaly = False  # the second trace runs on random numbers, which may overflow
    try:
        with enable_grad():
            return fn(*args), start
    finally:
        STATE.anomaly = anomaly


# ---- building the step graph from one trace ----


def _same(a: Any, b: Any) -> bool:
    """Structural equality of recorded options (arrays, slices, tuples, numbers)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and bool(np.array_equal(a, b))
        )
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False


def _one_trace(cell, x_data, state_data, tuple_state, params):
    x = Tensor(x_data, requires_grad=True)
    states = [Tensor(s, requires_grad=True) for s in state_data]
    arg = tuple(states) if tuple_state else states[0]
    try:
        with np.errstate(all="ignore"):
            new, start = _run_traced(cell, x, arg)
    except Exception as e:  # the cell's own error, on a batch of another size or other values
        raise Unsupported(
            f"the cell failed when traced on a batch of {x_data.shape[0]} rows "
            f"({type(e).__name__}: {e})"
        ) from None
    outs = list(new) if isinstance(new, (tuple, list)) else [new]
    if tuple_state != isinstance(new, (tuple, list)) or len(outs) != len(states):
        raise Unsupported(
            f"the cell returned {_describe(new)} for a state of {len(states)} part(s); a compiled "
            "cell must return a state of the same structure"
        )
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise Unsupported(f"state part {k} returned by the cell is not a Tensor")
    return _build(x, states, outs, tuple_state, params, start)


def _describe(obj) -> str:
    if isinstance(obj, (tuple, list)):
        return f"a tuple of {len(obj)}"
    return type(obj).__name__


def _build(x, states, outs, tuple_state, params, start: int) -> StepGraph:
    """The step graph of one trace; ``start`` is the first serial number of the step's ops."""
    vals: dict[int, Value] = {}
    param_ids = {id(p): j for j, p in enumerate(params)}
    g = StepGraph(
        x=Value("x", x.shape, data=x), states=[], params=[], consts=[], nodes=[], outputs=[],
        tuple_state=tuple_state, dtype=x.dtype, batch=x.shape[0],
    )  # fmt: skip
    vals[id(x)] = g.x
    for k, s in enumerate(states):
        v = Value("state", s.shape, index=k, data=s)
        g.states.append(v)
        vals[id(s)] = v
    extra: list[Any] = []

    def leaf(t: Tensor) -> Value:
        if t.requires_grad:
            j = param_ids.get(id(t))
            if j is None:  # a tensor the cell closes over, not one of its parameters
                j = len(params) + len(extra)
                extra.append(t)
            v = Value("param", t.shape, index=j, data=t)
            g.params.append(v)
        else:
            v = Value("const", t.shape, index=len(g.consts), data=t.data)
            g.consts.append(v)
        return v

    # collect reachable contexts (iteratively), then order them by execution
    seen: dict[int, Any] = {}
    stack = list(outs)
    while stack:
        t = stack.pop()
        ctx = t._ctx
        if ctx is None or id(ctx) in seen:
            continue
        if ctx.serial < start:
            raise Unsupported(
                f"the cell reads a tensor with a gradient history from outside the step (made by "
                f"{ctx.fn.__name__}); make it a parameter of the cell, or detach it"
            )
        seen[id(ctx)] = ctx
        stack.extend(p for p in ctx.parents if isinstance(p, Node))
    ctxs = sorted(seen.values(), key=lambda c: c.serial)
    node_of: dict[int, OpNode] = {}

    def value_of(a: Any) -> Value:
        if isinstance(a, Tensor):
            if id(a) in vals:
                return vals[id(a)]
            if a._ctx is None:
                v = leaf(a)
            else:
                v = node_of[id(a._ctx)].outs[a._idx]
            vals[id(a)] = v
            return v
        if isinstance(a, np.ndarray):
            v = Value("const", a.shape, index=len(g.consts), data=a)
            g.consts.append(v)
            return v
        if isinstance(a, Node):
            raise Unsupported(f"the cell mixes {type(a).__name__} values into its tensors")
        return Value("scalar", (), data=a)

    for ctx in ctxs:
        args = [value_of(a) for a in ctx.parents]
        n_out = ctx.n_out
        metas = ctx.out_meta or [None]
        node = OpNode(ctx.fn, args, ctx.options, [])
        for k in range(n_out):
            shape = metas[k][0] if metas[k] is not None else ()  # () until _fill_shapes
            node.outs.append(Value("op", shape, index=len(g.nodes), out=k))
        node_of[id(ctx)] = node
        g.nodes.append(node)
    for o in outs:
        g.outputs.append(value_of(o))
    _fill_shapes(g, ctxs, outs)
    g.param_tensors = list(params) + extra
    return g


def _fill_shapes(g: StepGraph, ctxs, outs) -> None:
    """Give every op output its shape: from ``out_meta`` (multi-output ops) or from the tensors
    that consumed it (single-output ops are seen as parents of later nodes or as outputs)."""
    by_ctx = {id(c): n for c, n in zip(ctxs, g.nodes, strict=True)}
    tensors = list(outs)
    for c in ctxs:
        tensors.extend(p for p in c.parents if isinstance(p, Tensor))
    for t in tensors:
        if t._ctx is not None and id(t._ctx) in by_ctx:
            v = by_ctx[id(t._ctx)].outs[t._idx]
            v.shape, v.dtype = t.shape, t.dtype
    for c, n in zip(ctxs, g.nodes, strict=True):
        for k, v in enumerate(n.outs):
            if c.out_meta is not None:
                v.shape, v.dtype = c.out_meta[k]
            if v.dtype is not None and np.dtype(v.dtype).kind == "f" and v.dtype != g.dtype:
                raise Unsupported(
                    f"op {n.fn.__name__} makes a {v.dtype} value in a cell traced with {g.dtype} "
                    "inputs; compiled cells compute in one dtype"
                )


# ---- comparing two traces and assigning roles ----


def _batch_flag(what: str, a: tuple, b: tuple, batch: int) -> bool:
    if a == b:
        return False
    if len(a) == len(b) and a[1:] == b[1:] and a[0] == batch and b[0] == batch + 1:
        return True
    raise Unsupported(
        f"{what} has shape {a} for a batch of {batch} and {b} for {batch + 1}; compiled cells need "
        "values whose first axis is the batch axis (or that do not depend on the batch size)"
    )


def _compare(ga: StepGraph, gb: StepGraph) -> None:
    if len(ga.nodes) != len(gb.nodes) or any(
        na.fn is not nb.fn for na, nb in zip(ga.nodes, gb.nodes, strict=False)
    ):
        raise Unsupported(
            "the cell ran different ops on different inputs (data-dependent Python control flow)"
        )
    B = ga.batch
    for k, (va, vb) in enumerate(zip(ga.outputs, gb.outputs, strict=True)):
        if va.kind != vb.kind or va.index != vb.index or va.out != vb.out:
            raise Unsupported(f"state part {k} comes from different places on different inputs")
    for na, nb in zip(ga.nodes, gb.nodes, strict=True):
        name = na.fn.__name__
        if not _same(na.kwargs, nb.kwargs):
            raise Unsupported(f"op {name} got different options on different inputs")
        if len(na.args) != len(nb.args):
            raise Unsupported(f"op {name} got a different number of arguments on different inputs")
        for a, b in zip(na.args, nb.args, strict=True):
            if a.kind != b.kind or a.index != b.index or a.out != b.out:
                raise Unsupported(f"op {name} read different values on different inputs")
            if a.kind == "scalar" and not _same(a.data, b.data):
                raise Unsupported(f"op {name} got a different constant on different inputs")
        for va, vb in zip(na.outs, nb.outs, strict=True):
            va.batch = _batch_flag(f"the output of {name}", va.shape, vb.shape, B)
    for k, (va, vb) in enumerate(zip(ga.consts, gb.consts, strict=True)):
        va.batch = _batch_flag(f"constant {k}", va.shape, vb.shape, B)
        arr_a, arr_b = np.asarray(va.data), np.asarray(vb.data)
        if va.batch:
            arr_b = arr_b[:B]
        if not np.array_equal(arr_a, arr_b, equal_nan=True):
            raise Unsupported(
                f"a tensor of shape {va.shape} without gradient tracking changes with the inputs "
                "(a comparison, .detach(), a dropout mask or another random draw inside the "
                "cell); its value would be frozen"
            )
        if va.batch:
            if arr_a.ndim != 2 or not (arr_a == arr_a[:1]).all():
                raise Unsupported(
                    f"a constant of shape {va.shape} has different rows for different batch items"
                )
            va.data = arr_a[:1]
            va.shape = va.data.shape
            va.batch = False
    for va, vb in zip(ga.params, gb.params, strict=True):
        if va.index != vb.index:
            raise Unsupported("the cell used different parameters on different inputs")


def _hoistable(node: OpNode) -> bool:
    """Can this x-dependent op run on all steps at once, on the (T*B, n) stack of its inputs?"""
    out = node.outs[0]
    if len(node.outs) != 1 or not (out.batch and len(out.shape) == 2):
        return False
    fn = node.fn
    tensors = [a for a in node.args if a.kind != "scalar"]
    seq_ok = all(a.role != "seq" or (a.batch and len(a.shape) == 2) for a in tensors)
    if not seq_ok:
        return False
    if fn in ELEMENTWISE:
        return all(
            a.role == "seq"
            or (not a.batch and len(a.shape) <= 2 and (len(a.shape) < 2 or a.shape[0] == 1))
            for a in tensors
        )
    if fn is L.MatMul:
        left, right = node.args
        return left.role == "seq" and right.role == "inv" and len(right.shape) == 2
    if fn is M.GetItem:
        return _column_slice(node.kwargs.get("index"), out.shape) is not None
    if fn is M.Cat:
        return node.kwargs.get("dim") in (1, -1) and all(a.role == "seq" for a in tensors)
    return False


def _column_slice(index: Any, in_shape) -> slice | None:
    """The slice of columns taken by ``x[index]`` on a (B, n) value, if that is all it does."""
    if isinstance(index, tuple) and len(index) == 2:
        first, second = index
        if (first == slice(None) or first is Ellipsis) and isinstance(second, slice):
            return second
    return None


def _roles(g: StepGraph) -> None:
    g.x.role = "seq"
    for v in g.states:
        v.role = "loop"
    for v in g.params + g.consts:
        v.role = "inv"
    for node in g.nodes:
        for a in node.args:
            if a.kind == "scalar":
                a.role = "inv"
        roles = {a.role for a in node.args}
        role = "loop" if "loop" in roles else "seq" if "seq" in roles else "inv"
        node.role = role
        for v in node.outs:
            v.role = role
        if role == "seq" and not _hoistable(node):
            node.role = "loop"
            for v in node.outs:
                v.role = "loop"


def _sink(g: StepGraph) -> None:
    """Move x-only element-wise ops and column slices read only inside the loop into it.

    ``x W^T + b`` then costs no pass over a (T, B, n) array before the loop (the bias is added
    in the loop's own pass over the step, and its gradient summed there), and the slices of a
    chunked projection are read in place instead of being copied for all steps. Matrix products
    stay before the loop (one large product for all steps), as do values the state reads back
    (the cell's outputs)."""
    outputs = {id(v) for v in g.outputs}
    readers: dict[int, list[OpNode]] = {}
    for node in g.nodes:
        for a in node.args:
            readers.setdefault(id(a), []).append(node)
    for node in reversed(g.nodes):
        if node.role != "seq" or not (node.fn in ELEMENTWISE or node.fn is M.GetItem):
            continue
        out = node.outs[0]
        rs = readers.get(id(out), [])
        if not rs or id(out) in outputs or any(r.role != "loop" for r in rs):
            continue
        node.role = "loop"
        out.role = "loop"


def _check_loop(g: StepGraph) -> None:
    names = ", ".join(sorted(f.__name__ for f in LOOP_OPS))
    for node in g.nodes:
        name = node.fn.__name__
        if node.role == "inv" and any(a.batch for a in node.args):
            raise Unsupported(f"op {name} combines constants that depend on the batch size")
        if node.role != "loop":
            continue
        if node.fn not in LOOP_OPS:
            raise Unsupported(
                f"op {name} is not supported inside the time loop by the cell compiler "
                f"(supported: {names})"
            )
        for v in node.outs:
            if not (v.batch and len(v.shape) == 2):
                raise Unsupported(
                    f"op {name} makes a per-step value of shape {v.shape}; the cell compiler "
                    "supports per-step values of shape (batch, features) only"
                )
        for a in node.args:
            if a.kind == "scalar" and not isinstance(a.data, (int, float, np.number, type(None))):
                if node.fn is not M.GetItem:
                    raise Unsupported(f"op {name} has an argument {a.data!r} it cannot compile")
            if a.role in ("loop", "seq") and not (a.batch and len(a.shape) == 2):
                raise Unsupported(
                    f"op {name} reads a per-step value of shape {a.shape}; expected "
                    "(batch, features)"
                )
            if a.role == "inv" and a.kind != "scalar" and len(a.shape) > 2:
                raise Unsupported(f"op {name} reads a {len(a.shape)}-d parameter or constant")
        _check_operands(node)
    for k, (v, s) in enumerate(zip(g.outputs, g.states, strict=True)):
        if v.shape != s.shape or not v.batch:
            raise Unsupported(
                f"state part {k} comes back with shape {v.shape}; expected {s.shape}, the shape it "
                "came in with"
            )


def _check_operands(node: OpNode) -> None:
    name = node.fn.__name__
    out = node.outs[0]
    if node.fn in ELEMENTWISE:
        for a in node.args:
            if a.kind == "scalar":
                continue
            rows_ok = (a.batch and a.shape[0] == out.shape[0]) or (
                not a.batch and (len(a.shape) < 2 or a.shape[0] == 1)
            )
            if not rows_ok or a.cols not in (1, out.cols):
                raise Unsupported(
                    f"op {name} broadcasts a value of shape {a.shape} in a way the cell compiler "
                    "does not support"
                )
    elif node.fn is L.MatMul:
        left, right = node.args
        if left.role == "inv" or right.role != "inv" or len(right.shape) != 2:
            raise Unsupported(
                "matmul inside the time loop must be (per-step value) @ (parameter matrix), got "
                f"shapes {left.shape} @ {right.shape}"
            )
    elif node.fn is M.GetItem:
        sl = _column_slice(node.kwargs.get("index"), node.args[0].shape)
        if sl is None:
            raise Unsupported(
                f"indexing {node.kwargs.get('index')!r} of a per-step value; the cell compiler "
                "supports column slices x[:, a:b] (as split and chunk on the last dim make)"
            )
    elif node.fn is M.Cat:
        if node.kwargs.get("dim") not in (1, -1) or any(not a.batch for a in node.args):
            raise Unsupported("cat of per-step values is supported along the last dim only")
    elif node.fn is R.Sum:
        if node.kwargs.get("dim") not in (1, -1, (1,), (-1,)) or not node.kwargs.get("keepdim"):
            raise Unsupported(
                "sum of a per-step value is supported over the last dim with keepdim=True only"
            )
    elif node.fn in (Fu.LSTMCellStep, Fu.GRUCellStep):
        if any(not a.batch for a in node.args):
            raise Unsupported(f"{name} needs per-step inputs of shape (batch, features)")


def trace_cell(
    cell, x_data: np.ndarray, state_data: list[np.ndarray], tuple_state: bool, params, rng
) -> StepGraph:
    """Trace one step of ``cell`` and analyse it; raises ``Unsupported`` with the reason."""
    dtype = x_data.dtype
    ga = _one_trace(cell, x_data, state_data, tuple_state, params)
    B = x_data.shape[0]

    def other(a):
        shape = (B + 1,) + a.shape[1:]
        return rng.standard_normal(shape).astype(a.dtype)

    gb = _one_trace(cell, other(x_data), [other(s) for s in state_data], tuple_state, params)
    _compare(ga, gb)
    ga.x.batch = True
    for v in ga.states:
        v.batch = True
    for v in ga.params:
        if v.data.dtype != dtype:
            raise Unsupported(
                f"a parameter of shape {v.shape} is {v.data.dtype} but the input is {dtype}; "
                "compiled cells compute in one dtype"
            )
    _roles(ga)
    _sink(ga)
    _check_loop(ga)
    return ga

"""Read an autograd graph into plain records, iteratively, for the picture code.

The engine's graph is bipartite: data nodes (``Tensor``/``Value``) and op contexts
(``Context``, the ``grad_fn`` of a data node), each context holding its inputs in
``parents``. The picture works on *op level*: one record per op, one per leaf data node
(parameters, inputs) and, for tensors, one for the root. Intermediate data nodes are the edges
between ops; for ``Value`` graphs they are drawn as micrograd-style records next to the op that
made them (see ``__init__``), but they are still addressed as ``(op, output index)`` here.

Node ids are a post-order counter of an explicit-stack depth-first walk from the root, so
(a) the same graph always gives the same ids and therefore the same DOT text, and (b) ids are a
topological order: every input of a node has a smaller id than the node.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Node

OP, PARAM, INPUT, OUTPUT = "op", "param", "input", "output"


class GNode:
    """One drawn unit of the graph before any grouping: an op, a leaf or the root output.

    ``inputs`` lists ``(source id, source output index, argument position)`` in argument order;
    ``consts`` the non-node arguments of an op as ``(position, value)``; ``outs`` maps an op's
    output index to one data object seen for it (for shape, value and gradient).
    """

    __slots__ = ("nid", "kind", "obj", "name", "scope", "inputs", "consts", "outs", "names")

    def __init__(self, nid: int, kind: str, obj: Any, name: str, scope: tuple[str, ...] = ()):
        self.nid = nid
        self.kind = kind
        self.obj = obj
        self.name = name
        self.scope = scope
        self.inputs: list[tuple[int, int, int]] = []
        self.consts: list[tuple[int, Any]] = []
        self.outs: dict[int, Any] = {}
        self.names: dict[int, str] = {}


class Graph:
    """The op-level graph reachable from ``root``: ``nodes[nid]`` in topological order.

    ``scalar`` is True for ``Value`` graphs. ``consumers()`` gives, per node, the
    ``(consumer id, output index, argument position)`` triples that read it.
    """

    def __init__(self, nodes: list[GNode], root: int, scalar: bool):
        self.nodes = nodes
        self.root = root
        self.scalar = scalar
        self._consumers: list[list[tuple[int, int, int]]] | None = None

    def consumers(self) -> list[list[tuple[int, int, int]]]:
        if self._consumers is None:
            cons: list[list[tuple[int, int, int]]] = [[] for _ in self.nodes]
            for n in self.nodes:
                for src, out, arg in n.inputs:
                    cons[src].append((n.nid, out, arg))
            self._consumers = cons
        return self._consumers


def _is_node(x: Any) -> bool:
    """A Tensor or a Value (kept as a plain bool so the attribute reads stay untyped)."""
    return isinstance(x, Node)


def _leaf_kind_and_name(p: Any, names: dict[int, str]) -> tuple[str, str]:
    name = names.get(id(p))
    if name is not None:
        return PARAM, name
    if type(p).__name__ == "Parameter":  # a Parameter outside any live Module
        return PARAM, p.name or "parameter"
    if isinstance(p.data, np.ndarray):
        return INPUT, p.name or ("leaf" if p.requires_grad else "input")
    return INPUT, p.name or ""


def extract(root: Any, names: dict[int, str]) -> Graph:
    """Walk the graph behind ``root`` (a Tensor or a Value) with an explicit stack.

    ``names`` maps ``id(parameter)`` to a dotted module name (``nn.module.parameter_names()``).
    """
    scalar = not isinstance(root.data, np.ndarray)
    nodes: list[GNode] = []
    leaf_nid: dict[int, int] = {}
    op_nid: dict[int, int] = {}

    def add_leaf(p: Any) -> int:
        nid = leaf_nid.get(id(p))
        if nid is None:
            kind, name = _leaf_kind_and_name(p, names)
            nid = leaf_nid[id(p)] = len(nodes)
            nodes.append(GNode(nid, kind, p, name))
        return nid

    rctx = root._ctx
    if rctx is None:
        add_leaf(root)
        if not scalar:
            nodes[0].kind = OUTPUT if nodes[0].kind == INPUT else nodes[0].kind
        return Graph(nodes, 0, scalar)

    started = {id(rctx)}
    stack: list[list[Any]] = [[rctx, 0]]
    p: Any
    while stack:
        frame = stack[-1]
        ctx, i = frame
        parents = ctx.parents
        pushed = False
        while i < len(parents):
            p = parents[i]
            i += 1
            if not _is_node(p):
                continue
            pc = p._ctx
            if pc is None:
                add_leaf(p)
            elif id(pc) not in started:
                started.add(id(pc))
                frame[1] = i
                stack.append([pc, 0])
                pushed = True
                break
        if pushed:
            continue
        stack.pop()
        nid = op_nid[id(ctx)] = len(nodes)
        node = GNode(nid, OP, ctx, ctx.fn.__name__, ctx.scope)
        nodes.append(node)
        for pos, p in enumerate(parents):
            if not _is_node(p):
                node.consts.append((pos, p))
                continue
            pc = p._ctx
            if pc is None:
                node.inputs.append((leaf_nid[id(p)], 0, pos))
                continue
            src = nodes[op_nid[id(pc)]]
            node.inputs.append((src.nid, p._idx, pos))
            src.outs.setdefault(p._idx, p)
            if p.name and p._idx not in src.names:
                src.names[p._idx] = p.name
    top = nodes[op_nid[id(rctx)]]
    top.outs.setdefault(root._idx, root)
    if root.name:
        top.names[root._idx] = root.name
    if scalar:
        return Graph(nodes, top.nid, scalar)
    out = GNode(len(nodes), OUTPUT, root, root.name or "output")
    out.inputs.append((top.nid, root._idx, 0))
    nodes.append(out)
    return Graph(nodes, out.nid, scalar)

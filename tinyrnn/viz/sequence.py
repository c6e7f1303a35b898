"""Whole-sequence nodes drawn as their time steps.

A built-in layer's fast path runs one direction of one layer as ONE graph node
(``ops.sequence.LSTMSequence`` and friends). Its context describes what it did in
``ctx.sequence`` (cell kind, number of steps, direction, lengths, and the role of each input:
``x``, ``h0``, ``c0``, ``w_ih``, ``w_hh``, ``b_ih``, ``b_hh``). The picture replaces such a
node by what it computes, in the vocabulary of the step-by-step path:

- ``input projection``: ``x W_ihᵀ + b`` for every step at once, in the layer's scope;
- one ``<cell> cell`` node per step, in scope ``<layer>.t<k>`` (with ``pad=k/B`` when some
  sequences have ended), reading the projection, the state of the step that ran before it
  (the initial state for the first) and the recurrent weights; a step past the end of every
  sequence is a ``zeros`` node in scope ``pad`` that only outputs zeros;
- ``Stack``: the outputs of all steps, in the layer's scope; ``h_n`` (``c_n``) leave the last
  step that ran.

Gradients: a context filled during ``record_grads()`` holds ``ctx.grad_h`` (T, B, H), the
gradient of the loss with respect to each step's hidden output (the same ``‖∂L/∂h_t‖`` the
step-by-step path shows), and ``ctx.grad_xp``, that of the projection.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .graph import OP, GNode, Graph

STATE_ROLES = ("h0", "c0")


class View:
    """Stands in for the op context of a drawn node made here: the fields the picture reads."""

    __slots__ = ("n_out", "out_meta", "out_grads")

    def __init__(self, out_meta: list[tuple[Any, Any]], out_grads: list[Any] | None):
        self.n_out = len(out_meta)
        self.out_meta = out_meta
        self.out_grads = out_grads


class Data:
    """Stands in for a data node: the payload of one step's output, for value labels."""

    __slots__ = ("data", "shape")

    def __init__(self, data: Any):
        self.data = data
        self.shape = data.shape


def info_of(n: GNode) -> Any:
    """The ``ctx.sequence`` record of a whole-sequence op, or None."""
    return getattr(n.obj, "sequence", None) if n.kind == OP else None


def expand(g: Graph) -> Graph:
    """``g`` with every whole-sequence node replaced by its steps (``g`` itself when it has
    none). Node ids stay a topological order."""
    if not any(info_of(n) is not None for n in g.nodes):
        return g
    nodes: list[GNode] = []
    new_id: dict[int, int] = {}
    cons = g.consumers()
    out_map: dict[int, dict[int, tuple[int, int]]] = {}

    def source(nid: int, out: int) -> tuple[int, int]:
        m = out_map.get(nid)
        return m[out] if m is not None else (new_id[nid], out)

    for n in g.nodes:
        info = info_of(n)
        if info is not None:
            used = any(o == 0 for _, o, _ in cons[n.nid])
            out_map[n.nid] = _Expansion(n, info, nodes, source, used).outputs
            continue
        c = GNode(len(nodes), n.kind, n.obj, n.name, n.scope)
        c.consts, c.outs, c.names = n.consts, n.outs, n.names
        c.inputs = [(*source(s, o), a) for s, o, a in n.inputs]
        new_id[n.nid] = c.nid
        nodes.append(c)
    return Graph(nodes, new_id[g.root], g.scalar)


class _Expansion:
    """The drawn nodes of one whole-sequence node, appended to ``nodes``; ``outputs`` maps
    each of its outputs (output, h_n, c_n) to the drawn node and output that carries it.
    Without ``used`` (nothing reads the output sequence) the Stack and the padding steps,
    which only make that sequence, are left out, as a graph walk would leave them."""

    def __init__(self, n: GNode, info: Any, nodes: list[GNode], source: Any, used: bool):
        ctx = n.obj
        self.nodes = nodes
        roles = info.inputs
        by_role = {roles[pos]: source(s, o) for s, o, pos in n.inputs}
        shape: dict[str, Any] = {
            roles[pos]: getattr(p, "shape", ()) for pos, p in enumerate(ctx.parents)
        }
        T, B = shape["x"][:2]
        G, H = shape["w_hh"]
        dtype = ctx.out_meta[0][1] if ctx.out_meta else None
        recorded = ctx.out_grads is not None
        grad_h = getattr(ctx, "grad_h", None)
        grad_xp = getattr(ctx, "grad_xp", None)
        layer_scope = n.scope or (info.cell.lower(),)
        prefix, layer = layer_scope[:-1], layer_scope[-1]
        n_states = sum(r in by_role for r in STATE_ROLES)
        out_data = n.outs.get(0)

        proj = self._add(
            "input projection", layer_scope, [((T, B, G), dtype)], [grad_xp] if recorded else None
        )
        proj.inputs = [(*by_role[r], k) for k, r in enumerate(info.projected) if r in by_role]
        state = [by_role[r] for r in STATE_ROLES if r in by_role]
        step_of: dict[int, int] = {}
        lengths = np.asarray(info.lengths)
        order = range(T - 1, -1, -1) if info.reverse else range(T)
        for t in order:
            ended = int((lengths <= t).sum())
            scope = (*prefix, f"{layer}.t{t}")
            if ended >= B > 0:  # past the end of every sequence: zeros only
                if not used:
                    continue
                none = [None] if recorded else None
                z = self._add("zeros", (*scope, "pad"), [((B, H), dtype)], none)
                z.inputs = [(*state[0], 0)]
                step_of[t] = z.nid
                continue
            if ended:
                scope = (*scope, f"pad={ended}/{B}")
            grads = None
            if recorded:
                grads = [grad_h[t] if grad_h is not None else None] + [None] * (n_states - 1)
            cell = self._add(f"{info.cell} cell", scope, [((B, H), dtype)] * n_states, grads)
            cell.inputs = [(proj.nid, 0, 0)] + [(*s, 1 + k) for k, s in enumerate(state)]
            cell.inputs += [
                (*by_role[r], 1 + n_states + k)
                for k, r in enumerate(info.recurrent)
                if r in by_role
            ]
            if out_data is not None:
                cell.outs[0] = Data(out_data.data[t])
            state = [(cell.nid, k) for k in range(n_states)]
            step_of[t] = cell.nid
        self.outputs: dict[int, tuple[int, int]] = {}
        if used:
            stack = self._add(
                "Stack", layer_scope, [((T, B, H), dtype)], [ctx.out_grads[0]] if recorded else None
            )
            stack.inputs = [(step_of[t], 0, t) for t in range(T)]
            if out_data is not None:
                stack.outs[0] = out_data
            self.outputs[0] = (stack.nid, 0)
        for k in range(n_states):
            self.outputs[1 + k] = state[k]
        for k, name in n.names.items():
            tgt, o = self.outputs[k]
            if tgt >= proj.nid:
                nodes[tgt].names[o] = name

    def _add(
        self, name: str, scope: tuple[str, ...], meta: list[tuple[Any, Any]], grads: Any
    ) -> GNode:
        node = GNode(len(self.nodes), OP, View(meta, grads), name, scope)
        self.nodes.append(node)
        return node

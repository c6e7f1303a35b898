"""Time steps: which op belongs to which (layer, step), read from the scope names.

Recurrent layers run step ``t`` inside ``tr.scope(f"{layer}.t{t}")`` (``lstm.l0.t3``,
``lstm.l0_reverse.t3``); any scope element matching ``^(.*)\\.t(\\d+)$`` names a layer and a
step (the innermost one wins; outer scope elements are prefixed to the layer name, so
``encoder/lstm.l0`` and ``decoder/lstm.l0`` stay apart).

Padding convention (variable-length batches): a scope element ``pad`` marks a step that lies
beyond the end of every sequence in the batch; ``pad=k/B`` marks a step at which ``k`` of the
``B`` sequences have already ended. Such steps are drawn greyed out (fully or partly).

Placement of nodes without a step scope:

- an op none of whose scopes names a step, but whose every consumer lies in one step (slicing
  ``x[t]`` before the step's scope opens), is drawn in that step;
- a leaf used by one step only (an input ``x_t``, an initial state) is drawn in that step;
  parameters and leaves used by several steps (shared weights) stay outside every step.
"""

from __future__ import annotations

import re

from .graph import OP, PARAM, Graph

STEP_RE = re.compile(r"^(.*)\.t(\d+)$")
PAD_RE = re.compile(r"^pad(?:=(\d+)/(\d+))?$")

StepKey = tuple[int, int]  # (layer index, time step)


def parse_scope(scope: tuple[str, ...]) -> tuple[str, int, tuple[int, int] | None] | None:
    """``(layer, step, pad)`` named by a scope tuple, or None when it names no step.

    ``pad`` is ``(ended, batch)``: ``(1, 1)`` for a plain ``pad`` element.

    >>> parse_scope(("model", "lstm.l0.t3"))
    ('model/lstm.l0', 3, None)
    >>> parse_scope(("rnn.l0.t7", "pad=2/4"))
    ('rnn.l0', 7, (2, 4))
    >>> parse_scope(("encoder",)) is None
    True
    """
    found = None
    pad = None
    for i, element in enumerate(scope):
        m = STEP_RE.match(element)
        if m and m.group(1):
            found = (i, m.group(1), int(m.group(2)))
            continue
        p = PAD_RE.match(element)
        if p:
            pad = (int(p.group(1)), int(p.group(2))) if p.group(1) else (1, 1)
    if found is None:
        return None
    i, layer, t = found
    return "/".join((*scope[:i], layer)), t, pad


def _layer_index(k: StepKey | None, default: int) -> int:
    return k[0] if k is not None else default


class Steps:
    """Step membership of every node of a ``Graph``.

    ``layers``: layer names in the order the graph first uses them. ``of[nid]``: the
    ``(layer index, t)`` a node is drawn in, or None. ``members[(li, t)]``: node ids in that step
    (ops and placed leaves), ascending. ``times[li]``: the sorted steps of layer ``li``;
    ``order[li]``: the same in the order they ran (descending for a reverse direction).
    ``pad[(li, t)]``: ``(ended, batch)`` for padded steps. ``layer_of[nid]``: the layer of an
    op made in a layer's scope outside its steps (``lstm.l0`` but no ``lstm.l0.t3``).
    """

    def __init__(self, g: Graph):
        self.layers: list[str] = []
        self.of: list[StepKey | None] = [None] * len(g.nodes)
        self.pad: dict[StepKey, tuple[int, int]] = {}
        layer_index: dict[str, int] = {}
        parsed: dict[tuple[str, ...], tuple[str, int, tuple[int, int] | None] | None] = {}
        for n in g.nodes:
            if n.kind != OP or not n.scope:
                continue
            if n.scope in parsed:
                info = parsed[n.scope]
            else:
                info = parsed[n.scope] = parse_scope(n.scope)
            if info is None:
                continue
            layer, t, pad = info
            li = layer_index.get(layer)
            if li is None:
                li = layer_index[layer] = len(self.layers)
                self.layers.append(layer)
            self.of[n.nid] = (li, t)
            if pad is not None:
                old = self.pad.get((li, t))
                self.pad[(li, t)] = pad if old is None else max(old, pad)
        # ops in a layer's own scope but in no step (work a layer does once for all its steps,
        # such as projecting every input at once or transposing a weight) belong to the layer
        self.layer_of: dict[int, int] = {}
        for n in g.nodes:
            if n.kind == OP and self.of[n.nid] is None and n.scope:
                for k in range(len(n.scope), 0, -1):
                    li = layer_index.get("/".join(n.scope[:k]))
                    if li is not None:
                        self.layer_of[n.nid] = li
                        break
        if self.layers:
            self._place_unscoped(g)
        self.members: dict[StepKey, list[int]] = {}
        for nid, key in enumerate(self.of):
            if key is not None:
                self.members.setdefault(key, []).append(nid)
        times: list[set[int]] = [set() for _ in self.layers]
        for li, t in self.members:
            times[li].add(t)
        self.times = [sorted(ts) for ts in times]
        self.order = self._processing_order(g)

    def _processing_order(self, g: Graph) -> list[list[int]]:
        """Each layer's steps in the order they ran: ascending, or descending for a layer whose
        state flows from later to earlier steps (the reverse direction of a bidirectional
        layer)."""
        votes = [0] * len(self.layers)
        of = self.of
        for n in g.nodes:
            kd = of[n.nid]
            if kd is None:
                continue
            for src, _, _ in n.inputs:
                ks = of[src]
                if ks is not None and ks[0] == kd[0] and ks[1] != kd[1]:
                    votes[kd[0]] += 1 if ks[1] < kd[1] else -1
        return [ts if v >= 0 else ts[::-1] for ts, v in zip(self.times, votes, strict=True)]

    def _place_unscoped(self, g: Graph) -> None:
        """Pull input-side helpers and single-step leaves into the step that uses them, and
        unscoped ops that feed one layer only (splitting its input into steps) into it."""
        cons = g.consumers()
        of, layer_of = self.of, self.layer_of
        for nid in range(len(g.nodes) - 1, -1, -1):  # consumers before producers
            n = g.nodes[nid]
            if of[nid] is not None or n.kind == PARAM or not cons[nid] or nid == g.root:
                continue
            first = of[cons[nid][0][0]]
            if first is not None and all(of[c] == first for c, _, _ in cons[nid]):
                of[nid] = first
            elif n.kind == OP and nid not in layer_of:
                layers = {_layer_index(of[c], layer_of.get(c, -1)) for c, _, _ in cons[nid]}
                if len(layers) == 1 and -1 not in layers:
                    layer_of[nid] = layers.pop()

    @property
    def any(self) -> bool:
        return bool(self.layers)

    def step_count(self) -> int:
        return len(self.members)

    def label(self, key: StepKey) -> str:
        return f"{self.layers[key[0]]} · t={key[1]}"

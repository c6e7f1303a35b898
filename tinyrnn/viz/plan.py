"""Which drawn node stands for each graph node: units, clusters and the edges between them.

A *unit* is one drawn node. Every graph node maps to one unit: itself (``n<id>``), the
representative op of a folded run (rolled view), its step's cell (``c<layer>_<t>``, collapsed
view), its layer's shared weights or layer-wide ops (``w<layer>``; ``p<layer>`` for those
that prepare the steps' inputs, ``q<layer>`` for those that read the steps' results; collapsed
view) or a summary node standing for parts left out (``more<layer>``, ``more``). Edges are
the graph's edges mapped onto units and de-duplicated, so a weight read by every step of a
folded cell is one edge, and each step of an unfolded layer gets exactly one edge from it.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from .graph import OP, Graph
from .rolled import Runs
from .unfold import StepKey, Steps


class Unit:
    __slots__ = ("key", "kind", "members", "cluster", "step")

    def __init__(self, key: str, kind: str, cluster: str | None, step: StepKey | None):
        self.key = key
        self.kind = kind
        self.members: list[int] = []
        self.cluster = cluster
        self.step = step


class Plan:
    """Units, clusters and edges of one picture of ``g``.

    Args:
        steps: step membership, or None for a flat picture without clusters.
        runs: folded runs (rolled view) or None.
        collapse: draw each step (each folded run) as one cell node.
        hidden: graph node ids left out and drawn as summary nodes.
        hidden_steps: the steps left out (for the summary labels).
    """

    def __init__(
        self,
        g: Graph,
        steps: Steps | None,
        runs: Runs | None = None,
        collapse: bool = False,
        hidden: set[int] | None = None,
        hidden_steps: set[StepKey] | None = None,
    ):
        self.g = g
        self.steps = steps
        self.runs = runs
        self.collapse = collapse
        self.hidden = hidden or set()
        self.hidden_steps = hidden_steps or set()
        self.layer_clusters = steps is not None and len(steps.layers) > 1
        self._names = _cluster_names(steps) if steps is not None else []
        self._step_names: dict[StepKey, str] = {}
        n = len(g.nodes)
        of: list[StepKey | None] = steps.of if steps is not None else [None] * n
        self.of = of
        rep = runs.rep if runs is not None else range(n)
        run_of = runs.run_of if runs is not None else {}
        self.steps_layer_of = steps.layer_of if steps is not None else {}
        self.weight_layer = self._weight_layers() if steps is not None else {}
        after = self._after_steps() if collapse and steps is not None else set()
        unit_of: list[str] = [""] * n
        units: dict[str, Unit] = {}
        for nid in range(n):
            k = of[nid]
            if nid in self.hidden:
                key = f"more{k[0]}" if k is not None and k in self.hidden_steps else "more"
            elif collapse and k is not None:
                r = run_of.get(k)
                key = f"c{k[0]}_{r[1] if r else k[1]}"
            elif collapse and nid in self.weight_layer and g.nodes[nid].obj.requires_grad:
                key = f"w{self.weight_layer[nid]}"
            elif collapse and nid in self.steps_layer_of:
                key = f"{'q' if nid in after else 'p'}{self.steps_layer_of[nid]}"
            else:
                key = f"n{rep[nid]}"
            unit_of[nid] = key
            u = units.get(key)
            if u is None:
                u = units[key] = self._make_unit(key, nid)
            u.members.append(nid)
        self.unit_of = unit_of
        self.units = units
        self.truncated = 0

    # ---- units and clusters ----

    def _weight_layers(self) -> dict[int, int]:
        """Leaves outside every step read only by one layer (its steps or its layer-wide
        ops) -> that layer."""
        g, of = self.g, self.of
        layer_of = self.steps_layer_of
        cons = g.consumers()
        out: dict[int, int] = {}
        for n in g.nodes:
            if n.kind == OP or of[n.nid] is not None or not cons[n.nid]:
                continue
            layers = {_layer(of[c], layer_of.get(c, -1)) for c, _, _ in cons[n.nid]}
            if len(layers) == 1 and -1 not in layers:
                out[n.nid] = layers.pop()
        return out

    def _after_steps(self) -> set[int]:
        """Layer-wide ops that read what the layer's steps computed (stacking the outputs), as
        opposed to those that prepare the steps' inputs (the input projection): the collapsed
        view draws the two groups as two nodes, before and after the cells."""
        g, of, layer_of = self.g, self.of, self.steps_layer_of
        after: set[int] = set()
        for n in g.nodes:
            li = layer_of.get(n.nid)
            if li is None:
                continue
            for src, _, _ in n.inputs:
                k = of[src]
                if k is None and src in after and layer_of.get(src) == li:
                    after.add(n.nid)
                    break
                if k is not None and k[0] == li and g.nodes[src].kind == OP:
                    after.add(n.nid)
                    break
        return after

    def _make_unit(self, key: str, nid: int) -> Unit:
        g, of = self.g, self.of
        if key.startswith("w"):
            return Unit(key, "weights", self.layer_cluster(self.weight_layer[nid]), None)
        if key.startswith(("p", "q")):
            return Unit(key, "layerwide", self.layer_cluster(self.steps_layer_of[nid]), None)
        if key.startswith("more"):
            li = int(key[4:]) if len(key) > 4 else None
            return Unit(key, "summary", self.layer_cluster(li) if li is not None else None, None)
        if key.startswith("c"):
            k = of[nid]
            assert k is not None
            return Unit(key, "cell", self.layer_cluster(k[0]), k)
        r = int(key[1:])
        k = of[r]
        if k is not None:
            return Unit(key, g.nodes[r].kind, self.step_cluster(k), k)
        if r in self.steps_layer_of:
            return Unit(key, g.nodes[r].kind, self.layer_cluster(self.steps_layer_of[r]), None)
        # next to their layer when the layer is drawn compactly; in the unfolded op-level view
        # dot lines the steps up better with the weights outside every cluster
        li = self.weight_layer.get(r) if (self.collapse or self.runs is not None) else None
        return Unit(key, g.nodes[r].kind, self.layer_cluster(li) if li is not None else None, None)

    def layer_cluster(self, li: int) -> str | None:
        return f"cluster_{self._names[li]}" if self.layer_clusters else None

    def step_cluster(self, k: StepKey) -> str:
        name = self._step_names.get(k)
        if name is None:
            name = self._step_names[k] = self._step_cluster(k)
        return name

    def _step_cluster(self, k: StepKey) -> str:
        li, t = k
        r = self.runs.run_of.get(k) if self.runs is not None else None
        if r is not None and self.runs is not None:
            many = sum(li2 == li for li2, _ in self.runs.runs) > 1
            return f"cluster_{self._names[li]}_cell" + (str(r[0]) if many else "")
        return f"cluster_{self._names[li]}_t{t}"

    def cost(self, scalar_records: bool = True) -> int:
        """Nodes the picture will have (scalar pictures draw one record per op output)."""
        total = len(self.units)
        if self.g.scalar and scalar_records:
            nodes = self.g.nodes
            for u in self.units.values():
                if u.kind == OP:
                    total += len(nodes[int(u.key[1:])].outs)
        return total

    def truncate(self, max_nodes: int, reserve: int) -> None:
        """Keep the units nearest the root (breadth first towards the inputs); map the rest to
        one summary node, so the picture has at most ``max_nodes`` nodes."""
        preds: dict[str, list[str]] = {}
        for n in self.g.nodes:
            hk = self.unit_of[n.nid]
            for src, _, _ in n.inputs:
                tk = self.unit_of[src]
                if tk != hk:
                    preds.setdefault(hk, []).append(tk)
        nodes = self.g.nodes

        def weight(key: str) -> int:
            u = self.units[key]
            if self.g.scalar and u.kind == OP:
                return 1 + len(nodes[int(key[1:])].outs)
            return 1

        budget = max_nodes - reserve - 1  # one summary node
        start = self.unit_of[self.g.root]
        keep = {start}
        used = weight(start)
        queue = deque([start])
        while queue:
            key = queue.popleft()
            for p in preds.get(key, ()):
                if p in keep or p.startswith("more"):
                    continue
                w = weight(p)
                if used + w > budget:
                    continue
                keep.add(p)
                used += w
                queue.append(p)
        dropped = [k for k in self.units if k not in keep]
        if not dropped:
            return
        self.truncated = sum(len(self.units[k].members) for k in dropped)
        summary = Unit("more", "summary", None, None)
        for k in dropped:
            summary.members.extend(self.units.pop(k).members)
        for nid in summary.members:
            self.unit_of[nid] = "more"
        if "more" in self.units:
            self.units["more"].members.extend(summary.members)
        else:
            self.units["more"] = summary

    # ---- edges ----

    def edges(self) -> dict[tuple[str, int, str, int], list[Any]]:
        """``(tail, tail output, head, head argument) -> [count, spine, back, run length,
        leaves a folded cell]``; argument -1 where several graph edges were merged."""
        g, of, unit_of = self.g, self.of, self.unit_of
        run_of = self.runs.run_of if self.runs is not None else {}
        out: dict[tuple[str, int, str, int], list[Any]] = {}
        for n in g.nodes:
            hk = unit_of[n.nid]
            kd = of[n.nid]
            h_single = hk[0] == "n"
            rd = run_of.get(kd) if kd is not None else None
            for src, o, arg in n.inputs:
                tk = unit_of[src]
                ks = of[src]
                rec = ks is not None and kd is not None and ks[0] == kd[0] and ks[1] != kd[1]
                rs = run_of.get(ks) if ks is not None else None
                same_run = rs is not None and rd is not None and rs[0] == rd[0]
                back = rec and same_run
                if tk == hk and not back:
                    continue
                exits = rs is not None and not same_run and tk[0] == "n"
                enters = rd is not None and not same_run and h_single
                if exits or enters or not h_single or tk[0] != "n":
                    arg = -1
                if enters and not g.scalar:
                    o = -1  # one edge from a multi-output op into a folded cell
                key = (tk, o if tk[0] == "n" else 0, hk, arg)
                e = out.get(key)
                if e is None:
                    run_len = rs[3] if back and rs is not None else 0
                    out[key] = [1, rec and not back, back, run_len, exits or enters]
                else:
                    e[0] += 1
                    e[1] = e[1] or (rec and not back)
        return out


def _layer(k: StepKey | None, default: int) -> int:
    return k[0] if k is not None else default


def _cluster_names(steps: Steps) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for li, layer in enumerate(steps.layers):
        base = re.sub(r"\W", "_", layer)
        name = base if base not in seen else f"{base}_{li}"
        seen.add(name)
        names.append(name)
    return names

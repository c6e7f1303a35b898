"""From a ``Plan`` to a ``graphviz.Digraph``: node and cluster labels, colours, edge styles."""

from __future__ import annotations

import math
from typing import Any

import graphviz

from . import style as S
from .grads import describe, node_norm, out_norm
from .graph import OP, OUTPUT, PARAM
from .plan import Plan, Unit
from .renderer import Picture
from .unfold import StepKey, Steps

NL = "\\n"  # DOT's line break escape: keeps each DOT statement on one line


class Emitter:
    """Turns a ``Plan`` into DOT through ``graphviz.Digraph``."""

    def __init__(
        self,
        plan: Plan,
        show: tuple[str, ...],
        grads: bool,
        state_norm: dict[StepKey, float],
    ):
        self.plan = plan
        self.g = plan.g
        self.show = show
        self.grads = grads
        self.state_norm = state_norm
        self._norms: dict[int, float] = {}
        self._drawn_ends: dict[int, tuple[int, int]] = {}
        self.scale: S.GradScale | None = None
        if grads:
            self.scale = S.GradScale(self._visible_norms())

    @property
    def steps(self) -> Steps:
        """The step structure (only asked for when the picture has steps)."""
        assert self.plan.steps is not None
        return self.plan.steps

    def norm(self, nid: int) -> float:
        v = self._norms.get(nid)
        if v is None:
            v = self._norms[nid] = node_norm(self.g, nid)
        return v

    def _visible_norms(self) -> list[float]:
        """Every gradient norm the picture will show, for the colour scale."""
        out: list[float] = []
        g = self.g
        for u in self.plan.units.values():
            if u.kind == "cell" and u.step is not None:
                out.append(self.state_norm.get(u.step, math.nan))
            elif u.kind != "summary":
                if g.scalar and g.nodes[u.members[0]].kind == OP:
                    n = g.nodes[int(u.key[1:])]
                    out.extend(out_norm(g, m, k) for m in u.members for k in n.outs)
                else:
                    out.extend(self.norm(m) for m in u.members)
        return out

    # ---- labels ----

    def _norm_of(self, members: list[int]) -> tuple[float, float, float]:
        """(typical, smallest, largest) gradient norm over the graph nodes of a unit."""
        vals = [self.norm(m) for m in members]
        pos = [v for v in vals if v > 0 and math.isfinite(v)]
        if not pos:
            zero = any(v == 0 for v in vals)
            return (0.0 if zero else math.nan), math.nan, math.nan
        mean = 10 ** (sum(math.log10(v) for v in pos) / len(pos))
        return mean, min(pos), max(pos)

    def _color(self, attrs: dict[str, str], norm: float) -> None:
        if self.scale is not None:
            attrs["fillcolor"] = self.scale.color(norm)
            attrs["fontcolor"] = self.scale.font(norm)

    def tensor_label(self, u: Unit) -> tuple[str, dict[str, str]]:
        nid = int(u.key[1:])
        n = self.g.nodes[nid]
        attrs = dict(S.NODE_STYLE[u.kind])
        lines: list[str] = []
        if u.kind == OP:
            title = S.esc(n.name)
            named = [S.esc(n.names[k]) for k in sorted(n.names)]
            if named:
                title += " → " + ", ".join(named)
            lines.append(title)
            consts = [S.fmt(float(v)) for _, v in n.consts if _is_number(v)]
            if consts:
                lines.append("with " + ", ".join(consts))
            outs = [n.outs[k] for k in sorted(n.outs)]
            if "shape" in self.show:
                meta = n.obj.out_meta
                shapes = [shape for shape, _ in meta] if meta else [o.shape for o in outs]
                lines.append(S.shapes_text(shapes))
            if "value" in self.show and outs:
                lines.append(S.value_text(outs[0].data))
        else:
            obj = n.obj
            lines.append(S.esc(n.name or u.kind))
            if "shape" in self.show:
                lines.append(S.shape_text(obj.shape))
            data = obj.data
            if "value" in self.show or (u.kind == OUTPUT and data.size <= 4):
                lines.append(S.value_text(data))
        if self.grads:
            typical, lo, hi = self._norm_of(u.members)
            if len(u.members) > 1 and not math.isnan(lo) and lo != hi:
                lines.append(f"‖g‖ {describe(lo)} … {describe(hi)}")
            else:
                lines.append(f"‖g‖ {describe(typical)}")
            self._color(attrs, typical)
        elif self._fully_padded(u.step):
            attrs.update(S.GREY)
        return NL.join(lines), attrs

    def cell_label(self, u: Unit) -> tuple[str, dict[str, str]]:
        plan, steps = self.plan, self.steps
        assert u.step is not None
        li, t = u.step
        attrs = dict(S.NODE_STYLE["cell"])
        r = plan.runs.run_of.get(u.step) if plan.runs is not None else None
        ops = [m for m in u.members if self.g.nodes[m].kind == OP]
        fused = sorted({self.g.nodes[m].name for m in ops if _is_cell(self.g.nodes[m].name)})
        lines = [S.esc(steps.layers[li])]
        if r is not None:
            lines.append(f"t={r[1]}…{r[2]}  (×{r[3]})")
        else:
            lines.append(f"t={t}")
        per_step = len(ops) // (r[3] if r else 1)
        if per_step == 1 and fused:
            lines.append(fused[0])
        else:
            lines.append(f"{per_step} ops" + (f" ({', '.join(fused)})" if fused else ""))
        pad = steps.pad.get(u.step)
        if pad is not None:
            lines.append("padding" if pad[0] >= pad[1] else f"{pad[0]}/{pad[1]} ended")
        if self.grads:
            norm = self.state_norm.get(u.step, math.nan)
            lines.append(f"‖∂L/∂h‖ {describe(norm)}")
            self._color(attrs, norm)
        elif self._fully_padded(u.step):
            attrs.update(S.GREY)
        return NL.join(lines), attrs

    def _fully_padded(self, k: StepKey | None) -> bool:
        pad = self.plan.steps.pad.get(k) if k is not None and self.plan.steps else None
        return pad is not None and pad[0] >= pad[1]

    def weights_label(self, u: Unit) -> tuple[str, dict[str, str]]:
        """The shared leaves of one layer, listed in one node (collapsed view)."""
        attrs = dict(S.NODE_STYLE["param"])
        lines = []
        for m in u.members:
            n = self.g.nodes[m]
            text = S.esc(n.name or "leaf")
            if "shape" in self.show and not self.g.scalar:
                text += " " + S.shape_text(n.obj.shape)
            if self.grads:
                text += f"  ‖g‖ {describe(self.norm(m))}"
            lines.append(text)
        if self.grads:
            self._color(attrs, self._norm_of(u.members)[0])
        return "\\l".join(lines) + "\\l", attrs

    def layerwide_label(self, u: Unit) -> tuple[str, dict[str, str]]:
        """The ops a layer runs once for all its steps, as one node (collapsed view)."""
        attrs = dict(S.NODE_STYLE["op"])
        names: list[str] = []
        for m in u.members:
            if self.g.nodes[m].name not in names:
                names.append(self.g.nodes[m].name)
        li = self.plan.steps_layer_of[u.members[0]]
        lines = [f"{S.esc(self.steps.layers[li])} · all steps", S.esc(", ".join(names))]
        if self.grads:
            typical = self._norm_of(u.members)[0]
            lines.append(f"‖g‖ {describe(typical)}")
            self._color(attrs, typical)
        return NL.join(lines), attrs

    def summary_label(self, u: Unit) -> str:
        plan = self.plan
        if u.key != "more":
            li = int(u.key[4:])
            hidden = sorted(t for (l2, t) in plan.hidden_steps if l2 == li)
            return f"… {len(hidden):,} steps not drawn …{NL}t={hidden[0]} … t={hidden[-1]}"
        return f"… {len(u.members):,} more nodes not drawn …"

    def value_record(self, nid: int, out: int, obj: Any, members: list[int]) -> str:
        """micrograd-style record for one scalar: label, data, grad."""
        n = self.g.nodes[nid]
        if n.kind == OP:
            grads = [out_norm(self.g, m, out) for m in members]
            gvals = [
                self.g.nodes[m].obj.out_grads[out]
                for m in members
                if self.g.nodes[m].obj.out_grads is not None
            ]
            grad = float(gvals[0]) if gvals else math.nan
            norm = grads[0] if grads else math.nan
        else:
            grad = float(obj.grad)
            norm = abs(grad)
        grad_text = S.fmt(grad) if not math.isnan(grad) else "—"
        fill = font = ""
        if self.scale is not None:
            fill, font = self.scale.color(norm), self.scale.font(norm)
        return S.record_label(obj.name or "", S.fmt(obj.data), grad_text, fill, font)

    # ---- the DOT ----

    def emit(self, rankdir: str, note: str, legend_note: str) -> graphviz.Digraph:
        plan = self.plan
        dot = Picture(
            name="tinyrnn",
            graph_attr={
                "rankdir": rankdir,
                "fontname": S.FONT,
                "fontsize": "12",
                "nodesep": "0.25",
                "ranksep": "0.35",
                "bgcolor": "white",
            },
            node_attr={"fontname": S.FONT, "fontsize": "10", "height": "0.3"},
            edge_attr={"fontname": S.FONT, "fontsize": "9", "color": "#555555", "arrowsize": "0.6"},
        )
        bodies: dict[str | None, list[tuple[str, str, dict[str, str]]]] = {None: []}
        first: dict[str, Unit] = {}
        for u in plan.units.values():
            c = u.cluster
            if c is not None and c not in first:
                bodies[c] = []
                first[c] = u
            bodies[c].extend(self._unit_nodes(u))
        clusters = self._cluster_specs(first)
        # innermost clusters first, then the layers that hold them, then the root
        made: dict[str, graphviz.Digraph] = {}
        for depth in (2, 1):
            for key, (label, attrs, _parent, d) in clusters.items():
                if d != depth:
                    continue
                sub = graphviz.Digraph(name=key)
                sub.attr(label=label, labeljust="l", fontsize="11", **attrs)
                for name, nlabel, nattrs in bodies.get(key, []):
                    sub.node(name, nlabel, **nattrs)
                for child_key, child in made.items():
                    if clusters[child_key][2] == key:
                        sub.subgraph(child)
                made[key] = sub
        for name, label, attrs in bodies[None]:
            dot.node(name, label, **attrs)
        for key, sub in made.items():
            if clusters[key][2] is None:
                dot.subgraph(sub)
        if self.g.scalar:  # each scalar op points at the record of its result
            for u in plan.units.values():
                if u.kind == OP:
                    for k in sorted(self.g.nodes[int(u.key[1:])].outs):
                        dot.edge(u.key, f"{u.key}o{k}")
        for (tk, o, hk, _arg), info in plan.edges().items():
            tail, head, attrs = self._edge(tk, o, hk, *info)
            dot.edge(tail, head, **attrs)
        for tail, head in self._order_edges():
            dot.edge(tail, head, style="invis")
        if self.scale is not None:
            dot.node("legend", self.scale.legend(legend_note), shape="plaintext", margin="0")
        if note:
            dot.attr(label=note, labelloc="t", labeljust="l", fontcolor="#8a1c1c")
        return dot

    def _order_edges(self) -> list[tuple[str, str]]:
        """Invisible edges from the last ops of each drawn step to the first ops of the next
        step of the same layer, so the steps line up left to right instead of stacking (ops
        that read only weights and inputs would otherwise start every step at rank 0)."""
        plan, g = self.plan, self.g
        steps = plan.steps
        if steps is None or plan.collapse:
            return []
        run_of = plan.runs.run_of if plan.runs is not None else {}
        cons = g.consumers()
        nodes = g.nodes
        out: list[tuple[str, str]] = []
        for li, times in enumerate(steps.order):
            for t0, t1 in zip(times[:-1], times[1:], strict=True):
                k0, k1 = (li, t0), (li, t1)
                if (
                    k0 in run_of
                    or k1 in run_of
                    or k0 in plan.hidden_steps
                    or k1 in plan.hidden_steps
                ):
                    continue
                sinks = [
                    m
                    for m in steps.members[k0]
                    if nodes[m].kind == OP and all(steps.of[c] != k0 for c, _, _ in cons[m])
                ]
                entries = [
                    m
                    for m in steps.members[k1]
                    if all(steps.of[s] != k1 for s, _, _ in nodes[m].inputs)
                ]
                for a in sinks:
                    for b in entries:
                        ua, ub = plan.unit_of[a], plan.unit_of[b]
                        if ua in plan.units and ub in plan.units and ua != ub:
                            out.append((ua, ub))
        return out

    def _unit_nodes(self, u: Unit) -> list[tuple[str, str, dict[str, str]]]:
        g = self.g
        if u.kind == "summary":
            return [(u.key, self.summary_label(u), dict(S.NODE_STYLE["summary"]))]
        if u.kind == "cell":
            label, attrs = self.cell_label(u)
            return [(u.key, label, attrs)]
        if u.kind == "weights":
            label, attrs = self.weights_label(u)
            return [(u.key, label, attrs)]
        if u.kind == "layerwide":
            label, attrs = self.layerwide_label(u)
            return [(u.key, label, attrs)]
        if not g.scalar:
            label, attrs = self.tensor_label(u)
            return [(u.key, label, attrs)]
        nid = int(u.key[1:])
        n = g.nodes[nid]
        if n.kind != OP:
            return [(u.key, self.value_record(nid, 0, n.obj, u.members), S.NODE_STYLE["record"])]
        consts = [S.fmt(float(v)) for _, v in n.consts if _is_number(v)]
        sym = S.SCALAR_OP_NAMES.get(n.name, n.name)
        if n.name == "SPow" and n.consts and n.consts[0][0] == 0:
            text = f"{consts[0]}^"
        else:
            text = sym + "".join(consts)
        attrs = dict(S.NODE_STYLE["sop"])
        if len(text) > 3:
            attrs["fontsize"] = "8"
        out = [(u.key, text, attrs)]
        for k in sorted(n.outs):
            record = self.value_record(nid, k, n.outs[k], u.members)
            out.append((f"{u.key}o{k}", record, S.NODE_STYLE["record"]))
        return out

    def _edge(
        self,
        tk: str,
        o: int,
        hk: str,
        count: int,
        spine: bool,
        back: bool,
        run_len: int,
        exits: bool,
    ) -> tuple[str, str, dict[str, str]]:
        g = self.g
        attrs: dict[str, str] = {}
        tail = tk
        if tk[0] == "w":
            attrs.update(S.WEIGHT_EDGE)
        elif tk[0] == "n":
            n = g.nodes[int(tk[1:])]
            if n.kind == OP:
                if g.scalar:
                    tail = f"{tk}o{o}"
                elif n.obj.n_out > 1 and o >= 0:
                    names = S.OUTPUT_NAMES.get(n.name)
                    attrs["taillabel"] = names[o] if names and o < len(names) else f"[{o}]"
            elif n.kind == PARAM:
                attrs.update(S.WEIGHT_EDGE)
            elif g.scalar and self.plan.units[tk].cluster is None and self.plan.steps:
                head = self.plan.units.get(hk)
                if head is not None and head.step is not None:
                    # scalar weights read by several steps: let them line up in one column
                    # instead of pulling every step back to the left
                    attrs["constraint"] = "false"
        if back:
            attrs.update(S.BACK_EDGE)
            attrs["label"] = f"×{run_len}"
        elif exits and count > 1 and self.plan.units[tk].kind in (OP, "cell"):
            attrs["label"] = f"×{count}"
            attrs["fontcolor"] = "#555555"
        elif spine:
            attrs.update(S.SPINE_EDGE)
        if self.plan.collapse and not spine and not back and self._fan_edge(tk, hk):
            attrs["constraint"] = "false"
        return tail, hk, attrs

    def _fan_edge(self, tk: str, hk: str) -> bool:
        """An edge between a collapsed cell and a node every step shares (its weights, the
        layer's input projection, the stacked outputs), other than at the layer's first or
        last drawn step. Left out of the ranking so the cells line up along the spine instead
        of fanning out diagonally."""
        units = self.plan.units
        tail, head = units[tk], units[hk]
        if (tail.kind == "cell") == (head.kind == "cell"):
            return False
        cell = tail if tail.kind == "cell" else head
        assert cell.step is not None
        li, t = cell.step
        ends = self._drawn_ends.get(li)
        if ends is None:
            ts = [
                u.step[1] for u in units.values() if u.kind == "cell" and u.step and u.step[0] == li
            ]
            order = self.steps.order[li]
            forward = len(order) < 2 or order[0] < order[-1]
            ends = (min(ts), max(ts)) if forward else (max(ts), min(ts))
            self._drawn_ends[li] = ends
        return t != (ends[1] if cell is tail else ends[0])

    def _cluster_specs(
        self, first: dict[str, Unit]
    ) -> dict[str, tuple[str, dict[str, str], str | None, int]]:
        """``key -> (label, attrs, parent key, depth)`` for every cluster in use; ``first``
        maps each cluster to one unit drawn in it."""
        plan = self.plan
        steps = plan.steps
        specs: dict[str, tuple[str, dict[str, str], str | None, int]] = {}
        if steps is None:
            return specs
        for key, unit in first.items():
            if key in specs:
                continue
            k = unit.step
            if key.startswith("cluster_") and k is not None and plan.step_cluster(k) == key:
                parent = plan.layer_cluster(k[0])
                specs[key] = (*self._step_cluster_look(k), parent, 2 if parent else 1)
                if parent is not None and parent not in specs:
                    specs[parent] = (S.esc(steps.layers[k[0]]), dict(S.LAYER_CLUSTER), None, 1)
            else:  # a layer cluster holding cells or summaries directly
                li = self._layer_of_cluster(key)
                specs[key] = (S.esc(steps.layers[li]), dict(S.LAYER_CLUSTER), None, 1)
        return specs

    def _layer_of_cluster(self, key: str) -> int:
        for li in range(len(self.steps.layers)):
            if self.plan.layer_cluster(li) == key:
                return li
        raise KeyError(key)

    def _step_cluster_look(self, k: StepKey) -> tuple[str, dict[str, str]]:
        plan, steps = self.plan, self.steps
        r = plan.runs.run_of.get(k) if plan.runs is not None else None
        if r is not None:
            label = f"{S.esc(steps.layers[k[0]])} cell · ×{r[3]} steps (t={r[1]}…{r[2]})"
            attrs = dict(S.CELL_CLUSTER)
            pads = [steps.pad.get((k[0], t)) for t in range(r[1], r[2] + 1)]
            if all(p is not None and p[0] >= p[1] for p in pads):
                label += " (padding)"
                attrs = dict(S.PAD_CLUSTER, fontcolor="#888888")
            elif any(pads):
                label += f", {sum(p is not None for p in pads)} with ended sequences"
            if self.grads:
                vals = [self.state_norm.get((k[0], t), math.nan) for t in range(r[1], r[2] + 1)]
                vals = [v for v in vals if math.isfinite(v)]
                if vals:
                    first, last = describe(vals[0]), describe(vals[-1])
                    label += f"{NL}‖∂L/∂h_t‖ {first} (t={r[1]}) … {last} (t={r[2]})"
            return label, attrs
        label = S.esc(steps.label(k))
        pad = steps.pad.get(k)
        attrs = dict(S.STEP_CLUSTER)
        if pad is not None:
            full = pad[0] >= pad[1]
            attrs = dict(S.PAD_CLUSTER if full else S.PART_PAD_CLUSTER)
            label += " (padding)" if full else f" ({pad[0]}/{pad[1]} sequences ended)"
            if full:
                attrs["fontcolor"] = "#888888"
        if self.grads:
            label += f"{NL}‖∂L/∂h_t‖ = {describe(self.state_norm.get(k, math.nan))}"
        return label, attrs


def _is_cell(name: str) -> bool:
    """A fused cell op: one step's gates and update in one node (``LSTMCellStep``, or the
    ``LSTM cell`` drawn for each step of a whole-sequence node)."""
    return name.endswith(("Step", " cell"))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)

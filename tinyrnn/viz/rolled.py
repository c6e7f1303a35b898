"""Rolled view: consecutive steps of a layer with the same structure folded into one cell.

Each op of a step gets a structural descriptor, interned to a small int: its op name, its
number of outputs, its constant arguments, and for each argument in order where the value
comes from: an op of the same step (with that op's descriptor and output index), a shared leaf
(by identity: parameters and leaves used by several steps), or "from outside the step" (the
previous step's state, the initial state, another layer, a per-step input). Two steps with the
same multiset of descriptors compute the same thing with the same weights; consecutive runs of
such steps fold into one cell whose ops stand for every step of the run. An edge from a step's
op to a later step's op of the same run becomes the recurrent back edge, marked ``×n`` with the
number of steps. Works for any cell, built-in or custom, fused or op by op.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .graph import OP, Graph
from .unfold import StepKey, Steps


def _const_key(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, np.ndarray):
        return ("array", value.shape, str(value.dtype))
    return type(value).__name__


class Descriptors:
    """Structural descriptors of every op in a step (``up``), and a consumer-side tie-breaker
    (``down``) used to pair up ops that share a descriptor (the four gate slices of an LSTM)."""

    def __init__(self, g: Graph, steps: Steps):
        table: dict[Any, int] = {}
        intern = table.setdefault
        of = steps.of
        nodes = g.nodes
        self.up: dict[int, int] = {}
        self.down: dict[int, int] = {}
        up = self.up
        for key, members in steps.members.items():
            for nid in members:
                n = nodes[nid]
                if n.kind != OP:
                    continue
                args: list[tuple[int, ...]] = []
                for src, out, _arg in n.inputs:
                    if of[src] == key and nodes[src].kind == OP:
                        args.append((0, up[src], out))
                    elif nodes[src].kind != OP and of[src] is None:
                        # a shared leaf (weight): which one matters
                        args.append((1, src))
                    else:
                        args.append((2,))
                consts = tuple((pos, _const_key(v)) for pos, v in n.consts)
                up[nid] = intern((n.name, n.obj.n_out, tuple(args), consts), len(table))
        cons = g.consumers()
        down = self.down
        for key, members in steps.members.items():
            for nid in reversed(members):
                if nodes[nid].kind != OP:
                    continue
                inner = sorted(
                    (down[c], out, arg) for c, out, arg in cons[nid] if of[c] == key and c in down
                )
                down[nid] = intern(("down", up[nid], tuple(inner)), len(table))

    def signature(self, members: list[int]) -> tuple[int, ...]:
        return tuple(sorted(self.up[m] for m in members if m in self.up))

    def pair(self, members: list[int], rep_members: list[int]) -> dict[int, int] | None:
        """Map each op of a step to its counterpart in the representative step."""

        def groups(ms: list[int]) -> dict[int, list[int]]:
            out: dict[int, list[int]] = {}
            for m in ms:
                if m in self.up:
                    out.setdefault(self.up[m], []).append(m)
            for v in out.values():
                v.sort(key=lambda m: (self.down[m], m))
            return out

        mine, theirs = groups(members), groups(rep_members)
        mapping: dict[int, int] = {}
        for d, ms in mine.items():
            rs = theirs.get(d)
            if rs is None or len(rs) != len(ms):
                return None
            mapping.update(zip(ms, rs, strict=True))
        return mapping


class Runs:
    """Consecutive steps with identical structure, per layer, and the folding they imply.

    ``rep[nid]``: the node that stands for ``nid`` in the drawing (itself when not folded).
    ``run_of[(li, t)]``: ``(run index, first t, last t, length)`` for steps in a folded run
    (length >= 2). ``runs``: the folded runs as ``(li, [t, ...])``.
    """

    def __init__(self, g: Graph, steps: Steps, desc: Descriptors | None = None):
        self.desc = desc or Descriptors(g, steps)
        self.rep = list(range(len(g.nodes)))
        self.runs: list[tuple[int, list[int]]] = []
        self.run_of: dict[StepKey, tuple[int, int, int, int]] = {}
        for li, times in enumerate(steps.times):
            run: list[int] = []
            prev_sig = None
            for t in times:
                sig = self.desc.signature(steps.members[(li, t)])
                if run and sig == prev_sig and t == run[-1] + 1:
                    run.append(t)
                else:
                    self._fold(g, steps, li, run)
                    run = [t]
                prev_sig = sig
            self._fold(g, steps, li, run)

    def _fold(self, g: Graph, steps: Steps, li: int, run: list[int]) -> None:
        if len(run) < 2:
            return
        rep_members = steps.members[(li, run[0])]
        rep_set = set(rep_members)
        pairs = []
        for t in run[1:]:
            mapping = self.desc.pair(steps.members[(li, t)], rep_members)
            if mapping is None:  # same multiset but unpairable: leave the run unfolded
                return
            pairs.append((t, mapping))
        index = len(self.runs)
        self.runs.append((li, run))
        for t in run:
            self.run_of[(li, t)] = (index, run[0], run[-1], len(run))
        nodes = g.nodes
        for t, mapping in pairs:
            for a, b in mapping.items():
                self.rep[a] = b
            # leaves placed in this step follow the op that reads them, when the
            # representative step has a placed leaf in the same argument slot
            for nid in steps.members[(li, t)]:
                n = nodes[nid]
                if n.kind != OP:
                    continue
                rep_inputs = nodes[mapping[nid]].inputs
                for (src, _, _), (rsrc, _, _) in zip(n.inputs, rep_inputs, strict=True):
                    if nodes[src].kind != OP and steps.of[src] == (li, t) and rsrc in rep_set:
                        if nodes[rsrc].kind != OP:
                            self.rep[src] = rsrc

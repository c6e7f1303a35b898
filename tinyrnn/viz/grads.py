"""Gradients for pictures: recording them during backward, and reading them per node and step.

Leaves keep their gradient in ``.grad`` after any backward. The gradient of an intermediate
result is normally dropped once used; run backward inside ``record_grads()`` to keep it on
every op (``ctx.out_grads``, one entry per output), so ``draw(..., grads=True)`` can colour
every node and label every step with ``‖∂L/∂h_t‖``.
"""

from __future__ import annotations

import math
from typing import Any

from ..engine import STATE
from .graph import OP, OUTPUT, Graph
from .rolled import Descriptors
from .style import grad_norm
from .unfold import StepKey, Steps


class record_grads:
    """Context manager: keep every op's output gradients during backward, for pictures.

    It sets ``tinyrnn.engine.STATE.keep_grads`` and restores it on exit. The gradients stay
    on the graph (``grad_fn.out_grads``) until the graph is dropped.

    >>> import tinyrnn as tr
    >>> x = tr.tensor([1.0, 2.0], requires_grad=True)
    >>> y = (x * 3).tanh().sum()
    >>> with tr.viz.record_grads():
    ...     y.backward()
    >>> y.grad_fn.parents[0].grad_fn.out_grads[0].tolist()
    [1.0, 1.0]
    """

    def __enter__(self) -> record_grads:
        self._prev = STATE.keep_grads
        STATE.keep_grads = True
        return self

    def __exit__(self, *exc: object) -> None:
        STATE.keep_grads = self._prev


def node_norm(g: Graph, nid: int) -> float:
    """Norm of the gradient reaching a node: over all outputs of an op, ``.grad`` of a leaf,
    the seed gradient for the root output; NaN when none was recorded."""
    n = g.nodes[nid]
    if n.kind == OP:
        grads = n.obj.out_grads
        if grads is None:
            return math.nan
        return math.sqrt(sum(grad_norm(x) ** 2 for x in grads if x is not None))
    if n.kind == OUTPUT and n.inputs:
        src, out, _ = n.inputs[0]
        return out_norm(g, src, out)
    return grad_norm(getattr(n.obj, "grad", None))


def out_norm(g: Graph, nid: int, out: int) -> float:
    """Norm of the gradient of one output of an op (NaN when not recorded)."""
    n = g.nodes[nid]
    if n.kind != OP:
        return node_norm(g, nid)
    grads = n.obj.out_grads
    if grads is None or out >= len(grads) or grads[out] is None:
        return math.nan
    return grad_norm(grads[out])


def has_any(g: Graph) -> tuple[bool, bool]:
    """Whether any op carries recorded gradients, and whether any leaf has ``.grad``."""
    ops = leaves = False
    for n in g.nodes:
        if n.kind == OP:
            ops = ops or n.obj.out_grads is not None
        else:
            grad = getattr(n.obj, "grad", None)
            leaves = leaves or (grad is not None and grad_norm(grad) > 0)
    return ops, leaves


def state_outputs(
    g: Graph, steps: Steps, desc: Descriptors
) -> dict[StepKey, list[tuple[int, int]]]:
    """For each step, the outputs that carry its recurrent state (``h_t``).

    The state of step ``t`` is what flows into another step of the same layer; when the hidden
    output is also read outside the layer (the layer's output sequence), only that part is kept
    (``h`` rather than ``(h, c)``); at a step where some sequences have ended, the hidden output
    before masking (so the norm covers the sequences still running, as a whole-sequence node's
    ``grad_h`` does). A layer's last step has no later step: its state is found
    at the position the previous step's state had (same structural descriptor and output).
    """
    of = steps.of
    flows: dict[StepKey, set[tuple[int, int]]] = {}
    outside: dict[StepKey, set[tuple[int, int]]] = {}
    for n in g.nodes:
        kd = of[n.nid]
        for src, out, _ in n.inputs:
            ks = of[src]
            if ks is None or g.nodes[src].kind != OP:
                continue
            if kd is not None and kd[0] == ks[0] and kd[1] != ks[1]:
                flows.setdefault(ks, set()).add((src, out))
            elif kd is None or kd[0] != ks[0]:
                outside.setdefault(ks, set()).add((src, out))
    result: dict[StepKey, list[tuple[int, int]]] = {}
    for li, times in enumerate(steps.order):
        prev: list[tuple[int, int]] = []
        for t in times:
            key = (li, t)
            s = flows.get(key)
            if s:
                leaves = outside.get(key, set())
                both = (s & leaves) or _masked_source(g, of, key, s, leaves)
                chosen = _hidden_part(g, steps, key, sorted(both or s))
            else:
                chosen = []
                members = steps.members[key]
                for src, out in prev:
                    d = desc.up.get(src)
                    match = [m for m in members if desc.up.get(m) == d and (m, out) not in chosen]
                    if match:
                        chosen.append((match[0], out))
            result[key] = chosen
            prev = chosen
    return result


def _masked_source(
    g: Graph,
    of: list[StepKey | None],
    key: StepKey,
    flows: set[tuple[int, int]],
    leaves: set[tuple[int, int]],
) -> set[tuple[int, int]]:
    """At a step where some sequences have ended, the state passed on (``where(mask, new,
    old)``) and the output (``where(mask, new, 0)``) are different ops; the hidden output is
    the ``new`` both of them read."""

    def sources(outs: set[tuple[int, int]]) -> set[tuple[int, int]]:
        return {
            (src, o)
            for nid, _ in outs
            for src, o, _ in g.nodes[nid].inputs
            if of[src] == key and g.nodes[src].kind == OP
        }

    return sources(flows) & sources(leaves)


def _hidden_part(
    g: Graph, steps: Steps, key: StepKey, outs: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Of several state outputs, the hidden output ``h``: an LSTM's cell state ``c`` is also
    read inside its own step (by ``tanh(c)``), ``h`` is not; of one op's several outputs the
    first is the hidden one (the convention of ``nn.Recurrent``: a state tuple starts with the
    step's output)."""
    if len(outs) < 2:
        return outs
    cons = g.consumers()
    of = steps.of
    free = [(n, o) for n, o in outs if not any(of[c] == key and oo == o for c, oo, _ in cons[n])]
    outs = free or outs
    if len({n for n, _ in outs}) == 1:
        return outs[:1]
    return outs


def state_norms(g: Graph, states: dict[StepKey, list[tuple[int, int]]]) -> dict[StepKey, float]:
    """``‖∂L/∂h_t‖`` per step from the recorded gradients (NaN where none was recorded)."""
    norms: dict[StepKey, float] = {}
    for key, outs in states.items():
        vals = [out_norm(g, nid, out) for nid, out in outs]
        vals = [v for v in vals if not math.isnan(v)]
        norms[key] = math.sqrt(sum(v * v for v in vals)) if vals else math.nan
    return norms


def describe(value: Any) -> str:
    """Text for a gradient norm in a label."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.2e}"

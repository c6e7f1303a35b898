"""Pictures of autograd graphs: unfolded and rolled recurrent networks, scalar graphs, gradients.

``draw(root)`` reads the graph behind a ``Tensor`` or a ``Value`` and returns a
``graphviz.Digraph`` (DOT text, no renderer needed); ``render(root, path)`` writes svg, png, pdf
or dot. Recurrent layers tag each time step with ``tr.scope(f"{layer}.t{t}")``; the picture
turns those tags into one cluster per step (unfolded view) or folds identical steps into one
cell with a recurrent edge (``rolled=True``). Shared weights are drawn once, with an edge into
every step that reads them; parameters are labelled with their module names.

Gradients on the picture: run backward inside ``record_grads()`` so every op keeps its output
gradient, then ``draw(..., grads=True)`` colours each node by ``log10`` of its gradient norm
and labels each step with ``‖∂L/∂h_t‖``.

Conventions read from the graph (nothing else is needed from the code that built it):

- a scope element ``<layer>.t<k>`` puts an op in step ``k`` of ``<layer>``; an op in the
  scope ``<layer>`` but in no step is work the layer does once for all steps;
- a scope element ``pad`` marks a step past the end of every sequence of the batch (drawn
  greyed out), ``pad=k/B`` a step at which ``k`` of the ``B`` sequences have ended;
- parameters are named after the attribute path in the outermost live ``nn.Module`` that
  holds them (keep the model alive while drawing), other tensors by their ``.name``;
- a whole-sequence node (the fast path of ``nn.RNN/LSTM/GRU``: one node per layer and
  direction, which describes itself in ``ctx.sequence``) is drawn as its steps: the input
  projection, one ``LSTM cell`` (``RNN cell``, ``GRU cell``) per step in ``<layer>.t<k>``, and
  the stacked outputs; see ``tinyrnn.viz.sequence``.

>>> import tinyrnn as tr
>>> w = tr.nn.Parameter(tr.ones(3, 3))
>>> h = tr.zeros(1, 3)
>>> for t in range(4):
...     with tr.scope(f"rnn.l0.t{t}"):
...         h = (h @ w + 1.0).tanh()
>>> dot = tr.viz.draw(h.sum())
>>> dot.source.count("subgraph cluster_rnn_l0_t")
4
>>> "×4" in tr.viz.draw(h.sum(), rolled=True).source
True
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import graphviz

from ..engine import Node
from ..nn.module import parameter_names
from .grads import has_any, record_grads, state_norms, state_outputs
from .graph import OP, OUTPUT, PARAM, Graph, extract
from .picture import Emitter
from .plan import Plan
from .renderer import FORMATS, Picture, find_renderer, point_graphviz_at, write
from .rolled import Descriptors, Runs
from .sequence import expand
from .unfold import StepKey, Steps

__all__ = ["Picture", "draw", "find_renderer", "record_grads", "render"]

SHOW = ("shape", "value")
RANKDIRS = ("LR", "TB", "RL", "BT")
KEEP_STEPS = (5, 3, 2, 1)  # first/last steps kept per layer when eliding, largest first


def _check(root: Any, show: Any, max_nodes: Any, rankdir: Any) -> tuple[str, ...]:
    if not isinstance(root, Node):
        raise TypeError(f"draw: expected a Tensor or a Value as root, got {type(root).__name__}")
    if isinstance(show, str):
        show = (show,)
    show = tuple(show)
    bad = [s for s in show if s not in SHOW]
    if bad:
        raise ValueError(f"draw: show may contain {', '.join(map(repr, SHOW))}; got {bad}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 5:
        raise ValueError(f"draw: max_nodes must be an integer >= 5, got {max_nodes!r}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"draw: rankdir must be one of {', '.join(RANKDIRS)}; got {rankdir!r}")
    return show


def _hide(g: Graph, steps: Steps, hidden_steps: set[StepKey]) -> set[int]:
    """Nodes of the hidden steps, plus nodes outside every step that only serve them: ops that
    read nothing but hidden ops, and inputs read by hidden nodes only."""
    hidden: set[int] = set()
    for key in hidden_steps:
        hidden.update(steps.members[key])
    of, nodes = steps.of, g.nodes
    for n in nodes:  # producers first
        if of[n.nid] is None and n.kind == OP and n.nid != g.root:
            srcs = [s for s, _, _ in n.inputs if nodes[s].kind == OP]
            if srcs and all(s in hidden for s in srcs):
                hidden.add(n.nid)
    cons = g.consumers()
    for nid in range(len(nodes) - 1, -1, -1):  # consumers first
        if nid in hidden or of[nid] is not None or nid == g.root:
            continue
        if nodes[nid].kind in (PARAM, OUTPUT):
            continue
        if cons[nid] and all(c in hidden for c, _, _ in cons[nid]):
            hidden.add(nid)
    return hidden


def _fit(
    g: Graph,
    steps: Steps | None,
    runs: Runs | None,
    collapse: bool,
    max_nodes: int,
    reserve: int,
) -> tuple[Plan, str]:
    """The plan to draw and, when it had to shrink to ``max_nodes``, a note saying how."""
    if runs is None and not collapse:  # one drawn node per graph node: count without a plan
        full = len(g.nodes)
        if g.scalar:
            full += sum(len(n.outs) for n in g.nodes if n.kind == OP)
        if full + reserve <= max_nodes:
            return Plan(g, steps), ""
        plan = None
    else:
        plan = Plan(g, steps, runs, collapse)
        full = plan.cost()
        if full + reserve <= max_nodes:
            return plan, ""
    done: list[str] = []
    if steps is not None and not collapse:
        plan = Plan(g, steps, runs, True)
        done.append("each step drawn as one cell")
    elif plan is None:
        plan = Plan(g, steps, runs, collapse)
    if plan.cost() + reserve > max_nodes and steps is not None and runs is None:
        for k in KEEP_STEPS:
            hidden_steps = {(li, t) for li, ts in enumerate(steps.times) for t in ts[k:-k]}
            if not hidden_steps:
                continue
            trial = Plan(g, steps, None, True, _hide(g, steps, hidden_steps), hidden_steps)
            plan = trial
            if trial.cost() + reserve <= max_nodes:
                break
        done.append(f"only the first and last {k} steps of each layer drawn")
    if plan.cost() + reserve > max_nodes:
        plan.truncate(max_nodes, reserve)
        done.append("only the nodes nearest the output drawn")
    note = f"{full:,} nodes, more than max_nodes={max_nodes}: " + "; ".join(done)
    return plan, note


def draw(
    root: Any,
    *,
    unfold: bool = True,
    rolled: bool = False,
    collapse: bool = False,
    show: Any = ("shape",),
    grads: bool = False,
    max_nodes: int = 2000,
    rankdir: str = "LR",
) -> graphviz.Digraph:
    """Picture of the graph that computed ``root`` (a Tensor or a Value), as DOT.

    Args:
        root: the result whose graph is drawn (a loss, an output).
        unfold: one cluster per time step (layers mark steps with ``tr.scope("<layer>.t<k>")``);
            weights shared by the steps are drawn once, outside, with one edge into each step;
            the state passed from step to step is the bold red spine.
        rolled: fold consecutive steps with the same structure into one cell cluster with a
            recurrent back edge marked ``×n`` (n steps).
        collapse: draw each step (or folded cell) as a single node.
        show: what op labels show: ``"shape"`` and/or ``"value"`` (a short summary).
        grads: colour nodes by ``log10`` of their gradient norm (legend included) and label
            steps with ``‖∂L/∂h_t‖``; run ``backward`` inside ``record_grads()`` first.
        max_nodes: hard cap on the nodes drawn, summary nodes included. Bigger graphs are
            drawn with collapsed cells, then with only the first and last steps of each layer
            (a summary node counts the steps left out), then cut to the nodes nearest the
            output; a note at the top says which.
        rankdir: Graphviz layout direction, ``"LR"`` (time runs left to right) or ``"TB"``...

    Returns:
        a ``graphviz.Digraph`` (a ``Picture``, which Jupyter shows inline as SVG).

    Scalar ``Value`` graphs are drawn at neuron level: each value is a record
    ``label | data | grad`` and each op a small circle.

    >>> import tinyrnn as tr
    >>> a, b = tr.Value(2.0, label="a"), tr.Value(-3.0, label="b")
    >>> c = a * b + a
    >>> c.backward()
    >>> src = tr.viz.draw(c).source
    >>> "grad 2" in src and "data -4" in src
    True
    """
    show = _check(root, show, max_nodes, rankdir)
    # the walk allocates a few small objects per graph node; pausing the cyclic garbage
    # collector (nothing here makes cycles) halves the time on graphs of 100,000 nodes
    paused = gc.isenabled()
    gc.disable()
    try:
        return _draw(root, unfold, rolled, collapse, show, grads, max_nodes, rankdir)
    finally:
        if paused:
            gc.enable()


def _draw(
    root: Any,
    unfold: bool,
    rolled: bool,
    collapse: bool,
    show: tuple[str, ...],
    grads: bool,
    max_nodes: int,
    rankdir: str,
) -> graphviz.Digraph:
    g = expand(extract(root, parameter_names()))
    steps = Steps(g) if (unfold or rolled) else None
    if steps is not None and not steps.any:
        steps = None
    runs = Runs(g, steps) if rolled and steps is not None else None
    state_norm: dict[StepKey, float] = {}
    legend_note = ""
    if grads:
        ops_have, leaves_have = has_any(g)
        if not ops_have and not leaves_have:
            raise ValueError(
                "draw(grads=True): the graph carries no gradients; call backward inside "
                "`with tr.viz.record_grads():` first (leaves alone need a plain backward)"
            )
        if not ops_have:
            legend_note = "leaves only: run backward inside tr.viz.record_grads() for all nodes"
        if steps is not None:
            desc = runs.desc if runs is not None else Descriptors(g, steps)
            state_norm = state_norms(g, state_outputs(g, steps, desc))
    plan, note = _fit(g, steps, runs, collapse, max_nodes, 1 if grads else 0)
    point_graphviz_at(_safe_renderer())
    return Emitter(plan, show, grads, state_norm).emit(rankdir, note, legend_note)


def _safe_renderer() -> str | None:
    try:
        return find_renderer()
    except RuntimeError:
        return None


def render(
    root: Any, path: str | os.PathLike[str], format: str = "svg", **draw_options: Any
) -> Path:
    """Draw ``root`` (or take a ``Digraph`` from ``draw``) and write it to ``path``.

    ``format`` is ``"svg"`` (default), ``"png"`` (scaled to at most 8000 pixels a side),
    ``"pdf"`` (needs Graphviz's own ``dot``; graphviz-pure has no pdf) or ``"dot"`` (the
    source). With no renderer installed the DOT source is written next to ``path`` as
    ``.dot`` and one line on stderr says how to render it. Returns the path written.

    >>> import tinyrnn as tr, tempfile, pathlib
    >>> x = tr.tensor([1.0, 2.0], requires_grad=True)
    >>> out = tr.viz.render((x * x).sum(), pathlib.Path(tempfile.mkdtemp()) / "g", format="dot")
    >>> out.suffix, out.read_text().startswith("digraph")
    ('.dot', True)
    """
    if format not in FORMATS:
        raise ValueError(f"render: format must be one of {', '.join(FORMATS)}; got {format!r}")
    dot = root if isinstance(root, graphviz.Digraph) else draw(root, **draw_options)
    return write(dot, path, format)

"""Graph pictures: assertions on the DOT source (nodes, edges, clusters, labels), rendering
through the found renderer (skipped when there is none), and the fallbacks."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn import nn
from tinyrnn.viz import renderer

# ---------------------------------------------------------------- DOT parsing helpers

_NODE = re.compile(r"^\s*(\w+) \[(.*)\]$")
_EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$")
_OPEN = re.compile(r"^\s*subgraph (\w+) \{$")
_LABEL = re.compile(r'label=(?:"((?:[^"\\]|\\.)*)"|(<.*>)|([^\s"<][^\s]*))')


class Dot:
    """Nodes (name -> attribute text), edges, clusters (name -> label, parent) and, per node,
    the innermost cluster it was declared in."""

    def __init__(self, source: str):
        self.source = source
        self.nodes: dict[str, str] = {}
        self.cluster_of: dict[str, str | None] = {}
        self.edges: list[tuple[str, str, str]] = []
        self.clusters: dict[str, tuple[str, str | None]] = {}
        stack: list[str] = []
        for line in source.splitlines():
            if m := _OPEN.match(line):
                stack.append(m.group(1))
                self.clusters[m.group(1)] = ("", stack[-2] if len(stack) > 1 else None)
            elif line.strip() == "}":
                if stack:
                    stack.pop()
            elif m := _EDGE.match(line):
                self.edges.append((m.group(1), m.group(2), m.group(3) or ""))
            elif m := _NODE.match(line):
                if m.group(1) in ("graph", "node", "edge"):
                    continue
                self.nodes[m.group(1)] = m.group(2)
                self.cluster_of[m.group(1)] = stack[-1] if stack else None
            elif stack and line.strip().startswith(("color=", "label=", "fontsize=")):
                lab = _LABEL.search(line)
                self.clusters[stack[-1]] = (
                    lab.group(1) if lab else "",
                    self.clusters[stack[-1]][1],
                )

    def label(self, name: str) -> str:
        m = _LABEL.search(self.nodes[name])
        return (m.group(1) or m.group(2) or m.group(3)) if m else ""

    def find(self, text: str) -> list[str]:
        """Nodes whose label's first line is ``text``."""
        return [n for n in self.nodes if self.label(n).split("\\n")[0] == text]

    def visible_edges(self) -> list[tuple[str, str, str]]:
        return [e for e in self.edges if "style=invis" not in e[2]]

    def out_edges(self, name: str) -> list[tuple[str, str, str]]:
        return [e for e in self.visible_edges() if e[0] == name]

    def step_clusters(self) -> list[str]:
        return [c for c in self.clusters if re.search(r"_t\d+$", c)]


def draw(root, **kw) -> Dot:
    return Dot(tr.viz.draw(root, **kw).source)


needs_renderer = pytest.mark.skipif(
    renderer.find_renderer() is None, reason="no Graphviz renderer installed"
)

# ---------------------------------------------------------------- models


class HandRNN(nn.Module):
    """A tanh RNN written as a loop of tensor ops, each step in ``rnn.l0.t{t}``; ``x[t]`` is
    sliced before the step's scope opens."""

    def __init__(self, i: int, h: int):
        super().__init__()
        self.w_ih = nn.Parameter(tr.randn(i, h) * 0.5)
        self.w_hh = nn.Parameter(tr.randn(h, h) * 0.5)
        self.b = nn.Parameter(tr.zeros(h))

    def forward(self, x, keep=None):
        h = tr.zeros(x.shape[1], self.w_hh.shape[0])
        outs = []
        for t in range(x.shape[0]):
            xt = x[t]
            with tr.scope(f"rnn.l0.t{t}"):
                h = (xt @ self.w_ih + h @ self.w_hh + self.b).tanh()
            if keep is not None:
                h.retain_grad()
                keep.append(h)
            outs.append(h)
        return tr.stack(outs)


class HandLSTM(nn.Module):
    """An LSTM written op by op, PyTorch's layout; the weights are transposed inside every
    step, so each weight has one edge into each step."""

    def __init__(self, i: int, h: int, layers: int):
        super().__init__()
        self.h, self.layers = h, layers
        for k in range(layers):
            n_in = i if k == 0 else h
            setattr(self, f"weight_ih_l{k}", nn.Parameter(tr.randn(4 * h, n_in) * 0.3))
            setattr(self, f"weight_hh_l{k}", nn.Parameter(tr.randn(4 * h, h) * 0.3))
            setattr(self, f"bias_l{k}", nn.Parameter(tr.zeros(4 * h)))

    def forward(self, x, keep=None):
        inputs = [x[t] for t in range(x.shape[0])]
        for k in range(self.layers):
            w_ih, w_hh = getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}")
            b = getattr(self, f"bias_l{k}")
            h = c = tr.zeros(x.shape[1], self.h)
            outs = []
            for t, xt in enumerate(inputs):
                with tr.scope(f"lstm.l{k}.t{t}"):
                    i, f, g, o = (xt @ w_ih.T + h @ w_hh.T + b).chunk(4, 1)
                    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
                    h = o.sigmoid() * c.tanh()
                if keep is not None:
                    h.retain_grad()
                    keep.append(h)
                outs.append(h)
            inputs = outs
        return tr.stack(inputs)


def lstm_loss(fused: bool | str = True, steps: int = 5, layers: int = 2, seed: int = 0):
    tr.manual_seed(seed)
    lstm = nn.LSTM(3, 4, num_layers=layers, fused=fused)
    out, _ = lstm(tr.randn(steps, 2, 3))
    return lstm, (out * out).mean()


def seed_example():
    """The seed article's worked example at neuron level: W_h, U_h, b_h as scalar Values,
    two steps from h0 = 0, loss L = h2[0] + h2[1]."""
    w = [[0.5, 0.2], [0.3, 0.8]]
    u = [[0.1, 0.4], [0.6, 0.7]]
    b = [0.1, 0.2]
    W = [[tr.Value(w[i][j], label=f"W[{i},{j}]") for j in range(2)] for i in range(2)]
    U = [[tr.Value(u[i][j], label=f"U[{i},{j}]") for j in range(2)] for i in range(2)]
    B = [tr.Value(b[i], label=f"b[{i}]") for i in range(2)]
    h = [tr.Value(0.0, label=f"h0[{i}]") for i in range(2)]
    for t, x in enumerate(([1.0, 0.0], [0.0, 1.0]), start=1):
        xs = [tr.Value(v, label=f"x{t}[{j}]") for j, v in enumerate(x)]
        with tr.scope(f"rnn.t{t}"):
            new = []
            for i in range(2):
                z = W[i][0] * xs[0] + W[i][1] * xs[1] + U[i][0] * h[0] + U[i][1] * h[1] + B[i]
                v = z.tanh()
                v.label = f"h{t}[{i}]"
                new.append(v)
            h = new
    loss = h[0] + h[1]
    loss.label = "L"
    return loss, W, U, B, h


# ---------------------------------------------------------------- unfolded view


def steps_entered(d: Dot, node: str) -> list[str]:
    """The step clusters that the data flowing out of ``node`` enters, one entry per edge,
    following it through nodes outside every step (a transposed weight, a projection of every
    step's input at once) and stopping at the first node inside a step."""
    entered: list[str] = []
    seen = {node}
    todo = [node]
    while todo:
        for _, head, _ in d.out_edges(todo.pop()):
            c = d.cluster_of[head]
            if c is not None and re.search(r"_t\d+$", c):
                entered.append(c)
            elif head not in seen:
                seen.add(head)
                todo.append(head)
    return sorted(entered)


MODELS = {"whole sequence": "sequence", "fused steps": "step", "op-by-op": False}


@pytest.mark.parametrize("model", [*MODELS, "hand-written"])
def test_unfolded_lstm_has_a_cluster_per_layer_and_step(model):
    if model == "hand-written":
        tr.manual_seed(0)
        lstm = HandLSTM(3, 4, 2)
        loss = (lstm(tr.randn(5, 2, 3)) ** 2).mean()
    else:
        lstm, loss = lstm_loss(MODELS[model])
    d = draw(loss)
    steps = d.step_clusters()
    assert sorted(steps) == sorted(f"cluster_lstm_l{k}_t{t}" for k in range(2) for t in range(5))
    assert d.clusters["cluster_lstm_l1_t3"][0] == "lstm.l1 · t=3"
    assert d.clusters["cluster_lstm_l1_t3"][1] == "cluster_lstm_l1"  # inside its layer
    # every parameter is drawn once, outside the steps, and what it computes enters each step
    # of its layer along exactly one edge
    for name, _ in lstm.named_parameters():
        (node,) = d.find(name)
        assert d.cluster_of[node] is None
        assert steps_entered(d, node) == [f"cluster_lstm_l{name[-1]}_t{t}" for t in range(5)]
    # the recurrent state (h and c) flows step to step as the red spine
    spine = [e for e in d.visible_edges() if "penwidth=2.2" in e[2] and "recurrent" not in e[2]]
    assert len(spine) == 2 * 4 * 2
    for tail, head, _ in spine:
        a, b = d.cluster_of[tail], d.cluster_of[head]
        assert a[:-1] == b[:-1] and int(b[-1]) == int(a[-1]) + 1


def test_hand_written_lstm_weights_have_one_edge_into_each_step():
    tr.manual_seed(0)
    lstm = HandLSTM(3, 4, 2)
    d = draw((lstm(tr.randn(5, 2, 3)) ** 2).mean())
    for name, _ in lstm.named_parameters():
        (node,) = d.find(name)
        heads = sorted(d.cluster_of[h] for _, h, _ in d.out_edges(node))
        assert heads == [f"cluster_lstm_l{name[-1]}_t{t}" for t in range(5)]


@pytest.mark.parametrize(
    ("fused", "cell"), [(True, "LSTM cell"), ("sequence", "LSTM cell"), ("step", "LSTMCellStep")]
)
def test_fused_cell_is_one_node_per_step_with_named_outputs(fused, cell):
    _, loss = lstm_loss(fused)
    d = draw(loss)
    cells = d.find(cell)
    assert len(cells) == 10
    assert {d.cluster_of[c] for c in cells} == set(d.step_clusters())
    tails = {e[2] for e in d.edges if e[0] in cells}
    assert any("taillabel=h" in a for a in tails) and any("taillabel=c" in a for a in tails)


def test_op_by_op_cell_shows_every_gate():
    _, loss = lstm_loss(False)
    d = draw(loss)
    in_step = [n for n, c in d.cluster_of.items() if c == "cluster_lstm_l0_t2"]
    names = sorted(d.label(n).split("\\n")[0] for n in in_step)
    assert names.count("Sigmoid") == 3 and names.count("Tanh") == 2
    assert "LSTMCellStep" not in names


def test_same_graph_gives_the_same_dot_text():
    a = tr.viz.draw(lstm_loss(False)[1]).source
    b = tr.viz.draw(lstm_loss(False)[1]).source
    assert a == b
    for fused in ("sequence", "step"):
        loss = lstm_loss(fused)[1]
        assert tr.viz.draw(loss, rolled=True).source == tr.viz.draw(loss, rolled=True).source
        assert tr.viz.draw(loss).source == tr.viz.draw(lstm_loss(fused)[1]).source


def test_slices_taken_before_the_scope_and_inputs_sit_in_their_step():
    tr.manual_seed(1)
    rnn = HandRNN(3, 4)
    d = draw(rnn(tr.randn(4, 2, 3, requires_grad=True)).sum())
    for t in range(4):
        names = [
            d.label(n).split("\\n")[0]
            for n, c in d.cluster_of.items()
            if c == f"cluster_rnn_l0_t{t}"
        ]
        assert sorted(names) == (
            ["Add", "Add", "GetItem", "MatMul", "MatMul", "Tanh"] + (["input"] if t == 0 else [])
        )
    (x,) = d.find("leaf")
    assert d.cluster_of[x] is None and len(d.out_edges(x)) == 4
    (w,) = d.find("w_hh")
    assert d.cluster_of[w] is None


def test_parameters_without_module_and_named_tensors():
    w = nn.Parameter(tr.ones(2, 2))
    x = tr.tensor([[1.0, 2.0]])
    x.name = "x"
    y = x @ w
    y.name = "y"
    d = draw(y.tanh().sum(), show=("shape", "value"))
    assert d.find("parameter") and d.find("x") and d.find("MatMul → y")
    (mm,) = d.find("MatMul → y")
    assert d.label(mm) == "MatMul → y\\n(1, 2)\\n[3, 3]"


@pytest.mark.parametrize("fused", ["sequence", "step"])
def test_bidirectional_layer_runs_its_reverse_spine_backwards(fused):
    tr.manual_seed(0)
    gru = nn.GRU(3, 4, bidirectional=True, fused=fused)
    out, _ = gru(tr.randn(4, 2, 3))
    loss = out.sum()
    with tr.viz.record_grads():
        loss.backward()
    d = draw(loss, grads=True)
    assert len(d.step_clusters()) == 8
    spine = [
        (d.cluster_of[a], d.cluster_of[b])
        for a, b, attrs in d.visible_edges()
        if "penwidth=2.2" in attrs
    ]
    forward = {(f"cluster_gru_l0_t{t}", f"cluster_gru_l0_t{t + 1}") for t in range(3)}
    backward = {
        (f"cluster_gru_l0_reverse_t{t + 1}", f"cluster_gru_l0_reverse_t{t}") for t in range(3)
    }
    assert set(spine) == forward | backward
    for t in range(4):  # every step of both directions has its ‖∂L/∂h_t‖
        for layer in ("gru_l0", "gru_l0_reverse"):
            label = d.clusters[f"cluster_{layer}_t{t}"][0]
            assert float(label.split("‖∂L/∂h_t‖ = ")[1]) > 0
    rolled = draw(loss, rolled=True)
    assert sorted(c for c in rolled.clusters if c.endswith("_cell")) == [
        "cluster_gru_l0_cell",
        "cluster_gru_l0_reverse_cell",
    ]
    assert all('label="×4"' in a for _, _, a in rolled.edges if "recurrent" in a)


def test_the_picture_is_a_digraph_that_renders_itself():
    import graphviz

    pic = tr.viz.draw(tr.Value(2.0, label="a") * 3)
    assert isinstance(pic, graphviz.Digraph)
    if renderer.find_renderer() is not None:
        assert b"<svg" in pic.pipe(format="svg")


@pytest.mark.parametrize(("fused", "cell"), [("sequence", "LSTM cell"), ("step", "LSTMCellStep")])
def test_unfold_false_draws_no_clusters(fused, cell):
    _, loss = lstm_loss(fused)
    d = draw(loss, unfold=False)
    assert not d.clusters
    assert len(d.find(cell)) == 10


@pytest.mark.parametrize("model", ["op-by-op", "hand-written"])
def test_collapse_draws_each_step_as_one_node(model):
    if model == "hand-written":
        tr.manual_seed(0)
        lstm = HandLSTM(3, 4, 2)
        loss = (lstm(tr.randn(5, 2, 3)) ** 2).mean()
    else:
        lstm, loss = lstm_loss(False)  # keep the module alive: names come from live modules
    d = draw(loss, collapse=True)
    cells = [n for n, a in d.nodes.items() if "shape=box3d" in a]
    assert sorted(cells) == sorted(f"c{k}_{t}" for k in range(2) for t in range(5))
    assert all(d.label(c).split("\\n")[1] == f"t={c[-1]}" for c in cells)
    assert not d.step_clusters()
    assert sorted(n for n in d.nodes if n.startswith("w")) == ["w0", "w1"]
    for k in range(2):
        # the weights of a layer are one node; they reach each of its cells once
        assert "weight_ih_l" in d.label(f"w{k}") and "weight_hh_l" in d.label(f"w{k}")
        feeders = {f"w{k}", f"p{k}"}
        for t in range(5):
            into = [e for e in d.visible_edges() if e[1] == f"c{k}_{t}" and e[0] in feeders]
            assert into
        if model == "hand-written":
            assert len(d.out_edges(f"w{k}")) == 5
        else:  # the input projection for all steps at once is one node of the layer
            assert d.label(f"p{k}").startswith(f"lstm.l{k} · all steps")
    spine = [e for e in d.visible_edges() if "penwidth=2.2" in e[2]]
    assert sorted((a, b) for a, b, _ in spine) == sorted(
        (f"c{k}_{t}", f"c{k}_{t + 1}") for k in range(2) for t in range(4)
    )


def test_padding_convention_greys_steps():
    w = nn.Parameter(tr.ones(2, 2) * 0.1)
    h = tr.ones(1, 2)
    for t in range(5):
        extra = ["pad=1/2"] if t == 2 else (["pad"] if t > 2 else [])
        with tr.scope(f"rnn.l0.t{t}"):
            if extra:
                with tr.scope(extra[0]):
                    h = (h @ w).tanh()
            else:
                h = (h @ w).tanh()
    d = draw(h.sum())
    assert d.clusters["cluster_rnn_l0_t2"][0] == "rnn.l0 · t=2 (1/2 sequences ended)"
    assert d.clusters["cluster_rnn_l0_t4"][0] == "rnn.l0 · t=4 (padding)"
    grey = [n for n, c in d.cluster_of.items() if c == "cluster_rnn_l0_t4"]
    assert grey and all('fontcolor="#999999"' in d.nodes[n] for n in grey)
    live = [n for n, c in d.cluster_of.items() if c == "cluster_rnn_l0_t1"]
    assert not any("#999999" in d.nodes[n] for n in live)
    assert "dashed" in tr.viz.draw(h.sum()).source.split("cluster_rnn_l0_t4")[1].split("\n")[1]


def test_padded_batch_greys_the_steps_past_each_end():
    """lengths [3, 2] over 5 steps: t=2 has one ended sequence, t=3 and t=4 are padding and
    keep a (greyed) node for their zero output; the initial states are named h0 and c0."""
    tr.manual_seed(0)
    lstm = nn.LSTM(3, 4, fused="step")
    out, _ = lstm(tr.randn(5, 2, 3), lengths=[3, 2])
    d = draw(out.sum())
    labels = {c: d.clusters[c][0] for c in d.step_clusters()}
    assert labels == {
        "cluster_lstm_l0_t0": "lstm.l0 · t=0",
        "cluster_lstm_l0_t1": "lstm.l0 · t=1",
        "cluster_lstm_l0_t2": "lstm.l0 · t=2 (1/2 sequences ended)",
        "cluster_lstm_l0_t3": "lstm.l0 · t=3 (padding)",
        "cluster_lstm_l0_t4": "lstm.l0 · t=4 (padding)",
    }
    for t in (3, 4):
        (zero,) = [n for n, c in d.cluster_of.items() if c == f"cluster_lstm_l0_t{t}"]
        assert d.label(zero).startswith("Where") and 'fontcolor="#999999"' in d.nodes[zero]
    assert "dashed" in d.source.split("cluster_lstm_l0_t3")[1].split("\n")[1]
    (h0,) = d.find("h0")
    (c0,) = d.find("c0")
    assert d.cluster_of[h0] == d.cluster_of[c0] == "cluster_lstm_l0_t0"
    assert len(d.find("input")) == 1  # the only unnamed leaf is the input sequence
    out, _ = nn.Recurrent(nn.LSTMCell(3, 4))(tr.randn(2, 1, 3))
    d = draw(out.sum())
    assert len(d.find("h0")) == len(d.find("c0")) == 1


def test_whole_sequence_node_is_drawn_as_its_steps():
    """One LSTMSequence node per layer becomes: the input projection (once, in the layer), one
    LSTM cell per step reading it, the state of the step before and W_hh, and the Stack of the
    steps' outputs; the node itself does not appear."""
    lstm, loss = lstm_loss("sequence")
    d = draw(loss)
    assert "LSTMSequence" not in d.source
    for k in range(2):
        layer = f"cluster_lstm_l{k}"
        steps = [f"{layer}_t{t}" for t in range(5)]
        (proj,) = [n for n in d.find("input projection") if d.cluster_of[n] == layer]
        assert d.label(proj).split("\\n")[1] == "(5, 2, 16)"
        feeds = sorted(d.cluster_of[h] for _, h, _ in d.out_edges(proj))
        assert feeds == steps
        for name in (f"weight_ih_l{k}", f"bias_ih_l{k}"):
            (w,) = d.find(name)
            assert [h for _, h, _ in d.out_edges(w)] == [proj]
        for name in (f"weight_hh_l{k}", f"bias_hh_l{k}"):  # read by every step
            (w,) = d.find(name)
            assert sorted(d.cluster_of[h] for _, h, _ in d.out_edges(w)) == steps
        cells = sorted(
            (n for n in d.find("LSTM cell") if d.cluster_of[n].startswith(layer)),
            key=lambda n: d.cluster_of[n],
        )
        assert [d.cluster_of[c] for c in cells] == steps
        assert all(d.label(c).split("\\n")[1] == "2 × (2, 4)" for c in cells)
        (stack,) = [n for n in d.find("Stack") if d.cluster_of[n] == layer]
        into = [(t, a) for t, h, a in d.visible_edges() if h == stack]
        assert sorted(t for t, _ in into) == sorted(cells)
        assert all("taillabel=h" in a for _, a in into)
        # the initial states sit in the first step and enter its cell
        for name in ("h0", "c0"):
            (s0,) = [n for n in d.find(name) if d.cluster_of[n] == steps[0]]
            assert [h for _, h, _ in d.out_edges(s0)] == [cells[0]]
    (stack0,) = [n for n in d.find("Stack") if d.cluster_of[n] == "cluster_lstm_l0"]
    (proj1,) = [n for n in d.find("input projection") if d.cluster_of[n] == "cluster_lstm_l1"]
    assert [h for _, h, _ in d.out_edges(stack0)] == [proj1]  # layer 1 reads layer 0's outputs


def test_whole_sequence_reverse_direction_and_final_state():
    """The reverse direction's spine runs from t=T-1 down to 0, and h_n leaves the cell of
    t=0, the last step it ran."""
    tr.manual_seed(0)
    rnn = nn.RNN(3, 4, bidirectional=True, fused="sequence")
    _, h_n = rnn(tr.randn(4, 2, 3))
    d = draw(h_n.sum())
    cells = {d.cluster_of[n]: n for n in d.find("RNN cell")}
    assert len(cells) == 8
    spine = {
        (d.cluster_of[a], d.cluster_of[b])
        for a, b, attrs in d.visible_edges()
        if "penwidth=2.2" in attrs
    }
    assert spine == {(f"cluster_rnn_l0_t{t}", f"cluster_rnn_l0_t{t + 1}") for t in range(3)} | {
        (f"cluster_rnn_l0_reverse_t{t + 1}", f"cluster_rnn_l0_reverse_t{t}") for t in range(3)
    }
    (stack_hn,) = [n for n in d.find("Stack") if d.cluster_of[n] is None]  # h_n of both
    tails = sorted(d.cluster_of[t] for t, h, _ in d.visible_edges() if h == stack_hn)
    assert tails == ["cluster_rnn_l0_reverse_t0", "cluster_rnn_l0_t3"]


def test_whole_sequence_padded_batch_greys_the_steps_past_each_end():
    tr.manual_seed(0)
    lstm = nn.LSTM(3, 4, fused="sequence")
    out, (h_n, _) = lstm(tr.randn(5, 2, 3), lengths=[3, 2])
    d = draw(out.sum())
    labels = {c: d.clusters[c][0] for c in d.step_clusters()}
    assert labels["cluster_lstm_l0_t1"] == "lstm.l0 · t=1"
    assert labels["cluster_lstm_l0_t2"] == "lstm.l0 · t=2 (1/2 sequences ended)"
    for t in (3, 4):
        assert labels[f"cluster_lstm_l0_t{t}"] == f"lstm.l0 · t={t} (padding)"
        (zero,) = [n for n, c in d.cluster_of.items() if c == f"cluster_lstm_l0_t{t}"]
        assert d.label(zero).startswith("zeros") and 'fontcolor="#999999"' in d.nodes[zero]
    cells = {d.cluster_of[n]: n for n in d.find("LSTM cell")}
    assert sorted(cells) == [f"cluster_lstm_l0_t{t}" for t in range(3)]
    assert not any("#999999" in d.nodes[c] for c in cells.values())
    # h_n leaves the last step that ran (t=2) for the final states (h_n gets its leading
    # layer axis by a reshape, outside the layer)
    rolled = draw(out.sum(), rolled=True)
    assert sorted(label for label, _ in rolled.clusters.values()) == [
        "lstm.l0 cell · ×2 steps (t=3…4) (padding)",
        "lstm.l0 cell · ×3 steps (t=0…2), 1 with ended sequences",
    ]
    d = draw(h_n.sum())
    (h_n_node,) = d.find("Reshape")
    (edge,) = [(d.cluster_of[t], a) for t, h, a in d.visible_edges() if h == h_n_node]
    assert edge == ("cluster_lstm_l0_t2", "taillabel=h")


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_whole_sequence_step_gradients_equal_the_step_by_step_ones(kind):
    """‖∂L/∂h_t‖ on each step of a whole-sequence node (computed in its backward) is the
    number the step-by-step graph gives, in both directions and with padded sequences."""
    tr.manual_seed(7)
    layer = getattr(nn, kind)(3, 4, num_layers=2, bidirectional=True).double()
    x = tr.randn(6, 3, 3).double()
    w = tr.randn(6, 3, 8).double()
    norms = {}
    for fused in ("sequence", "step"):
        layer.fused = fused
        out, h_n = layer(x, lengths=[6, 2, 4])
        h_n = h_n[0] if isinstance(h_n, tuple) else h_n
        loss = (out * w).sum() + (h_n**2).sum()
        with tr.viz.record_grads():
            loss.backward()
        d = draw(loss, grads=True)
        norms[fused] = {
            c: label.split("‖∂L/∂h_t‖ = ")[1]
            for c, (label, _) in d.clusters.items()
            if "‖∂L/∂h_t‖ = " in label
        }
    assert len(norms["sequence"]) == 4 * 6
    assert norms["sequence"].keys() == norms["step"].keys()
    for c, text in norms["step"].items():
        if text == "—":  # a padding step has no state
            assert norms["sequence"][c] == "—"
        else:
            assert float(norms["sequence"][c]) == pytest.approx(float(text), rel=6e-3), c


def test_collapsed_whole_sequence_layer_draws_projection_and_outputs_apart():
    lstm, loss = lstm_loss("sequence")
    d = draw(loss, collapse=True)
    for k in range(2):
        assert d.label(f"p{k}") == f"lstm.l{k} · all steps\\ninput projection"
        assert d.label(f"q{k}") == f"lstm.l{k} · all steps\\nStack"
        assert all(d.label(f"c{k}_{t}").split("\\n")[2] == "LSTM cell" for t in range(5))
        assert sorted(h for t, h, _ in d.visible_edges() if t == f"p{k}") == [
            f"c{k}_{t}" for t in range(5)
        ]
        assert sorted(t for t, h, _ in d.visible_edges() if h == f"q{k}") == [
            f"c{k}_{t}" for t in range(5)
        ]
    assert ("q0", "p1", "") in d.edges


# ---------------------------------------------------------------- rolled view


@pytest.mark.parametrize("fused", ["sequence", "step", False])
def test_rolled_lstm_folds_each_layer_into_one_cell(fused):
    lstm, loss = lstm_loss(fused)
    d = draw(loss, rolled=True)
    assert not d.step_clusters()
    cells = [c for c in d.clusters if c.endswith("_cell")]
    assert sorted(cells) == ["cluster_lstm_l0_cell", "cluster_lstm_l1_cell"]
    assert d.clusters["cluster_lstm_l0_cell"][0] == "lstm.l0 cell · ×5 steps (t=0…4)"
    back = [e for e in d.edges if "class=recurrent" in e[2]]
    assert len(back) == 4  # h and c, in each layer
    assert all('label="×5"' in a for _, _, a in back)
    for tail, head, _ in back:
        assert d.cluster_of[tail] == d.cluster_of[head]
    for name, _ in lstm.named_parameters():
        (node,) = d.find(name)
        assert len(d.out_edges(node)) == 1
    # each op of the cell is drawn once, standing for all five steps
    cell_ops = {"sequence": "LSTM cell", "step": "LSTMCellStep", False: "Sigmoid"}[fused]
    assert len(d.find(cell_ops)) == (2 if fused else 6)
    assert len(d.nodes) < len(draw(loss).nodes)


def test_rolled_custom_cell_through_recurrent():
    class MGU(nn.Module):
        """Minimal gated unit: f = σ(x Wf + h Uf), h' = (1 - f) h + f tanh(x W + (f h) U)."""

        def __init__(self, i, n):
            super().__init__()
            self.wf, self.uf = nn.Parameter(tr.randn(i, n)), nn.Parameter(tr.randn(n, n))
            self.w, self.u = nn.Parameter(tr.randn(i, n)), nn.Parameter(tr.randn(n, n))

        def forward(self, x, h):
            f = (x @ self.wf + h @ self.uf).sigmoid()
            return (1 - f) * h + f * (x @ self.w + (f * h) @ self.u).tanh()

    tr.manual_seed(3)
    rec = nn.Recurrent(MGU(3, 4), name="mgu")
    out, h = rec(tr.randn(7, 2, 3), tr.zeros(2, 4))
    d = draw(out.sum(), rolled=True)
    assert list(c for c in d.clusters if "cell" in c) == ["cluster_mgu_cell"]
    back = [e for e in d.edges if "class=recurrent" in e[2]]
    assert back and all('label="×7"' in a for _, _, a in back)
    # h feeds four ops of the next step: the update, the gate and the reset product
    assert len(back) == 3


def test_steps_with_different_structure_are_not_folded():
    w = nn.Parameter(tr.ones(2, 2) * 0.1)
    h = tr.ones(1, 2)
    for t in range(6):
        with tr.scope(f"rnn.l0.t{t}"):
            h = (h @ w).tanh() if t != 3 else (h @ w).sigmoid()
    d = draw(h.sum(), rolled=True)
    assert sorted(d.clusters) == [
        "cluster_rnn_l0_cell0",
        "cluster_rnn_l0_cell1",
        "cluster_rnn_l0_t3",
    ]
    labels = sorted(
        re.search(r'label="(×\d)"', a).group(1) for _, _, a in d.edges if "recurrent" in a
    )
    assert labels == ["×2", "×3"]


# ---------------------------------------------------------------- gradients


def test_step_clusters_show_the_gradient_of_the_loss_wrt_h_t():
    tr.manual_seed(2)
    rnn = HandRNN(3, 4)
    keep: list = []
    x = tr.randn(6, 2, 3)
    loss = (rnn(x, keep)[-1] ** 2).sum()
    with tr.viz.record_grads():
        loss.backward()
    d = draw(loss, grads=True)
    for t, h in enumerate(keep):
        label = d.clusters[f"cluster_rnn_l0_t{t}"][0]
        shown = float(label.split("‖∂L/∂h_t‖ = ")[1])
        expected = float(np.linalg.norm(h.grad.numpy()))
        assert shown == pytest.approx(expected, rel=6e-3)
    assert "legend" in d.nodes and "log scale" in d.label("legend")
    (out,) = d.find("output")
    assert "‖g‖ 1.00e+00" in d.label(out)
    # nodes are coloured by the log of their gradient norm (no default colours left)
    fills = {
        re.search(r'fillcolor="([^"]+)"', a).group(1)
        for n, a in d.nodes.items()
        if n.startswith("n")
    }
    assert len(fills) > 5 and "#dbe9f6" not in fills


def test_lstm_step_label_is_the_gradient_wrt_h_not_c():
    tr.manual_seed(5)
    lstm = HandLSTM(3, 4, 1)
    keep: list = []
    loss = (lstm(tr.randn(4, 2, 3), keep)[-1] ** 2).sum()
    with tr.viz.record_grads():
        loss.backward()
    d = draw(loss, grads=True)
    for t, h in enumerate(keep):
        shown = float(d.clusters[f"cluster_lstm_l0_t{t}"][0].split("‖∂L/∂h_t‖ = ")[1])
        assert shown == pytest.approx(float(np.linalg.norm(h.grad.numpy())), rel=6e-3)


def test_fused_lstm_step_label_uses_the_h_output():
    lstm, loss = lstm_loss("step", steps=3, layers=1)
    with tr.viz.record_grads():
        loss.backward()
    d = tr.viz.draw(loss, grads=True)
    ops = [ctx for ctx in _contexts(loss) if ctx.fn.__name__ == "LSTMCellStep"]
    by_step = {ctx.scope[-1]: ctx for ctx in ops}
    for t in range(3):
        expected = np.linalg.norm(by_step[f"lstm.l0.t{t}"].out_grads[0])
        assert f"‖∂L/∂h_t‖ = {expected:.2e}" in d.source


def _contexts(root):
    """Every op context behind ``root`` (iterative walk)."""
    seen, todo, out = set(), [root.grad_fn], []
    while todo:
        ctx = todo.pop()
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        out.append(ctx)
        todo.extend(getattr(p, "grad_fn", None) for p in ctx.parents)
    return out


def test_vanishing_gradient_shows_as_falling_norms():
    tr.manual_seed(0)
    rnn = HandRNN(2, 3)
    with tr.no_grad():
        rnn.w_hh.data[...] = 0.05 * np.eye(3, dtype=np.float32)
    loss = rnn(tr.randn(8, 1, 2))[-1].sum()
    with tr.viz.record_grads():
        loss.backward()
    d = draw(loss, grads=True, collapse=True)
    norms = []
    for t in range(8):
        (cell,) = [n for n in d.nodes if n == f"c0_{t}"]
        norms.append(float(d.label(cell).split("‖∂L/∂h‖ ")[1].split("\\n")[0]))
    assert all(a < b for a, b in zip(norms[:-1], norms[1:], strict=True))
    assert norms[0] < 1e-6 * norms[-1]


def test_grads_without_backward_or_with_leaves_only():
    _, loss = lstm_loss(True, steps=2, layers=1)
    with pytest.raises(ValueError, match=r"no gradients.*record_grads"):
        tr.viz.draw(loss, grads=True)
    loss.backward()
    d = draw(loss, grads=True)
    assert "leaves only" in d.label("legend")


def test_record_grads_restores_the_flag():
    from tinyrnn.engine import STATE

    assert STATE.keep_grads is False
    with pytest.raises(KeyError):
        with tr.viz.record_grads():
            assert STATE.keep_grads is True
            raise KeyError("x")
    assert STATE.keep_grads is False


@pytest.mark.parametrize(("fused", "cell"), [("sequence", "LSTM cell"), ("step", "LSTMCellStep")])
def test_rolled_view_with_gradients_labels_the_range_over_steps(fused, cell):
    _, loss = lstm_loss(fused, steps=4, layers=1)
    with tr.viz.record_grads():
        loss.backward()
    d = draw(loss, rolled=True, grads=True)
    label = d.clusters["cluster_lstm_l0_cell"][0]
    assert "‖∂L/∂h_t‖" in label and "(t=0)" in label and "(t=3)" in label
    (cell,) = d.find(cell)
    assert "‖g‖" in d.label(cell) and "…" in d.label(cell)


# ---------------------------------------------------------------- scalar pictures


def test_seed_example_at_neuron_level():
    loss, W, U, B, h2 = seed_example()
    with tr.viz.record_grads():
        loss.backward()
    d = draw(loss, grads=True)
    assert sorted(d.step_clusters()) == ["cluster_rnn_t1", "cluster_rnn_t2"]
    labels = {n: d.label(n) for n in d.nodes}
    # h1 = tanh([0.6, 0.5]) = [0.537, 0.4621]; h2 from the true arithmetic
    assert any("<B>h1[0]</B></TD><TD>data 0.537<" in v for v in labels.values())
    assert any("<B>h1[1]</B></TD><TD>data 0.4621<" in v for v in labels.values())
    z2 = (
        np.array([[0.5, 0.2], [0.3, 0.8]]) @ [0, 1]
        + np.array([[0.1, 0.4], [0.6, 0.7]]) @ np.tanh([0.6, 0.5])
        + [0.1, 0.2]
    )
    assert h2[0].data == pytest.approx(math.tanh(z2[0]))
    # every weight is a record drawn once, outside the steps, with one edge into each step
    for leaf in [W[0][0], W[1][1], U[0][1], B[1]]:
        (node,) = [n for n, v in labels.items() if f"<B>{leaf.label}</B>" in v]
        assert d.cluster_of[node] is None
        assert sorted(d.cluster_of[h] for _, h, _ in d.out_edges(node)) == [
            "cluster_rnn_t1",
            "cluster_rnn_t2",
        ]
        assert f"grad {tr.viz.style.fmt(leaf.grad)}<" in labels[node]
    # the gradient reaching h1 (through U in step 2), checked against NumPy
    dz2 = 1 - np.tanh(z2) ** 2
    dh1 = np.array([[0.1, 0.4], [0.6, 0.7]]).T @ dz2
    for i in range(2):
        (node,) = [n for n, v in labels.items() if f"<B>h1[{i}]</B>" in v]
        assert f"grad {tr.viz.style.fmt(float(dh1[i]))}<" in labels[node]


def test_seed_example_rolled_folds_the_two_steps():
    loss, W, U, B, h2 = seed_example()
    d = draw(loss, rolled=True)
    assert [c for c in d.clusters] == ["cluster_rnn_cell"]
    back = [e for e in d.edges if "recurrent" in e[2]]
    # each unit of h feeds two products (U[0,j] h[j] and U[1,j] h[j]) of the next step
    assert len(back) == 4 and all('label="×2"' in a for _, _, a in back)
    assert all(d.cluster_of[a] == d.cluster_of[b] == "cluster_rnn_cell" for a, b, _ in back)
    weights = [n for n in d.nodes if "<B>W[" in d.label(n) or "<B>U[" in d.label(n)]
    assert len(weights) == 8
    for w in weights:  # one edge each, unlabelled: the cell stands for both steps
        (edge,) = d.out_edges(w)
        assert "label" not in edge[2]


def test_value_reuse_draws_one_record_with_two_edges():
    a = tr.Value(3.0, label="a")
    b = a * a
    c = b + b
    c.backward()
    d = draw(c)
    ops = [n for n, attrs in d.nodes.items() if "shape=circle" in attrs]
    assert sorted(d.label(o) for o in ops) == ["+", "×"]
    (rec_a,) = [n for n in d.nodes if "<B>a</B>" in d.label(n)]
    assert len(d.out_edges(rec_a)) == 2
    assert "grad 12<" in d.label(rec_a)  # dc/da = 4a
    assert len(d.nodes) == 5 and len(d.edges) == 6


def test_value_constants_in_op_labels():
    x = tr.Value(2.0, label="x")
    y = (x**2 * 3 + 1).tanh()
    d = draw(y)
    ops = sorted(d.label(n) for n, a in d.nodes.items() if "shape=circle" in a)
    assert ops == ["+1", "^2", "tanh", "×3"]


def test_deep_value_chain_is_cut_to_max_nodes():
    x = tr.Value(0.5, label="x")
    y = x
    for _ in range(3000):
        y = y * 1.0001
    y.backward()
    d = draw(y, max_nodes=500)
    assert len(d.nodes) <= 500
    (more,) = [n for n in d.nodes if n == "more"]
    assert d.label(more).startswith("… ") and "more nodes not drawn" in d.label(more)
    assert "max_nodes=500" in d.source
    small = draw(y, max_nodes=7000)
    assert len(small.nodes) == 3000 * 2 + 1


# ---------------------------------------------------------------- big graphs


def test_long_sequence_keeps_first_and_last_steps():
    w = nn.Parameter(tr.ones(2, 2) * 0.1)
    h = tr.ones(1, 2)
    for t in range(1500):
        with tr.scope(f"rnn.l0.t{t}"):
            h = (h @ w + 0.1).tanh()
    d = draw(h.sum(), max_nodes=100)
    assert len(d.nodes) <= 100
    cells = [n for n in d.nodes if n.startswith("c0_")]
    kept = sorted(int(n.split("_")[1]) for n in cells)
    assert kept[0] == 0 and kept[-1] == 1499 and len(kept) < 100
    more = d.label("more0")
    assert f"{1500 - len(kept):,} steps not drawn" in more
    assert "1,500" not in more and "max_nodes=100" in d.source
    # the elided middle is linked into the chain
    assert any(e[1] == "more0" for e in d.edges) and any(e[0] == "more0" for e in d.edges)


# ---------------------------------------------------------------- rendering


@needs_renderer
@pytest.mark.parametrize("kw", [{}, {"rolled": True}, {"collapse": True}, {"grads": True}])
def test_rendered_svg_is_valid_and_matches_the_dot(tmp_path, kw):
    _, loss = lstm_loss(True, steps=3)
    with tr.viz.record_grads():
        loss.backward()
    dot = tr.viz.draw(loss, **kw)
    path = tr.viz.render(dot, tmp_path / "g.svg")
    root = ET.parse(path).getroot()
    classes = [g.get("class", "").split(" ")[0] for g in root.iter("{http://www.w3.org/2000/svg}g")]
    d = Dot(dot.source)
    assert classes.count("cluster") == len(d.clusters)
    assert classes.count("node") == len(d.nodes)
    assert classes.count("edge") == len(d.visible_edges())


@needs_renderer
def test_png_output_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(renderer, "PNG_MAX_PIXELS", 300)
    _, loss = lstm_loss(True, steps=3)
    path = tr.viz.render(loss, tmp_path / "g.png", format="png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert max(width, height) <= 300


def test_pdf_with_graphviz_pure_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(renderer, "find_renderer", lambda: "/opt/bin/graphviz-pure")
    with pytest.raises(RuntimeError, match=r"pdf.*graphviz-pure.*svg"):
        tr.viz.render(tr.Value(1.0), tmp_path / "g.pdf", format="pdf")


def test_without_a_renderer_the_dot_file_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYRNN_DOT", "none")
    out = tr.viz.render(tr.Value(2.0) * 3, tmp_path / "pic.svg")
    assert out == tmp_path / "pic.dot"
    assert out.read_text().startswith("digraph")
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no Graphviz renderer found" in err and "graphviz-pure -Tsvg" in err
    assert not (tmp_path / "pic.svg").exists()


def test_dot_format_and_default_suffix(tmp_path):
    out = tr.viz.render(tr.Value(2.0) * 3, tmp_path / "pic", format="dot")
    assert out.name == "pic.dot" and "digraph tinyrnn" in out.read_text()


def test_renderer_override_must_exist(monkeypatch):
    monkeypatch.setenv("TINYRNN_DOT", "/no/such/dot")
    with pytest.raises(RuntimeError, match="TINYRNN_DOT"):
        renderer.find_renderer()


def test_renderer_lookup_does_not_need_path(monkeypatch):
    pytest.importorskip("importlib.metadata")
    monkeypatch.delenv("TINYRNN_DOT", raising=False)
    before = renderer.find_renderer()
    monkeypatch.setenv("PATH", "")
    after = renderer.find_renderer()
    if before is not None and "graphviz-pure" in before:
        assert after == before


@needs_renderer
def test_jupyter_display_is_svg():
    bundle = tr.viz.draw(tr.Value(2.0, label="a") * 3)._repr_mimebundle_()
    root = ET.fromstring(bundle["image/svg+xml"].encode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_jupyter_without_renderer_shows_the_source(monkeypatch):
    monkeypatch.setenv("TINYRNN_DOT", "none")
    pic = tr.viz.draw(tr.Value(2.0) * 3)
    assert pic._repr_mimebundle_() == {"text/plain": pic.source}


# ---------------------------------------------------------------- errors and layering


def test_bad_arguments_are_named():
    x = tr.ones(2, requires_grad=True).sum()
    with pytest.raises(TypeError, match="draw: expected a Tensor or a Value as root, got list"):
        tr.viz.draw([1, 2])
    with pytest.raises(
        ValueError, match=r"draw: show may contain 'shape', 'value'; got \['dtype'\]"
    ):
        tr.viz.draw(x, show=("shape", "dtype"))
    with pytest.raises(ValueError, match="max_nodes must be an integer >= 5, got 2"):
        tr.viz.draw(x, max_nodes=2)
    with pytest.raises(ValueError, match="rankdir must be one of LR, TB, RL, BT; got 'XY'"):
        tr.viz.draw(x, rankdir="XY")
    with pytest.raises(
        ValueError, match="render: format must be one of svg, png, pdf, dot; got 'gif'"
    ):
        tr.viz.render(x, "x.gif", format="gif")


def test_leaf_root_draws_one_node():
    d = draw(tr.ones(2, 3))
    assert list(d.nodes) == ["n0"] and "(2, 3)" in d.label("n0")


def test_import_tinyrnn_does_not_load_viz_and_nothing_imports_it():
    code = "import sys, tinyrnn; print('tinyrnn.viz' in sys.modules, 'graphviz' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    import pathlib

    pkg = pathlib.Path(tr.__file__).parent
    library = ("kernels", "engine", "ops", "autograd", "nn", "optim")
    files = [p for d in library for p in (pkg / d).rglob("*.py")]
    files += [pkg / f for f in ("tensor.py", "value.py", "_dtype.py", "_random.py")]
    for path in files:
        text = path.read_text()
        assert not re.search(r"^\s*(from|import) [\w.]*viz", text, re.M), path


@pytest.mark.slow
def test_drawing_a_10000_step_lstm_is_fast_and_bounded():
    import time

    tr.manual_seed(0)
    lstm = nn.LSTM(4, 8)
    out, _ = lstm(tr.randn(10_000, 1, 4))
    loss = out.sum()
    t0 = time.perf_counter()
    d = draw(loss)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10.0
    assert len(d.nodes) <= 2000
    kept = sorted(int(n.split("_")[1]) for n in d.nodes if n.startswith("c0_"))
    assert kept[:2] == [0, 1] and kept[-1] == 9999
    assert f"{10_000 - len(kept):,} steps not drawn" in d.label("more0")


@needs_renderer
def test_make_pictures_script_writes_the_readme_pictures(tmp_path):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "make_pictures.py"
    spec = importlib.util.spec_from_file_location("make_pictures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "lstm_rolled.svg",
        "lstm_unfolded.svg",
        "seed_neurons.svg",
        "vanishing_gradients.svg",
    ]
    for p in tmp_path.iterdir():
        ET.parse(p)
    vanishing = (tmp_path / "vanishing_gradients.svg").read_text()
    assert "rnn.l0" in vanishing and "lstm.l0" in vanishing

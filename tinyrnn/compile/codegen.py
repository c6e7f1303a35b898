"""Source generation: the forward time loop of a traced cell and its reverse-mode backward.

From an analysed ``StepGraph`` (trace.py) this writes two functions, ``fwd`` and ``bwd``, as
Python source that Numba compiles (and that also runs as plain Python, for tests and for
``NUMBA_DISABLE_JIT=1``):

``fwd(L, rev, X, Q0.., P0.., S0..) -> (OUT, F0.., saved..)`` runs the cell's loop ops for every
step ``t`` (backwards in time when ``rev``): ``X`` (T, B, I) is the input, ``Q*`` (T, B, n) the
values computed before the loop from ``x`` alone (such as ``x W^T``), ``P*`` the invariants
(parameters and what is computed from them, as 2-D arrays), ``S*`` (B, n) the initial state.
Each per-step value is a (B, n) array; an element-wise op is one loop nest over it, with
NumPy broadcasting spelled out in the indices (``P[0, k]`` for a bias row, ``V[b, 0]`` for a
column); ``h @ W`` is ``np.dot`` into a preallocated buffer (BLAS); ``LSTMCellStep`` and
``GRUCellStep`` are one fused loop each. ``L`` (B,) are the sequence lengths: a finished
sequence keeps its state and outputs zeros. Values the backward needs are kept per step in
(T, B, n) arrays (``saved``); the others live in one (B, n) buffer.

``bwd(L, rev, X, Q.., P.., saved.., GOUT, GF0..) -> (GX, GQ0.., GP0.., GS0..)`` walks the steps
in reverse order and the ops of a step in reverse order, accumulating adjoints with ``+=``
into the buffers of the op's inputs; accumulating at a broadcast index (``GP[0, k] += ...``)
is the sum that undoes broadcasting. The gradient of a matrix ``W`` in ``h @ W`` is one large
product after the loop, ``(H_all)^T (dZ_all)`` over all ``T*B`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ops import elementwise as E
from ..ops import fused as Fu
from ..ops import linalg as L
from ..ops import movement as M
from ..ops import reduce as R
from .trace import OpNode, StepGraph, Value, _column_slice

# forward expression and per-input gradient expressions; {0} {1} {2} are the inputs at the
# current element, {y} the output, {g} the output's adjoint.
_TEMPLATES: dict[type, tuple[str, list[str | None]]] = {
    E.Add: ("{0} + {1}", ["{g}", "{g}"]),
    E.Sub: ("{0} - {1}", ["{g}", "-{g}"]),
    E.Mul: ("{0} * {1}", ["{g} * {1}", "{g} * {0}"]),
    E.Div: ("{0} / {1}", ["{g} / {1}", "-{g} * {0} / ({1} * {1})"]),
    E.Pow: (
        "{0} ** {1}",
        [
            "{g} * {1} * {0} ** ({1} - ONE)",
            "(ZERO if ({0} == ZERO and {1} >= ZERO) else {g} * {y} * np.log({0}))",
        ],
    ),
    E.Neg: ("-{0}", ["-{g}"]),
    E.Exp: ("_exp({0})", ["{g} * {y}"]),
    E.Log: ("np.log({0})", ["{g} / {0}"]),
    E.Sqrt: ("np.sqrt({0})", ["{g} / (TWO * {y})"]),
    E.Abs: ("abs({0})", ["{g} * np.sign({0})"]),
    E.Tanh: ("_tanh({0})", ["{g} * (ONE - {y} * {y})"]),
    E.Sigmoid: ("_sig({0})", ["{g} * {y} * (ONE - {y})"]),
    E.Relu: ("({0} if {0} > ZERO else ZERO)", ["({g} if {y} > ZERO else ZERO)"]),
    E.Where: ("({1} if {0} else {2})", [None, "({g} if {0} else ZERO)", "(ZERO if {0} else {g})"]),
}


def _is_ew(n: OpNode) -> bool:
    return n.fn in _TEMPLATES or n.fn is E.Clamp


@dataclass
class Layout:
    """How the runtime calls the generated functions: which values go in which slot."""

    q_values: list[Value] = field(default_factory=list)
    p_values: list[Value] = field(default_factory=list)
    p_shapes: list[tuple[int, ...]] = field(default_factory=list)  # the 2-D shape passed
    n_states: int = 0
    n_saved: int = 0
    uses_x: bool = False


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def __call__(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def indent(self) -> _Writer:
        self.depth += 1
        return self

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1


def _p_shape(v: Value) -> tuple[int, ...]:
    if len(v.shape) == 0:
        return (1, 1)
    if len(v.shape) == 1:
        return (1, v.shape[0])
    return tuple(v.shape)


class _Gen:
    def __init__(self, g: StepGraph) -> None:
        self.g = g
        self.dt = "np.float32" if g.dtype == np.float32 else "np.float64"
        self.layout = Layout(n_states=len(g.states))
        self.names: dict[int, str] = {}
        self.consts: dict[str, str] = {}
        self.loop_nodes = [n for n in g.nodes if n.role == "loop"]
        self._name_values()
        self.saved: set[int] = set()
        self.local: set[int] = set()  # values kept in a scalar inside their loop nest
        self.local_adj: set[int] = set()  # adjoints kept in a scalar inside their loop nest
        self._find_saved()
        self._find_locals()

    # ---- names ----

    def _name_values(self) -> None:
        g, lay = self.g, self.layout
        self.names[id(g.x)] = "X"
        for k, v in enumerate(g.states):
            self.names[id(v)] = f"st{k}"
        uses = [a for n in self.loop_nodes for a in n.args] + list(g.outputs)
        for v in uses:
            if id(v) in self.names or v.kind == "scalar":
                continue
            if v.role == "seq":
                self.names[id(v)] = f"Q{len(lay.q_values)}"
                lay.q_values.append(v)
            elif v.role == "inv":
                self.names[id(v)] = f"P{len(lay.p_values)}"
                lay.p_values.append(v)
                lay.p_shapes.append(_p_shape(v))
        for n in self.loop_nodes:
            for v in n.outs:
                self.names[id(v)] = f"V{n.outs[0].index}_{v.out}"
        lay.uses_x = any(a is g.x for n in self.loop_nodes for a in n.args) or any(
            v is g.x for v in g.outputs
        )

    def const(self, c: Any) -> str:
        text = repr(float(c))
        if text not in self.consts:
            self.consts[text] = f"K{len(self.consts)}"
        return self.consts[text]

    def name(self, v: Value) -> str:
        return self.names[id(v)]

    def ix(self, v: Value, row: str, col: str, ncols: int | None) -> str:
        """Expression for ``v`` at element (row, col) of a (B, ncols) result, broadcasting."""
        if v.kind == "scalar":
            return self.const(v.data)
        if id(v) in self.local:
            return f"l{self.name(v)}"
        c = col if ncols is None or v.cols == ncols else "0"
        r = row if v.batch else "0"
        base = self.name(v)
        return f"{base}[t, {r}, {c}]" if v.role == "seq" else f"{base}[{r}, {c}]"

    def adj(self, v: Value, row: str, col: str, ncols: int | None) -> str | None:
        """Adjoint buffer of ``v`` at (row, col), or None for values without a gradient."""
        if v.kind in ("scalar", "const"):
            return None
        if id(v) in self.local_adj:
            return f"a{self.name(v)}"
        c = col if ncols is None or v.cols == ncols else "0"
        r = row if v.batch else "0"
        base = self.name(v)
        if v.role == "seq":
            return f"G{base}[t, {r}, {c}]"
        if v.role == "inv":
            return f"G{base}[0, {c}]"
        if v.kind == "state":
            return f"GS{v.index}[{r}, {c}]"
        return f"G{base}[{r}, {c}]"

    @staticmethod
    def has_grad(v: Value) -> bool:
        return v.kind not in ("scalar", "const")

    def per_step(self, v: Value) -> str:
        """The (B, n) array of ``v`` at the current step (for np.dot)."""
        base = self.name(v)
        return f"{base}[t]" if v.role == "seq" else base

    def all_steps(self, v: Value) -> str:
        """The (T, B, n) array of ``v`` over all steps (for a weight gradient)."""
        base = self.name(v)
        if v.role == "seq":
            return base
        if v.kind == "state":
            return f"ST{v.index}"
        return f"{base}_all"

    # ---- what backward reads ----

    def _find_saved(self) -> None:
        need: list[Value] = []
        for n in self.loop_nodes:
            fn = n.fn
            if fn in _TEMPLATES:
                _, grads = _TEMPLATES[fn]
                for i, a in enumerate(n.args):
                    tmpl = grads[i]
                    if tmpl is None or self.adj(a, "b", "k", None) is None:
                        continue
                    for j, b in enumerate(n.args):
                        if f"{{{j}}}" in tmpl:
                            need.append(b)
                    if "{y}" in tmpl:
                        need.append(n.outs[0])
            elif fn is E.Clamp:
                need.append(n.args[0])
            elif fn is L.MatMul:
                left, right = n.args
                if self.has_grad(right):
                    need.append(left)
            elif fn is Fu.LSTMCellStep:
                need.append(n.args[1])
            elif fn is Fu.GRUCellStep:
                need.extend(n.args[1:])
        for v in need:
            if v.role == "loop":
                self.saved.add(id(v))

    def runs(self) -> list[list[OpNode]]:
        """The loop ops in order, consecutive element-wise ops of one width grouped: each group
        becomes one loop nest forward and one backward."""
        out: list[list[OpNode]] = []
        for n in self.loop_nodes:
            if (
                _is_ew(n)
                and out
                and _is_ew(out[-1][0])
                and out[-1][0].outs[0].cols == n.outs[0].cols
            ):
                out[-1].append(n)
            else:
                out.append([n])
        return out

    def _find_locals(self) -> None:
        """Values (and adjoints) that never leave their group's loop nest live in scalars: no
        array, no memory traffic, no zeroing, and fewer arrays for LLVM to prove apart."""
        consumers: dict[int, list[OpNode]] = {}
        for n in self.loop_nodes:
            for a in n.args:
                consumers.setdefault(id(a), []).append(n)
        sources = {id(v) for v in self.g.outputs}
        for run in self.runs():
            if not _is_ew(run[0]):
                continue
            members = {id(n) for n in run}
            for n in run:
                v = n.outs[0]
                inside = all(id(c) in members for c in consumers.get(id(v), []))
                if inside and id(v) not in sources:
                    self.local_adj.add(id(v))
                    if id(v) not in self.saved:
                        self.local.add(id(v))

    # ---- forward ----

    def ew_fwd(self, n: OpNode) -> list[str]:
        """Statements computing element (b, k) of an element-wise node."""
        out = n.outs[0]
        expr = self._fwd_expr(n, "b", "k", out.cols)
        if id(out) in self.local:
            return [f"l{self.name(out)} = {expr}"]
        return [f"{self.name(out)}[b, k] = {expr}"]

    def ew_bwd(self, n: OpNode) -> list[str]:
        """Statements adding element (b, k)'s contribution to the inputs' adjoints."""
        out = n.outs[0]
        cols = out.cols
        gy = self.adj(out, "b", "k", cols)
        assert gy is not None  # an op output always has an adjoint
        fn = n.fn
        args = [self.ix(a, "b", "k", cols) for a in n.args]
        y = self.ix(out, "b", "k", cols)
        stmts = []
        for i, a in enumerate(n.args):
            target = self.adj(a, "b", "k", cols)
            if target is None:
                continue
            if fn is E.Clamp:
                lo, hi = n.kwargs.get("lo"), n.kwargs.get("hi")
                conds = []
                if lo is not None:
                    conds.append(f"{args[0]} >= {self.const(lo)}")
                if hi is not None:
                    conds.append(f"{args[0]} <= {self.const(hi)}")
                expr = f"({gy} if ({' and '.join(conds)}) else ZERO)" if conds else gy
            else:
                tmpl = _TEMPLATES[fn][1][i]
                if tmpl is None:
                    continue
                expr = tmpl.replace("{g}", gy).replace("{y}", y).format(*args)
            stmts.append(f"{target} += {expr}")
        return stmts

    def emit(self, w: _Writer, backward: bool) -> None:
        """Emit the step's ops (in reverse for the backward); each run of element-wise ops of one
        width is one loop nest (fewer passes over memory, much less code for Numba)."""
        runs = self.runs()
        for run in runs[::-1] if backward else runs:
            if not _is_ew(run[0]):
                (self.bwd_node if backward else self.fwd_node)(w, run[0])
                continue
            if backward:
                stmts = [f"a{self.name(n.outs[0])} = ZERO" for n in run[::-1]
                         if id(n.outs[0]) in self.local_adj]  # fmt: skip
                stmts += [st for m in run[::-1] for st in self.ew_bwd(m)]
            else:
                stmts = [st for m in run for st in self.ew_fwd(m)]
            if stmts:
                self._loop2(w, run[0].outs[0].cols, stmts)

    def fwd_node(self, w: _Writer, n: OpNode) -> None:
        out = n.outs[0]
        y = self.name(out)
        cols = out.cols
        fn = n.fn
        if fn is L.MatMul:
            left, right = n.args
            w(f"np.dot({self.per_step(left)}, {self.name(right)}, {y})")
        elif fn is M.GetItem:
            start, _, step = self._slice(n)
            src = self.ix(n.args[0], "b", f"{start} + k * {step}", None)
            self._loop2(w, cols, f"{y}[b, k] = {src}")
        elif fn is M.Cat:
            off = 0
            for a in n.args:
                self._loop2(w, a.cols, f"{y}[b, {off} + k] = {self.ix(a, 'b', 'k', None)}")
                off += a.cols
        elif fn is R.Sum:
            a = n.args[0]
            w("for b in range(B):")
            with w.indent():
                w("acc = ZERO")
                w(f"for k in range({a.cols}):")
                with w.indent():
                    w(f"acc += {self.ix(a, 'b', 'k', None)}")
                w(f"{y}[b, 0] = acc")
        elif fn is Fu.LSTMCellStep:
            self._lstm_fwd(w, n)
        elif fn is Fu.GRUCellStep:
            self._gru_fwd(w, n)
        else:  # pragma: no cover - trace.py rejects other ops before this point
            raise AssertionError(fn)

    def _fwd_expr(self, n: OpNode, row: str, col: str, cols: int) -> str:
        args = [self.ix(a, row, col, cols) for a in n.args]
        if n.fn is E.Clamp:
            x = args[0]
            lo, hi = n.kwargs.get("lo"), n.kwargs.get("hi")
            if lo is not None:
                x = f"max({x}, {self.const(lo)})"
            if hi is not None:
                x = f"min({x}, {self.const(hi)})"
            return x
        return _TEMPLATES[n.fn][0].format(*args)

    def _slice(self, n: OpNode) -> tuple[int, int, int]:
        sl = _column_slice(n.kwargs["index"], n.args[0].shape)
        assert sl is not None  # trace.py admits column slices only
        return sl.indices(n.args[0].cols)

    def _loop2(self, w: _Writer, cols: int, stmts: str | list[str]) -> None:
        w("for b in range(B):")
        with w.indent():
            w(f"for k in range({cols}):")
            with w.indent():
                for st in [stmts] if isinstance(stmts, str) else stmts:
                    w(st)

    def _lstm_fwd(self, w: _Writer, n: OpNode) -> None:
        gates, cprev = n.args
        H = cprev.cols
        h, c = (self.name(v) for v in n.outs)
        a, tc = f"AX{n.outs[0].index}", f"TC{n.outs[0].index}"
        gx = [self.ix(gates, "b", f"{j * H} + k", None) for j in range(4)]
        w("for b in range(B):")
        with w.indent():
            w(f"for k in range({H}):")
            with w.indent():
                w(f"i_ = _sig({gx[0]})")
                w(f"f_ = _sig({gx[1]})")
                w(f"g_ = _tanh({gx[2]})")
                w(f"o_ = _sig({gx[3]})")
                for j, v in enumerate(("i_", "f_", "g_", "o_")):
                    w(f"{a}[b, {j * H} + k] = {v}")
                w(f"c_ = f_ * {self.ix(cprev, 'b', 'k', None)} + i_ * g_")
                w("tc_ = _tanh(c_)")
                w(f"{tc}[b, k] = tc_")
                w(f"{h}[b, k] = o_ * tc_")
                w(f"{c}[b, k] = c_")

    def _gru_fwd(self, w: _Writer, n: OpNode) -> None:
        gi, gh, hprev = n.args
        H = hprev.cols
        h = self.name(n.outs[0])
        a = f"AX{n.outs[0].index}"
        i = [self.ix(gi, "b", f"{j * H} + k", None) for j in range(3)]
        r = [self.ix(gh, "b", f"{j * H} + k", None) for j in range(3)]
        w("for b in range(B):")
        with w.indent():
            w(f"for k in range({H}):")
            with w.indent():
                w(f"r_ = _sig({i[0]} + {r[0]})")
                w(f"z_ = _sig({i[1]} + {r[1]})")
                w(f"n_ = _tanh({i[2]} + r_ * {r[2]})")
                w(f"{a}[b, k] = r_")
                w(f"{a}[b, {H} + k] = z_")
                w(f"{a}[b, {2 * H} + k] = n_")
                w(f"{h}[b, k] = (ONE - z_) * n_ + z_ * {self.ix(hprev, 'b', 'k', None)}")

    # ---- backward ----

    def bwd_node(self, w: _Writer, n: OpNode) -> None:
        out = n.outs[0]
        gy = f"G{self.name(out)}[b, k]"
        cols = out.cols
        fn = n.fn
        if fn is L.MatMul:
            left, right = n.args
            j = out.index
            if self.has_grad(right):
                w(f"DZ{j}[t] = G{self.name(out)}")
            target = self.adj(left, "b", "k", None)
            if target is not None:
                w(f"np.dot(G{self.name(out)}, {self.name(right)}.T, TMP{j})")
                self._loop2(w, left.cols, f"{target} += TMP{j}[b, k]")
        elif fn is M.GetItem:
            start, _, step = self._slice(n)
            target = self.adj(n.args[0], "b", f"{start} + k * {step}", None)
            if target is not None:
                self._loop2(w, cols, f"{target} += {gy}")
        elif fn is M.Cat:
            off = 0
            for a in n.args:
                target = self.adj(a, "b", "k", None)
                if target is not None:
                    self._loop2(w, a.cols, f"{target} += G{self.name(out)}[b, {off} + k]")
                off += a.cols
        elif fn is R.Sum:
            a = n.args[0]
            target = self.adj(a, "b", "k", None)
            if target is not None:
                self._loop2(w, a.cols, f"{target} += G{self.name(out)}[b, 0]")
        elif fn is Fu.LSTMCellStep:
            self._lstm_bwd(w, n)
        elif fn is Fu.GRUCellStep:
            self._gru_bwd(w, n)

    def _lstm_bwd(self, w: _Writer, n: OpNode) -> None:
        gates, cprev = n.args
        H = cprev.cols
        h, c = (self.name(v) for v in n.outs)
        a, tc = f"AX{n.outs[0].index}", f"TC{n.outs[0].index}"
        tg = [self.adj(gates, "b", f"{j * H} + k", None) for j in range(4)]
        tc_prev = self.adj(cprev, "b", "k", None)
        w("for b in range(B):")
        with w.indent():
            w(f"for k in range({H}):")
            with w.indent():
                for j, v in enumerate(("i_", "f_", "g_", "o_")):
                    w(f"{v} = {a}[b, {j * H} + k]")
                w(f"tc_ = {tc}[b, k]")
                w(f"gh_ = G{h}[b, k]")
                w(f"dc_ = G{c}[b, k] + gh_ * o_ * (ONE - tc_ * tc_)")
                if tg[0] is not None:
                    w(f"{tg[0]} += dc_ * g_ * i_ * (ONE - i_)")
                    w(f"{tg[1]} += dc_ * {self.ix(cprev, 'b', 'k', None)} * f_ * (ONE - f_)")
                    w(f"{tg[2]} += dc_ * i_ * (ONE - g_ * g_)")
                    w(f"{tg[3]} += gh_ * tc_ * o_ * (ONE - o_)")
                if tc_prev is not None:
                    w(f"{tc_prev} += dc_ * f_")

    def _gru_bwd(self, w: _Writer, n: OpNode) -> None:
        gi, gh, hprev = n.args
        H = hprev.cols
        h = self.name(n.outs[0])
        a = f"AX{n.outs[0].index}"
        ti = [self.adj(gi, "b", f"{j * H} + k", None) for j in range(3)]
        th = [self.adj(gh, "b", f"{j * H} + k", None) for j in range(3)]
        tp = self.adj(hprev, "b", "k", None)
        w("for b in range(B):")
        with w.indent():
            w(f"for k in range({H}):")
            with w.indent():
                w(f"r_ = {a}[b, k]")
                w(f"z_ = {a}[b, {H} + k]")
                w(f"n_ = {a}[b, {2 * H} + k]")
                w(f"g_ = G{h}[b, k]")
                w("dn_ = g_ * (ONE - z_) * (ONE - n_ * n_)")
                w(f"dz_ = g_ * ({self.ix(hprev, 'b', 'k', None)} - n_) * z_ * (ONE - z_)")
                w(f"dr_ = dn_ * {self.ix(gh, 'b', f'{2 * H} + k', None)} * r_ * (ONE - r_)")
                if ti[0] is not None:
                    w(f"{ti[0]} += dr_")
                    w(f"{ti[1]} += dz_")
                    w(f"{ti[2]} += dn_")
                if th[0] is not None:
                    w(f"{th[0]} += dr_")
                    w(f"{th[1]} += dz_")
                    w(f"{th[2]} += dn_ * r_")
                if tp is not None:
                    w(f"{tp} += g_ * z_")

    # ---- the two functions ----

    def source(self, header: str) -> str:
        body_f = self._fwd()
        body_b = self._bwd()
        consts = [f"    {name} = {self.dt}({text})" for text, name in self.consts.items()]
        consts += [
            f"    ZERO = {self.dt}(0.0)",
            f"    ONE = {self.dt}(1.0)",
            f"    TWO = {self.dt}(2.0)",
        ]

        def with_consts(lines: list[str]) -> list[str]:
            return lines[:2] + consts + lines[2:]

        out = [header, "import numpy as np", "", "from tinyrnn.compile.runtime import jit",
               "from tinyrnn.kernels.seq_jit import _exp, _sig, _tanh", "", ""]  # fmt: skip
        out += with_consts(body_f) + ["", ""] + with_consts(body_b)
        return "\n".join(out) + "\n"

    def _signature_inputs(self) -> list[str]:
        lay = self.layout
        return [self.name(v) for v in lay.q_values] + [f"P{j}" for j in range(len(lay.p_values))]

    def _fwd(self) -> list[str]:
        g, lay = self.g, self.layout
        w = _Writer()
        states = [f"S{k}" for k in range(len(g.states))]
        w("@jit")
        w(f"def fwd(L, rev, X, {', '.join(self._signature_inputs() + states)}):")
        saved_names: list[str] = []
        with w.indent():
            w("T = X.shape[0]")
            w("B = S0.shape[0]")
            for k in range(len(g.states)):
                w(f"st{k} = S{k}.copy()")
            w(f"OUT = np.zeros((T, B, {g.states[0].cols}), {self.dt})")
            for k, v in enumerate(g.states):
                if id(v) in self.saved:
                    w(f"ST{k} = np.empty((T, B, {v.cols}), {self.dt})")
                    saved_names.append(f"ST{k}")
            views: list[str] = []
            for n in self.loop_nodes:
                for v in n.outs:
                    name = self.name(v)
                    if id(v) in self.local:
                        continue
                    if id(v) in self.saved:
                        w(f"{name}_all = np.empty((T, B, {v.cols}), {self.dt})")
                        saved_names.append(f"{name}_all")
                        views.append(f"{name} = {name}_all[t]")
                    else:
                        w(f"{name} = np.empty((B, {v.cols}), {self.dt})")
                if n.fn in (Fu.LSTMCellStep, Fu.GRUCellStep):
                    j = n.outs[0].index
                    width = n.args[0].cols
                    w(f"AX{j}_all = np.empty((T, B, {width}), {self.dt})")
                    saved_names.append(f"AX{j}_all")
                    views.append(f"AX{j} = AX{j}_all[t]")
                    if n.fn is Fu.LSTMCellStep:
                        w(f"TC{j}_all = np.empty((T, B, {n.args[1].cols}), {self.dt})")
                        saved_names.append(f"TC{j}_all")
                        views.append(f"TC{j} = TC{j}_all[t]")
            passthrough = {}
            for k, v in enumerate(g.outputs):
                if v.kind == "state":
                    w(f"NS{k} = np.empty((B, {v.cols}), {self.dt})")
                    passthrough[k] = f"NS{k}"
            w("for s in range(T):")
            with w.indent():
                w("t = T - 1 - s if rev else s")
                for k, v in enumerate(g.states):
                    if id(v) in self.saved:
                        w(f"ST{k}[t] = st{k}")
                for line in views:
                    w(line)
                self.emit(w, backward=False)
                for k, name in passthrough.items():
                    w(f"{name}[:] = st{g.outputs[k].index}")
                w("for b in range(B):")
                with w.indent():
                    w("if t < L[b]:")
                    with w.indent():
                        for k, v in enumerate(g.outputs):
                            src = (
                                f"{passthrough[k]}[b, k]"
                                if k in passthrough
                                else self.ix(v, "b", "k", g.states[k].cols)
                            )
                            w(f"for k in range({g.states[k].cols}):")
                            with w.indent():
                                w(f"st{k}[b, k] = {src}")
                                if k == 0:
                                    w("OUT[t, b, k] = st0[b, k]")
            finals = [f"st{k}" for k in range(len(g.states))]
            w(f"return ({', '.join(['OUT', *finals, *saved_names])},)")
        self.saved_names = saved_names
        lay.n_saved = len(saved_names)
        return w.lines

    def _bwd(self) -> list[str]:
        g, lay = self.g, self.layout
        w = _Writer()
        gfs = [f"GF{k}" for k in range(len(g.states))]
        w("@jit")
        inputs = self._signature_inputs() + self.saved_names + ["GOUT", *gfs]
        w(f"def bwd(L, rev, X, {', '.join(inputs)}):")
        with w.indent():
            w("T = X.shape[0]")
            w("B = GOUT.shape[1]")
            for k in range(len(g.states)):
                w(f"gf{k} = GF{k}.copy()")
                w(f"GS{k} = np.empty((B, {g.states[k].cols}), {self.dt})")
            w(f"GX = np.zeros(X.shape, {self.dt})")
            for v in lay.q_values:
                w(f"G{self.name(v)} = np.zeros({self.name(v)}.shape, {self.dt})")
            for j in range(len(lay.p_values)):
                w(f"GP{j} = np.zeros(P{j}.shape, {self.dt})")
            grads_of_loop = []
            for n in self.loop_nodes:
                for v in n.outs:
                    if id(v) in self.local_adj:
                        continue
                    w(f"G{self.name(v)} = np.empty((B, {v.cols}), {self.dt})")
                    grads_of_loop.append(f"G{self.name(v)}")
                if n.fn is L.MatMul:
                    left, right = n.args
                    j = n.outs[0].index
                    if self.has_grad(right):
                        w(f"DZ{j} = np.zeros((T, B, {n.outs[0].cols}), {self.dt})")
                    if self.adj(left, "b", "k", None) is not None:
                        w(f"TMP{j} = np.empty((B, {left.cols}), {self.dt})")
            w("for s in range(T):")
            with w.indent():
                w("t = s if rev else T - 1 - s")
                for name in self.saved_names:
                    if name.startswith("ST"):
                        w(f"st{name[2:]} = {name}[t]")
                    else:
                        w(f"{name[:-4]} = {name}[t]")
                for name in grads_of_loop + [f"GS{k}" for k in range(len(g.states))]:
                    w(f"{name}[:] = ZERO")
                w("for b in range(B):")
                with w.indent():
                    w("if t < L[b]:")
                    with w.indent():
                        for k, v in enumerate(g.outputs):
                            n_k = g.states[k].cols
                            target = self.adj(v, "b", "k", n_k)
                            if target is None:
                                continue
                            seed = f"gf{k}[b, k]" + (" + GOUT[t, b, k]" if k == 0 else "")
                            w(f"for k in range({n_k}):")
                            with w.indent():
                                w(f"{target} += {seed}")
                self.emit(w, backward=True)
                w("for b in range(B):")
                with w.indent():
                    w("if t < L[b]:")
                    with w.indent():
                        for k in range(len(g.states)):
                            w(f"gf{k}[b] = GS{k}[b]")
            for n in self.loop_nodes:
                if n.fn is L.MatMul:
                    left, right = n.args
                    if not self.has_grad(right):
                        continue
                    j = n.outs[0].index
                    K, N = right.shape
                    a_all = self.all_steps(left)
                    w(
                        f"{'G' + self.name(right)} += np.dot({a_all}.reshape((T * B, {K})).T, "
                        f"DZ{j}.reshape((T * B, {N})))"
                    )
            gq = [f"G{self.name(v)}" for v in lay.q_values]
            gp = [f"GP{j}" for j in range(len(lay.p_values))]
            gs = [f"gf{k}" for k in range(len(g.states))]
            w(f"return ({', '.join(['GX', *gq, *gp, *gs])},)")
        return w.lines


def generate(g: StepGraph, header: str = "") -> tuple[str, Layout]:
    """Source of ``fwd``/``bwd`` for the analysed step graph ``g``, and how to call them."""
    gen = _Gen(g)
    return gen.source(header), gen.layout

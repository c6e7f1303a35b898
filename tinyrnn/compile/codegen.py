"""Source generation: the forward time loop of a traced cell and its reverse-mode backward.

From an analysed ``StepGraph`` (trace.py) this writes three functions, ``fwd``, ``bwd`` and
``post``, as Python source that Numba compiles (and that also runs as plain Python, for tests
and for ``NUMBA_DISABLE_JIT=1``):

``fwd(L, rev, X, Q0.., P0.., S0..) -> (OUT, F0.., saved..)`` runs the cell's loop ops for every
step ``t`` (backwards in time when ``rev``): ``X`` (T, B, I) is the input, ``Q*`` (T, B, n) the
values computed before the loop from ``x`` alone (such as ``x W^T``), ``P*`` the invariants
(parameters and what is computed from them, as 2-D arrays), ``S*`` (B, n) the initial state.
``L`` (B,) are the sequence lengths: a finished sequence keeps its state and outputs zeros.

A step is a chain of matrix products (``h @ W`` is ``gemm`` into a preallocated buffer, a
plain NN product on BLAS) and, between them, row-wise segments: one ``for b in range(B)`` loop
whose body holds, for that row, short unit-stride loops over its columns (1-D row views,
NumPy broadcasting spelled out in the index: ``P[0]`` for a bias row, ``[0]`` for a column).
Inside a run of element-wise ops of one width, every value that leaves the run gets one loop
writing only that array (loops that write one array and read a few are the ones LLVM
vectorises); a value used only inside the run is inlined into the expression that reads it, or
kept in one row of scratch memory when read twice. Column slices (``split``/``chunk``) are read
in place, without a copy, unless a matrix product or the backward needs them. ``LSTMCellStep``
and ``GRUCellStep`` are a few such loops each.

The ops are emitted in an order that starts each matrix product as soon as its input is ready,
so ``(x W + b_ih) + h U + b_hh`` is one pass; a value read only inside the row loop that makes
it (such as those gate pre-activations) is one row of scratch memory, not a (B, n) array.

Memory: per step, only the values the backward reads are kept over all steps (``saved``: the
inputs or outputs of ops whose derivative needs them, such as a sigmoid's output, and the left
operand of ``h @ W``); everything else lives in one (B, n) buffer reused at every step. A value
the backward reads that is one add, subtract, multiply or negate away from saved ones (``1 - z``
in a GRU) is recomputed there instead of saved. The first state part before each step (``h``)
is not kept either when the backward needs it: it is the previous step's output (``OUT``, which
the caller holds anyway), or the initial state where no step of that sequence came before.

``bwd(L, rev, X, Q.., P.., saved.., GOUT, GF0..) -> (GX, GQ0.., GP0.., GS0.., post args..)``
hands the arrays of the weight-gradient products to ``post(args..)``, which adds those
products over all steps (``G += A^T dZ``) in place: the runtime runs ``bwd`` with one BLAS
thread (its per-step products are small) and ``post`` with the caller's threads (its products
are large; with two threads a GRU step at M went from 10.5 to 9.0 ms). ``bwd`` walks the steps
in reverse order and the segments of a step in reverse order. In a run, an adjoint that stays
in the run is an expression (or a scratch row) built from the terms of its readers; each array
adjoint gets one loop adding all of the run's terms (``+=``; at a broadcast index such as
``GP[0]`` that sum undoes broadcasting). Values with the same adjoint share one buffer: an
argument of ``a + b`` (or the first of ``a - b``) used nowhere else has the sum's adjoint, so
the adjoint of ``x W + h U + b`` is written once, straight into the gradient of ``x W`` (all
steps), which is also the ``dZ`` the gradient of ``U`` needs: that is one large product after
the loop, ``(H_all)^T (dZ_all)`` over all ``T*B`` rows, and the gradient of a bias added to
such a sum is one column sum of that buffer after the loop (shared by all its biases). Buffers
over all steps are not zero-filled up front: each step zeroes its own slice when it starts.
The product for the gradient of ``h`` writes straight into ``h``'s adjoint (by assignment,
no zero-fill) when the product is its only reader. The state adjoints a step computes become
those carried to the step before by swapping two buffers, not by a copy (rows of sequences
that have not started yet keep the carried ones). In the forward, every row of ``OUT`` is
written (zeros once a sequence has ended), so it is not zero-filled up front.

Transposed products: for a large matrix (``_big``) and from batch size 16 on (a run-time test,
the code serves every batch size), a step's products are computed transposed, ``W^T h^T``
(forward) and ``W dZ^T`` (backward), with the batch as the short side of the result, which
OpenBLAS runs faster for large matrices (forward ``h W`` at B=32, W 512x2048: 742 against 827
us); the (n, B) result is copied back into the (B, n) layout in blocks of 16 columns (forward)
or read transposed where it is added to ``h``'s adjoint (backward). Smaller products keep the
plain form: at W 128x512 the transposed product alone is faster (45.7 against 51.8 us), but a
whole LSTM training step with it, copy back included, was not (A/B runs at B=32, H=128); the
backward product ``dZ W^T`` gains from the transposed form only for the largest matrices.
All of this is for packed products: where ``kernels.gemm`` has the unpacked float32 kernel
(``DIRECT``), float32 programs keep every product plain: that kernel runs it at least as fast
as the packed transposed form before its copy back (``benchmarks/bench_gemm.py``, one thread,
us per product, unpacked plain/packed transposed: B=32, W 128x512 36.4/46.0, W 512x2048
682/746; B=64, W 512x2048 1394/1394). float64 keeps the rule.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..kernels import gemm as _gemm
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
    q_read: list[bool] = field(default_factory=list)  # does the backward read q_values[j]?
    post_args: list[str] = field(default_factory=list)  # bwd's last results, post's arguments


_HELPERS = ("_exp", "_sig", "_tanh")  # what generated sources import from kernels.seq_jit
_GLOBALS = {"np", "gemm", "range", *_HELPERS}  # names the generated module itself provides


def _free_names(lines: list[str]) -> list[str]:
    """The names a block of generated statements reads but does not assign (in a fixed
    order): what ``bwd`` hands to ``post``."""
    tree = ast.parse("def f():\n" + "\n".join(lines or ["    pass"]))
    assigned = set(_GLOBALS)  # ``x += y`` reads x: only plain assignments and loop targets
    for n in ast.walk(tree):
        targets = (
            n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(n, ast.For) else []
        )
        assigned.update(x.id for t in targets for x in ast.walk(t) if isinstance(x, ast.Name))
    names: list[str] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and n.id not in assigned and n.id not in names:
            names.append(n.id)
    return names


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


_TR_BATCH = 16  # a step's products run transposed from this batch size on (when _big)


def _big(n: OpNode, backward: bool = False) -> bool:
    """Is the matrix of ``h @ W`` large enough for the transposed product to pay, forward
    (``W^T h^T``) or backward (``W dZ^T``)? Measured through ``kernels.gemm`` (NumPy's
    OpenBLAS), one thread, us per product, plain/transposed, forward | backward:
    B=32 128x384 34.2/34.7 | 34.1/37.7; 128x512 51.8/45.7 | 47.7/50.8; 512x512 208/187 |
    189/187; 512x2048 827/742 | 837/755. B=16 128x384 13.6/19.1 | 13.5/20.8; 128x512
    31.9/25.3 | 27.7/28.0. B=64 512x2048 1478/1370 | 1399/1413."""
    k, m = n.args[1].shape
    return k * m >= (1 << 20 if backward else 1 << 17)


def _schedule(nodes: list[OpNode]) -> list[OpNode]:
    """The loop ops in an order that starts each matrix product as soon as its input is ready,
    so the element-wise ops around it (``x W + b`` before ``+ h U``) fall into one run."""
    made_by = {id(v): n for n in nodes for v in n.outs}
    done: set[int] = set()
    out: list[OpNode] = []
    left = list(nodes)
    while left:
        ready = [
            n for n in left if all(id(made_by.get(id(a), n)) in done | {id(n)} for a in n.args)
        ]
        pick = next((n for n in ready if n.fn is L.MatMul), ready[0])
        out.append(pick)
        done.add(id(pick))
        left.remove(pick)
    return out


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
        # with the unpacked float32 kernel (kernels.gemm), plain products are always faster
        self.plain_only = g.dtype == np.float32 and _gemm.DIRECT
        self.layout = Layout(n_states=len(g.states))
        self.names: dict[int, str] = {}
        self.consts: dict[str, str] = {}
        self.loop_nodes = _schedule([n for n in g.nodes if n.role == "loop"])
        self.consumers: dict[int, list[OpNode]] = {}  # one entry per use
        for n in self.loop_nodes:
            for a in n.args:
                self.consumers.setdefault(id(a), []).append(n)
        self.out_ids = {id(v) for v in g.outputs}
        self._name_values()
        self.recompute: dict[int, OpNode] = {}  # read by the backward, recomputed there
        self.in_bwd = False
        need = self._recomputed(self._needed())
        self.views: dict[int, tuple[Value, int, int]] = {}
        self._find_views(need)
        self.nodes = [n for n in self.loop_nodes if id(n.outs[0]) not in self.views]
        self.saved: set[int] = {id(v) for v in need if v.role == "loop"}
        # h before each step is read back from the outputs instead of kept (OUT[t -+ 1], or
        # the initial state where no step came before)
        self.h_from_out = id(g.states[0]) in self.saved and g.outputs[0].kind != "state"
        self.layout.q_read = [any(v is q for v in need) for q in self.layout.q_values]
        self.local: set[int] = set()  # forward values kept in registers inside their run
        self.local_adj: set[int] = set()  # adjoints that never leave their run
        self._find_locals()
        self.cls: dict[int, int] = {}
        self.store: dict[int, tuple[str, str, int]] = {}
        self._find_classes()
        self.direct: set[int] = set()  # matmul nodes whose left adjoint is written by gemm
        self._find_direct()
        self.row_scratch: set[int] = set()  # forward arrays that are one row of scratch
        self._find_row_scratch()
        self.tmm: set[int] = set()  # matrix product outputs kept transposed, (n, B)
        self._find_transposed()
        self.scratch: dict[str, int] = {}
        self.colsums: list[tuple[str, bool, str, int]] = []  # (gradient, +/-, storage, cols)
        self.rows: dict[str, str] = {}
        self.fx: dict[int, str] = {}

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

    @staticmethod
    def has_grad(v: Value) -> bool:
        return v.kind not in ("scalar", "const")

    def is_loop_op(self, v: Value) -> bool:
        return v.kind == "op" and v.role == "loop"

    # ---- analysis ----

    def _needed(self) -> list[Value]:
        """The values the backward reads (inputs or outputs of element-wise ops, the left
        operand of a matrix product whose matrix needs a gradient, ...)."""
        need: list[Value] = []
        for n in self.loop_nodes:
            fn = n.fn
            if fn in _TEMPLATES:
                _, grads = _TEMPLATES[fn]
                for i, a in enumerate(n.args):
                    tmpl = grads[i]
                    if tmpl is None or not self.has_grad(a):
                        continue
                    need.extend(b for j, b in enumerate(n.args) if f"{{{j}}}" in tmpl)
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
        return need

    def _recomputed(self, need: list[Value]) -> list[Value]:
        """Drop from ``need`` the values the backward can recompute from saved ones at the cost
        of one add, subtract, multiply or negate (``1 - z`` in a GRU): they are not saved. Their
        inputs must be saved anyway and not be recomputed themselves (no chains)."""
        ids = {id(v) for v in need}
        made_by = {id(v): n for n in self.loop_nodes for v in n.outs}
        cheap = (E.Add, E.Sub, E.Mul, E.Neg)

        def saved_anyway(a: Value) -> bool:
            if a.kind == "scalar" or a.role == "inv":
                return True
            producer = made_by.get(id(a))
            return (
                id(a) in ids and a.role == "loop" and (producer is None or producer.fn not in cheap)
            )

        for v in {id(v): v for v in need}.values():
            n = made_by.get(id(v))
            if n is None or n.fn not in cheap or id(v) in self.out_ids or v.role != "loop":
                continue
            readers = self.consumers.get(id(v), [])
            if any(c.outs[0].cols != v.cols or c.fn is L.MatMul for c in readers):
                continue  # a broadcast read, or the whole array for a weight gradient
            if all(saved_anyway(a) and (a.kind == "scalar" or a.role == "inv" or a.cols == v.cols)
                   for a in n.args):  # fmt: skip
                self.recompute[id(v)] = n
        return [v for v in need if id(v) not in self.recompute]

    def _find_views(self, need: list[Value]) -> None:
        """Column slices read in place (no copy forward, no adjoint buffer backward), unless
        the backward reads them (then a saved copy of the slice is smaller than the whole) or
        a matrix product needs them contiguous."""
        needed = {id(v) for v in need}
        for n in self.loop_nodes:
            if n.fn is not M.GetItem:
                continue
            out = n.outs[0]
            if id(out) in needed:
                continue
            if any(c.fn is L.MatMul for c in self.consumers.get(id(out), [])):
                continue
            start, _, step = self._slice(n)
            self.views[id(out)] = (n.args[0], start, step)

    def resolve(self, v: Value, col: str) -> tuple[Value, str]:
        """The array a (possibly sliced) value lives in, and the column there."""
        while id(v) in self.views:
            base, start, step = self.views[id(v)]
            inner = col if step == 1 else f"({col}) * {step}"
            col = inner if start == 0 else f"{start} + {inner}"
            v = base
        return v, col

    def runs(self) -> list[list[OpNode]]:
        """The emitted loop ops in order, consecutive element-wise ops of one width grouped."""
        out: list[list[OpNode]] = []
        for n in self.nodes:
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
        """Values (and adjoints) that never leave their run live in registers (inlined into
        the expression that reads them) or in one row of scratch memory."""
        for run in self.runs():
            if not _is_ew(run[0]):
                continue
            members = {id(n) for n in run}
            for n in run:
                v = n.outs[0]
                inside = all(id(c) in members for c in self.consumers.get(id(v), []))
                if inside and id(v) not in self.out_ids:
                    self.local_adj.add(id(v))
                    if id(v) not in self.saved:
                        self.local.add(id(v))

    def _find_classes(self) -> None:
        """Values with the same adjoint share one buffer: an argument of ``a + b`` (or the
        first of ``a - b``) used nowhere else has the adjoint of the sum. So the adjoint of
        ``x W + h U + b`` is written once, into the gradient of ``x W`` (a buffer over all
        steps), which is also what the product ``h U`` needs for the gradient of ``U``."""
        parent: dict[int, int] = {}
        vals: dict[int, Value] = {}

        def find(i: int) -> int:
            while parent.get(i, i) != i:
                i = parent[i]
            return i

        def seqs(root: int) -> int:
            return sum(1 for i, v in vals.items() if find(i) == root and v.role == "seq")

        for n in self.nodes:
            for v in n.outs:
                vals[id(v)] = v
        for n in self.nodes:
            if n.fn not in (E.Add, E.Sub):
                continue
            y = n.outs[0]
            for i, a in enumerate(n.args):
                if n.fn is E.Sub and i == 1:
                    continue
                if a.kind != "op" or a.role not in ("loop", "seq") or id(a) in self.views:
                    continue
                if a.cols != y.cols or not a.batch or id(a) in self.out_ids:
                    continue
                if len(self.consumers.get(id(a), [])) != 1:
                    continue
                vals[id(a)] = a
                ra, ry = find(id(a)), find(id(y))
                if ra == ry or (seqs(ra) and seqs(ry)):
                    continue
                parent[ra] = ry
        members: dict[int, list[Value]] = {}
        for i, v in vals.items():
            members.setdefault(find(i), []).append(v)
        for root, vs in members.items():
            for v in vs:
                self.cls[id(v)] = root
            seq = [v for v in vs if v.role == "seq"]
            cols = vs[0].cols
            dz = any(
                p.fn is L.MatMul and p.outs[0] is v and self.has_grad(p.args[1])
                for v in vs
                for p in self.nodes
            )
            if seq:
                self.store[root] = ("seq", f"G{self.name(seq[0])}", cols)
            elif dz:
                self.store[root] = ("dz", f"DZ{len(self.store)}", cols)
            elif all(id(v) in self.local_adj for v in vs):
                self.store[root] = ("local", f"a{self.name(vs[-1])}", cols)
            else:
                self.store[root] = ("buf", f"G{self.name(vs[-1])}", cols)

    def _find_direct(self) -> None:
        for n in self.nodes:
            if n.fn is not L.MatMul:
                continue
            left = n.args[0]
            if not self.has_grad(left) or id(left) in self.out_ids:
                continue
            if len(self.consumers.get(id(left), [])) != 1:
                continue
            if left.kind == "state" or self.is_loop_op(left):
                self.direct.add(id(n))

    def _readers(self, v: Value) -> list[OpNode]:
        """The emitted nodes that read ``v``, directly or through column slices."""
        out, todo = [], [v]
        while todo:
            u = todo.pop()
            for c in self.consumers.get(id(u), []):
                if id(c.outs[0]) in self.views:
                    todo.append(c.outs[0])
                else:
                    out.append(c)
        return out

    def _find_row_scratch(self) -> None:
        """Forward values read only inside the row loop that makes them (not saved, not a
        state, not a matrix product's operand) need one row, not (B, n): they stay in L1."""
        seg_of: dict[int, int] = {}
        for i, part in enumerate(self._segments()):
            for run in [] if isinstance(part, OpNode) else part:
                for n in run:
                    seg_of[id(n)] = i
        for n in self.nodes:
            if id(n) not in seg_of or n.fn in (Fu.LSTMCellStep, Fu.GRUCellStep):
                continue
            for v in n.outs:
                if id(v) in self.local or id(v) in self.saved or id(v) in self.out_ids:
                    continue
                readers = self._readers(v)
                if readers and all(seg_of.get(id(r)) == seg_of[id(n)] for r in readers):
                    self.row_scratch.add(id(v))

    def _big(self, n: OpNode, backward: bool = False) -> bool:
        """``_big``, unless this machine's float32 products are all faster plain."""
        return not self.plain_only and _big(n, backward)

    def _find_transposed(self) -> None:
        """Products ``h W`` computed as ``(W^T h^T)``, an (n, B) array, which BLAS runs faster
        (the batch is the short side), where the result is only read element by element."""
        for n in self.nodes:
            if n.fn is not L.MatMul or not self._big(n):
                continue
            v = n.outs[0]
            if id(v) in self.saved or id(v) in self.out_ids:
                continue
            readers = self._readers(v)
            if readers and all(r.fn is not L.MatMul for r in readers):
                self.tmm.add(id(v))

    def storage(self, v: Value) -> tuple[str, str, int]:
        return self.store[self.cls[id(v)]]

    # ---- references inside a ``for b`` loop ----

    def rv(self, array: str) -> str:
        """Row variable for the row expression ``array`` (defined at the top of the b loop)."""
        for var, expr in self.rows.items():
            if expr == array:
                return var
        var = f"r{len(self.rows)}"
        self.rows[var] = array
        return var

    def row_of(self, v: Value) -> str:
        """Row expression of a forward value (array) at the current step and row b."""
        base = self.name(v)
        if v.role == "seq":
            return f"{base}[t, b]"
        if v.role == "inv":
            return f"{base}[b]" if v.batch else f"{base}[0]"
        if id(v) in self.row_scratch:
            return base
        if self.in_bwd and self.h_from_out and v is self.g.states[0]:
            return "(OUT[tp, b] if hv and tp < L[b] else SH0[b])"
        return f"{base}[b]"

    def ix(self, v: Value, col: str, ncols: int | None) -> str:
        """Expression for ``v`` at column ``col`` of a row of a (B, ncols) result."""
        if v.kind == "scalar":
            return self.const(v.data)
        if id(v) in self.fx:
            return self.fx[id(v)]
        if self.in_bwd and id(v) in self.recompute:
            return f"({self._fwd_expr(self.recompute[id(v)], v.cols)})"
        c = col if ncols is None or v.cols == ncols else "0"
        v, c = self.resolve(v, c)
        if id(v) in self.fx:  # pragma: no cover - views never point into a run's registers
            raise AssertionError("view of a register value")
        return f"{self.rv(self.row_of(v))}[{c}]"

    def adj_row(self, v: Value) -> str | None:
        """Row expression of the adjoint array of ``v`` (None: no gradient; 'local': in
        registers)."""
        if v.kind in ("scalar", "const"):
            return None
        base = self.name(v)
        if self.is_loop_op(v) or (v.role == "seq" and id(v) in self.cls):
            kind, name, _ = self.storage(v)
            if kind == "local":
                return "local"
            return f"{name}[t, b]" if kind in ("seq", "dz") else f"{name}[b]"
        if v.role == "seq":
            return f"G{base}[t, b]"
        if v.role == "inv":
            return f"G{base}[0]"
        if v.kind == "state":
            return f"GS{v.index}[b]"
        raise AssertionError(v.kind)  # pragma: no cover

    def adj(self, v: Value, col: str, ncols: int | None) -> str | None:
        """Adjoint of ``v`` at a column of the current row (an array element), or None."""
        if not self.has_grad(v):
            return None
        c = col if ncols is None or v.cols == ncols else "0"
        v, c = self.resolve(v, c)
        row = self.adj_row(v)
        if row is None:
            return None
        assert row != "local"
        return f"{self.rv(row)}[{c}]"

    def adj_step(self, v: Value) -> str:
        """The (B, n) adjoint array of ``v`` at the current step (for gemm)."""
        if v.kind == "state":
            return f"GS{v.index}"
        kind, name, _ = self.storage(v)
        return f"{name}[t]" if kind in ("seq", "dz") else name

    def per_step(self, v: Value) -> str:
        """The (B, n) array of ``v`` at the current step (for gemm)."""
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

    def scratch_row(self, name: str, cols: int) -> str:
        self.scratch[name] = cols
        return name

    def _transpose(self, w: _Writer, src: str, dst: str, cols: int, op: str = "=") -> None:
        """``dst[b, k] (op) src[k, b]``, in blocks of 16 columns (read rows stay in L1);
        ``dst`` is an array name or a row expression in ``b``."""
        w(f"for k0 in range(0, {cols}, 16):")
        with w.indent():
            w(f"k1 = min(k0 + 16, {cols})")
            w("for b in range(B):")
            with w.indent():
                w(f"row = {dst if '[' in dst else dst + '[b]'}")
                w("for k in range(k0, k1):")
                with w.indent():
                    w(f"row[k] {op} {src}[k, b]")

    def _kloop(self, w: _Writer, cols: int, stmt: str) -> None:
        w(f"for k in range({cols}):")
        with w.indent():
            w(stmt)

    def _row_loop(
        self, w: _Writer, body: _Writer, guard: bool = False, orelse: list[str] | None = None
    ) -> None:
        """``for b in range(B):`` with the row variables, then ``body`` (nothing if empty);
        with ``guard``, only for the rows whose sequence is still running at step ``t``, and
        ``orelse`` for the others."""
        if not body.lines:
            self.rows = {}
            return
        w("for b in range(B):")
        with w.indent():
            for var, expr in self.rows.items():
                w(f"{var} = {expr}")
            if guard:
                w("if t < L[b]:")
                w.depth += 1
            pad = "    " * w.depth
            w.lines.extend(pad + line for line in body.lines)
            if guard:
                w.depth -= 1
                if orelse:
                    w("else:")
                    with w.indent():
                        for line in orelse:
                            w(line)
        self.rows = {}

    # ---- forward ----

    def _fwd_expr(self, n: OpNode, cols: int) -> str:
        args = [self.ix(a, "k", cols) for a in n.args]
        if n.fn is E.Clamp:
            x = args[0]
            lo, hi = n.kwargs.get("lo"), n.kwargs.get("hi")
            if lo is not None:
                x = f"max({x}, {self.const(lo)})"
            if hi is not None:
                x = f"min({x}, {self.const(hi)})"
            return x
        return _TEMPLATES[n.fn][0].format(*args)

    def _uses(self, v: Value) -> int:
        return len(self.consumers.get(id(v), []))

    def fwd_run(self, w: _Writer, run: list[OpNode]) -> None:
        """One loop per value that leaves the run (each loop writes one array, which LLVM
        vectorises); values used only inside are inlined where they are read, or kept in a
        row of scratch memory when read more than once."""
        cols = run[0].outs[0].cols
        for n in run:
            y = n.outs[0]
            expr = self._fwd_expr(n, cols)
            if id(y) in self.local:
                if self._uses(y) > 1:
                    s = self.scratch_row(f"s{self.name(y)}", cols)
                    self._kloop(w, cols, f"{s}[k] = {expr}")
                    self.fx[id(y)] = f"{s}[k]"
                else:
                    self.fx[id(y)] = f"({expr})"
            else:
                self._kloop(w, cols, f"{self.ix(y, 'k', cols)} = {expr}")
        self.fx = {}

    def fwd_node(self, w: _Writer, n: OpNode) -> None:
        out = n.outs[0]
        cols = out.cols
        fn = n.fn
        if fn is M.GetItem:
            start, _, step = self._slice(n)
            src = self.ix(n.args[0], f"{start} + k * {step}", None)
            self._kloop(w, cols, f"{self.ix(out, 'k', None)} = {src}")
        elif fn is M.Cat:
            off = 0
            for a in n.args:
                dst = self.ix(out, f"{off} + k", None)
                self._kloop(w, a.cols, f"{dst} = {self.ix(a, 'k', None)}")
                off += a.cols
        elif fn is R.Sum:
            a = n.args[0]
            w("acc = ZERO")
            self._kloop(w, a.cols, f"acc += {self.ix(a, 'k', None)}")
            w(f"{self.ix(out, '0', None)} = acc")
        elif fn is Fu.LSTMCellStep:
            self._lstm_fwd(w, n)
        elif fn is Fu.GRUCellStep:
            self._gru_fwd(w, n)
        else:  # pragma: no cover - trace.py rejects other ops before this point
            raise AssertionError(fn)

    def _slice(self, n: OpNode) -> tuple[int, int, int]:
        sl = _column_slice(n.kwargs["index"], n.args[0].shape)
        assert sl is not None  # trace.py admits column slices only
        return sl.indices(n.args[0].cols)

    def _lstm_fwd(self, w: _Writer, n: OpNode) -> None:
        gates, cprev = n.args
        H = cprev.cols
        j = n.outs[0].index
        h, c = (self.ix(v, "k", None) for v in n.outs)
        a, tc = self.rv(f"AX{j}[b]"), self.rv(f"TC{j}[b]")
        for q, act in enumerate(("_sig", "_sig", "_tanh", "_sig")):
            g = self.ix(gates, f"{q * H} + k", None)
            self._kloop(w, H, f"{a}[{q * H} + k] = {act}({g})")
        cp = self.ix(cprev, "k", None)
        self._kloop(w, H, f"{c} = {a}[{H} + k] * {cp} + {a}[k] * {a}[{2 * H} + k]")
        self._kloop(w, H, f"{tc}[k] = _tanh({c})")
        self._kloop(w, H, f"{h} = {a}[{3 * H} + k] * {tc}[k]")

    def _gru_fwd(self, w: _Writer, n: OpNode) -> None:
        gi, gh, hprev = n.args
        H = hprev.cols
        h = self.ix(n.outs[0], "k", None)
        a = self.rv(f"AX{n.outs[0].index}[b]")
        i = [self.ix(gi, f"{q * H} + k", None) for q in range(3)]
        r = [self.ix(gh, f"{q * H} + k", None) for q in range(3)]
        self._kloop(w, H, f"{a}[k] = _sig({i[0]} + {r[0]})")
        self._kloop(w, H, f"{a}[{H} + k] = _sig({i[1]} + {r[1]})")
        self._kloop(w, H, f"{a}[{2 * H} + k] = _tanh({i[2]} + {a}[k] * {r[2]})")
        hp = self.ix(hprev, "k", None)
        self._kloop(w, H, f"{h} = (ONE - {a}[{H} + k]) * {a}[{2 * H} + k] + {a}[{H} + k] * {hp}")

    # ---- backward ----

    def _term(self, n: OpNode, i: int, g: str, cols: int) -> str | None:
        """Contribution of element-wise node ``n`` to the adjoint of its argument ``i``."""
        fn = n.fn
        if fn is E.Clamp:
            x = self.ix(n.args[0], "k", cols)
            lo, hi = n.kwargs.get("lo"), n.kwargs.get("hi")
            conds = []
            if lo is not None:
                conds.append(f"{x} >= {self.const(lo)}")
            if hi is not None:
                conds.append(f"{x} <= {self.const(hi)}")
            return f"({g} if ({' and '.join(conds)}) else ZERO)" if conds else g
        tmpl = _TEMPLATES[fn][1][i]
        if tmpl is None:
            return None
        args = [self.ix(a, "k", cols) if f"{{{j}}}" in tmpl else "" for j, a in enumerate(n.args)]
        y = self.ix(n.outs[0], "k", cols) if "{y}" in tmpl else ""
        return tmpl.replace("{g}", g).replace("{y}", y).format(*args)

    def bwd_run(self, w: _Writer, run: list[OpNode]) -> None:
        """The run's adjoints, last op first. An adjoint that stays in the run is an
        expression inlined into the terms that read it (or a scratch row when read more than
        once); each array adjoint outside gets one loop adding all its terms."""
        cols = run[0].outs[0].cols
        uses: dict[int, int] = {}
        for n in run:
            r = self.cls[id(n.outs[0])]
            for a in n.args:
                if self.has_grad(a) and self.cls.get(id(a)) != r:
                    uses[r] = uses.get(r, 0) + 1
        local_terms: dict[int, list[str]] = {}
        local_val: dict[int, str | None] = {}
        pending: dict[tuple[str, str], list[str]] = {}

        def flush(var: str | None = None) -> None:
            for key in list(pending):
                if var is None or key[0] == var:
                    terms = pending.pop(key)
                    self._kloop(w, cols, f"{key[0]}[{key[1]}] += {' + '.join(terms)}")

        for n in reversed(run):
            y = n.outs[0]
            root = self.cls[id(y)]
            kind, name, _ = self.store[root]
            g: str | None
            if kind == "local":
                if root not in local_val:
                    terms = local_terms.pop(root, [])
                    if not terms:
                        local_val[root] = None
                    elif uses.get(root, 0) > 1:
                        s = self.scratch_row(f"s{name}", cols)
                        self._kloop(w, cols, f"{s}[k] = {' + '.join(terms)}")
                        local_val[root] = f"{s}[k]"
                    else:
                        local_val[root] = f"({' + '.join(terms)})"
                g = local_val[root]
            else:
                g = self.adj(y, "k", cols)
                assert g is not None
                flush(g.split("[")[0])
            if g is None:
                continue
            for i, a in enumerate(n.args):
                if not self.has_grad(a) or self.cls.get(id(a)) == root:
                    continue
                term = self._term(n, i, g, cols)
                if term is None:
                    continue
                ra = self.resolve(a, "k")[0]
                if id(ra) in self.cls and self.store[self.cls[id(ra)]][0] == "local":
                    local_terms.setdefault(self.cls[id(ra)], []).append(term)
                    continue
                if (
                    n.fn in (E.Add, E.Sub)
                    and kind in ("seq", "dz")
                    and a.role == "inv"
                    and not a.batch
                    and a.cols == cols
                    and term in (g, f"-{g}")
                ):
                    # a bias: its gradient is a column sum of the adjoint, done once after
                    # the loop (shared by every bias added to the same sum)
                    self.colsums.append((f"G{self.name(a)}", term == g, name, cols))
                    continue
                target = self.adj(a, "k", cols)
                assert target is not None
                var, idx = target.split("[", 1)
                pending.setdefault((var, idx[:-1]), []).append(term)
        flush()

    def bwd_node(self, w: _Writer, n: OpNode) -> None:
        out = n.outs[0]
        cols = out.cols
        fn = n.fn
        if fn is M.GetItem:
            start, _, step = self._slice(n)
            target = self.adj(n.args[0], f"{start} + k * {step}", None)
            if target is not None:
                self._kloop(w, cols, f"{target} += {self.adj(out, 'k', None)}")
        elif fn is M.Cat:
            off = 0
            for a in n.args:
                target = self.adj(a, "k", None)
                if target is not None:
                    self._kloop(w, a.cols, f"{target} += {self.adj(out, f'{off} + k', None)}")
                off += a.cols
        elif fn is R.Sum:
            a = n.args[0]
            target = self.adj(a, "k", None)
            if target is not None:
                self._kloop(w, a.cols, f"{target} += {self.adj(out, '0', None)}")
        elif fn is Fu.LSTMCellStep:
            self._lstm_bwd(w, n)
        elif fn is Fu.GRUCellStep:
            self._gru_bwd(w, n)

    def _lstm_bwd(self, w: _Writer, n: OpNode) -> None:
        gates, cprev = n.args
        H = cprev.cols
        j = n.outs[0].index
        a, tc = self.rv(f"AX{j}[b]"), self.rv(f"TC{j}[b]")
        gh, gc = (self.adj(v, "k", None) for v in n.outs)
        tg = [self.adj(gates, f"{q * H} + k", None) for q in range(4)]
        tc_prev = self.adj(cprev, "k", None)
        w(f"for k in range({H}):")
        with w.indent():
            for q, v in enumerate(("i_", "f_", "g_", "o_")):
                w(f"{v} = {a}[{q * H} + k]")
            w(f"tc_ = {tc}[k]")
            w(f"gh_ = {gh}")
            w(f"dc_ = {gc} + gh_ * o_ * (ONE - tc_ * tc_)")
            if tg[0] is not None:
                w(f"{tg[0]} += dc_ * g_ * i_ * (ONE - i_)")
                w(f"{tg[1]} += dc_ * {self.ix(cprev, 'k', None)} * f_ * (ONE - f_)")
                w(f"{tg[2]} += dc_ * i_ * (ONE - g_ * g_)")
                w(f"{tg[3]} += gh_ * tc_ * o_ * (ONE - o_)")
            if tc_prev is not None:
                w(f"{tc_prev} += dc_ * f_")

    def _gru_bwd(self, w: _Writer, n: OpNode) -> None:
        gi, gh, hprev = n.args
        H = hprev.cols
        a = self.rv(f"AX{n.outs[0].index}[b]")
        gy = self.adj(n.outs[0], "k", None)
        ti = [self.adj(gi, f"{q * H} + k", None) for q in range(3)]
        th = [self.adj(gh, f"{q * H} + k", None) for q in range(3)]
        tp = self.adj(hprev, "k", None)
        w(f"for k in range({H}):")
        with w.indent():
            w(f"r_ = {a}[k]")
            w(f"z_ = {a}[{H} + k]")
            w(f"n_ = {a}[{2 * H} + k]")
            w(f"g_ = {gy}")
            w("dn_ = g_ * (ONE - z_) * (ONE - n_ * n_)")
            w(f"dz_ = g_ * ({self.ix(hprev, 'k', None)} - n_) * z_ * (ONE - z_)")
            w(f"dr_ = dn_ * {self.ix(gh, f'{2 * H} + k', None)} * r_ * (ONE - r_)")
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

    # ---- the step: segments of row-wise ops between matrix products ----

    def _segments(self) -> list[Any]:
        """The step as row-wise segments (lists of runs) and matmul nodes, in order."""
        out: list[Any] = []
        seg: list[list[OpNode]] = []
        for run in self.runs():
            if run[0].fn is L.MatMul:
                if seg:
                    out.append(seg)
                    seg = []
                out.append(run[0])
            else:
                seg.append(run)
        if seg:
            out.append(seg)
        return out

    def emit_fwd(self, w: _Writer) -> None:
        for part in self._segments():
            if isinstance(part, OpNode):
                left, right = part.args
                y = self.name(part.outs[0])
                j = part.outs[0].index
                if id(part.outs[0]) in self.tmm:
                    w(f"if TR{j}:")
                    with w.indent():
                        w(f"gemm(PT{j}, {self.per_step(left)}.T, YT{j})")
                        self._transpose(w, f"YT{j}", y, part.outs[0].cols)
                    w("else:")
                    with w.indent():
                        w(f"gemm({self.per_step(left)}, {self.name(right)}, {y})")
                else:
                    w(f"gemm({self.per_step(left)}, {self.name(right)}, {y})")
                continue
            body = _Writer()
            for run in part:
                if _is_ew(run[0]):
                    self.fwd_run(body, run)
                else:
                    self.fwd_node(body, run[0])
            self._row_loop(w, body)

    def emit_bwd(self, w: _Writer) -> None:
        for part in self._segments()[::-1]:
            if isinstance(part, OpNode):
                self._matmul_bwd(w, part)
                continue
            body = _Writer()
            for run in part[::-1]:
                if _is_ew(run[0]):
                    self.bwd_run(body, run)
                else:
                    self.bwd_node(body, run[0])
            self._row_loop(w, body)

    def _matmul_bwd(self, w: _Writer, n: OpNode) -> None:
        left, right = n.args
        j = n.outs[0].index
        if not self.has_grad(left):
            return
        gy = self.adj_step(n.outs[0])
        op = "=" if id(n) in self.direct else "+="
        if not self._big(n, backward=True):
            self._plain_matmul_bwd(w, n, gy, op)
            return
        w(f"if TR{j}:")
        with w.indent():
            # (dY W^T)^T = W dY^T: BLAS is faster with the batch as the short side
            w(f"gemm({self.name(right)}, {gy}.T, TMP{j})")
            row = self.adj_row(left)
            assert row is not None and row != "local"
            self._transpose(w, f"TMP{j}", row, left.cols, op)
        w("else:")
        with w.indent():
            self._plain_matmul_bwd(w, n, gy, op)

    def _plain_matmul_bwd(self, w: _Writer, n: OpNode, gy: str, op: str) -> None:
        """``dY W^T`` into the adjoint of ``h``: straight into it when the product is its only
        term (``direct``), else through ``TMPN`` and one loop adding it."""
        left = n.args[0]
        j = n.outs[0].index
        if op == "=":
            w(f"gemm({gy}, RT{j}, {self.adj_step(left)})")
            return
        w(f"gemm({gy}, RT{j}, TMPN{j})")
        body = _Writer()
        tmp = self.rv(f"TMPN{j}[b]")
        self._kloop(body, left.cols, f"{self.adj(left, 'k', None)} {op} {tmp}[k]")
        self._row_loop(w, body)

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
               "from tinyrnn.kernels.gemm import gemm",
               f"from tinyrnn.kernels.seq_jit import {', '.join(_HELPERS)}", "", ""]  # fmt: skip
        out += with_consts(body_f) + ["", ""] + with_consts(body_b) + ["", ""] + self._post()
        return "\n".join(out) + "\n"

    def _signature_inputs(self) -> list[str]:
        lay = self.layout
        return [self.name(v) for v in lay.q_values] + [f"P{j}" for j in range(len(lay.p_values))]

    def _alloc_scratch(self, w: _Writer, at: int) -> None:
        lines = [f"    {s} = np.empty({c}, {self.dt})" for s, c in self.scratch.items()]
        w.lines[at:at] = lines
        self.scratch = {}

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
            # every row of OUT is written: the new h, or zeros once the sequence has ended
            w(f"OUT = np.empty((T, B, {g.states[0].cols}), {self.dt})")
            for k, v in enumerate(g.states):
                if k == 0 and self.h_from_out:
                    saved_names += ["OUT", "SH0"]
                    w("SH0 = S0.copy()")
                elif id(v) in self.saved:
                    w(f"ST{k} = np.empty((T, B, {v.cols}), {self.dt})")
                    saved_names.append(f"ST{k}")
            views: list[str] = []
            for n in self.nodes:
                for v in n.outs:
                    name = self.name(v)
                    if id(v) in self.local:
                        continue
                    if id(v) in self.saved:
                        w(f"{name}_all = np.empty((T, B, {v.cols}), {self.dt})")
                        saved_names.append(f"{name}_all")
                        views.append(f"{name} = {name}_all[t]")
                    else:
                        shape = f"{v.cols}" if id(v) in self.row_scratch else f"(B, {v.cols})"
                        if id(v) in self.tmm:
                            j, p = v.index, self.name(n.args[1])
                            w(f"TR{j} = B >= {_TR_BATCH}")
                            w(f"PT{j} = np.ascontiguousarray({p}.T) if TR{j} else {p}")
                            w(f"YT{j} = np.empty(({v.cols}, B if TR{j} else 0), {self.dt})")
                        w(f"{name} = np.empty({shape}, {self.dt})")
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
            scratch_at = len(w.lines)
            w("for s in range(T):")
            with w.indent():
                w("t = T - 1 - s if rev else s")
                for k, v in enumerate(g.states):
                    if id(v) in self.saved and not (k == 0 and self.h_from_out):
                        w(f"ST{k}[t] = st{k}")
                for line in views:
                    w(line)
                self.emit_fwd(w)
                for k, name in passthrough.items():
                    w(f"{name}[:] = st{g.outputs[k].index}")
                body = _Writer()
                for k, v in enumerate(g.outputs):
                    n_k = g.states[k].cols
                    src = (
                        f"{self.rv(passthrough[k] + '[b]')}[k]"
                        if k in passthrough
                        else self.ix(v, "k", n_k)
                    )
                    new = self.rv(f"st{k}[b]")
                    self._kloop(body, n_k, f"{new}[k] = {src}")
                    if k == 0:
                        body(f"{self.rv('OUT[t, b]')}[:] = {new}")
                self._row_loop(w, body, guard=True, orelse=[f"{self.rv('OUT[t, b]')}[:] = ZERO"])
            self._alloc_scratch(w, scratch_at)
            finals = [f"st{k}" for k in range(len(g.states))]
            w(f"return ({', '.join(['OUT', *finals, *saved_names])},)")
        self.saved_names = saved_names
        lay.n_saved = len(saved_names)
        return w.lines

    def _bwd(self) -> list[str]:
        self.in_bwd = True
        g, lay = self.g, self.layout
        w = _Writer()
        gfs = [f"GF{k}" for k in range(len(g.states))]
        w("@jit")
        inputs = [self.name(v) for v in lay.q_values] + [f"P{j}" for j in range(len(lay.p_values))]
        inputs += [f"G{self.name(v)}" for v in lay.q_values] + self.saved_names + ["GOUT", *gfs]
        w(f"def bwd(L, rev, X, {', '.join(inputs)}):")
        direct_targets = set()
        for n in self.nodes:
            if id(n) in self.direct:
                direct_targets.add(self.adj_step(n.args[0]))
        with w.indent():
            w("T = X.shape[0]")
            w("B = GF0.shape[0]")
            # GOUT is (T, B, n), or one zero row (1, 1, n) when the outputs were not used
            w("GO = 1 if GOUT.shape[0] * GOUT.shape[1] > 1 else 0")
            zero_each_step = []
            for k in range(len(g.states)):
                w(f"gf{k} = GF{k}.copy()")
                w(f"GS{k} = np.empty((B, {g.states[k].cols}), {self.dt})")
                if f"GS{k}" not in direct_targets:
                    zero_each_step.append(f"GS{k}")
            shape_x = "X.shape" if lay.uses_x else "(1, 1, 1)"
            w(f"GX = np.zeros({shape_x}, {self.dt})")
            for j, v in enumerate(lay.p_values):
                if self._transposed(v):  # its gradient in its own (column-major) order
                    w(f"GP{j} = np.zeros((P{j}.shape[1], P{j}.shape[0]), {self.dt}).T")
                else:
                    w(f"GP{j} = np.zeros(P{j}.shape, {self.dt})")
            # gradients over all steps: each step's slice is zeroed when the step starts
            # (in cache, just before it is written) rather than the whole array up front
            full = [f"G{self.name(v)}" for v in lay.q_values]
            for kind, name, cols in self.store.values():
                if kind == "dz":
                    w(f"{name} = np.empty((T, B, {cols}), {self.dt})")
                    full.append(name)
                elif kind == "buf":
                    w(f"{name} = np.empty((B, {cols}), {self.dt})")
                    if name not in direct_targets:
                        zero_each_step.append(name)
            for n in self.nodes:
                if n.fn is L.MatMul and self.has_grad(n.args[0]):
                    left, right = n.args
                    j = n.outs[0].index
                    p = self.name(right)
                    w(f"TR{j} = {f'B >= {_TR_BATCH}' if self._big(n, backward=True) else 'False'}")
                    w(f"RT{j} = {p} if TR{j} else np.ascontiguousarray({p}.T)")
                    w(f"TMP{j} = np.empty(({left.cols}, B if TR{j} else 0), {self.dt})")
                    rows = "0" if id(n) in self.direct else f"0 if TR{j} else B"
                    w(f"TMPN{j} = np.empty(({rows}, {left.cols}), {self.dt})")
            scratch_at = len(w.lines)
            w("for s in range(T):")
            with w.indent():
                w("t = s if rev else T - 1 - s")
                if self.h_from_out:
                    w("tp = t + 1 if rev else t - 1")
                    w("hv = tp >= 0 and tp < T")
                for name in self.saved_names:
                    if name in ("OUT", "SH0"):
                        continue
                    if name.startswith("ST"):
                        w(f"st{name[2:]} = {name}[t]")
                    else:
                        w(f"{name[:-4]} = {name}[t]")
                for name in zero_each_step:
                    w(f"{name}[:] = ZERO")
                for name in full:
                    w(f"{name}[t][:] = ZERO")
                body = _Writer()
                for k, v in enumerate(g.outputs):
                    n_k = g.states[k].cols
                    target = self.adj(v, "k", n_k)
                    if target is None:
                        continue
                    seed = f"{self.rv(f'gf{k}[b]')}[k]"
                    if k == 0:
                        seed += f" + {self.rv('GOUT[t * GO, b * GO]')}[k]"
                    self._kloop(body, n_k, f"{target} += {seed}")
                self._row_loop(w, body, guard=True)
                self.emit_bwd(w)
                # the state adjoints computed by this step become the carried ones (the two
                # buffers swap), except for the rows of sequences that have not started yet
                w("for b in range(B):")
                with w.indent():
                    w("if t >= L[b]:")
                    with w.indent():
                        for k in range(len(g.states)):
                            w(f"GS{k}[b] = gf{k}[b]")
                for k in range(len(g.states)):
                    w(f"gf{k}, GS{k} = GS{k}, gf{k}")
            self._alloc_scratch(w, scratch_at)
            done: set[str] = set()
            for _, _, store, cols in self.colsums:
                if store in done:
                    continue
                done.add(store)
                w(f"CS{store} = np.zeros({cols}, {self.dt})")
                w("for t in range(T):")
                with w.indent():
                    w("for b in range(B):")
                    with w.indent():
                        w(f"row = {store}[t, b]")
                        self._kloop(w, cols, f"CS{store}[k] += row[k]")
            for grad, plus, store, cols in self.colsums:
                self._kloop(w, cols, f"{grad}[0, k] {'+' if plus else '-'}= CS{store}[k]")
            post = _Writer()  # the weight-gradient products, run by ``post``
            post.depth = 1
            for n in self.nodes:
                if n.fn is L.MatMul:
                    left, right = n.args
                    if not self.has_grad(right):
                        continue
                    K, N = right.shape
                    kind, name, _ = self.storage(n.outs[0])
                    gw = f"G{self.name(right)}"
                    if self.h_from_out and left is g.states[0]:
                        self._h_weight_grad(post, gw, name, K, N)
                        continue
                    post(
                        f"gemm({self.all_steps(left)}.reshape((T * B, "
                        f"{K})).T, {name}.reshape((T * B, {N})), {gw}, 1.0)"
                    )
            gq = [f"G{self.name(v)}" for v in lay.q_values]
            gp = [f"GP{j}" for j in range(len(lay.p_values))]
            gs = [f"gf{k}" for k in range(len(g.states))]
            lay.post_args = _free_names(post.lines)
            w(f"return ({', '.join(['GX', *gq, *gp, *gs, *lay.post_args])},)")
        self.post_lines = post.lines
        return w.lines

    def _post(self) -> list[str]:
        """``post``: the products for the weight gradients, ``G += A^T dZ`` over all steps, in
        place on arrays ``bwd`` returns. The runtime runs it outside the one-thread section of
        the loop, so with more BLAS threads these large products use them."""
        args = ", ".join(self.layout.post_args)
        return ["@jit", f"def post({args}):", *(self.post_lines or ["    pass"])]

    def _transposed(self, v: Value) -> bool:
        """Is ``v`` the transpose of a matrix made before the loop (``W.T``, column-major)? Its
        gradient is then made column-major too (``gemm`` fills it through its transpose), so
        the transpose's backward hands ``W`` a row-major gradient, like ``W``."""
        if v.kind != "op" or len(v.shape) != 2:
            return False
        node = self.g.nodes[v.index]
        return node.fn is M.Permute and tuple(d % 2 for d in node.kwargs["dims"]) == (1, 0)

    @staticmethod
    def _h_weight_grad(w: _Writer, gw: str, dz: str, K: int, N: int) -> None:
        """``gw += sum_t h_prev[t]^T dZ[t]`` with h_prev read from the outputs: one product of
        the outputs shifted by a step, plus the initial state's part (the first step of every
        sequence; in reverse, a sequence shorter than T starts at step L[b] - 1)."""
        w("if T > 1:")
        with w.indent():
            w("if rev:")
            with w.indent():
                w(f"gemm(OUT[1:].reshape(((T - 1) * B, {K})).T, "
                  f"{dz}[: T - 1].reshape(((T - 1) * B, {N})), {gw}, 1.0)")  # fmt: skip
            w("else:")
            with w.indent():
                w(f"gemm(OUT[: T - 1].reshape(((T - 1) * B, {K})).T, "
                  f"{dz}[1:].reshape(((T - 1) * B, {N})), {gw}, 1.0)")  # fmt: skip
        w(f"gemm(SH0.T, {dz}[T - 1 if rev else 0], {gw}, 1.0)")
        w("if rev:")
        with w.indent():
            w("for b in range(B):")
            with w.indent():
                w("lb = L[b]")
                w("if 0 < lb and lb < T:")
                with w.indent():
                    w(f"{gw} += np.outer(SH0[b], {dz}[lb - 1, b])")


def generate(g: StepGraph, header: str = "") -> tuple[str, Layout]:
    """Source of ``fwd``/``bwd`` for the analysed step graph ``g``, and how to call them."""
    gen = _Gen(g)
    return gen.source(header), gen.layout

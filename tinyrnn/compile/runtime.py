"""Running a compiled cell: program cache, the one-node-per-sequence op, and the fallback.

Programs are cached twice: in memory per generated source (its hash covers the cell's
structure, the dtype and the shape class, i.e. every size except the batch size and the
number of steps), and on disk, where the source is written once as
``<cache dir>/tinyrnn_cell_<hash>.py`` and Numba keeps its machine code next to it
(``cache=True``), so a second process loads the compiled code instead of compiling it again.
The cache folder is ``$TINYRNN_CACHE_DIR``, else ``~/.cache/tinyrnn/compiled``, else a folder
in the system's temporary directory.

Memory: the values computed before the loop (such as ``x W^T + b`` for all steps, (T, B, n))
are the largest arrays of a step. Intermediate tensors made there give up their payload as soon
as their last reader has run (``_release``: the graph keeps the tensor objects as inputs of
later nodes, but no backward reads them; an op that needs a value saved the array itself). The
loop's node keeps only those of its inputs its backward reads, and an input it does not read,
whose array nothing else holds, becomes the buffer its gradient is written into (``_take``),
so the backward allocates no new (T, B, n) array for it. The node turns ``materialize_grads``
off: when the outputs are not used (a loss on the final state only) its backward reads one zero
row instead of a (T, B, n) array of zeros. Peak memory of an LSTM training step (B=32, I=64,
H=128, T=1000, float32): 172 MiB, the projection (4 units of T*B*H floats), the saved values
(6 units: c before each step, 5 gate activations) and the outputs (1 unit, which also give h
before each step).

With ``TINYRNN_KERNELS=numpy`` or ``NUMBA_DISABLE_JIT=1`` the generated source runs as plain
Python (slow; for tests and debugging). The loops' products run on NumPy's OpenBLAS
(``kernels.gemm``) on one thread, as the sequence kernels do
(``kernels.seq_jit.one_blas_thread``); the products for the weight gradients over all steps
(the generated ``post``) run after the loop with the caller's BLAS threads, as the large
products around the sequence kernels do.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import Function
from ..kernels.seq_jit import one_blas_thread
from ..tensor import Tensor, stack, where
from . import codegen
from .trace import StepGraph, Unsupported, Value, trace_cell


class CompileWarning(UserWarning):
    """The cell compiler fell back to the unrolled graph; the message says why."""


def _python_mode() -> bool:
    return os.environ.get("TINYRNN_KERNELS", "").strip().lower() == "numpy" or os.environ.get(
        "NUMBA_DISABLE_JIT", "0"
    ) not in ("", "0")


def jit(fn):
    """Decorator used by generated sources: Numba with an on-disk cache, or plain Python."""
    if _python_mode():
        return fn
    import numba

    try:
        return numba.njit(cache=True, error_model="numpy")(fn)
    except RuntimeError:  # no writable cache locator
        return numba.njit(cache=False, error_model="numpy")(fn)


def cache_dir() -> Path:
    """Folder for generated sources and their Numba caches (created on first use).

    >>> from tinyrnn.compile import cache_dir
    >>> cache_dir().is_dir()
    True
    """
    candidates = [os.environ.get("TINYRNN_CACHE_DIR")]
    candidates.append(str(Path.home() / ".cache" / "tinyrnn" / "compiled"))
    candidates.append(os.path.join(tempfile.gettempdir(), "tinyrnn-compiled"))
    for c in candidates:
        if not c:
            continue
        path = Path(c)
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
            return path
        except OSError:
            continue
    raise RuntimeError("compile_cell: no writable folder for the compiled-cell cache")


def _kernel_version() -> str:
    """Hash of the helper kernels the generated code calls and of the generator and runtime
    (which decide what the code does and how it is called): a change invalidates the cache."""
    from ..kernels import gemm, seq_jit

    h = hashlib.sha256()
    for path in (seq_jit.__file__, gemm.__file__, codegen.__file__, __file__):
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:12]


_PROGRAMS: dict[str, tuple[Any, Any, Any]] = {}
STATS = {"traces": 0, "programs_built": 0, "programs_loaded": 0}


def load_program(source: str) -> tuple[Any, Any, Any, str]:
    """(fwd, bwd, post, digest) for a generated source, from memory, disk, or freshly made."""
    python = _python_mode()
    digest = hashlib.sha256(source.encode()).hexdigest()[:24]
    key = ("py:" if python else "nb:") + digest
    if key in _PROGRAMS:
        return (*_PROGRAMS[key], digest)
    name = f"tinyrnn_cell_{digest}"
    if python:
        namespace: dict[str, Any] = {"__name__": name}
        exec(compile(source, f"<{name}>", "exec"), namespace)  # noqa: S102 - our generated code
        fns = (namespace["fwd"], namespace["bwd"], namespace["post"])
    else:
        path = cache_dir() / f"{name}.py"
        if not path.exists() or path.read_text() != source:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(source)
            os.replace(tmp, path)  # atomic: a concurrent process sees the whole file or none
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        fns = (module.fwd, module.bwd, module.post)
    STATS["programs_built"] += 1
    _PROGRAMS[key] = fns
    return (*fns, digest)


class Program:
    """A compiled cell loop: the generated functions and how to call them."""

    def __init__(self, graph: StepGraph) -> None:
        header = (
            f"# tinyrnn compiled cell (dtype {graph.dtype}); generated, do not edit.\n"
            f"# generator, runtime and helper kernels {_kernel_version()}"
        )
        self.source, self.layout = codegen.generate(graph, header)
        self.fwd, self.bwd, self.post, self.digest = load_program(self.source)
        self.graph = graph
        self.dtype = graph.dtype


class CompiledLoop(Function):
    """The whole time loop of a compiled cell as one graph node.

    ``apply(x, *q, *p, *s, program=, lengths=None, reverse=False)`` with x (T, B, I), ``q``
    the values computed before the loop (T, B, n), ``p`` the invariants, ``s`` the initial
    state parts (B, n); returns ``(outputs (T, B, n_0), *final_state)``.
    """

    @staticmethod
    def forward(ctx, x, *args, program, lengths=None, reverse=False):
        lay = program.layout
        nq, n_p = len(lay.q_values), len(lay.p_values)
        dt = program.dtype
        X = np.ascontiguousarray(x, dtype=dt)
        T, B = X.shape[0], X.shape[1]
        qs = [np.ascontiguousarray(q, dtype=dt) for q in args[:nq]]
        ps = []
        for p, shape in zip(args[nq : nq + n_p], lay.p_shapes, strict=True):
            p = np.asarray(p)
            ps.append(
                np.ascontiguousarray(p.reshape(shape), dtype=p.dtype if p.dtype == bool else dt)
            )
        ss = [np.ascontiguousarray(s, dtype=dt) for s in args[nq + n_p :]]
        L = np.full(B, T, np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64)
        with one_blas_thread():
            res = program.fwd(L, bool(reverse), X, *qs, *ps, *ss)
        n_s = lay.n_states
        ctx.program, ctx.opts = program, (L, bool(reverse))
        ctx.set_materialize_grads(False)  # unused outputs: no (T, B, n) array of zeros
        ctx.shapes = [np.shape(p) for p in args[nq : nq + n_p]]
        # only the q the backward reads are kept (x W^T in x W^T + h U^T is not)
        kept = [q if read else None for q, read in zip(qs, lay.q_read, strict=True)]
        ctx.save_for_backward(X, kept, ps, res[1 + n_s :])
        return tuple(res[: 1 + n_s])

    @staticmethod
    def backward(ctx, grad_out, *grad_states):
        X, kept, ps, saved = ctx.saved_tensors
        program = ctx.program
        L, reverse = ctx.opts
        dt = program.dtype
        T, B = X.shape[0], X.shape[1]
        cols = [v.cols for v in program.graph.states]
        if grad_out is None:  # the kernel broadcasts one zero row
            gout = np.zeros((1, 1, cols[0]), dt)
        else:
            gout = np.ascontiguousarray(grad_out, dtype=dt)
        gss = [
            np.zeros((B, n), dt) if g is None else np.ascontiguousarray(g, dtype=dt)
            for g, n in zip(grad_states, cols, strict=True)
        ]
        bufs = getattr(ctx, "q_buffers", None) or [None] * len(program.layout.q_values)
        ctx.q_buffers = None  # a second backward (retain_graph) gets fresh arrays
        # the backward zeroes each step's slice of these itself
        gqs = [
            np.empty((T, B, v.cols), dt) if buf is None else buf
            for buf, v in zip(bufs, program.layout.q_values, strict=True)
        ]
        with one_blas_thread():
            none = np.empty((0, 0, 0), dt)
            qs = [none if q is None else q for q in kept]
            res = program.bwd(L, reverse, X, *qs, *ps, *gqs, *saved, gout, *gss)
        n_post = len(program.layout.post_args)
        if n_post:  # the weight-gradient products over all steps, with the caller's threads
            program.post(*res[len(res) - n_post :])
            res = res[: len(res) - n_post]
        nq, n_p = len(program.layout.q_values), len(ps)
        gx = res[0] if program.layout.uses_x else None
        gq = list(res[1 : 1 + nq])
        gp = [
            g.reshape(shape)
            for g, shape in zip(res[1 + nq : 1 + nq + n_p], ctx.shapes, strict=True)
        ]
        gs = list(res[1 + nq + n_p :])
        return (gx, *gq, *gp, *gs)


# ---- running a plan ----


def _evaluate(
    graph: StepGraph, program: Program, x: Tensor, states: list[Tensor], lengths, reverse
):
    T, B = x.shape[0], x.shape[1]
    env: dict[int, Any] = {}
    for v in graph.params:
        env[id(v)] = graph.param_tensors[v.index]
    for v in graph.consts:
        env[id(v)] = v.data

    def arg(v: Value) -> Any:
        return v.data if v.kind == "scalar" else env[id(v)]

    lay = program.layout
    env[id(graph.x)] = x.reshape(T * B, x.shape[2])
    pre = [node for node in graph.nodes if node.role != "loop"]
    keep = {id(v) for v in lay.q_values + lay.p_values}
    last: dict[int, int] = {}
    for i, node in enumerate(pre):
        for a in node.args:
            last[id(a)] = i
    made: set[int] = set()
    for i, node in enumerate(pre):
        out = node.fn.apply(*(arg(a) for a in node.args), **node.kwargs)
        outs = out if isinstance(out, tuple) else (out,)
        for v, o in zip(node.outs, outs, strict=True):
            env[id(v)] = o
            made.add(id(v))
        for a in node.args:
            if last.get(id(a)) == i and id(a) in made and id(a) not in keep:
                _release(env.pop(id(a)))
    qs = [env[id(v)].reshape(T, B, v.cols) for v in lay.q_values]
    ps = [arg(v) for v in lay.p_values]
    res = CompiledLoop.apply(
        x, *qs, *ps, *states, program=program, lengths=lengths, reverse=reverse
    )
    ctx = res[0]._ctx
    if ctx is not None:
        ctx.q_buffers = [
            _take(env[id(v)], q, program.dtype) if id(v) in made and not read else None
            for v, q, read in zip(lay.q_values, qs, lay.q_read, strict=True)
        ]
    return res


def _take(t: Tensor, q: Tensor, dtype: Any) -> np.ndarray | None:
    """Release the (T*B, n) tensor ``t`` made before the loop and its (T, B, n) reshape ``q``;
    return q's array for the backward to reuse as the gradient buffer of q when nothing else
    holds it (an op that saved it for its backward, a view of it), else None."""
    arr, view = t.data, q.data
    _release(t)
    _release(q)
    if not (
        isinstance(arr, np.ndarray)
        and arr.flags.owndata
        and arr.flags.c_contiguous
        and arr.dtype == dtype
        and view.base is arr
    ):
        return None
    # references: ``arr``, the argument of getrefcount, ``view.base``; ``view``, the argument
    if sys.getrefcount(arr) != 3 or sys.getrefcount(view) != 2:
        return None
    return view


def _release(t: Any) -> None:
    """Drop the payload of an intermediate tensor made before the loop, keeping its shape and
    dtype (a zero-stride view of one zero). The graph keeps such tensors as inputs of later
    nodes, but no backward reads them (an op that needs a value saves the array itself), so
    their memory would otherwise stay taken until the backward is done."""
    if isinstance(t, Tensor) and t.data.size > 1:
        t.data = np.broadcast_to(np.zeros((), t.data.dtype), t.data.shape)


class CompiledCell:
    """A cell together with its compiled time loop: ``tr.compile_cell(cell)``.

    Calling it runs the cell over a whole sequence: ``compiled(x, state, lengths=None,
    reverse=False) -> (outputs, final_state)`` with ``x`` (T, B, I) time-major, ``state`` a
    Tensor or tuple of Tensors of shape (B, n) (``None``: the cell's ``initial_state``), and
    ``outputs`` (T, B, n_0) the first state part of every step. The backward of the whole
    sequence is one node too. Cells the compiler cannot handle run as the unrolled graph,
    after a ``CompileWarning`` that says why.

    The first call for a new structure, dtype or shape class traces the cell (twice, on one
    step) and compiles it; later calls reuse the plan. Parameters are read at every call, so
    training updates and ``load_state_dict`` are seen; replacing a parameter object makes a
    new plan. Tracing calls the cell's ``forward`` twice on made-up inputs (of the real batch
    size and of one row more), so a cell should not count its calls or draw random numbers.

    >>> import tinyrnn as tr
    >>> from tinyrnn.compile import compile_cell
    >>> fast = compile_cell(tr.nn.GRUCell(3, 4))
    >>> out, h = fast(tr.randn(5, 2, 3))  # the cell's initial_state: zeros
    >>> out.shape, bool((out[-1] == h).all().item())
    ((5, 2, 4), True)
    """

    def __init__(self, cell: Any) -> None:
        if not callable(cell):
            raise TypeError(f"compile_cell: expected a cell (a Module), got {type(cell).__name__}")
        self.cell = cell
        self._plans: dict[tuple, Any] = {}
        self.last_reason: str | None = None

    def __repr__(self) -> str:
        return f"CompiledCell({type(self.cell).__name__})"

    def __getstate__(self) -> dict:
        # plans hold compiled functions and parameter references: copies and pickles start
        # without them and find their programs again in the cache
        return {"cell": self.cell}

    def __setstate__(self, state: dict) -> None:
        self.cell = state["cell"]
        self._plans = {}
        self.last_reason = None

    def _params(self) -> list[Any]:
        params = getattr(self.cell, "parameters", None)
        return list(params()) if params is not None else []

    def plan(self, x: Tensor, states: list[Tensor], tuple_state: bool) -> Program | None:
        """The compiled program for this input's dtype and shape class, or None (fallback)."""
        params = self._params()
        key = (
            str(x.dtype),
            x.shape[2:],
            tuple(s.shape[1:] for s in states),
            tuple_state,
            tuple(id(p) for p in params),
            getattr(self.cell, "training", None),
        )
        if key in self._plans:
            return self._plans[key]
        program = None
        try:
            if any(s.dtype != x.dtype for s in states):
                raise Unsupported(f"the state's dtype differs from the input's ({x.dtype})")
            STATS["traces"] += 1
            rng = np.random.default_rng(0)
            graph = trace_cell(
                self.cell,
                x.data[0].copy(),
                [s.data.copy() for s in states],
                tuple_state,
                params,
                rng,
            )
            program = Program(graph)
        except Unsupported as e:
            self.last_reason = str(e)
            warnings.warn(
                f"compile_cell: cannot compile {type(self.cell).__name__}: {e}; running the "
                "unrolled graph instead",
                CompileWarning,
                stacklevel=3,
            )
        self._plans[key] = program
        return program

    def run(self, x: Tensor, state: Any, lengths: Any = None, reverse: bool = False) -> Any:
        """Compiled ``(outputs, final_state)``, or None when the cell cannot be compiled."""
        tuple_state = isinstance(state, (tuple, list))
        states = list(state) if tuple_state else [state]
        if x.ndim != 3 or any(not isinstance(s, Tensor) or s.ndim != 2 for s in states):
            return None
        program = self.plan(x, states, tuple_state)
        if program is None:
            return None
        res = _evaluate(program.graph, program, x, states, lengths, reverse)
        final = tuple(res[1:]) if tuple_state else res[1]
        return res[0], final

    def __call__(self, x: Tensor, state: Any = None, lengths: Any = None, reverse: bool = False):
        if state is None:
            make = getattr(self.cell, "initial_state", None)
            if make is None:
                raise TypeError(
                    f"compile_cell: the cell {type(self.cell).__name__} has no "
                    "initial_state(batch_size) method; pass the initial state explicitly"
                )
            state = make(x.shape[1])
        res = self.run(x, state, lengths, reverse)
        if res is None:
            res = unroll(self.cell, x, state, lengths, reverse)
        return res


def unroll(cell: Any, x: Tensor, state: Any, lengths: Any = None, reverse: bool = False):
    """The unrolled graph (the fallback): ``state = cell(x[t], state)`` step by step, with
    the same lengths masks and output convention as the compiled loop.

    >>> import tinyrnn as tr
    >>> from tinyrnn.compile import unroll
    >>> out, h = unroll(tr.nn.RNNCell(3, 4), tr.randn(5, 2, 3), tr.zeros(2, 4), [5, 2])
    >>> out.shape, out[2:, 1].abs().sum().item()
    ((5, 2, 4), 0.0)
    """
    T = x.shape[0]
    tuple_state = isinstance(state, (tuple, list))
    L = None if lengths is None else np.asarray(lengths)
    outs: list[Any] = [None] * T
    for t in range(T - 1, -1, -1) if reverse else range(T):
        new = cell(x[t], tuple(state) if tuple_state else state)
        if L is not None:
            live = (L > t)[:, None]
            if tuple_state:
                new = tuple(where(live, a, b) for a, b in zip(new, state, strict=True))
            else:
                new = where(live, new, state)
        state = new
        h = state[0] if tuple_state else state
        outs[t] = h if L is None else where((L > t)[:, None], h, 0.0)
    return stack(outs, 0), state

"""Compiled custom cells: a cell written once from tinyrnn ops, run over a sequence at the speed
of a hand-written kernel.

``compile_cell(cell)`` traces one step of the cell into its op graph (the engine's own graph,
read through ``ctx.fn`` and ``ctx.parents``), splits it into what can be computed before the
time loop (everything that depends on ``x_t`` alone, such as ``x_t W^T``, done for all steps
as one matrix product) and what must run step by step, generates the forward loop and its
reverse-mode backward as Python source, and compiles that with Numba. The result is one graph
node for the whole sequence. Plans are cached per cell structure, dtype and shape class, in
memory and on disk (a second process skips the compile). A cell that uses an op the compiler
does not support runs as the ordinary unrolled graph, after a ``CompileWarning`` naming the op.

A cell written from tinyrnn ops (here the simplest one, an Elman cell):

>>> import tinyrnn as tr
>>> from tinyrnn.compile import compile_cell
>>> class Elman(tr.nn.Module):
...     def __init__(self, n_in, n):
...         super().__init__()
...         self.w = tr.nn.Parameter(tr.randn(n, n_in) * 0.3)
...         self.u = tr.nn.Parameter(tr.randn(n, n) * 0.3)
...     def forward(self, x, h):
...         return (x @ self.w.T + h @ self.u.T).tanh()
>>> fast = compile_cell(Elman(3, 4))
>>> out, h = fast(tr.randn(6, 2, 3), tr.zeros(2, 4))
>>> out.shape, h.shape, out.grad_fn.name
((6, 2, 4), (2, 4), 'CompiledLoop')

Here ``x @ w.T`` runs before the loop for all six steps at once; the loop itself is
``np.dot(h, u^T)`` and one fused pass for the ``tanh``, forward and backward.

Supported inside the time loop: ``+ - * / **``, ``neg exp log sqrt abs tanh sigmoid relu
clamp where``, ``(per-step value) @ (parameter matrix)``, column slices (``split``/``chunk``
on the last dim), ``cat`` and ``sum(keepdim=True)`` on the last dim, and the fused
``LSTMCellStep``/``GRUCellStep`` nodes of the built-in cells. Anything computed from
parameters alone (``W.T``, ``W * mask``, ...) may use any op.
"""

from __future__ import annotations

from .runtime import CompiledCell, CompileWarning, cache_dir, unroll
from .trace import Unsupported

__all__ = ["CompileWarning", "CompiledCell", "Unsupported", "cache_dir", "compile_cell", "unroll"]


def compile_cell(cell) -> CompiledCell:
    """Compile ``cell`` (a Module with ``forward(x, state) -> state``) for whole sequences.

    Returns a ``CompiledCell``: call it as ``compiled(x, state=None, lengths=None,
    reverse=False) -> (outputs, final_state)`` with ``x`` (T, B, I). See the module docstring;
    ``nn.Recurrent(cell, compile=True)`` does the same inside a layer.

    >>> import tinyrnn as tr
    >>> fast = compile_cell(tr.nn.LSTMCell(3, 4))
    >>> out, (h, c) = fast(tr.randn(5, 2, 3), lengths=[5, 3])
    >>> out.shape, out.grad_fn.name
    ((5, 2, 4), 'CompiledLoop')
    """
    return CompiledCell(cell)

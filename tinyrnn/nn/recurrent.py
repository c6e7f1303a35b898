"""Time: running a cell over a sequence. ``Recurrent``, ``Bidirectional`` and ``RNN/LSTM/GRU``.

Everything here reduces to one loop, ``unroll``: call the step function once per time step,
inside ``tr.scope(f"{name}.t{t}")`` so graph pictures and anomaly reports can name the step, and
mask finished sequences when lengths differ. Backpropagation through time is the engine's
ordinary backward over the unrolled graph; nothing in this file computes a gradient.

``RNN/LSTM/GRU`` stack such loops like PyTorch's layers: same arguments, parameter names
(``weight_ih_l0``, ..., ``_reverse``), shapes, gate order and init, so a PyTorch ``state_dict``
loads unchanged. Each direction of each layer runs through ``_RNNBase._run_direction``: by
default as ONE whole-sequence node (``ops.sequence``, whose kernels run the time loop and its
backward; ``tr.viz`` still draws it step by step), or through ``unroll`` with
``fused="step"``/``False`` and whenever ``stepcheck`` needs every step in the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np

from .._dtype import get_default_dtype
from ..autograd.stepcheck import STEP_PROBE
from ..compile import compile_cell
from ..engine import scope
from ..ops.movement import Unbind
from ..ops.sequence import GRUSequence, LSTMSequence, RNNSequence
from ..tensor import Tensor, cat, stack, where
from . import functional as F
from .cells import (
    _gru_recur,
    _lstm_recur,
    _rnn_recur,
    gru_step,
    lstm_step,
    reset_recurrent_parameters,
    rnn_step,
)
from .module import Module, Parameter

State = Tensor | tuple[Tensor, ...]
StepFn = Callable[[Tensor, Any], Any]

__all__ = ["GRU", "LSTM", "RNN", "Bidirectional", "Recurrent", "unroll"]

_SKIP = "skip"  # a step where every sequence of the batch has already ended


def unbind_time(x: Tensor) -> list[Tensor]:
    """Split a (T, ...) tensor into its T steps with a single graph node (``ops.movement.Unbind``;
    not T slicing nodes, whose backward would each allocate a full (T, ...) gradient).

    >>> import tinyrnn as tr
    >>> [s.shape for s in tr.nn.recurrent.unbind_time(tr.zeros(3, 2, 4))]
    [(2, 4), (2, 4), (2, 4)]
    """
    return list(Unbind.apply(x))


def _hidden(state: Any) -> Tensor:
    """The step output carried by a state: the state itself, or its first element."""
    return state if isinstance(state, Tensor) else state[0]


def _map_state(fn: Callable[..., Tensor], *states: Any) -> Any:
    if isinstance(states[0], Tensor):
        return fn(*states)
    return tuple(fn(*parts) for parts in zip(*states, strict=True))


def _masked(mask: np.ndarray, new: Any, old: Any) -> Any:
    """The new state for running sequences, the old one for those that have ended."""
    if isinstance(new, Tensor):
        return where(mask, new, old)
    return tuple(where(mask, a, b) for a, b in zip(new, old, strict=True))


def step_masks(lengths: np.ndarray | None, steps: int) -> list[Any] | None:
    """Per-step masks for a batch of sequence ``lengths``: None where every sequence is still
    running, ``"skip"`` where all have ended, else a (B, 1) bool array of the running ones."""
    if lengths is None:
        return None
    masks: list[Any] = []
    for t in range(steps):
        live = lengths > t
        masks.append(None if live.all() else _SKIP if not live.any() else live[:, None])
    return masks


def unroll(
    step: StepFn,
    inputs: Sequence[Tensor],
    state: Any,
    name: str,
    *,
    reverse: bool = False,
    masks: list[Any] | None = None,
) -> tuple[list[Tensor], Any]:
    """Run ``state = step(inputs[t], state)`` for every t (backwards when ``reverse``).

    The one time loop of tinyrnn. Step ``t`` runs inside ``tr.scope(f"{name}.t{t}")``. With
    ``masks`` (from ``step_masks``), a sequence that has ended keeps its state and outputs zeros,
    so the final state of each sequence is the state after its last real step; in reverse, a
    sequence starts at its own last step, as with PyTorch's packed sequences. For pictures, a
    step where ``k`` of the ``B`` sequences have ended also runs in ``tr.scope(f"pad={k}/{B}")``,
    and a step past every sequence's end computes only its zero output, in ``tr.scope("pad")``
    (``tr.viz`` greys such steps out).

    Args:
        step: ``(x_t, state) -> state``; a state is a Tensor or a tuple of Tensors whose first
            element is the step's output.
        inputs: the T inputs, each (B, ...).
        state: the initial state.
        name: the layer name used in scopes (``"lstm.l0"``).

    Returns:
        ``(outputs, final_state)``, outputs in time order (not processing order).

    >>> import tinyrnn as tr
    >>> outs, h = tr.nn.recurrent.unroll(lambda x, h: h + x, [tr.ones(1)] * 3, tr.zeros(1), "acc")
    >>> [o.item() for o in outs], outs[-1].grad_fn
    ([1.0, 2.0, 3.0], None)
    """
    n = len(inputs)
    outputs: list[Any] = [None] * n
    probe = STEP_PROBE.get()
    for t in range(n - 1, -1, -1) if reverse else range(n):
        mask = None if masks is None else masks[t]
        if mask is _SKIP:  # every sequence has ended: zeros, drawn as a padding step
            h = _hidden(state)
            with scope(f"{name}.t{t}"), scope("pad"):
                outputs[t] = where(np.zeros((), bool), h, 0.0)
            continue
        pad = nullcontext() if mask is None else scope(f"pad={int((~mask).sum())}/{len(mask)}")
        with scope(f"{name}.t{t}"), pad:
            state_in = state if probe is None else probe.enter(name, t, state)
            new = step(inputs[t], state_in)
            if probe is not None:
                probe.exit(name, t)
            if mask is None:
                state = new
                outputs[t] = _hidden(new)
            else:
                state = _masked(mask, new, state_in)
                outputs[t] = where(mask, _hidden(new), 0.0)
    return outputs, state


# ---- input checks shared by the modules ----


def _lengths_array(owner: str, lengths: Any, batch: int, steps: int) -> np.ndarray | None:
    if lengths is None:
        return None
    arr = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(
            f"{owner}: lengths must be a 1-D sequence of ints (one per batch item), got "
            f"{arr.dtype} array of shape {arr.shape}"
        )
    if arr.shape[0] != batch:
        raise ValueError(
            f"{owner}: lengths has {arr.shape[0]} entries but the batch has {batch} sequences"
        )
    if arr.size and (arr.min() < 0 or arr.max() > steps):
        bad = int(arr[(arr < 0) | (arr > steps)][0])
        raise ValueError(
            f"{owner}: lengths must be between 0 and the sequence length {steps}; got {bad} "
            f"in {arr.tolist()}"
        )
    return arr.astype(np.int64)


def _time_major(owner: str, x: Any, batch_first: bool) -> tuple[Tensor, bool]:
    """(T, B, ...) view of the input, and whether it was unbatched (T, I)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner}: expected the input to be a Tensor, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(
            f"{owner}: expected input of shape (T, B, I) (or (B, T, I) with batch_first, or "
            f"(T, I) unbatched), got {x.shape}"
        )
    unbatched = x.ndim == 2
    if unbatched:
        x = x.unsqueeze(1)
    elif batch_first:
        x = x.transpose(0, 1)
    if x.shape[0] == 0:
        raise ValueError(f"{owner}: the input has no time steps (shape {x.shape})")
    return x, unbatched


def _batch_major(y: Tensor, batch_first: bool, unbatched: bool) -> Tensor:
    if unbatched:
        return y.squeeze(1)
    return y.transpose(0, 1) if batch_first else y


_STATE_NAMES = ("h0", "c0")


def _zero_state(shape: tuple[int, ...], dtype: Any, n_states: int) -> tuple[Tensor, ...]:
    """Zero initial states ``h0`` (and ``c0`` when ``n_states`` is 2), named, so pictures
    label them."""
    return tuple(Tensor(np.zeros(shape, dtype), name=n) for n in _STATE_NAMES[:n_states])


def _initial_state(owner: str, cell: Any, batch: int) -> Any:
    """The cell's ``initial_state(batch)``, its unnamed parts named ``h0``, ``c0`` (then
    ``state0_2``, ...) for pictures."""
    make = getattr(cell, "initial_state", None)
    if make is None:
        raise TypeError(
            f"{owner}: the cell {type(cell).__name__} has no initial_state(batch_size) method, "
            "so state=None cannot be filled in; pass the initial state explicitly: "
            "rec(x, state)"
        )
    state = make(batch)
    parts = (state,) if isinstance(state, Tensor) else state
    for k, part in enumerate(parts):
        if isinstance(part, Tensor) and part.name is None and part.grad_fn is None:
            part.name = _STATE_NAMES[k] if k < len(_STATE_NAMES) else f"state0_{k}"
    return state


# ---- running any cell ----


class Recurrent(Module):
    """Run a cell over a sequence: the unrolled graph, whose backward is BPTT.

    A cell is any Module with ``forward(x, state) -> state`` (a Tensor, or a tuple of Tensors
    whose first element is the output of the step), and, optionally,
    ``initial_state(batch_size)``.

    Args:
        cell: the cell, built-in (``nn.LSTMCell``, ...) or user-written.
        batch_first: input and outputs are (B, T, ...) instead of (T, B, ...).
        reverse: run from the last step to the first (outputs stay in time order).
        name: layer name for the per-step scopes (``f"{name}.t{t}"``); defaults to the cell's
            class name in lower case.
        compile: run the whole sequence as one compiled node (``tinyrnn.compile``): the cell
            is traced once and its time loop and backward are compiled with Numba; a cell the
            compiler cannot handle runs unrolled, after a ``CompileWarning`` that says why.

    Call: ``rec(x, state=None, lengths=None) -> (outputs, final_state)``; ``x`` (T, B, I), or
    (T, I) for one unbatched sequence; ``outputs`` (T, B, H) stacks each step's output; with
    ``lengths``, outputs past a sequence's end are zero and its final state is the state after
    its last step.

    >>> import tinyrnn as tr
    >>> class MinimalRNN(tr.nn.Module):
    ...     def __init__(self, n):
    ...         super().__init__()
    ...         self.w = tr.nn.Parameter(tr.randn(n, n) * 0.1)
    ...     def forward(self, x, h):
    ...         return (x + h @ self.w).tanh()
    >>> rec = tr.nn.Recurrent(MinimalRNN(4))
    >>> out, h = rec(tr.randn(6, 2, 4), tr.zeros(2, 4))
    >>> out.shape, h.shape
    ((6, 2, 4), (2, 4))
    """

    def __init__(
        self,
        cell: Module,
        batch_first: bool = False,
        reverse: bool = False,
        name: str | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if not callable(cell):
            raise TypeError(f"Recurrent: expected a cell (a Module), got {type(cell).__name__}")
        self.cell = cell
        self.batch_first = bool(batch_first)
        self.reverse = bool(reverse)
        self.name = name or type(cell).__name__.lower()
        self.compiled = compile_cell(cell) if compile else None

    def extra_repr(self) -> str:
        flags = [f"batch_first={self.batch_first}"] if self.batch_first else []
        return ", ".join(flags + (["reverse=True"] if self.reverse else []))

    def forward(self, x: Tensor, state: Any = None, lengths: Any = None) -> tuple[Tensor, Any]:
        owner = f"Recurrent({type(self.cell).__name__})"
        xs, unbatched = _time_major(owner, x, self.batch_first)
        steps, batch = xs.shape[0], xs.shape[1]
        if state is None:
            state = _initial_state(owner, self.cell, batch)
        elif unbatched:
            state = _map_state(lambda s: s.unsqueeze(0), state)
        lengths_arr = _lengths_array(owner, lengths, batch, steps)
        res = None
        if self.compiled is not None and STEP_PROBE.get() is None:
            with scope(self.name):
                res = self.compiled.run(xs, state, lengths_arr, self.reverse)
        if res is None:
            masks = step_masks(lengths_arr, steps)
            outs, final = unroll(
                self.cell, unbind_time(xs), state, self.name, reverse=self.reverse, masks=masks
            )
            seq = stack(outs, 0)
        else:
            seq, final = res
        y = _batch_major(seq, self.batch_first, unbatched)
        if unbatched:
            final = _map_state(lambda s: s.squeeze(0), final)
        return y, final


class Bidirectional(Module):
    """Two cells over the same sequence, one forward and one backward in time.

    Call: ``bi(x, state=None, lengths=None) -> (outputs, (final_forward, final_backward))``;
    ``outputs`` concatenates both directions' outputs on the last dimension, aligned in time
    (the backward direction's output at step t has read x[t:]); ``state`` is None or a pair
    ``(forward_state, backward_state)``. With ``lengths`` the backward direction of each
    sequence starts at that sequence's own last step.

    >>> import tinyrnn as tr
    >>> bi = tr.nn.Bidirectional(tr.nn.GRUCell(3, 4), tr.nn.GRUCell(3, 5))
    >>> out, (hf, hb) = bi(tr.randn(7, 2, 3))
    >>> out.shape, hf.shape, hb.shape
    ((7, 2, 9), (2, 4), (2, 5))
    """

    def __init__(
        self,
        forward_cell: Module,
        backward_cell: Module,
        batch_first: bool = False,
        name: str | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        name = name or type(forward_cell).__name__.lower()
        self.forward_rnn = Recurrent(
            forward_cell, batch_first, reverse=False, name=name, compile=compile
        )
        self.backward_rnn = Recurrent(
            backward_cell, batch_first, reverse=True, name=name + "_reverse", compile=compile
        )

    def forward(self, x: Tensor, state: Any = None, lengths: Any = None) -> tuple[Tensor, Any]:
        if state is None:
            fwd_state = bwd_state = None
        elif isinstance(state, (tuple, list)) and len(state) == 2:
            fwd_state, bwd_state = state
        else:
            raise TypeError(
                "Bidirectional: state must be None or a pair (forward_state, backward_state), "
                f"got {type(state).__name__}"
            )
        out_f, final_f = self.forward_rnn(x, fwd_state, lengths)
        out_b, final_b = self.backward_rnn(x, bwd_state, lengths)
        return cat([out_f, out_b], -1), (final_f, final_b)


# ---- PyTorch-style sequence layers ----


class _RNNBase(Module):
    """Stacked, optionally bidirectional recurrent layers with PyTorch's parameters."""

    gates = 1
    gate_names: tuple[str, ...] = ()
    n_states = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        fused: bool = True,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        for what, v in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{owner}: {what} must be a positive int, got {v!r}")
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, (int, float))
            or not 0 <= dropout <= 1
        ):
            raise ValueError(f"{owner}: dropout must be a probability in [0, 1], got {dropout!r}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        if fused not in (True, False, "step", "sequence"):
            raise ValueError(
                f"{owner}: fused must be True, 'step', 'sequence' or False, got {fused!r}"
            )
        self.fused = fused
        self.scope_name = owner.lower()
        dirs = 2 if self.bidirectional else 1
        g = self.gates * self.hidden_size
        dtype = get_default_dtype()
        self._names: list[tuple[str, ...]] = []
        for k in range(self.num_layers):
            in_k = self.input_size if k == 0 else self.hidden_size * dirs
            for sfx in ("", "_reverse")[:dirs]:
                shapes: dict[str, tuple[int, ...]] = {
                    f"weight_ih_l{k}{sfx}": (g, in_k),
                    f"weight_hh_l{k}{sfx}": (g, self.hidden_size),
                }
                if self.bias:
                    shapes.update({f"bias_ih_l{k}{sfx}": (g,), f"bias_hh_l{k}{sfx}": (g,)})
                for pname, shape in shapes.items():
                    setattr(self, pname, Parameter(np.empty(shape, dtype)))
                names = tuple(shapes) if self.bias else (*shapes, "", "")
                self._names.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Redraw every parameter from U(-1/sqrt(H), 1/sqrt(H)), PyTorch's default."""
        reset_recurrent_parameters(self, self.hidden_size)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for flag, default in (
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
        ):
            if getattr(self, flag) != default:
                s += f", {flag}={getattr(self, flag)}"
        return s

    # ---- the math of one step, given this layer's parameters (subclasses) ----

    def _step(self, x: Tensor, state: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any) -> Any:
        """One whole step (``cells.*_step``) from the input x_t (B, I)."""
        raise NotImplementedError

    def _recur(self, gi: Tensor, state: Any, w_hh_t: Tensor, b_hh: Any) -> Any:
        """The same step from its input projection gi = x_t W_ih^T + b_ih (``cells._*_recur``)."""
        raise NotImplementedError

    def _weights(self, index: int) -> tuple[Any, Any, Any, Any]:
        return tuple(getattr(self, n) if n else None for n in self._names[index])  # type: ignore[return-value]

    def _run_direction(
        self,
        index: int,
        name: str,
        x: Tensor,
        state: Any,
        lengths: np.ndarray | None,
        reverse: bool,
    ) -> tuple[Tensor, Any]:
        """One direction of one layer over the whole sequence: x (T, B, I) -> outputs
        (T, B, H) and the final state.

        ``fused=True`` (the default) or ``"sequence"``: one whole-sequence node
        (``_run_sequence``). Otherwise the per-step unroll: the input projection
        x_t W_ih^T + b_ih does not depend on the state, so it is one product for all steps (in
        scope ``name``), and W_hh is transposed once; each step then adds the recurrent part and
        applies the gates (in one fused node per step, or op by op with ``fused=False``). Under
        ``stepcheck`` the per-step path runs whatever ``fused`` says, and every step computes
        everything from the parameters, so that each step's copy of them can be swapped in."""
        if self.fused in (True, "sequence") and STEP_PROBE.get() is None:
            return self._run_sequence(index, name, x, state, lengths, reverse)
        masks = step_masks(lengths, x.shape[0])
        if STEP_PROBE.get() is not None:
            weights = self._weights

            def step(x_t: Tensor, s: Any) -> Any:
                return self._step(x_t, s, *weights(index))

            outs, final = unroll(step, unbind_time(x), state, name, reverse=reverse, masks=masks)
        else:
            w_ih, w_hh, b_ih, b_hh = self._weights(index)
            steps, batch = x.shape[0], x.shape[1]
            with scope(name):
                gi = x.reshape(steps * batch, x.shape[2]) @ w_ih.T
                gi = (gi if b_ih is None else gi + b_ih).reshape(steps, batch, w_ih.shape[0])
                w_hh_t = w_hh.T

            def recur(gi_t: Tensor, s: Any) -> Any:
                return self._recur(gi_t, s, w_hh_t, b_hh)

            outs, final = unroll(recur, unbind_time(gi), state, name, reverse=reverse, masks=masks)
        return stack(outs, 0), final

    def _run_sequence(
        self, index: int, name: str, x: Tensor, state: Any, lengths: Any, reverse: bool
    ) -> tuple[Tensor, Any]:
        """One direction of one layer as ONE graph node (``ops.sequence``): the time loop runs in
        one compiled kernel call forward and one backward, with the numbers of the per-step path.
        The node is in scope ``name``; it describes its steps (``ctx.sequence``) so that
        ``tr.viz`` draws one cell per step, in scopes ``f"{name}.t{t}"``."""
        w_ih, w_hh, b_ih, b_hh = self._weights(index)
        opts = {"lengths": lengths, "reverse": reverse}
        with scope(name):
            if self.n_states == 2:
                out, h, c = LSTMSequence.apply(x, *state, w_ih, w_hh, b_ih, b_hh, **opts)
                return out, (h, c)
            if self.gates == 3:
                return GRUSequence.apply(x, state, w_ih, w_hh, b_ih, b_hh, **opts)
            return RNNSequence.apply(
                x, state, w_ih, w_hh, b_ih, b_hh, nonlinearity=self.nonlinearity, **opts
            )

    # ---- checks ----

    def _hidden_parts(self, hx: Any, batch: int, unbatched: bool) -> list[Tensor] | None:
        owner = type(self).__name__
        if hx is None:
            return None
        parts = (hx,) if self.n_states == 1 else hx
        if self.n_states == 2 and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(
                f"{owner}: expected hx to be a tuple (h_0, c_0), got {type(hx).__name__}"
            )
        if self.n_states == 1 and not isinstance(hx, Tensor):
            raise TypeError(f"{owner}: expected hx to be a Tensor, got {type(hx).__name__}")
        lead = self.num_layers * (2 if self.bidirectional else 1)
        want = (lead, self.hidden_size) if unbatched else (lead, batch, self.hidden_size)
        out = []
        for label, p in zip(("h_0", "c_0"), parts, strict=False):
            if not isinstance(p, Tensor):
                raise TypeError(f"{owner}: expected {label} to be a Tensor, got {type(p).__name__}")
            if p.shape != want:
                raise ValueError(
                    f"{owner}: expected hidden state {label} of shape {want} "
                    f"(num_layers * num_directions, {'' if unbatched else 'batch, '}hidden_size), "
                    f"got {p.shape}"
                )
            out.append(p.unsqueeze(1) if unbatched else p)
        return out

    def forward(self, input: Tensor, hx: Any = None, lengths: Any = None) -> tuple[Tensor, Any]:
        """Run the layers; see the class docstring for shapes."""
        owner = type(self).__name__
        x, unbatched = _time_major(owner, input, self.batch_first)
        if x.ndim != 3:
            raise ValueError(
                f"{owner}: expected input of 2 (unbatched) or 3 dimensions, got shape {input.shape}"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{owner}: input.size(-1) must be equal to input_size: expected "
                f"{self.input_size}, got {x.shape[-1]} (input shape {input.shape})"
            )
        steps, batch = x.shape[0], x.shape[1]
        h0 = self._hidden_parts(hx, batch, unbatched)
        lengths_arr = _lengths_array(owner, lengths, batch, steps)
        dirs = 2 if self.bidirectional else 1
        finals: list[Any] = []
        layer_in = x
        for k in range(self.num_layers):
            if k > 0 and self.dropout > 0 and self.training:
                layer_in = F.dropout(layer_in, self.dropout, True)
            outs = []
            for d in range(dirs):
                index = k * dirs + d
                if h0 is None:
                    state: Any = _zero_state(
                        (batch, self.hidden_size), self.weight_hh_l0.dtype, self.n_states
                    )
                    state = state[0] if self.n_states == 1 else state
                else:
                    state = h0[0][index] if self.n_states == 1 else (h0[0][index], h0[1][index])
                name = f"{self.scope_name}.l{k}{'_reverse' if d else ''}"
                out, final = self._run_direction(index, name, layer_in, state, lengths_arr, d == 1)
                outs.append(out)
                finals.append(final)
            layer_in = outs[0] if dirs == 1 else cat(outs, -1)
        y = _batch_major(layer_in, self.batch_first, unbatched)
        parts = [
            [f if isinstance(f, Tensor) else f[j] for f in finals] for j in range(self.n_states)
        ]
        # one layer and direction: a reshape, cheaper than a one-element stack
        h_n: Any = tuple(p[0].unsqueeze(0) if len(p) == 1 else stack(p, 0) for p in parts)
        if unbatched:
            h_n = tuple(h.squeeze(1) for h in h_n)
        return y, h_n[0] if self.n_states == 1 else h_n


class RNN(_RNNBase):
    """Elman RNN layers: ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``, act tanh or
    relu.

    Args:
        input_size: I, features of the input.
        hidden_size: H, features of the hidden state.
        num_layers: L, layers stacked (layer k > 0 reads layer k - 1's outputs).
        nonlinearity: ``'tanh'`` or ``'relu'``.
        bias: whether each layer has ``bias_ih_l{k}`` and ``bias_hh_l{k}``.
        batch_first: input and output are (B, T, feature) instead of (T, B, feature).
        dropout: dropout probability on each layer's output except the last, when training.
        bidirectional: D = 2 directions per layer, outputs concatenated on the last dimension.
        fused: ``True`` (the default) or ``"sequence"``: each layer and direction runs as one
            node for the whole sequence (``ops.sequence``, fastest; pictures still show one
            cell per step); ``"step"`` or ``False``: one node per op and step (an RNN step has
            no gates to fuse).

    Parameters (PyTorch's names, shapes and U(-1/sqrt(H), 1/sqrt(H)) init): ``weight_ih_l{k}``
    (H, I for k = 0 else D*H), ``weight_hh_l{k}`` (H, H), ``bias_ih_l{k}`` and
    ``bias_hh_l{k}`` (H,); the backward direction's names end in
    ``_reverse``.

    Call: ``forward(input, hx=None, lengths=None) -> (output, h_n)``. ``input`` (T, B, I), or
    (T, I) for one unbatched sequence; ``hx`` ``h_0`` (L*D, B, H), zeros when omitted; ``lengths``
    one int per batch item, in any order: outputs past a sequence's end are zero and its final
    state is the state after its last real step. ``output`` (T, B, D*H); h_n (L*D, B, H).
    Layer k runs in ``tr.scope(f"rnn.l{k}")`` (``rnn.l{k}_reverse``), step t of it in
    ``tr.scope(f"rnn.l{k}.t{t}")`` on the per-step paths; pictures name the steps so on
    every path.

    >>> import tinyrnn as tr
    >>> rnn = tr.nn.RNN(3, 5, num_layers=2)
    >>> out, h_n = rnn(tr.randn(7, 2, 3))
    >>> out.shape, h_n.shape
    ((7, 2, 5), (2, 2, 5))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        fused: bool = True,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, fused
        )
        self.nonlinearity = nonlinearity

    def _step(self, x, state, w_ih, w_hh, b_ih, b_hh):
        return rnn_step(x, state, w_ih, w_hh, b_ih, b_hh, self.nonlinearity)

    def _recur(self, gi, state, w_hh_t, b_hh):
        return _rnn_recur(gi, state, w_hh_t, b_hh, self.nonlinearity)


class LSTM(_RNNBase):
    """Long short-term memory layers; each step is ``cells.lstm_step``.

    Args:
        input_size: I, features of the input.
        hidden_size: H, features of the hidden state.
        num_layers: L, layers stacked (layer k > 0 reads layer k - 1's outputs).
        bias: whether each layer has ``bias_ih_l{k}`` and ``bias_hh_l{k}``.
        batch_first: input and output are (B, T, feature) instead of (T, B, feature).
        dropout: dropout probability on each layer's output except the last, when training.
        bidirectional: D = 2 directions per layer, outputs concatenated on the last dimension.
        fused: ``True`` (the default) or ``"sequence"``: one node per layer and direction for
            the whole sequence (``ops.sequence``, fastest; pictures still show one cell per
            step); ``"step"``: one fused node per step for the gates and the cell update;
            ``False``: op by op, every gate in the graph.

    Parameters (PyTorch's names, shapes and U(-1/sqrt(H), 1/sqrt(H)) init): ``weight_ih_l{k}``
    (4H, I for k = 0 else D*H), ``weight_hh_l{k}`` (4H, H), ``bias_ih_l{k}`` and
    ``bias_hh_l{k}`` (4H,), rows in gate order i, f, g, o; the backward direction's names end
    in ``_reverse``.

    Call: ``forward(input, hx=None, lengths=None) -> (output, (h_n, c_n))``. ``input``
    (T, B, I), or (T, I) for one unbatched sequence; ``hx`` ``(h_0, c_0)``, each (L*D, B, H),
    zeros when omitted; ``lengths`` one int per batch item, in any order: outputs past a
    sequence's end are zero and its final state is the state after its last real step.
    ``output`` (T, B, D*H); (h_n, c_n) (L*D, B, H). Layer k runs in ``tr.scope(f"lstm.l{k}")``
    (``lstm.l{k}_reverse``), step t of it in ``tr.scope(f"lstm.l{k}.t{t}")`` on the per-step
    paths; pictures name the steps so on every path.

    >>> import tinyrnn as tr
    >>> lstm = tr.nn.LSTM(3, 5, batch_first=True, bidirectional=True)
    >>> out, (h_n, c_n) = lstm(tr.randn(2, 7, 3), lengths=[7, 4])
    >>> out.shape, h_n.shape, out[1, 4:].abs().sum().item()
    ((2, 7, 10), (2, 2, 5), 0.0)
    """

    gates = 4
    gate_names = ("i", "f", "g", "o")
    n_states = 2

    def _step(self, x, state, w_ih, w_hh, b_ih, b_hh):
        return lstm_step(x, state, w_ih, w_hh, b_ih, b_hh, self.fused)

    def _recur(self, gi, state, w_hh_t, b_hh):
        return _lstm_recur(gi, state, w_hh_t, b_hh, self.fused)


class GRU(_RNNBase):
    """Gated recurrent unit layers; each step is ``cells.gru_step``.

    Args:
        input_size: I, features of the input.
        hidden_size: H, features of the hidden state.
        num_layers: L, layers stacked (layer k > 0 reads layer k - 1's outputs).
        bias: whether each layer has ``bias_ih_l{k}`` and ``bias_hh_l{k}``.
        batch_first: input and output are (B, T, feature) instead of (T, B, feature).
        dropout: dropout probability on each layer's output except the last, when training.
        bidirectional: D = 2 directions per layer, outputs concatenated on the last dimension.
        fused: ``True`` (the default) or ``"sequence"``: one node per layer and direction for
            the whole sequence (``ops.sequence``, fastest; pictures still show one cell per
            step); ``"step"``: one fused node per step for the gates and the update; ``False``:
            op by op, every gate in the graph.

    Parameters (PyTorch's names, shapes and U(-1/sqrt(H), 1/sqrt(H)) init): ``weight_ih_l{k}``
    (3H, I for k = 0 else D*H), ``weight_hh_l{k}`` (3H, H), ``bias_ih_l{k}`` and
    ``bias_hh_l{k}`` (3H,), rows in gate order r, z, n; the backward direction's names end
    in ``_reverse``.

    Call: ``forward(input, hx=None, lengths=None) -> (output, h_n)``. ``input`` (T, B, I), or
    (T, I) for one unbatched sequence; ``hx`` ``h_0`` (L*D, B, H), zeros when omitted; ``lengths``
    one int per batch item, in any order: outputs past a sequence's end are zero and its final
    state is the state after its last real step. ``output`` (T, B, D*H); h_n (L*D, B, H).
    Layer k runs in ``tr.scope(f"gru.l{k}")`` (``gru.l{k}_reverse``), step t of it in
    ``tr.scope(f"gru.l{k}.t{t}")`` on the per-step paths; pictures name the steps so on
    every path.

    >>> import tinyrnn as tr
    >>> gru = tr.nn.GRU(3, 5)
    >>> out, h_n = gru(tr.randn(7, 3))  # unbatched
    >>> out.shape, h_n.shape
    ((7, 5), (1, 5))
    """

    gates = 3
    gate_names = ("r", "z", "n")

    def _step(self, x, state, w_ih, w_hh, b_ih, b_hh):
        return gru_step(x, state, w_ih, w_hh, b_ih, b_hh, self.fused)

    def _recur(self, gi, state, w_hh_t, b_hh):
        return _gru_recur(gi, state, w_hh_t, b_hh, self.fused)

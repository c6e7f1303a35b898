"""Recurrent cells: one time step of math each, with PyTorch's parameters, shapes and gate order.

A cell maps ``(x_t, state_{t-1})`` to ``state_t`` and knows nothing about time: running it over a
sequence is ``nn.Recurrent``'s job, and backpropagation through time is what the engine does on
the unrolled graph. The step functions (``rnn_step``, ``lstm_step``, ``gru_step``) are the math;
the cell classes hold the parameters and check shapes. The sequence layers (``nn.RNN/LSTM/GRU``)
run a whole sequence as one node by default (``ops.sequence``, the same numbers) and call these
step functions with their own parameters when asked for a per-step graph (``fused="step"`` or
``fused=False``).

``fused=True`` (the default) does the gate non-linearities and the state update of an LSTM or GRU
step in one node (``ops.fused.LSTMCellStep`` / ``GRUCellStep``, Numba kernels forward and
backward); ``fused=False`` builds every gate op by op, so a graph picture shows each gate. Both
give the same numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._dtype import get_default_dtype
from ..ops.fused import GRUCellStep, LSTMCellStep
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

State = Tensor | tuple[Tensor, ...]

__all__ = ["GRUCell", "LSTMCell", "RNNCell", "gru_step", "lstm_step", "rnn_step"]


# ---- the math of one step ----


def _affine(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    y = x @ w.T
    return y if b is None else y + b


# Each step below is ``*_recur(x W_ih^T + b_ih, state, W_hh^T, b_hh)``: the input projection
# does not depend on the state, so a layer can compute it for every step in one product and
# transpose W_hh once, then call the same ``*_recur`` per step.


def _recurrent_part(h: Tensor, w_hh_t: Tensor, b_hh: Tensor | None) -> Tensor:
    y = h @ w_hh_t
    return y if b_hh is None else y + b_hh


def _rnn_recur(gi: Tensor, h: Tensor, w_hh_t: Tensor, b_hh: Any, nonlinearity: str) -> Tensor:
    pre = gi + _recurrent_part(h, w_hh_t, b_hh)
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def _lstm_recur(gi: Tensor, state: Any, w_hh_t: Tensor, b_hh: Any, fused: bool) -> Any:
    h, c = state
    gates = gi + _recurrent_part(h, w_hh_t, b_hh)
    if fused:
        return LSTMCellStep.apply(gates, c)
    i, f, g, o = gates.chunk(4, 1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c_new = f * c + i * g
    return o * c_new.tanh(), c_new


def _gru_recur(gi: Tensor, h: Tensor, w_hh_t: Tensor, b_hh: Any, fused: bool) -> Tensor:
    gh = _recurrent_part(h, w_hh_t, b_hh)
    if fused:
        return GRUCellStep.apply(gi, gh, h)
    i_r, i_z, i_n = gi.chunk(3, 1)
    h_r, h_z, h_n = gh.chunk(3, 1)
    r = (i_r + h_r).sigmoid()
    z = (i_z + h_z).sigmoid()
    n = (i_n + r * h_n).tanh()
    return (1 - z) * n + z * h


def rnn_step(
    x: Tensor,
    h: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    nonlinearity: str = "tanh",
) -> Tensor:
    """Elman RNN step: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``, act = tanh or relu.

    Shapes: ``x`` (B, I), ``h`` (B, H), ``w_ih`` (H, I), ``w_hh`` (H, H), biases (H,) or None;
    result (B, H).

    >>> import tinyrnn as tr
    >>> w = tr.zeros(2, 3)
    >>> tr.nn.cells.rnn_step(tr.ones(1, 3), tr.ones(1, 2), w, tr.eye(2), None, None).shape
    (1, 2)
    """
    return _rnn_recur(_affine(x, w_ih, b_ih), h, w_hh.T, b_hh, nonlinearity)


def lstm_step(
    x: Tensor,
    state: tuple[Tensor, Tensor],
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    fused: bool = True,
) -> tuple[Tensor, Tensor]:
    """LSTM step, gates in PyTorch's order i, f, g, o::

        [i, f, g, o] = x W_ih^T + b_ih + h W_hh^T + b_hh       (each (B, H))
        i, f, o = sigmoid(i, f, o);  g = tanh(g)
        c' = f * c + i * g;  h' = o * tanh(c')

    Shapes: ``x`` (B, I), ``state = (h, c)`` both (B, H), ``w_ih`` (4H, I), ``w_hh`` (4H, H),
    biases (4H,) or None; returns ``(h', c')``.

    >>> import tinyrnn as tr
    >>> h = c = tr.zeros(1, 2)
    >>> w_ih, w_hh = tr.ones(8, 3), tr.ones(8, 2)
    >>> h1, c1 = tr.nn.cells.lstm_step(tr.ones(1, 3), (h, c), w_ih, w_hh, None, None)
    >>> round(h1.tolist()[0][0], 4)
    0.7038
    """
    return _lstm_recur(_affine(x, w_ih, b_ih), state, w_hh.T, b_hh, fused)


def gru_step(
    x: Tensor,
    h: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    fused: bool = True,
) -> Tensor:
    """GRU step, gates in PyTorch's order r, z, n (PyTorch's formulation, ``r`` applied to
    ``h W_hn^T + b_hn``)::

        [gi_r, gi_z, gi_n] = x W_ih^T + b_ih;  [gh_r, gh_z, gh_n] = h W_hh^T + b_hh
        r = sigmoid(gi_r + gh_r);  z = sigmoid(gi_z + gh_z);  n = tanh(gi_n + r * gh_n)
        h' = (1 - z) * n + z * h

    Shapes: ``x`` (B, I), ``h`` (B, H), ``w_ih`` (3H, I), ``w_hh`` (3H, H), biases (3H,) or
    None; result (B, H).

    >>> import tinyrnn as tr
    >>> w_ih, w_hh = tr.zeros(6, 3), tr.zeros(6, 2)
    >>> h1 = tr.nn.cells.gru_step(tr.ones(1, 3), tr.ones(1, 2), w_ih, w_hh, None, None)
    >>> h1.tolist()  # z = 1/2, n = 0: halfway from h to 0
    [[0.5, 0.5]]
    """
    return _gru_recur(_affine(x, w_ih, b_ih), h, w_hh.T, b_hh, fused)


# ---- cells: parameters, shape checks, initial state ----


def _empty(*shape: int) -> Parameter:
    return Parameter(np.empty(shape, dtype=get_default_dtype()))


def reset_recurrent_parameters(module: Module, hidden_size: int) -> None:
    """PyTorch's default init of recurrent cells and layers: every parameter ~ U(-k, k) with
    k = 1/sqrt(hidden_size)."""
    bound = 1.0 / math.sqrt(hidden_size)
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


def _check_size(name: str, what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name}: {what} must be a positive int, got {value!r}")
    return int(value)


class _CellBase(Module):
    """Parameters ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``/``bias_hh`` (G*H,)
    and the input/state checks shared by the three cells."""

    gate_names: tuple[str, ...] = ()
    n_states = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool, fused: bool) -> None:
        super().__init__()
        name = type(self).__name__
        self.input_size = _check_size(name, "input_size", input_size)
        self.hidden_size = _check_size(name, "hidden_size", hidden_size)
        self.bias = bool(bias)
        self.fused = bool(fused)
        g = max(len(self.gate_names), 1) * self.hidden_size
        self.weight_ih = _empty(g, self.input_size)
        self.weight_hh = _empty(g, self.hidden_size)
        if self.bias:
            self.bias_ih = _empty(g)
            self.bias_hh = _empty(g)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Redraw every parameter from U(-1/sqrt(H), 1/sqrt(H)), PyTorch's default."""
        reset_recurrent_parameters(self, self.hidden_size)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s

    def initial_state(self, batch_size: int | None = None) -> State:
        """Zeros of shape (batch_size, H) (or (H,) for ``None``, unbatched), one per state part.

        >>> import tinyrnn as tr
        >>> h, c = tr.nn.LSTMCell(3, 2).initial_state(4)
        >>> h.shape, c.shape
        ((4, 2), (4, 2))
        """
        shape = (self.hidden_size,) if batch_size is None else (int(batch_size), self.hidden_size)
        zeros = [Tensor(np.zeros(shape, self.weight_hh.dtype)) for _ in range(self.n_states)]
        return zeros[0] if self.n_states == 1 else tuple(zeros)

    def _prepare(self, x: Any, state: Any) -> tuple[Tensor, tuple[Tensor, ...], bool]:
        """Check shapes; return the input as (B, I), the state parts as (B, H), and whether the
        call is unbatched."""
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected the input to be a Tensor, got {type(x).__name__}")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{name}: expected input of shape (batch, {self.input_size}) or "
                f"({self.input_size},), got {x.shape}"
            )
        unbatched = x.ndim == 1
        if unbatched:
            x = x.reshape(1, self.input_size)
        batch = x.shape[0]
        if state is None:
            parts = self.initial_state(batch)
            parts = (parts,) if isinstance(parts, Tensor) else parts
            return x, parts, unbatched
        parts = (state,) if self.n_states == 1 and isinstance(state, Tensor) else state
        if not isinstance(parts, (tuple, list)) or len(parts) != self.n_states:
            what = (
                "a Tensor" if self.n_states == 1 else f"a tuple of {self.n_states} Tensors (h, c)"
            )
            raise TypeError(f"{name}: expected the state to be {what}, got {type(state).__name__}")
        want = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
        out = []
        for k, s in enumerate(parts):
            if not isinstance(s, Tensor):
                raise TypeError(f"{name}: state part {k} must be a Tensor, got {type(s).__name__}")
            if s.shape != want:
                raise ValueError(
                    f"{name}: expected state of shape {want} for input of shape "
                    f"{(self.input_size,) if unbatched else x.shape}, got {s.shape}"
                )
            out.append(s.reshape(1, self.hidden_size) if unbatched else s)
        return x, tuple(out), unbatched

    def _params(self) -> tuple[Any, Any, Any, Any]:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh


def _squeeze(t: Tensor, unbatched: bool) -> Tensor:
    return t.reshape(t.shape[1:]) if unbatched else t


class RNNCell(_CellBase):
    """Elman RNN cell: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)`` with act tanh or relu.

    Args:
        input_size: I, features of the input.
        hidden_size: H, features of the hidden state.
        bias: whether to use ``bias_ih`` and ``bias_hh``.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        fused: accepted for symmetry with the gated cells (an RNN step has no gates to fuse).

    Parameters: ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias_ih`` (H,), ``bias_hh`` (H,),
    all drawn from U(-1/sqrt(H), 1/sqrt(H)) as in PyTorch.

    Call: ``cell(x, state=None) -> h'``; ``x`` (B, I) or (I,), ``state`` (B, H) or (H,) (zeros
    when omitted).

    >>> import tinyrnn as tr
    >>> cell = tr.nn.RNNCell(3, 4)
    >>> h = cell(tr.ones(2, 3))
    >>> h = cell(tr.ones(2, 3), h)
    >>> h.shape
    (2, 4)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        fused: bool = True,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        super().__init__(input_size, hidden_size, bias, fused)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + ", nonlinearity='relu'"

    def forward(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        x, (h,), unbatched = self._prepare(x, state)
        return _squeeze(rnn_step(x, h, *self._params(), self.nonlinearity), unbatched)


class LSTMCell(_CellBase):
    """Long short-term memory cell (Hochreiter & Schmidhuber 1997, with a forget gate)::

        [i, f, g, o] = x W_ih^T + b_ih + h W_hh^T + b_hh
        c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(c')

    Args:
        input_size: I; hidden_size: H; bias: use the two bias vectors.
        fused: one fused node per step for the gates and the cell update (default), or op by op.

    Parameters: ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias_ih`` and ``bias_hh`` (4H,),
    rows in gate order i, f, g, o, drawn from U(-1/sqrt(H), 1/sqrt(H)) as in PyTorch.

    Call: ``cell(x, (h, c)=None) -> (h', c')``; ``x`` (B, I) or (I,), ``h``, ``c`` (B, H) or (H,).

    >>> import tinyrnn as tr
    >>> cell = tr.nn.LSTMCell(3, 4)
    >>> h, c = cell(tr.ones(2, 3))
    >>> h, c = cell(tr.ones(2, 3), (h, c))
    >>> h.shape, c.shape
    ((2, 4), (2, 4))
    """

    gate_names = ("i", "f", "g", "o")
    n_states = 2

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, fused: bool = True):
        super().__init__(input_size, hidden_size, bias, fused)

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        x, hc, unbatched = self._prepare(x, state)
        h, c = lstm_step(x, (hc[0], hc[1]), *self._params(), fused=self.fused)
        return _squeeze(h, unbatched), _squeeze(c, unbatched)


class GRUCell(_CellBase):
    """Gated recurrent unit cell (Cho et al. 2014), as PyTorch computes it::

        r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
        z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
        n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
        h' = (1 - z) * n + z * h

    Args:
        input_size: I; hidden_size: H; bias: use the two bias vectors.
        fused: one fused node per step for the gates and the update (default), or op by op.

    Parameters: ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih`` and ``bias_hh`` (3H,),
    rows in gate order r, z, n, drawn from U(-1/sqrt(H), 1/sqrt(H)) as in PyTorch.

    Call: ``cell(x, state=None) -> h'``; ``x`` (B, I) or (I,), ``state`` (B, H) or (H,).

    >>> import tinyrnn as tr
    >>> cell = tr.nn.GRUCell(3, 4)
    >>> cell(tr.ones(3)).shape
    (4,)
    """

    gate_names = ("r", "z", "n")

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, fused: bool = True):
        super().__init__(input_size, hidden_size, bias, fused)

    def forward(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        x, (h,), unbatched = self._prepare(x, state)
        return _squeeze(gru_step(x, h, *self._params(), fused=self.fused), unbatched)

"""Truncated backpropagation through time: train on a long stream in windows of k steps.

Full BPTT over a stream of N steps keeps the whole unrolled graph (every step's saved arrays)
alive until backward: memory grows with N. Truncated BPTT (Williams & Peng 1990; the
``hprev`` of min-char-rnn, ``h.detach()`` in PyTorch scripts) cuts the stream into windows of
k steps. Each window runs forward from the state the previous window ended in, then backward
through its own k steps only, then frees its graph. The state's *value* crosses the boundary,
its *gradient* does not:

    state = s_0
    for window w = x[i*k : (i+1)*k]:
        loss_i, state = step(w, state)     # forward: the graph of k steps
        loss_i.backward()                  # gradient through these k steps only
        state = detach_state(state)        # keep the value, cut the graph
        (optimizer step)

So memory is that of k steps whatever N is, and the gradient of window i is that of
``loss_i`` with the incoming state held constant. With k = N there is a single window and the
result is exactly full BPTT. ``truncated_bptt`` runs this loop; ``time_windows`` and
``detach_state`` are its two parts, for writing the loop by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..tensor import Tensor

__all__ = ["detach_state", "time_windows", "truncated_bptt"]


def detach_state(state: Any) -> Any:
    """The same state (a Tensor, a tuple/list of them, nested, or None) cut from the graph.

    >>> import tinyrnn as tr
    >>> h = tr.ones(2, requires_grad=True) * 2
    >>> h2, c2 = tr.nn.detach_state((h, h))
    >>> h2.requires_grad, h2.tolist()
    (False, [2.0, 2.0])
    """
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    raise TypeError(
        f"detach_state: expected a Tensor or a tuple/list of Tensors, got {type(state).__name__}"
    )


def _length(owner: str, stream: Any, dim: int) -> int:
    shape = np.shape(stream.data if isinstance(stream, Tensor) else stream)
    if not -len(shape) <= dim < len(shape):
        raise ValueError(f"{owner}: time dimension {dim} is out of range for shape {shape}")
    return int(shape[dim])


def time_windows(*streams: Any, k: int, dim: int = 0) -> Iterator[tuple[Any, ...]]:
    """Slice every stream into consecutive windows of ``k`` steps along ``dim`` (the last
    window may be shorter). Streams are Tensors or arrays of equal length along ``dim``.

    >>> import tinyrnn as tr
    >>> x, y = tr.zeros(10, 1, 3), tr.zeros(10, 1)
    >>> [(a.shape[0], b.shape[0]) for a, b in tr.nn.time_windows(x, y, k=4)]
    [(4, 4), (4, 4), (2, 2)]
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"time_windows: k must be a positive int, got {k!r}")
    if not streams:
        raise ValueError("time_windows: expected at least one stream")
    lengths = [_length("time_windows", s, dim) for s in streams]
    if len(set(lengths)) != 1:
        raise ValueError(
            f"time_windows: streams must have the same length along dim {dim}, got {lengths}"
        )
    ndims = [np.ndim(s.data if isinstance(s, Tensor) else s) for s in streams]
    for start in range(0, lengths[0], int(k)):
        window = slice(start, start + int(k))
        index = [(slice(None),) * (dim % n) + (window,) for n in ndims]
        yield tuple(s[i] for s, i in zip(streams, index, strict=True))


def truncated_bptt(
    step: Callable[..., tuple[Tensor, Any]],
    *streams: Any,
    k: int,
    state: Any = None,
    dim: int = 0,
) -> Iterator[Tensor]:
    """Truncated BPTT over long streams: for each window of ``k`` steps, run
    ``loss, state = step(*window, state)``, backpropagate ``loss`` through that window only,
    detach the state for the next window, and yield the loss (detached).

    Gradients accumulate into the parameters' ``.grad`` as usual: step the optimizer (and zero
    the gradients) in the loop body. With ``k`` equal to the stream length this is full BPTT.

    Args:
        step: ``(*windows, state) -> (loss, new_state)``; ``state`` is None for the first window.
        streams: Tensors or arrays (inputs, targets) of equal length along ``dim``.
        k: window length in steps.
        state: the initial state (None lets the model choose its own).
        dim: the time dimension of the streams (1 for batch-first data).

    >>> import tinyrnn as tr
    >>> rnn, head = tr.nn.GRU(1, 8), tr.nn.Linear(8, 1)
    >>> opt = tr.optim.SGD([*rnn.parameters(), *head.parameters()], lr=0.1)
    >>> x = tr.randn(100, 1, 1); y = x * 0.5
    >>> def step(xw, yw, h):
    ...     out, h = rnn(xw, h)
    ...     return ((head(out) - yw) ** 2).mean(), h
    >>> losses = []
    >>> for loss in tr.nn.truncated_bptt(step, x, y, k=25):
    ...     opt.step(); opt.zero_grad(); losses.append(loss.item())
    >>> len(losses)
    4
    """
    for window in time_windows(*streams, k=k, dim=dim):
        loss, state = step(*window, state)
        if not isinstance(loss, Tensor):
            raise TypeError(
                f"truncated_bptt: step must return (loss, state) with a Tensor loss, got "
                f"{type(loss).__name__}"
            )
        if loss.requires_grad:
            loss.backward()
        state = detach_state(state)
        value = loss.detach()
        del loss, window  # hold nothing of this window's graph while the caller runs
        yield value

"""``stepcheck``: a gradient check through an unrolled sequence that says *where* it fails.

``gradcheck`` on a recurrent function answers pass or fail for a whole weight matrix, whose
gradient is a sum over every time step. ``stepcheck`` splits it by step. While the module runs,
every step of every unroll (``nn.Recurrent``, ``nn.Bidirectional``, ``nn.RNN/LSTM/GRU``: each
step runs in ``tr.scope(f"{layer}.t{t}")``) gets

- its own copy of every parameter, a separate leaf, so the analytic gradient of that copy is the
  step's contribution ``dL/dW_t`` (the full gradient is ``sum_t dL/dW_t``);
- a zero tensor ``z_t`` added to the state entering the step, whose gradient is ``dL/ds_t``.

The checked scalar is ``L = sum <u, output>`` with random weights ``u``. Numerically, perturbing
only step t's copy of W (or only ``z_t``) along a random direction ``v`` and running the whole
sequence again gives ``(L(+eps v) - L(-eps v)) / 2 eps``, compared with ``<dL/dW_t, v>``.

Steps are checked in the order backward visits them (the last step first). A wrong backward
formula at step k corrupts the gradient of every step before k but of none after it, so the
first step that disagrees in this order is where the bug is. The error names the layer, the
step, the scope, each parameter that disagrees there (and, for parameters whose rows are
stacked gates, such as ``weight_ih`` with gates i, f, g, o, which gate), and whether the
gradient of the incoming state disagrees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, NamedTuple

import numpy as np

from ..engine import no_grad
from ..tensor import Tensor
from .gradcheck import GradcheckError

__all__ = ["STEP_PROBE", "StepcheckError", "stepcheck"]

# Read by ``nn.recurrent.unroll`` at every step: ``enter(layer, t, state) -> state`` before the
# step's math and ``exit(layer, t)`` after it. None outside ``stepcheck``.
STEP_PROBE: ContextVar[Any] = ContextVar("tinyrnn_step_probe", default=None)


class StepcheckError(GradcheckError):
    """Raised by ``stepcheck``; says where analytic and numerical gradients first disagree.

    Attributes: ``layer`` (the layer name of the scope), ``step`` (the time index t),
    ``parameters`` (names of the parameters that disagree at that step), ``gates`` (for each of
    them, the gates that disagree, when the parameter has stacked gate rows), ``state`` (whether
    the gradient of the state entering the step disagrees).
    """

    def __init__(
        self,
        message: str,
        layer: str,
        step: int,
        parameters: list[str],
        gates: dict[str, list[str]],
        state: bool,
    ):
        super().__init__(message)
        self.layer, self.step, self.parameters = layer, step, parameters
        self.gates, self.state = gates, state


class _Slot(NamedTuple):
    name: str  # dotted name in the checked module
    owner: Any  # the module that holds it
    attr: str
    param: Tensor  # the original parameter
    gates: tuple[str, ...]  # gate names of the owner's stacked rows, or ()


def _slots(module: Any) -> list[_Slot]:
    slots, seen = [], set()
    for mname, mod in module.named_modules():
        gates = tuple(getattr(mod, "gate_names", ()) or ())
        for attr, p in mod._parameters.items():
            if p is not None and p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                slots.append(_Slot(f"{mname}.{attr}" if mname else attr, mod, attr, p, gates))
    return slots


def _parts(state: Any) -> tuple[Tensor, ...]:
    return (state,) if isinstance(state, Tensor) else tuple(state)


def _rebuild(state: Any, parts: list[Tensor]) -> Any:
    return parts[0] if isinstance(state, Tensor) else tuple(parts)


class _Probe:
    """Counts step visits; ``(layer, t, n)`` names the n-th visit of step t of ``layer``."""

    def __init__(self, slots: list[_Slot]):
        self.slots = slots
        self.visits: dict[tuple[str, int], int] = {}

    def _key(self, layer: str, t: int) -> tuple[str, int, int]:
        n = self.visits.get((layer, t), 0)
        self.visits[(layer, t)] = n + 1
        return (layer, t, n)

    def restore(self) -> None:
        for s in self.slots:
            s.owner._parameters[s.attr] = s.param

    def exit(self, layer: str, t: int) -> None:
        self.restore()


class _Recorder(_Probe):
    """Analytic run: a fresh leaf per parameter and a zero leaf per state part, at every step."""

    def __init__(self, slots: list[_Slot]):
        super().__init__(slots)
        self.order: list[tuple[str, int, int]] = []
        self.copies: dict[tuple[str, int, int], dict[str, Tensor]] = {}
        self.zeros: dict[tuple[str, int, int], list[Tensor]] = {}

    def enter(self, layer: str, t: int, state: Any) -> Any:
        key = self._key(layer, t)
        self.order.append(key)
        copies = {}
        for s in self.slots:
            copies[s.name] = s.owner._parameters[s.attr] = Tensor(s.param.data, requires_grad=True)
        self.copies[key] = copies
        parts = _parts(state)
        zs = [Tensor(np.zeros(p.shape, p.dtype), requires_grad=True) for p in parts]
        self.zeros[key] = zs
        return _rebuild(state, [p + z for p, z in zip(parts, zs, strict=True)])


class _Perturber(_Probe):
    """Numerical run: add ``delta`` to one parameter (or one state part) at one step only."""

    def __init__(self, slots: list[_Slot], key: tuple[str, int, int], target: Any, delta: Any):
        super().__init__(slots)
        self.key, self.target, self.delta = key, target, delta

    def enter(self, layer: str, t: int, state: Any) -> Any:
        if self._key(layer, t) != self.key:
            return state
        if isinstance(self.target, int):  # a state part
            parts = list(_parts(state))
            parts[self.target] = parts[self.target] + Tensor(self.delta)
            return _rebuild(state, parts)
        s = self.target
        s.owner._parameters[s.attr] = Tensor(s.param.data + self.delta)
        return state


def _flatten(out: Any) -> list[Tensor]:
    flat, stack = [], [out]
    while stack:
        item = stack.pop()
        if isinstance(item, Tensor):
            flat.append(item)
        elif isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
    return flat


def _leaves(roots: list[Tensor]) -> set[int]:
    """ids of the leaf tensors the graph behind ``roots`` reads (an iterative walk)."""
    seen: set[int] = set()
    leaves: set[int] = set()
    stack: list[Any] = [r._ctx for r in roots if r._ctx is not None]
    while stack:
        ctx = stack.pop()
        if id(ctx) in seen:
            continue
        seen.add(id(ctx))
        for p in ctx.parents:
            if isinstance(p, Tensor):
                if p._ctx is None:
                    leaves.add(id(p))
                else:
                    stack.append(p._ctx)
    return leaves


def _run(fn: Callable[[], Any], probe: _Probe) -> Any:
    token = STEP_PROBE.set(probe)
    try:
        return fn()
    finally:
        STEP_PROBE.reset(token)
        probe.restore()


def _gate_blocks(slot: _Slot) -> Iterator[tuple[str, slice]]:
    gates = slot.gates
    rows = slot.param.shape[0] if slot.param.ndim else 0
    if len(gates) > 1 and rows and rows % len(gates) == 0:
        size = rows // len(gates)
        for j, g in enumerate(gates):
            yield g, slice(j * size, (j + 1) * size)


def stepcheck(
    module: Any,
    *args: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    **kwargs: Any,
) -> bool:
    """Check ``module(*args, **kwargs)``'s gradients step by step through its unrolled sequence.

    Args:
        module: a Module that unrolls a sequence (``nn.Recurrent(cell)``, ``nn.Bidirectional``,
            ``nn.RNN/LSTM/GRU``, or a model containing them); its parameters should be float64.
        args, kwargs: passed to the module (the input sequence, the initial state, lengths).
        eps, atol, rtol: step and tolerances, as ``gradcheck``: a check passes where
            ``|analytic - numerical| <= atol + rtol * |numerical|``.
        seed: seeds the random output weights and directions.

    Returns:
        True. Raises ``StepcheckError`` naming the first step (in backward order), the parameter,
        the gate and the state where analytic and numerical gradients disagree.

    >>> import tinyrnn as tr
    >>> rec = tr.nn.Recurrent(tr.nn.GRUCell(2, 3)).double()
    >>> tr.autograd.stepcheck(rec, tr.randn(4, 1, 2, dtype=tr.float64))
    True
    """
    slots = _slots(module)
    rng = np.random.default_rng(seed)

    def call() -> list[Tensor]:
        return _flatten(module(*args, **kwargs))

    recorder = _Recorder(slots)
    outs = _run(call, recorder)
    if not recorder.order:
        raise ValueError(
            f"stepcheck: {type(module).__name__} ran no recurrent steps; pass a module that "
            "unrolls a sequence (nn.Recurrent(cell), nn.Bidirectional, nn.RNN/LSTM/GRU)"
        )
    weights = [rng.standard_normal(o.shape).astype(o.dtype) for o in outs]
    tracked = [(o, w) for o, w in zip(outs, weights, strict=True) if o.requires_grad]
    used = _leaves([o for o, _ in tracked])
    terms = [(o * Tensor(w)).sum() for o, w in tracked]
    if terms:
        loss = terms[0]
        for term in terms[1:]:
            loss = loss + term
        loss.backward()

    def objective(probe: _Probe) -> float:
        with no_grad():
            res = _run(call, probe)
        return float(sum(np.sum(w * o.data) for w, o in zip(weights, res, strict=True)))

    def compare(
        key: Any, target: Any, grad: np.ndarray, v: np.ndarray
    ) -> tuple[float, float, bool]:
        plus = objective(_Perturber(slots, key, target, eps * v))
        minus = objective(_Perturber(slots, key, target, -eps * v))
        numeric = (plus - minus) / (2 * eps)
        analytic = float(np.sum(grad * v))
        return analytic, numeric, abs(analytic - numeric) <= atol + rtol * abs(numeric)

    for key in reversed(recorder.order):
        layer, t, _ = key
        problems: list[str] = []
        bad_params: list[str] = []
        bad_gates: dict[str, list[str]] = {}
        for s in slots:
            copy = recorder.copies[key][s.name]
            if id(copy) not in used:
                continue
            grad = np.zeros_like(s.param.data) if copy.grad is None else copy.grad.data
            v = rng.standard_normal(s.param.shape)
            analytic, numeric, ok = compare(key, s, grad, v)
            if ok:
                continue
            bad_params.append(s.name)
            gates = []
            for gate, rows in _gate_blocks(s):
                masked = np.zeros_like(v)
                masked[rows] = v[rows]
                if not compare(key, s, grad, masked)[2]:
                    gates.append(gate)
            bad_gates[s.name] = gates
            where = f" (gate{'s' if len(gates) > 1 else ''} {', '.join(gates)})" if gates else ""
            problems.append(
                f"parameter {s.name!r}{where}: analytic {analytic:.10g}, numerical {numeric:.10g}"
            )
        bad_state = False
        for k, z in enumerate(recorder.zeros[key]):
            grad = np.zeros(z.shape, z.dtype) if z.grad is None else z.grad.data
            v = rng.standard_normal(z.shape)
            analytic, numeric, ok = compare(key, k, grad, v)
            if not ok:
                bad_state = True
                problems.append(
                    f"state entering the step (part {k}): analytic {analytic:.10g}, "
                    f"numerical {numeric:.10g}"
                )
        if problems:
            raise StepcheckError(
                f"stepcheck: analytic and numerical gradients first disagree at step t={t} of "
                f"layer {layer!r} (scope {layer}.t{t}; the steps that backward visits before it "
                "agree), along random directions: " + "; ".join(problems),
                layer,
                t,
                bad_params,
                bad_gates,
                bad_state,
            )
    return True

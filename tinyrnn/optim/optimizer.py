"""``Optimizer``: the base class of every optimiser, with PyTorch's ``param_groups``, ``state``,
``zero_grad`` and ``state_dict``/``load_state_dict`` contract.

Subclasses describe one update in ``_update(p, grad, state, group)`` on NumPy arrays, in the
parameter's dtype and in place (``p.data`` keeps its identity, as PyTorch's ``param.add_``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..engine import enable_grad
from ..tensor import Tensor


class _Required:
    """Marks a hyperparameter without a default (SGD's ``lr`` in old PyTorch)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()

# keys a learning-rate scheduler adds to a group, accepted by load_state_dict on any optimizer
_SCHEDULER_KEYS = ("initial_lr",)


def _check_hyper(
    opt: str,
    name: str,
    value: Any,
    low: float = 0.0,
    high: float | None = None,
    open_high: bool = False,
) -> None:
    """Raise ``ValueError`` naming the optimiser unless ``low <= value`` (and ``< / <= high``)."""
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = not math.isnan(v) and v >= low
        if ok and high is not None:
            ok = v < high if open_high else v <= high
    if not ok:
        bound = f">= {low}" if high is None else f"in [{low}, {high}{')' if open_high else ']'}"
        raise ValueError(f"{opt}: invalid {name} {value!r}; expected a number {bound}")


class Optimizer:
    """Base class: holds parameter groups and per-parameter state; subclasses define the update.

    Args:
        params: an iterable of tensors, or of dicts ``{"params": [...], **hyperparameters}``
            (parameter groups, each overriding the defaults).
        defaults: the hyperparameters of every group that does not set its own.

    >>> import tinyrnn as tr
    >>> w = tr.nn.Parameter(tr.ones(2))
    >>> opt = tr.optim.SGD([w], lr=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step(); opt.zero_grad()
    >>> w.tolist(), w.grad
    ([0.0, 0.0], None)
    """

    # state entries holding arrays of the parameter's shape; checked by load_state_dict
    _array_state: tuple[str, ...] = ()
    _scalar_state: tuple[str, ...] = ()

    def __init__(self, params: Any, defaults: dict[str, Any]):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name}: params should be an iterable of Tensors or dicts, but got a Tensor; "
                "wrap it in a list"
            )
        if isinstance(params, Mapping) or not isinstance(params, Iterable):
            raise TypeError(
                f"{name}: params should be an iterable of Tensors or dicts, got "
                f"{type(params).__name__}"
            )
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError(
                f"{name}: optimizer got an empty parameter list; pass model.parameters() of a "
                "model that has parameters"
            )
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (the defaults fill the rest)."""
        name = type(self).__name__
        if not isinstance(param_group, Mapping):
            raise TypeError(
                f"{name}: a parameter group must be a dict, got {type(param_group).__name__}"
            )
        group = dict(param_group)
        if "params" not in group:
            raise ValueError(f"{name}: a parameter group needs a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{name}: optimizer got an empty parameter list in a parameter group")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (shape {p.shape})")
            if p.dtype.kind != "f":
                raise TypeError(f"{name}: can only optimize floating tensors, got dtype {p.dtype}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter group contains the same parameter twice")
        group["params"] = params
        for k, v in self.defaults.items():
            if v is required and k not in group:
                raise ValueError(
                    f"{name}: parameter group didn't specify a value of required "
                    f"optimization parameter {k}"
                )
            group.setdefault(k, v)
        self._validate(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)
        for p in params:
            self._init_state(p, group)

    def _validate(self, group: dict[str, Any]) -> None:
        """Check a group's hyperparameters (overridden by subclasses)."""

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> None:
        """Create state eagerly when an optimiser needs it (Adagrad's accumulator)."""

    def _update(
        self, p: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _update()")

    # ---- the training-loop API ----

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (default) or to zeros."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.data = np.zeros_like(p.grad.data)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` when given.

        ``closure`` (optional) recomputes the loss with gradients enabled, as in PyTorch.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        states = self.state
        for group in self.param_groups:
            maximize = group.get("maximize", False)
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad, data = p.grad.data, p.data
                if grad.shape != data.shape:
                    raise RuntimeError(
                        f"{type(self).__name__}.step: gradient of shape {grad.shape} for a "
                        f"parameter of shape {data.shape}"
                    )
                if grad.dtype != data.dtype:
                    grad = grad.astype(data.dtype)
                if maximize:
                    grad = -grad
                state = states.get(p)
                if state is None:
                    state = states[p] = {}
                self._update(data, grad, state, group)
        return loss

    # ---- checkpoints ----

    def state_dict(self) -> dict[str, Any]:
        """The optimiser's state as plain data (arrays copied), in PyTorch's layout.

        ``{"state": {index: {name: array or number}}, "param_groups": [{hyperparameters,
        "params": [index, ...]}]}``, where indices number the parameters in group order.
        """
        index: dict[int, int] = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in g["params"]]
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {
                        k: (v.copy() if isinstance(v, np.ndarray) else v)
                        for k, v in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``: every entry is validated (group sizes, parameter indices,
        state names, shapes) before anything changes; arrays are cast to each parameter's dtype.
        """
        name = type(self).__name__
        where = f"{name}.load_state_dict"
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
            got = (
                sorted(state_dict) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            )
            raise ValueError(
                f"{where}: expected a dict with keys 'state' and 'param_groups', got {got}"
            )
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{where}: loaded state dict has {len(saved_groups)} parameter group(s), the "
                f"optimizer has {len(self.param_groups)}"
            )
        params: dict[int, Tensor] = {}
        new_groups = []
        known = set(self.defaults) | set(_SCHEDULER_KEYS)
        for k, (g, sg) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            if not isinstance(sg, Mapping) or "params" not in sg:
                raise ValueError(f"{where}: parameter group {k} has no 'params' entry")
            ids = list(sg["params"])
            if len(ids) != len(g["params"]):
                raise ValueError(
                    f"{where}: parameter group {k} has {len(ids)} parameter(s) in the state dict "
                    f"and {len(g['params'])} in the optimizer"
                )
            extra = sorted(set(sg) - known - {"params"})
            if extra:
                raise ValueError(
                    f"{where}: parameter group {k} has hyperparameters {extra} that {name} does "
                    "not use (a state dict from another optimizer?)"
                )
            for i, p in zip(ids, g["params"], strict=True):
                params[int(i)] = p
            new = {key: v for key, v in sg.items() if key != "params"}
            for key, v in new.items():
                if isinstance(v, list):  # betas come back as a list from some formats
                    new[key] = tuple(v)
            new["params"] = g["params"]
            new_groups.append(new)
        new_state: dict[Tensor, dict[str, Any]] = {}
        saved_state = state_dict["state"]
        if not isinstance(saved_state, Mapping):
            raise ValueError(f"{where}: 'state' must be a dict, got {type(saved_state).__name__}")
        allowed = set(self._array_state) | set(self._scalar_state)
        for i, entry in saved_state.items():
            try:
                p = params[int(i)]
            except (KeyError, ValueError, TypeError):
                raise ValueError(
                    f"{where}: state for parameter {i!r}, but the parameter groups hold indices "
                    f"{sorted(params)}"
                ) from None
            if not isinstance(entry, Mapping):
                raise ValueError(f"{where}: state for parameter {i} must be a dict")
            unknown = sorted(set(entry) - allowed)
            if unknown:
                raise ValueError(
                    f"{where}: state for parameter {i} has entries {unknown}; {name} keeps "
                    f"{sorted(allowed)}"
                )
            restored: dict[str, Any] = {}
            for key, v in entry.items():
                if key in self._array_state:
                    arr = np.asarray(v.data if isinstance(v, Tensor) else v)
                    if arr.shape != p.shape:
                        raise ValueError(
                            f"{where}: state {key!r} of parameter {i} has shape {arr.shape}, "
                            f"the parameter has shape {p.shape}"
                        )
                    if arr.dtype.kind not in "fiu":
                        raise ValueError(
                            f"{where}: state {key!r} of parameter {i} has dtype {arr.dtype}"
                        )
                    restored[key] = arr.astype(p.dtype, copy=True)
                else:
                    restored[key] = _scalar(where, key, i, v)
            new_state[p] = restored
        for g, new in zip(self.param_groups, new_groups, strict=True):
            g.clear()
            g.update(new)
        self.state = new_state
        for g in self.param_groups:
            for p in g["params"]:
                self._init_state(p, g)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for k, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            for key in sorted(g):
                if key != "params":
                    lines.append(f"    {key}: {g[key]}")
        return "\n".join(lines) + "\n)"


def _scalar(where: str, key: str, i: Any, v: Any) -> Any:
    arr = np.asarray(v.data if isinstance(v, Tensor) else v)
    if arr.shape != () or arr.dtype.kind not in "fiu":
        raise ValueError(f"{where}: state {key!r} of parameter {i} must be a number, got {v!r}")
    return int(arr) if arr.dtype.kind in "iu" or float(arr).is_integer() else float(arr)

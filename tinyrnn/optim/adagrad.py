"""Adagrad, with PyTorch's update rule."""

from __future__ import annotations

from typing import Any

import numpy as np

from .optimizer import Optimizer, _check_hyper


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), as PyTorch computes it. At step ``t`` with gradient ``g``:

    ``g <- g + weight_decay * p``; ``s <- s + g^2`` (``s`` starts at
    ``initial_accumulator_value``); ``p <- p - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)``.

    Args:
        params: parameters or parameter groups.
        lr, lr_decay, weight_decay, initial_accumulator_value, eps, maximize: as PyTorch
            (defaults 1e-2, 0, 0, 0, 1e-10, False).

    >>> import tinyrnn as tr
    >>> w = tr.nn.Parameter(tr.tensor([1.0]))
    >>> opt = tr.optim.Adagrad([w], lr=0.5)
    >>> w.grad = tr.tensor([4.0]); opt.step()
    >>> round(w.item(), 4)  # 1 - 0.5 * 4 / sqrt(16)
    0.5
    """

    _array_state = ("sum",)
    _scalar_state = ("step",)

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ):
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        _check_hyper("Adagrad", "learning rate", group["lr"])
        _check_hyper("Adagrad", "lr_decay value", group["lr_decay"])
        _check_hyper("Adagrad", "weight_decay value", group["weight_decay"])
        _check_hyper("Adagrad", "initial_accumulator_value", group["initial_accumulator_value"])
        _check_hyper("Adagrad", "epsilon value", group["eps"])

    def _init_state(self, p: Any, group: dict[str, Any]) -> None:
        # PyTorch creates the accumulator when the optimiser is built
        state = self.state.setdefault(p, {})
        state.setdefault("step", 0)
        if "sum" not in state:
            state["sum"] = np.full(p.shape, group["initial_accumulator_value"], dtype=p.dtype)

    def _update(
        self, p: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"]
        s += grad * grad
        p -= clr * grad / (np.sqrt(s) + group["eps"])

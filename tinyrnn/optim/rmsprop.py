"""RMSprop, with PyTorch's update rule (optionally centered, with momentum)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .optimizer import Optimizer, _check_hyper


class RMSprop(Optimizer):
    """RMSprop (Hinton), as PyTorch computes it. With gradient ``g``:

    ``g <- g + weight_decay * p``; ``v <- alpha v + (1 - alpha) g^2``; centered: ``a <- a +
    (1 - alpha)(g - a)`` and ``d = sqrt(v - a^2) + eps``, else ``d = sqrt(v) + eps``; with
    momentum ``b <- momentum b + g / d`` and ``p <- p - lr b``, else ``p <- p - lr g / d``.

    Args:
        params: parameters or parameter groups.
        lr, alpha, eps, weight_decay, momentum, centered, maximize: as PyTorch (defaults 1e-2,
            0.99, 1e-8, 0, 0, False, False).

    >>> import tinyrnn as tr
    >>> w = tr.nn.Parameter(tr.tensor([1.0]))
    >>> opt = tr.optim.RMSprop([w], lr=0.01)
    >>> w.grad = tr.tensor([2.0]); opt.step()
    >>> round(w.item(), 4)  # 1 - 0.01 * 2 / sqrt(0.01 * 4)
    0.9
    """

    _array_state = ("square_avg", "momentum_buffer", "grad_avg")
    _scalar_state = ("step",)

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ):
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        _check_hyper("RMSprop", "learning rate", group["lr"])
        _check_hyper("RMSprop", "epsilon value", group["eps"])
        _check_hyper("RMSprop", "momentum value", group["momentum"])
        _check_hyper("RMSprop", "weight_decay value", group["weight_decay"])
        _check_hyper("RMSprop", "alpha value", group["alpha"])

    def _update(
        self, p: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        if "step" not in state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p)
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = np.zeros_like(p)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = np.zeros_like(p)
        alpha, wd = group["alpha"], group["weight_decay"]
        state["step"] += 1
        if wd != 0:
            grad = grad + wd * p
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (grad - grad_avg)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += grad / avg
            p -= group["lr"] * buf
        else:
            p -= group["lr"] * grad / avg

"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from typing import Any

import numpy as np

from .optimizer import Optimizer, _check_hyper


class SGD(Optimizer):
    """SGD, with PyTorch's update rule. For each parameter ``p`` with gradient ``g``:

    ``g <- g + weight_decay * p``; with momentum, ``b <- g`` on the first step and
    ``b <- momentum * b + (1 - dampening) * g`` after, then ``g <- g + momentum * b`` (Nesterov)
    or ``g <- b``; finally ``p <- p - lr * g``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 1e-3, as PyTorch).
        momentum, dampening, weight_decay, nesterov, maximize: as PyTorch.

    >>> import tinyrnn as tr
    >>> w = tr.nn.Parameter(tr.tensor([1.0]))
    >>> opt = tr.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad(); (w * 2.0).sum().backward(); opt.step()
    >>> round(w.item(), 4)  # 1 - 0.1 * 2 - 0.1 * (0.9 * 2 + 2)
    0.42
    """

    _array_state = ("momentum_buffer",)

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        _check_hyper("SGD", "learning rate", group["lr"])
        _check_hyper("SGD", "momentum", group["momentum"])
        _check_hyper("SGD", "dampening", group["dampening"], low=-float("inf"))
        _check_hyper("SGD", "weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")

    def _update(
        self, p: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        wd, momentum = group["weight_decay"], group["momentum"]
        if wd != 0:
            grad = grad + wd * p
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        p -= group["lr"] * grad

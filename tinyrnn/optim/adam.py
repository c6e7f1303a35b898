"""Adam and AdamW (decoupled weight decay), with PyTorch's update rules."""

from __future__ import annotations

from typing import Any

import numpy as np

from .optimizer import Optimizer, _check_hyper


class Adam(Optimizer):
    """Adam (Kingma and Ba), as PyTorch computes it. At step ``t`` with gradient ``g``:

    ``g <- g + weight_decay * p`` (or, decoupled as AdamW, ``p <- p * (1 - lr * weight_decay)``);
    ``m <- m + (1 - beta1) (g - m)``; ``v <- beta2 v + (1 - beta2) g^2``;
    ``p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``.
    With ``amsgrad`` the running maximum of ``v`` replaces ``v`` in the denominator.

    Args:
        params: parameters or parameter groups.
        lr, betas, eps, weight_decay, amsgrad, maximize: as PyTorch (defaults 1e-3,
            (0.9, 0.999), 1e-8, 0, False, False).

    >>> import tinyrnn as tr
    >>> w = tr.nn.Parameter(tr.tensor([1.0, -1.0]))
    >>> opt = tr.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> [round(v, 4) for v in w.tolist()]  # the first step moves each weight by about lr
    [0.9, -0.9]
    """

    _array_state = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _scalar_state = ("step",)
    _decoupled = False

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        _check_hyper(name, "learning rate", group["lr"])
        _check_hyper(name, "epsilon value", group["eps"])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(betas)
        _check_hyper(name, "beta parameter at index 0", betas[0], 0.0, 1.0, open_high=True)
        _check_hyper(name, "beta parameter at index 1", betas[1], 0.0, 1.0, open_high=True)
        _check_hyper(name, "weight_decay value", group["weight_decay"])

    def _update(
        self, p: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        state["step"] += 1
        step = state["step"]
        if wd != 0:
            if self._decoupled:
                p *= 1 - lr * wd
            else:
                grad = grad + wd * p
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        if group["amsgrad"]:
            if "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = np.zeros_like(p)
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            denom = np.sqrt(state["max_exp_avg_sq"]) / bias_correction2_sqrt + eps
        else:
            denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
        p -= (lr / bias_correction1) * exp_avg / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): before the Adam step,
    ``p <- p * (1 - lr * weight_decay)``; the gradient itself is not changed. The default
    ``weight_decay`` is 1e-2, as PyTorch.

    >>> import tinyrnn as tr
    >>> w = tr.nn.Parameter(tr.tensor([2.0]))
    >>> opt = tr.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> w.grad = tr.tensor([0.0]); opt.step()
    >>> round(w.item(), 4)  # only the decay acts: 2 * (1 - 0.1 * 0.5)
    1.9
    """

    _decoupled = True

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)

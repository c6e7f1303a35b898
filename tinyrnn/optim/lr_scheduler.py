"""Learning-rate schedulers: ``StepLR``, ``ExponentialLR``, ``CosineAnnealingLR``, with
PyTorch's (recursive, chainable) formulas. Call ``scheduler.step()`` after ``optimizer.step()``.

>>> import tinyrnn as tr
>>> w = tr.nn.Parameter(tr.zeros(1))
>>> opt = tr.optim.SGD([w], lr=1.0)
>>> sched = tr.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
>>> lrs = []
>>> for epoch in range(5):
...     opt.step(); lrs.append(sched.get_last_lr()[0]); sched.step()
>>> lrs
[1.0, 1.0, 0.5, 0.5, 0.25]
"""

from __future__ import annotations

import math
from typing import Any

from .optimizer import Optimizer

__all__ = ["CosineAnnealingLR", "ExponentialLR", "LRScheduler", "StepLR"]


class LRScheduler:
    """Base class: sets each group's ``initial_lr``, then ``step()`` writes ``get_lr()`` into
    the optimiser's groups. ``last_epoch`` counts the calls to ``step()``.

    Args:
        optimizer: the optimiser whose learning rates are scheduled.
        last_epoch: ``-1`` for a fresh schedule; an epoch index to resume (the groups must then
            hold ``initial_lr``, as after loading the optimiser's state dict).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{type(self).__name__}: param 'initial_lr' is not specified in "
                        f"param_groups[{i}] when resuming a schedule with last_epoch={last_epoch}"
                        "; load the optimizer's state dict first"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._initial = True
        self.step()
        self._initial = False

    def get_lr(self) -> list[float]:
        """The learning rates for the current ``last_epoch`` (used by ``step``)."""
        raise NotImplementedError(f"{type(self).__name__} must define get_lr()")

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the most recent ``step()``, one per parameter group."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance the schedule by one epoch and write the new rates into the optimiser."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimiser, as plain data."""
        return {
            k: (list(v) if isinstance(v, list) else v)
            for k, v in self.__dict__.items()
            if k != "optimizer"
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` (keys of another scheduler type are refused)."""
        mine = set(self.state_dict())
        unknown = sorted(set(state_dict) - mine)
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: unexpected key(s) {unknown} (a state "
                "dict from another scheduler?)"
            )
        self.__dict__.update(
            {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in state_dict.items()}
        )


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs:
    ``lr_t = base_lr * gamma ** (t // step_size)``.

    >>> import tinyrnn as tr
    >>> opt = tr.optim.SGD([tr.nn.Parameter(tr.zeros(1))], lr=0.1)
    >>> s = tr.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    >>> s.step(); [round(v, 6) for v in s.get_last_lr()]
    [0.01]
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch: ``lr_t = base_lr * gamma ** t``.

    >>> import tinyrnn as tr
    >>> opt = tr.optim.SGD([tr.nn.Parameter(tr.zeros(1))], lr=1.0)
    >>> s = tr.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> s.step(); s.step(); s.get_last_lr()
    [0.25]
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._initial:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from ``base_lr`` down to ``eta_min`` over ``T_max`` epochs:
    ``lr_t = eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2``, computed with
    PyTorch's recursive form (so it also follows learning rates changed by hand, and climbs
    back after ``T_max``).

    >>> import tinyrnn as tr
    >>> opt = tr.optim.SGD([tr.nn.Parameter(tr.zeros(1))], lr=1.0)
    >>> s = tr.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2)
    >>> s.step(); [round(v, 6) for v in s.get_last_lr()]
    [0.5]
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ):
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        t, T, eta = self.last_epoch, self.T_max, self.eta_min
        if self._initial:
            return [group["lr"] for group in groups]
        if self._step_count == 1 and t > 0:
            return [
                eta + (base - eta) * (1 + math.cos(t * math.pi / T)) / 2 for base in self.base_lrs
            ]
        if (t - 1 - T) % (2 * T) == 0:
            return [
                group["lr"] + (base - eta) * (1 - math.cos(math.pi / T)) / 2
                for base, group in zip(self.base_lrs, groups, strict=True)
            ]
        return [
            (1 + math.cos(math.pi * t / T))
            / (1 + math.cos(math.pi * (t - 1) / T))
            * (group["lr"] - eta)
            + eta
            for group in groups
        ]

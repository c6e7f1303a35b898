"""Loss modules: thin ``Module`` wrappers over the ``F.*`` losses, with PyTorch's names.

Class weights are registered as buffers (as in PyTorch), so they travel with ``state_dict``.
"""

from __future__ import annotations

from typing import Any

from ..tensor import Tensor
from . import functional as F
from .module import Module


def _buffer(v: Any) -> Tensor | None:
    return v if v is None or isinstance(v, Tensor) else Tensor(v)


class CrossEntropyLoss(Module):
    """``F.cross_entropy`` as a module: logits (N, C) or (N, C, d1, ...) and class ids.

    >>> import tinyrnn as tr
    >>> loss_fn = tr.nn.CrossEntropyLoss(ignore_index=0)
    >>> logits = tr.zeros(3, 4)
    >>> round(loss_fn(logits, tr.tensor([0, 1, 2])).item(), 4)  # the id-0 row is ignored
    1.3863
    """

    def __init__(
        self,
        weight: Any = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        self.register_buffer("weight", _buffer(weight))
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(
            input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing
        )


class NLLLoss(Module):
    """``F.nll_loss`` as a module: log-probabilities and class ids.

    >>> import tinyrnn as tr
    >>> logp = tr.tensor([[-1.0, -2.0]])
    >>> tr.nn.NLLLoss()(logp, tr.tensor([1])).item()
    2.0
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__()
        self.register_buffer("weight", _buffer(weight))
        self.ignore_index = ignore_index
        self.reduction = reduction

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class MSELoss(Module):
    """``F.mse_loss`` as a module: mean (or sum) of squared differences.

    >>> import tinyrnn as tr
    >>> tr.nn.MSELoss(reduction="sum")(tr.tensor([1.0, 3.0]), tr.tensor([0.0, 0.0])).item()
    10.0
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(Module):
    """``F.binary_cross_entropy_with_logits`` as a module.

    >>> import tinyrnn as tr
    >>> round(tr.nn.BCEWithLogitsLoss()(tr.zeros(2), tr.tensor([0.0, 1.0])).item(), 4)
    0.6931
    """

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None):
        super().__init__()
        self.register_buffer("weight", _buffer(weight))
        self.register_buffer("pos_weight", _buffer(pos_weight))
        self.reduction = reduction

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, self.reduction, self.pos_weight
        )

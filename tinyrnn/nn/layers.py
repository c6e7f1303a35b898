"""Basic layers: ``Linear``, ``Embedding``, ``Dropout``, with PyTorch's names, shapes and init."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._dtype import get_default_dtype, to_dtype
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter


def _positive_int(layer: str, name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{layer}: {name} must be a non-negative int, got {v!r}")
    return int(v)


def _param(shape: tuple[int, ...], dtype: Any) -> Parameter:
    d = get_default_dtype() if dtype is None else to_dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"parameters must be float32 or float64, got dtype {d}")
    return Parameter(np.empty(shape, dtype=d))


class Linear(Module):
    """Affine layer ``y = x W^T + b``.

    Args:
        in_features: size of each input sample (I).
        out_features: size of each output sample (O).
        bias: learn an additive bias ``b``.
        dtype: parameter dtype (the default dtype when None).

    Shapes: input (*, I), output (*, O). Parameters: ``weight`` (O, I), ``bias`` (O,), both
    initialised from U(-1/sqrt(I), 1/sqrt(I)) (PyTorch's kaiming-uniform with ``a = sqrt(5)``).

    >>> import tinyrnn as tr
    >>> layer = tr.nn.Linear(3, 2)
    >>> layer(tr.ones(4, 3)).shape, layer.weight.shape
    ((4, 2), (2, 3))
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = None):
        super().__init__()
        self.in_features = _positive_int("Linear", "in_features", in_features)
        self.out_features = _positive_int("Linear", "out_features", out_features)
        self.weight = _param((self.out_features, self.in_features), dtype)
        if bias:
            self.bias = _param((self.out_features,), dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Redraw the parameters with PyTorch's default scheme."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        if not isinstance(input, Tensor):
            raise TypeError(f"Linear: expected a Tensor input, got {type(input).__name__}")
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear: expected input with last dimension in_features={self.in_features}, "
                f"got shape {input.shape}"
            )
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Embedding(Module):
    """A lookup table: row ``i`` of ``weight`` is the vector of id ``i``.

    Args:
        num_embeddings: number of ids (N).
        embedding_dim: size of each vector (D).
        padding_idx: an id whose row starts at zero and receives no gradient.
        dtype: parameter dtype (the default dtype when None).

    Shapes: input (*) integer ids in [0, N), output (*, D). ``weight`` (N, D) ~ N(0, 1).
    Gradients of repeated ids add up in their row.

    >>> import tinyrnn as tr
    >>> emb = tr.nn.Embedding(10, 4)
    >>> emb(tr.tensor([[1, 2], [3, 3]])).shape
    (2, 2, 4)
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        dtype: Any = None,
    ):
        super().__init__()
        self.num_embeddings = _positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _positive_int("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            n = self.num_embeddings
            if not -n <= padding_idx < n:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} must be within [-{n}, {n - 1}]"
                )
            padding_idx %= n
        self.padding_idx = padding_idx
        self.weight = _param((self.num_embeddings, self.embedding_dim), dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Redraw ``weight`` from N(0, 1) and zero the padding row."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input: Any) -> Tensor:
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class Dropout(Module):
    """Inverted dropout during training (zero with probability ``p``, scale the rest by
    ``1 / (1 - p)``); the identity after ``eval()``.

    >>> import tinyrnn as tr
    >>> drop = tr.nn.Dropout(0.5).eval()
    >>> drop(tr.ones(3)).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be between 0 and 1, got {p!r}")
        self.p = float(p)

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"

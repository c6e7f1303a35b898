"""``tr.nn.init``: fill parameters in place with PyTorch's initialisation schemes.

Every function writes into ``tensor.data`` (no graph is recorded), draws from the framework's
generator (``tr.manual_seed`` makes it reproducible) and returns the tensor. Draws are made in
float64 and cast to the tensor's dtype.

>>> import tinyrnn as tr
>>> w = tr.nn.init.uniform_(tr.empty(2, 3), -0.1, 0.1)
>>> bool((w.abs() <= 0.1).all())
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._random import generator
from ..tensor import Tensor

__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def _check(op: str, t: Any) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"nn.init.{op}: expected a Tensor, got {type(t).__name__}")
    if t.dtype.kind != "f":
        raise TypeError(f"nn.init.{op}: expected a floating tensor, got dtype {t.dtype}")
    return t


def _fill(t: Tensor, values: Any) -> Tensor:
    t.data[...] = np.asarray(values).astype(t.dtype, copy=False)
    return t


def _fans(op: str, t: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) as PyTorch: size(1) and size(0) times the receptive field size."""
    if t.ndim < 2:
        raise ValueError(
            f"nn.init.{op}: fan in and fan out can not be computed for a tensor with fewer than "
            f"2 dimensions (shape {t.shape})"
        )
    receptive = math.prod(t.shape[2:])
    return t.shape[1] * receptive, t.shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    >>> round(calculate_gain("tanh"), 4), round(calculate_gain("relu"), 4)
    (1.6667, 1.4142)
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"nn.init.calculate_gain: negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"nn.init.calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with samples from U(a, b).

    >>> import tinyrnn as tr
    >>> _ = tr.manual_seed(0)
    >>> tr.nn.init.uniform_(tr.empty(3), 2.0, 3.0).shape
    (3,)
    """
    t = _check("uniform_", tensor)
    if not a <= b:
        raise ValueError(f"nn.init.uniform_: expected a <= b, got a={a}, b={b}")
    return _fill(t, generator().uniform(a, b, t.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with samples from N(mean, std**2).

    >>> import tinyrnn as tr
    >>> tr.nn.init.normal_(tr.empty(2, 2), std=0.01).shape
    (2, 2)
    """
    t = _check("normal_", tensor)
    if std < 0:
        raise ValueError(f"nn.init.normal_: std must be non-negative, got {std}")
    return _fill(t, generator().normal(mean, std, t.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``.

    >>> import tinyrnn as tr
    >>> tr.nn.init.constant_(tr.empty(2), 0.5).tolist()
    [0.5, 0.5]
    """
    return _fill(_check("constant_", tensor), val)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros.

    >>> import tinyrnn as tr
    >>> tr.nn.init.zeros_(tr.ones(2)).tolist()
    [0.0, 0.0]
    """
    return _fill(_check("zeros_", tensor), 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones.

    >>> import tinyrnn as tr
    >>> tr.nn.init.ones_(tr.zeros(2)).tolist()
    [1.0, 1.0]
    """
    return _fill(_check("ones_", tensor), 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``.

    >>> import tinyrnn as tr
    >>> w = tr.nn.init.xavier_uniform_(tr.empty(4, 2))
    >>> bool((w.abs() <= 1.0).all())
    True
    """
    t = _check("xavier_uniform_", tensor)
    fan_in, fan_out = _fans("xavier_uniform_", t)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(t, generator().uniform(-a, a, t.shape))


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot normal: N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    >>> import tinyrnn as tr
    >>> tr.nn.init.xavier_normal_(tr.empty(4, 2)).shape
    (4, 2)
    """
    t = _check("xavier_normal_", tensor)
    fan_in, fan_out = _fans("xavier_normal_", t)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(t, generator().normal(0.0, std, t.shape))


def _kaiming_std(op: str, t: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"nn.init.{op}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(op, t)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        return 0.0
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """He uniform: U(-bound, bound) with ``bound = gain * sqrt(3 / fan)``.

    ``nn.Linear`` uses ``a = sqrt(5)``, which gives ``bound = 1 / sqrt(in_features)``.

    >>> import math, tinyrnn as tr
    >>> w = tr.nn.init.kaiming_uniform_(tr.empty(3, 4), a=math.sqrt(5))
    >>> bool((w.abs() <= 0.5).all())
    True
    """
    t = _check("kaiming_uniform_", tensor)
    bound = math.sqrt(3.0) * _kaiming_std("kaiming_uniform_", t, a, mode, nonlinearity)
    return _fill(t, generator().uniform(-bound, bound, t.shape))


def kaiming_normal_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """He normal: N(0, std**2) with ``std = gain / sqrt(fan)``.

    >>> import tinyrnn as tr
    >>> tr.nn.init.kaiming_normal_(tr.empty(3, 4)).shape
    (3, 4)
    """
    t = _check("kaiming_normal_", tensor)
    std = _kaiming_std("kaiming_normal_", t, a, mode, nonlinearity)
    return _fill(t, generator().normal(0.0, std, t.shape))


def orthogonal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """A (semi-)orthogonal matrix, as PyTorch: QR of a Gaussian matrix with the signs of R's
    diagonal folded into Q, times ``gain``. Dimensions after the first are flattened.

    >>> import numpy as np, tinyrnn as tr
    >>> q = tr.nn.init.orthogonal_(tr.empty(3, 3, dtype=tr.float64)).data
    >>> bool(np.allclose(q @ q.T, np.eye(3)))
    True
    """
    t = _check("orthogonal_", tensor)
    if t.ndim < 2:
        raise ValueError(
            f"nn.init.orthogonal_: only tensors with 2 or more dimensions are supported, got "
            f"shape {t.shape}"
        )
    if t.data.size == 0:
        return t
    rows = t.shape[0]
    cols = t.data.size // rows
    flat = generator().standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(t, gain * q.reshape(t.shape))

"""Data types: float32 (the default), float64, and integer types for indices.

tinyrnn's dtypes are NumPy dtype objects, so ``tr.float32 == np.float32`` holds and NumPy dtypes
are accepted anywhere a tinyrnn dtype is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

_FLOATS = (float32, float64)
_default = [float32]


def set_default_dtype(dtype: Any) -> None:
    """Set the dtype of tensors made from Python numbers and lists, and of new parameters.

    >>> import tinyrnn as tr
    >>> tr.set_default_dtype(tr.float64); tr.tensor([1.0]).dtype
    dtype('float64')
    >>> tr.set_default_dtype(tr.float32)
    """
    d = np.dtype(dtype)
    if d not in _FLOATS:
        raise TypeError(f"set_default_dtype: expected float32 or float64, got {d}")
    _default[0] = d


def get_default_dtype() -> np.dtype:
    """The current default floating dtype (float32 unless changed).

    >>> import tinyrnn as tr
    >>> tr.get_default_dtype()
    dtype('float32')
    """
    return _default[0]


def is_floating(dtype: np.dtype) -> bool:
    """True for the floating dtypes a tensor may take gradients in.

    >>> is_floating(float32), is_floating(int64)
    (True, False)
    """
    return dtype.kind == "f"


def to_dtype(dtype: Any) -> np.dtype:
    """Normalise a dtype argument (tinyrnn or NumPy dtype, type or string) to a NumPy dtype.

    >>> to_dtype("float64"), to_dtype(np.int32)
    (dtype('float64'), dtype('int32'))
    """
    d = np.dtype(dtype)
    if d.kind not in "fiub":
        raise TypeError(f"unsupported dtype {d}: tinyrnn tensors are float, integer or bool")
    if d.kind == "f" and d not in _FLOATS:
        raise TypeError(f"unsupported dtype {d}: use float32 or float64")
    return d

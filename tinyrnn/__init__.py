"""tinyrnn: a small reverse-mode autograd framework for recurrent neural networks.

Two front ends share one graph engine: ``Tensor`` (NumPy arrays, for real work) and ``Value``
(scalars, for teaching and for drawing every neuron). Names and conventions follow PyTorch.

>>> import tinyrnn as tr
>>> x = tr.tensor([1.0, -2.0], requires_grad=True)
>>> (x.tanh() * x).sum().backward()
>>> [round(g, 4) for g in x.grad.tolist()]
[1.1816, -1.1053]
"""

from __future__ import annotations

import importlib
from typing import Any

from . import _malloc, autograd
from ._dtype import (
    bool_,
    float32,
    float64,
    get_default_dtype,
    int32,
    int64,
    set_default_dtype,
)
from ._random import manual_seed
from .engine import enable_grad, is_grad_enabled, no_grad, scope
from .tensor import (
    Tensor,
    arange,
    cat,
    empty,
    eye,
    from_numpy,
    full,
    ones,
    ones_like,
    rand,
    randn,
    stack,
    tensor,
    where,
    zeros,
    zeros_like,
)
from .value import Value

__version__ = "0.1.0"

# a training step frees and reallocates the same large arrays: keep freed memory for reuse
# instead of paying page faults for fresh pages every step (see _malloc; opt out with
# TINYRNN_KEEP_FREED_MEMORY=0)
_malloc.keep_freed_memory()

# Submodules loaded on first use: ``viz`` imports graphviz, ``nn``/``optim`` are larger.
_LAZY = {"viz": "tinyrnn.viz", "nn": "tinyrnn.nn", "optim": "tinyrnn.optim"}
_LAZY_ATTRS = {
    "save": "tinyrnn.serialization",
    "load": "tinyrnn.serialization",
    "compile_cell": "tinyrnn.compile",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        globals()[name] = module
        return module
    if name in _LAZY_ATTRS:
        value = getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tinyrnn' has no attribute {name!r}")


def _functional_op(name: str):
    def op(x: Tensor, *args: Any, **kwargs: Any) -> Any:
        return getattr(x, name)(*args, **kwargs)

    op.__name__ = name
    op.__doc__ = f"``tr.{name}(x, ...)`` is ``x.{name}(...)``; see ``Tensor.{name}``."
    return op


exp = _functional_op("exp")
log = _functional_op("log")
sqrt = _functional_op("sqrt")
abs = _functional_op("abs")  # noqa: A001 (PyTorch's name)
tanh = _functional_op("tanh")
sigmoid = _functional_op("sigmoid")
relu = _functional_op("relu")
sum = _functional_op("sum")  # noqa: A001
mean = _functional_op("mean")
max = _functional_op("max")  # noqa: A001
min = _functional_op("min")  # noqa: A001
argmax = _functional_op("argmax")
argmin = _functional_op("argmin")
reshape = _functional_op("reshape")
transpose = _functional_op("transpose")
permute = _functional_op("permute")
squeeze = _functional_op("squeeze")
unsqueeze = _functional_op("unsqueeze")
split = _functional_op("split")
chunk = _functional_op("chunk")
clamp = _functional_op("clamp")
softmax = _functional_op("softmax")
log_softmax = _functional_op("log_softmax")
flatten = _functional_op("flatten")


def matmul(a: Any, b: Any) -> Tensor:
    """``a @ b``: the matrix product with NumPy's rules (1-D operands promoted, batch dimensions
    broadcast); dL/da = g @ b^T, dL/db = a^T @ g.

    >>> import tinyrnn as tr
    >>> tr.matmul(tr.ones(2, 3), tr.ones(3)).tolist()
    [3.0, 3.0]
    """
    return a @ b


__all__ = [
    "Tensor",
    "Value",
    "abs",
    "arange",
    "argmax",
    "argmin",
    "autograd",
    "bool_",
    "cat",
    "chunk",
    "clamp",
    "compile_cell",
    "empty",
    "enable_grad",
    "exp",
    "eye",
    "flatten",
    "float32",
    "float64",
    "from_numpy",
    "full",
    "get_default_dtype",
    "int32",
    "int64",
    "is_grad_enabled",
    "load",
    "log",
    "log_softmax",
    "manual_seed",
    "matmul",
    "max",
    "mean",
    "min",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "permute",
    "rand",
    "randn",
    "relu",
    "reshape",
    "save",
    "scope",
    "set_default_dtype",
    "sigmoid",
    "softmax",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "sum",
    "tanh",
    "tensor",
    "transpose",
    "unsqueeze",
    "viz",
    "where",
    "zeros",
    "zeros_like",
]

"""Numerical gradient checks: analytic backward against central differences, in float64.

The output is always weighted by a random cotangent ``u`` (never only summed, which hides
transposition and permutation bugs), so the checked scalar is ``L(x) = <u, f(x)>``. Two forms:

- ``mode="full"``: every input element is perturbed, ``dL/dx_k ~ (L(x + eps e_k) - L(x - eps e_k))
  / 2 eps``, and compared with backward's value; a mismatch names the input and the index.
- ``mode="projection"`` (HIPS style, for large inputs such as unrolled sequences): random
  directions ``v`` per input, ``<dL/dx, v>`` against ``(L(x + eps v) - L(x - eps v)) / 2 eps``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..engine import no_grad
from ..tensor import Tensor


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` when analytic and numerical gradients disagree.

    >>> import tinyrnn as tr
    >>> class Wrong(tr.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         return g        # should be 2 x g
    >>> x = tr.tensor([1.0, 2.0], dtype=tr.float64, requires_grad=True)
    >>> try:
    ...     tr.autograd.gradcheck(Wrong.apply, [x])
    ... except tr.autograd.GradcheckError as e:
    ...     print(str(e).split(":")[1])
     gradients disagree for input 0 of shape (2,) at index (0,)
    """


def _outputs(out: Any) -> list[Tensor]:
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    flat: list[Tensor] = []
    for o in outs:
        if isinstance(o, (tuple, list)):
            flat.extend(_outputs(o))
        elif isinstance(o, Tensor):
            flat.append(o)
        else:
            raise TypeError(f"gradcheck: fn must return tensors, got {type(o).__name__}")
    return flat


def _scalar(fn: Callable[..., Any], inputs: Sequence[Any], weights: list[np.ndarray]) -> float:
    with no_grad():
        outs = _outputs(fn(*inputs))
    return float(sum(np.sum(w * o.data) for w, o in zip(weights, outs, strict=True)))


def _analytic(fn, inputs, checked, weights):
    for t in checked:
        t.grad = None
    outs = _outputs(fn(*inputs))
    if len(outs) != len(weights):
        raise GradcheckError(
            f"gradcheck: fn returned {len(weights)} outputs on its first call and {len(outs)} on "
            "a later one; expected the same outputs every call"
        )
    loss = None
    for w, o in zip(weights, outs, strict=True):
        if o.requires_grad:
            term = (o * Tensor(w)).sum()
            loss = term if loss is None else loss + term
    if loss is not None:
        loss.backward()
    return [np.zeros_like(t.data) if t.grad is None else t.grad.data.copy() for t in checked]


def gradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    *,
    mode: str = "auto",
    n_projections: int = 4,
    seed: int = 0,
) -> bool:
    """Check the gradients of ``fn`` at ``inputs`` against central differences.

    Args:
        fn: a function of the inputs returning a tensor or a (nested) tuple of tensors.
        inputs: a tensor or a sequence of them (and other arguments, passed through); those with
            ``requires_grad`` are checked, and should be float64.
        eps, atol, rtol: step and tolerances, PyTorch's defaults; a gradient passes where
            ``|analytic - numeric| <= atol + rtol * |numeric|``.
        mode: ``"full"`` (every element), ``"projection"`` (random directions) or ``"auto"``
            (full up to 2,000 input elements).
        n_projections: number of random directions per input in projection mode.
        seed: seeds the random output weights and directions.

    Returns:
        True; raises ``GradcheckError`` naming the input, the index and both values otherwise.

    >>> import tinyrnn as tr
    >>> x = tr.randn(3, 4, dtype=tr.float64, requires_grad=True)
    >>> tr.autograd.gradcheck(lambda a: (a @ a.T).tanh(), [x])
    True
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = list(inputs)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; nothing to check")
    if any(t.dtype != np.float64 for t in checked):
        warnings.warn(
            "gradcheck: inputs are not float64; finite differences in float32 are too coarse "
            "for these tolerances",
            stacklevel=2,
        )
    rng = np.random.default_rng(seed)
    with no_grad():
        outs = _outputs(fn(*inputs))
    weights = [rng.standard_normal(o.shape).astype(o.dtype) for o in outs]
    analytic = _analytic(fn, inputs, checked, weights)
    total = sum(t.data.size for t in checked)
    if mode == "auto":
        mode = "full" if total <= 2000 else "projection"
    if mode not in ("full", "projection"):
        raise ValueError(f"gradcheck: mode must be 'full', 'projection' or 'auto', got {mode!r}")
    for t, grad in zip(checked, analytic, strict=True):
        position = next(i for i, a in enumerate(inputs) if a is t)  # == is elementwise
        where = f"input {position}" + (f" ({t.name})" if t.name else "")
        if mode == "full":
            _check_full(fn, inputs, t, grad, weights, eps, atol, rtol, where)
        else:
            _check_projection(
                fn, inputs, t, grad, weights, eps, atol, rtol, where, rng, n_projections
            )
    return True


def _check_full(fn, inputs, t, grad, weights, eps, atol, rtol, where):
    flat = t.data.reshape(-1)  # a view: perturbing it perturbs the input
    if not np.shares_memory(flat, t.data):
        raise ValueError(f"gradcheck: {where} must be contiguous to be perturbed in place")
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        plus = _scalar(fn, inputs, weights)
        flat[i] = orig - eps
        minus = _scalar(fn, inputs, weights)
        flat[i] = orig
        numeric = (plus - minus) / (2 * eps)
        a = grad.reshape(-1)[i]
        if not abs(a - numeric) <= atol + rtol * abs(numeric):
            index = np.unravel_index(i, t.shape) if t.ndim else ()
            raise GradcheckError(
                f"gradcheck: gradients disagree for {where} of shape {t.shape} at index "
                f"{tuple(int(j) for j in index)}: analytic {a:.10g}, numerical {numeric:.10g}"
            )


def _check_projection(fn, inputs, t, grad, weights, eps, atol, rtol, where, rng, n):
    orig = t.data.copy()
    for _ in range(n):
        v = rng.standard_normal(t.shape).astype(t.dtype)
        t.data[...] = orig + eps * v
        plus = _scalar(fn, inputs, weights)
        t.data[...] = orig - eps * v
        minus = _scalar(fn, inputs, weights)
        t.data[...] = orig
        numeric = (plus - minus) / (2 * eps)
        a = float(np.sum(grad * v))
        if not abs(a - numeric) <= atol + rtol * abs(numeric):
            raise GradcheckError(
                f"gradcheck: gradients disagree for {where} of shape {t.shape} along a random "
                f"direction: analytic {a:.10g}, numerical {numeric:.10g}"
            )

"""Global modes read by ``Function.apply`` and the backward sweep: grad mode, scopes, anomaly."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    """Flags on the hot path, kept as instance attributes so reading them costs one lookup
    (Python specialises reads of an instance's own attributes, not of class-level defaults)."""

    def __init__(self) -> None:
        self.grad_enabled = True
        self.anomaly = False
        self.keep_grads = False  # store every node's gradient during backward (graph pictures)


STATE = _State()

_SCOPE: ContextVar[tuple[str, ...]] = ContextVar("tinyrnn_scope", default=())


class _GradMode:
    """Base of ``no_grad``/``enable_grad``: a context manager that is also a decorator."""

    _enabled = True

    def __enter__(self) -> None:
        self._prev = STATE.grad_enabled
        STATE.grad_enabled = self._enabled

    def __exit__(self, *exc: object) -> None:
        STATE.grad_enabled = self._prev

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):
    """Context manager (or decorator) under which no graph is recorded.

    >>> import tinyrnn as tr
    >>> x = tr.ones(2, requires_grad=True)
    >>> with tr.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    _enabled = False


class enable_grad(_GradMode):
    """Context manager (or decorator) that turns graph recording back on inside ``no_grad``.

    >>> import tinyrnn as tr
    >>> x = tr.ones(2, requires_grad=True)
    >>> with tr.no_grad():
    ...     with tr.enable_grad():
    ...         y = x * 2
    >>> y.requires_grad
    True
    """

    _enabled = True


def is_grad_enabled() -> bool:
    """Whether operations are currently recorded for backward.

    >>> import tinyrnn as tr
    >>> with tr.no_grad():
    ...     tr.is_grad_enabled()
    False
    """
    return STATE.grad_enabled


class scope:
    """Tag every node made inside with ``name`` (nested scopes stack up).

    Layers use it for the layer name and the time step (``"rnn.l0.t3"``); graph pictures
    group nodes by it and anomaly reports name it.

    >>> import tinyrnn as tr
    >>> x = tr.ones(2, requires_grad=True)
    >>> with tr.scope("encoder"):
    ...     y = x * 2
    >>> y.grad_fn.scope
    ('encoder',)
    """

    def __init__(self, name: str):
        if not isinstance(name, str) or not name:
            raise TypeError(f"scope: expected a non-empty string name, got {name!r}")
        self.name = name

    def __enter__(self) -> scope:
        self._token = _SCOPE.set(_SCOPE.get() + (self.name,))
        return self

    def __exit__(self, *exc: object) -> None:
        _SCOPE.reset(self._token)


def current_scope() -> tuple[str, ...]:
    """The stack of scope names active now, outermost first.

    >>> import tinyrnn as tr
    >>> with tr.scope("rnn"), tr.scope("t0"):
    ...     current_scope()
    ('rnn', 't0')
    """
    return _SCOPE.get()

"""The autograd mechanism: node protocol, ``Function``, backward sweep and global modes."""

from .function import Function
from .graph import Context, Node, backward, unbroadcast
from .mode import STATE, current_scope, enable_grad, is_grad_enabled, no_grad, scope

__all__ = [
    "STATE",
    "Context",
    "Function",
    "Node",
    "backward",
    "current_scope",
    "enable_grad",
    "is_grad_enabled",
    "no_grad",
    "scope",
    "unbroadcast",
]

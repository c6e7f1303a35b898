"""The single random generator every random draw of tinyrnn uses (init, dropout, randn)."""

from __future__ import annotations

import numpy as np

_state = {"rng": np.random.default_rng()}


def manual_seed(seed: int) -> np.random.Generator:
    """Seed every random draw of the framework, for reproducible runs.

    >>> import tinyrnn as tr
    >>> _ = tr.manual_seed(0); a = tr.randn(2)
    >>> _ = tr.manual_seed(0); b = tr.randn(2)
    >>> bool((a == b).all())
    True
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed: expected an int, got {type(seed).__name__}")
    _state["rng"] = np.random.default_rng(int(seed))
    return _state["rng"]


def generator() -> np.random.Generator:
    """The framework's current ``numpy.random.Generator`` (replaced by ``manual_seed``).

    >>> import tinyrnn as tr
    >>> g = tr.manual_seed(1); g is generator()
    True
    """
    return _state["rng"]

"""Find the bundled OpenBLAS libraries and their thread-count functions (as ``threadpoolctl``
does).

NumPy and SciPy each ship their own OpenBLAS; its thread count can be changed at run time only
through the library's ``*_set_num_threads`` symbol, whose prefix and suffix vary between builds.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PREFIXES = ("scipy_openblas_", "openblas_")
SUFFIXES = ("64_", "_64_", "")


def bundled_openblas_paths(package: str = "numpy") -> list[Path]:
    """The OpenBLAS libraries bundled with ``package``'s wheel (``numpy`` or ``scipy``; empty
    for other builds).

    >>> all(p.exists() for p in bundled_openblas_paths("numpy"))
    True
    """
    import importlib

    root = Path(importlib.import_module(package).__file__).resolve().parent
    return sorted((root.parent / f"{package}.libs").glob("lib*openblas*.so*")) + sorted(
        (root / ".dylibs").glob("lib*openblas*.dylib")
    )


def controls(libraries: Iterable[Path]) -> tuple[Any, Any] | None:
    """``(get_num_threads, set_num_threads)`` of the first loadable library in ``libraries``
    that exports them, or None.

    >>> controls([]) is None
    True
    """
    for path in libraries:
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        for prefix in PREFIXES:
            for suffix in SUFFIXES:
                get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype = ctypes.c_int
                    put.argtypes = [ctypes.c_int]
                    return get, put
    return None

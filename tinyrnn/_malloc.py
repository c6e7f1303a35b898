"""Keep freed memory in the process for reuse (glibc's malloc) instead of handing it back at once.

A training step frees and allocates the same large arrays (megabytes: a sequence's input
projection, its saved activations, their gradients) again and again. By default glibc serves
an allocation above its mmap threshold with fresh pages from the OS, and gives memory freed
at the top of the heap back to the OS once more than its trim threshold is free there; both
thresholds adapt to recent allocation sizes, and the pattern of a training step defeats that.
The next step then touches new pages, and every first touch of a 4 KiB page is a page fault.
Measured on the test machine (one thread, float32, B=32, T=64, I=64, H=128): a compiled GRU
cell's training step took 1,800 page faults and 15.4 ms by default, 11.7 ms with the settings
below; the op-by-op GRU step went from 31.5 to 24.5 ms.

``keep_freed_memory`` sets, once: allocations up to 32 MiB come from the heap
(``M_MMAP_THRESHOLD``, the largest value glibc's own adaptation would reach), and up to 64 MiB
of freed memory stays at the top of the heap (``M_TOP_PAD``, ``M_TRIM_THRESHOLD`` twice that).
The cost is that a process may keep up to about 128 MiB it no longer uses; peak memory is not
changed. ``import tinyrnn`` calls it. Set ``TINYRNN_KEEP_FREED_MEMORY=0`` to leave malloc as
it is; on other C libraries (macOS, musl) nothing is done.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")  # type: ignore[union-attr]
    except (ValueError, OSError, AttributeError):
        return False


@functools.cache
def keep_freed_memory(pad: int = 64 << 20) -> bool:
    """Tune glibc's malloc as the module docstring says (once per process); return whether
    the settings are in effect.

    >>> isinstance(keep_freed_memory(), bool)
    True
    """
    if os.environ.get("TINYRNN_KEEP_FREED_MEMORY", "1").strip() == "0":
        return False
    if not (sys.platform.startswith("linux") and _glibc()):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, 32 << 20), (M_TOP_PAD, pad), (M_TRIM_THRESHOLD, 2 * pad))
    return all(mallopt(param, value) == 1 for param, value in settings)

"""Run NumPy's OpenBLAS on one thread while the command line trains.

The matrices of a small RNN (32 x 128 times 128 x 512) are too small for threads to pay off,
and on a busy 2-core machine OpenBLAS's spinning threads compete with everything else: a demo
training step measured 52 ms with one BLAS thread and 226-512 ms with the default two while other
work ran. The thread count can only be set through an environment variable before NumPy loads,
or at run time through OpenBLAS's own ``*_set_num_threads`` function, which is what this does
(as ``threadpoolctl`` does). An explicit ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` from the
user is respected, and anything unexpected (another BLAS, no library found) leaves BLAS alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .kernels.openblas import bundled_openblas_paths, controls


def _openblas() -> tuple[Any, Any] | None:
    """(get, set) functions of the OpenBLAS that NumPy loaded, or None."""
    return controls(bundled_openblas_paths())


@contextmanager
def blas_threads(n: int = 1) -> Iterator[bool]:
    """Limit OpenBLAS to ``n`` threads inside the block; yields whether the limit is active.

    >>> from tinyrnn._blas import blas_threads
    >>> with blas_threads(1) as limited:
    ...     isinstance(limited, bool)
    True
    """
    if os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"):
        yield False
        return
    try:
        funcs = _openblas()
    except Exception:  # any surprise here must not stop the program; BLAS stays as it is
        funcs = None
    if funcs is None:
        yield False
        return
    get, put = funcs
    before = int(get())
    put(n)
    try:
        yield True
    finally:
        put(before)

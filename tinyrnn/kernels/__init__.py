"""Kernel backend: the Numba kernels by default, their NumPy twins with ``TINYRNN_KERNELS=numpy``.

``ops`` call kernels as ``K.<name>``. The backend module is imported on the first kernel lookup,
so ``import tinyrnn`` does not pay for importing Numba; after that lookup every kernel is a plain
module attribute.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

NAMES = (
    "sigmoid_fwd",
    "sigmoid_bwd",
    "tanh_bwd",
    "relu_bwd",
    "log_softmax_fwd",
    "log_softmax_bwd",
    "softmax_fwd",
    "softmax_bwd",
    "cross_entropy_fwd",
    "cross_entropy_bwd",
    "lstm_cell_fwd",
    "lstm_cell_bwd",
    "gru_cell_fwd",
    "gru_cell_bwd",
)

BACKENDS = {"numba": "tinyrnn.kernels.jit", "numpy": "tinyrnn.kernels.reference"}

# Whole-sequence kernels of the built-in layers live in their own pair of files.
SEQ_NAMES = (
    "rnn_seq_fwd",
    "rnn_seq_bwd",
    "lstm_seq_fwd",
    "lstm_seq_bwd",
    "gru_seq_fwd",
    "gru_seq_bwd",
)
SEQ_BACKENDS = {"numba": "tinyrnn.kernels.seq_jit", "numpy": "tinyrnn.kernels.seq_reference"}


def backend_name() -> str:
    """The backend chosen by ``TINYRNN_KERNELS`` (``numba`` unless it says ``numpy``).

    >>> backend_name() in ("numba", "numpy")
    True
    """
    name = os.environ.get("TINYRNN_KERNELS", "numba").strip().lower() or "numba"
    if name not in BACKENDS:
        raise ValueError(f"TINYRNN_KERNELS={name!r}: expected one of {sorted(BACKENDS)}")
    return name


def load(name: str | None = None) -> ModuleType:
    """Import a backend module and make its kernels this package's attributes.

    >>> from tinyrnn import kernels
    >>> kernels.load("numpy").__name__, kernels.sigmoid_fwd.__module__
    ('tinyrnn.kernels.reference', 'tinyrnn.kernels.reference')
    >>> _ = kernels.load()   # back to the configured backend
    """
    module = importlib.import_module(BACKENDS[name or backend_name()])
    for kernel in NAMES:
        fn = getattr(module, kernel)
        globals()[kernel] = getattr(fn, "ufunc", None) or fn  # a built jit._Ufunc: the ufunc
    seq = importlib.import_module(SEQ_BACKENDS[name or backend_name()])
    for kernel in SEQ_NAMES:
        globals()[kernel] = getattr(seq, kernel)
    return module


def __getattr__(attr: str):
    if attr in NAMES or attr in SEQ_NAMES:
        load()
        return globals()[attr]
    raise AttributeError(f"module 'tinyrnn.kernels' has no attribute {attr!r}")

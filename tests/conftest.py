"""Shared fixtures: a seeded random generator, and the kernel backend (Numba or NumPy twins).

Tests that take the ``backend`` fixture run once per kernel backend, so the whole op suite
also checks the plain-NumPy twins that ``TINYRNN_KERNELS=numpy`` selects.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn import kernels


@pytest.fixture
def rng() -> np.random.Generator:
    """A NumPy generator seeded per test; ``tr.manual_seed(0)`` is set too."""
    tr.manual_seed(0)
    return np.random.default_rng(0)


@pytest.fixture(params=["numba", "numpy"])
def backend(request) -> str:
    """Load one kernel backend for the test and restore the previous one afterwards."""
    names = [n for attr in dir(kernels) if attr.endswith("NAMES") for n in getattr(kernels, attr)]
    before = {name: getattr(kernels, name) for name in names}
    kernels.load(request.param)
    yield request.param
    for name, fn in before.items():
        setattr(kernels, name, fn)

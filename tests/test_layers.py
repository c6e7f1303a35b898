"""Linear, Embedding, Dropout layers and nn.init."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn.nn import init


@pytest.fixture(autouse=True)
def _seed():
    tr.manual_seed(0)


# ---- nn.init ----


def test_uniform_in_place_range_and_reproducible():
    t = tr.empty(200, 50)
    data = t.data
    out = init.uniform_(t, -0.3, 0.2)
    assert out is t and t.data is data  # in place
    assert t.data.min() >= -0.3 and t.data.max() < 0.2
    assert abs(t.data.mean() - (-0.05)) < 0.01
    tr.manual_seed(7)
    a = init.uniform_(tr.empty(5)).data.copy()
    tr.manual_seed(7)
    b = init.uniform_(tr.empty(5)).data
    np.testing.assert_array_equal(a, b)


def test_init_keeps_dtype_and_works_on_parameters():
    p = tr.nn.Parameter(tr.zeros(3, 4, dtype=tr.float64))
    init.uniform_(p, -1, 1)
    assert p.dtype == tr.float64 and p.requires_grad and p.is_leaf
    assert p.grad_fn is None
    q = init.normal_(tr.empty(3, dtype=tr.float32))
    assert q.dtype == tr.float32


def test_init_errors():
    with pytest.raises(TypeError, match=r"nn.init.uniform_: expected a Tensor, got ndarray"):
        init.uniform_(np.zeros(3))
    with pytest.raises(TypeError, match=r"nn.init.normal_: expected a floating tensor, got dtype int64"):
        init.normal_(tr.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"nn.init.uniform_: expected a <= b, got a=1, b=0"):
        init.uniform_(tr.empty(2), 1, 0)
    with pytest.raises(ValueError, match=r"nn.init.normal_: std must be non-negative, got -1"):
        init.normal_(tr.empty(2), 0, -1)

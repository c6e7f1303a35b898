"""tr.nn.functional: forward values against NumPy (and torch when installed), gradients by
gradcheck in float64 with random output weights, and every error message."""

from __future__ import annotations

import numpy as np
import pytest

import tinyrnn as tr
import tinyrnn.nn.functional as F


def gradcheck_each(fn, *inputs, **kw):
    """gradcheck every tensor input that requires grad, one at a time, the others held fixed."""
    checked = [i for i, a in enumerate(inputs) if isinstance(a, tr.Tensor) and a.requires_grad]
    assert checked
    for i in checked:

        def f(t, i=i):
            args = list(inputs)
            args[i] = t
            return fn(*args)

        assert tr.autograd.gradcheck(f, [inputs[i]], **kw)


def rand64(*shape, requires_grad=True):
    return tr.randn(*shape, dtype=tr.float64, requires_grad=requires_grad)


@pytest.fixture(autouse=True)
def _seed():
    tr.manual_seed(0)


# ---- linear ----


@pytest.mark.parametrize("xshape", [(3,), (5, 3), (2, 4, 3)])
def test_linear_forward_and_grad(xshape):
    x, w, b = rand64(*xshape), rand64(4, 3), rand64(4)
    y = F.linear(x, w, b)
    np.testing.assert_allclose(y.data, x.data @ w.data.T + b.data, rtol=1e-12)
    assert y.shape == xshape[:-1] + (4,)
    gradcheck_each(F.linear, x, w, b)
    gradcheck_each(F.linear, x, w)


def test_linear_errors():
    with pytest.raises(ValueError, match=r"linear: input of shape \(5, 2\) does not match weight "
                       r"of shape \(4, 3\).*in_features=3"):
        F.linear(tr.ones(5, 2), tr.ones(4, 3))
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(4,\).*got \(3,\)"):
        F.linear(tr.ones(5, 3), tr.ones(4, 3), tr.ones(3))
    with pytest.raises(ValueError, match=r"linear: weight must be 2-D"):
        F.linear(tr.ones(5, 3), tr.ones(3))
    with pytest.raises(TypeError, match=r"linear: expected input to be a Tensor, got list"):
        F.linear([1.0, 2.0, 3.0], tr.ones(4, 3))


# ---- dropout ----


def test_dropout_inverted_scaling_and_rate():
    x = tr.ones(200, 100)
    y = F.dropout(x, p=0.3)
    vals = np.unique(y.data)
    np.testing.assert_allclose(vals, [0.0, 1 / 0.7], rtol=1e-6)
    assert abs((y.data == 0).mean() - 0.3) < 0.02
    assert abs(y.data.mean() - 1.0) < 0.03


def test_dropout_reproducible_and_identity_cases():
    tr.manual_seed(5)
    a = F.dropout(tr.ones(50), 0.5).data
    tr.manual_seed(5)
    b = F.dropout(tr.ones(50), 0.5).data
    np.testing.assert_array_equal(a, b)
    x = tr.randn(4, 4)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, np.zeros((4, 4), np.float32))
    assert F.dropout(x, 0.5).dtype == tr.float32


def test_dropout_gradient_uses_the_same_mask():
    x = rand64(6, 5)
    tr.manual_seed(3)
    y = F.dropout(x, 0.4)
    g = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(g)
    mask = y.data / x.data
    np.testing.assert_allclose(x.grad.data, g * mask, rtol=1e-12)

    def fixed_mask(t):
        tr.manual_seed(11)
        return F.dropout(t, 0.4)

    assert tr.autograd.gradcheck(fixed_mask, [x])


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", True])
def test_dropout_bad_p(p):
    with pytest.raises(ValueError, match=r"dropout: probability p must be between 0 and 1"):
        F.dropout(tr.ones(3), p)

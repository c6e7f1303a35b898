"""Tensor: creation functions, dtypes, attributes, conversions, and numerical stability."""

from __future__ import annotations

import numpy as np
import pytest

import tinyrnn as tr

# ---- creation and dtypes ----


def test_tensor_dtypes_follow_the_data():
    assert tr.tensor(1.0).dtype == tr.float32
    assert tr.tensor([1, 2]).dtype == tr.int64
    assert tr.tensor([True]).dtype == tr.bool_
    assert tr.tensor([1, 2.5]).dtype == tr.float32
    assert tr.tensor(np.zeros(2)).dtype == tr.float64  # a NumPy float array keeps its dtype
    assert tr.tensor(np.zeros(2, np.float32)).dtype == tr.float32
    assert tr.tensor(np.zeros(2, np.float16)).dtype == tr.float32  # promoted to the default
    assert tr.tensor(np.arange(3, dtype=np.int32)).dtype == tr.int32
    assert tr.tensor([1, 2], dtype=tr.float64).dtype == tr.float64
    assert tr.tensor([1.5], dtype=np.float64).dtype == tr.float64  # NumPy dtypes accepted


def test_tensor_copies_and_from_numpy_shares():
    a = np.zeros(3)
    t = tr.tensor(a)
    a[0] = 1.0
    assert t.tolist() == [0.0, 0.0, 0.0]
    s = tr.from_numpy(a)
    a[1] = 2.0
    assert s.tolist() == [1.0, 2.0, 0.0]
    assert s.data is a


def test_default_dtype_applies_to_new_tensors():
    try:
        tr.set_default_dtype(tr.float64)
        assert tr.get_default_dtype() == tr.float64
        assert tr.tensor([1.0]).dtype == tr.float64
        assert tr.zeros(2).dtype == tr.float64
        assert tr.randn(2).dtype == tr.float64
        assert tr.arange(0.0, 1.0, 0.5).dtype == tr.float64
    finally:
        tr.set_default_dtype(tr.float32)
    assert tr.ones(1).dtype == tr.float32


@pytest.mark.parametrize(
    ("make", "shape", "values"),
    [
        (lambda: tr.zeros(2, 3), (2, 3), 0.0),
        (lambda: tr.zeros((2, 3)), (2, 3), 0.0),
        (lambda: tr.ones(4), (4,), 1.0),
        (lambda: tr.ones(()), (), 1.0),
        (lambda: tr.full((2, 2), 3.5), (2, 2), 3.5),
        (lambda: tr.zeros_like(tr.ones(3, 1)), (3, 1), 0.0),
        (lambda: tr.ones_like(tr.zeros(2, dtype=tr.float64)), (2,), 1.0),
    ],
)
def test_filled_creation(make, shape, values):
    t = make()
    assert t.shape == shape and np.all(t.data == values)


def test_other_creation_functions():
    assert tr.empty(2, 0).shape == (2, 0)
    assert tr.arange(4).tolist() == [0, 1, 2, 3] and tr.arange(4).dtype == tr.int64
    assert tr.arange(1, 7, 2).tolist() == [1, 3, 5]
    assert tr.arange(0, 1, 0.25).dtype == tr.float32
    np.testing.assert_array_equal(tr.eye(2, 3).data, np.eye(2, 3))
    assert tr.zeros(2, dtype=tr.int64).dtype == tr.int64
    assert tr.zeros_like(tr.ones(2), dtype=tr.float64).dtype == tr.float64
    assert tr.ones(2, requires_grad=True).requires_grad


def test_random_draws_are_reproducible():
    tr.manual_seed(3)
    a, b = tr.randn(3, 2), tr.rand(5)
    tr.manual_seed(3)
    assert (tr.randn(3, 2) == a).all() and (tr.rand(5) == b).all()
    assert not (tr.randn(3, 2) == a).all()
    assert ((b.data >= 0) & (b.data < 1)).all()
    big = tr.randn(20000, dtype=tr.float64)
    assert abs(big.mean().item()) < 0.05 and abs(big.data.std() - 1) < 0.05


# ---- attributes and conversions ----


def test_attributes():
    x = tr.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.dim() == 2 and x.numel() == 6
    assert x.size() == (2, 3) and x.size(1) == 3 and len(x) == 2
    assert x.is_leaf and x.grad_fn is None and x.grad is None and x.name is None
    assert x.T.shape == (3, 2) and x.T.tolist() == [[1, 4], [2, 5], [3, 6]]
    y = x * 2
    assert not y.is_leaf and y.requires_grad and y.grad_fn.name == "Mul"
    assert repr(y.grad_fn) == "<MulBackward>"
    x.name = "weights"
    assert x.name == "weights"


def test_conversions():
    x = tr.tensor([[1.5, 2.0]])
    assert x.numpy() is x.data
    assert x.tolist() == [[1.5, 2.0]]
    assert tr.tensor([[3.0]]).item() == 3.0 and isinstance(tr.tensor(2).item(), int)
    assert np.asarray(x).dtype == np.float32
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert [t.tolist() for t in x[0]] == [1.5, 2.0]  # iteration over the first dimension
    assert bool(tr.tensor([1.0])) and not bool(tr.tensor(0.0))


def test_repr():
    assert repr(tr.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(tr.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(tr.tensor([1.0], dtype=tr.float64)) == "tensor([1.], dtype=float64)"
    y = tr.tensor([1.0], requires_grad=True) + 1
    assert repr(y) == "tensor([2.], grad_fn=<AddBackward>)"


def test_detach_and_requires_grad_():
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert d.is_leaf and not d.requires_grad
    d.requires_grad_()
    (d * d).sum().backward()
    assert d.grad.tolist() == [4.0, 8.0] and x.grad is None
    x.requires_grad_(False)
    assert not x.requires_grad


def test_zero_():
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    x.grad.zero_()
    assert x.grad.tolist() == [0.0, 0.0]
    with tr.no_grad():
        x.zero_()
    assert x.tolist() == [0.0, 0.0]


def test_tensor_hash_is_identity():
    a, b = tr.ones(1), tr.ones(1)
    assert len({a, b}) == 2 and {a: 1}[a] == 1


def test_numpy_arrays_on_the_left_defer_to_tensors():
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    for y in (np.ones(2) + x, np.ones(2) * x, np.ones(2) - x, np.ones(2) / x):
        assert isinstance(y, tr.Tensor) and y.requires_grad
    m = np.ones((3, 2)) @ x
    assert isinstance(m, tr.Tensor) and m.shape == (3,)


def test_float64_stays_float64_through_ops():
    x = tr.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    y = ((x @ x.T).tanh().sigmoid() * 2.5 - x.sum()).log_softmax(1).exp().mean(0)
    assert y.dtype == tr.float64
    y.sum().backward()
    assert x.grad.dtype == tr.float64


def test_integer_tensors_index_and_do_not_require_grad():
    idx = tr.arange(3)
    x = tr.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    assert x[idx[::-1]].tolist() == [[5, 6], [3, 4], [1, 2]]
    y = idx * 2 + 1
    assert y.dtype == tr.int64 and not y.requires_grad
    assert tr.tensor([1, 2]).sum().dtype == tr.int64


def test_dtype_conversions():
    x = tr.tensor([1.7, -0.2])
    assert x.double().dtype == tr.float64 and x.float() is x
    assert x.long().tolist() == [1, 0]
    assert x.to(np.float64).dtype == tr.float64


# ---- numerical stability ----


def test_sigmoid_and_tanh_are_stable_for_large_inputs(backend):
    x = tr.tensor([-1000.0, -60.0, 0.0, 60.0, 1000.0], dtype=tr.float64, requires_grad=True)
    s = x.sigmoid()
    np.testing.assert_allclose(s.data, [0.0, np.exp(-60.0), 0.5, 1.0, 1.0], rtol=1e-12)
    t = x.tanh()
    assert t.tolist() == [-1.0, -1.0, 0.0, 1.0, 1.0]
    (s + t).sum().backward()
    assert np.all(np.isfinite(x.grad.data))
    np.testing.assert_allclose(x.grad.data[2], 0.25 + 1.0)


def test_log_softmax_and_softmax_are_stable(backend):
    x = tr.tensor([[1000.0, 0.0, -1000.0], [-5.0, -5.0, -5.0]], requires_grad=True)
    lp = x.log_softmax(1)
    np.testing.assert_allclose(lp.data[0], [0.0, -1000.0, -2000.0])
    np.testing.assert_allclose(lp.data[1], np.log([1 / 3] * 3), rtol=1e-6)
    p = x.softmax(1)
    np.testing.assert_allclose(p.data.sum(1), [1.0, 1.0], rtol=1e-6)
    (lp * tr.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0]])).sum().backward()
    assert np.all(np.isfinite(x.grad.data))


def test_cross_entropy_rows_are_stable(backend):
    from tinyrnn.ops.fused import CrossEntropyRows

    x = tr.tensor([[1000.0, -1000.0], [0.0, 2000.0]], requires_grad=True)
    loss = CrossEntropyRows.apply(x, np.array([1, 1]))
    np.testing.assert_allclose(loss.data, [2000.0, 0.0])
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.data, [[1.0, -1.0], [0.0, 0.0]])


def test_log_of_zero_is_minus_infinity_without_warning():
    with np.errstate(all="raise"):
        assert tr.tensor([0.0]).log().item() == -np.inf


def test_logical_operators_on_masks():
    a = tr.tensor([True, True, False])
    b = tr.tensor([True, False, False])
    assert (a & b).tolist() == [True, False, False]
    assert (a | b).tolist() == [True, True, False]
    assert (a ^ b).tolist() == [False, True, False]
    assert (~a).tolist() == [False, False, True]
    x = tr.tensor([-1.0, 0.5, 2.0])
    assert ((x > 0) & (x < 1)).tolist() == [False, True, False]


def test_numpy_array_of_a_tensor_is_a_copy_unless_asked_not_to():
    x = tr.tensor([1.0, 2.0])
    a = np.array(x)
    a[0] = 9.0
    assert x.tolist() == [1.0, 2.0]
    assert np.asarray(x) is x.data


def test_builtin_abs_is_differentiable():
    x = tr.tensor([-2.0, 3.0], dtype=tr.float64, requires_grad=True)
    y = abs(x)
    assert y.tolist() == [2.0, 3.0]
    (y * tr.tensor([5.0, 7.0], dtype=tr.float64)).sum().backward()
    assert x.grad.tolist() == [-5.0, 7.0]

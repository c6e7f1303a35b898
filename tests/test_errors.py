"""Bad input gets a clear error naming the op, the shapes and what was expected."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn.engine import Function
from tinyrnn.ops import fused


def _raises(exc, fn, *fragments):
    """``fn()`` raises ``exc`` whose message contains every fragment (plain text, in order)."""
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    pattern = ".*".join(re.escape(f) for f in fragments)
    assert re.search(pattern, msg, re.S), f"{msg!r} lacks {fragments}"
    return msg


# ---- shapes ----


@pytest.mark.parametrize(
    ("op", "fn"),
    [
        ("add", lambda a, b: a + b),
        ("sub", lambda a, b: a - b),
        ("mul", lambda a, b: a * b),
        ("div", lambda a, b: a / b),
        ("pow", lambda a, b: a**b),
    ],
)
def test_broadcast_mismatch(op, fn):
    _raises(ValueError, lambda: fn(tr.ones(2, 3), tr.ones(3, 2)),
            f"{op}: shapes (2, 3) and (3, 2) cannot be broadcast", "must match or be 1")


def test_broadcast_mismatch_with_an_array_constant():
    _raises(ValueError, lambda: tr.ones(3) + np.ones(4), "add: shapes (3,) and (4,)")


def test_where_broadcast_mismatch():
    _raises(ValueError, lambda: tr.where(np.ones(3, bool), tr.ones(3), tr.ones(4)),
            "where: condition (3,), x (3,) and y (4,) cannot be broadcast")


@pytest.mark.parametrize(
    ("a", "b", "fragments"),
    [
        ((2, 3), (4, 5), ("matmul: shapes (2, 3) and (4, 5) are not aligned",
                          "first (3) must equal the second-to-last dimension of the second (4)")),
        ((3,), (4,), ("matmul: shapes (3,) and (4,)", "only dimension of the second (4)")),
        ((), (3,), ("matmul: both operands need at least 1 dimension, got shapes () and (3,)",)),
        ((2, 3, 4), (3, 4, 5), ("matmul: batch dimensions of shapes (2, 3, 4) and (3, 4, 5)",)),
    ],
)
def test_matmul_mismatch(a, b, fragments):
    _raises(ValueError, lambda: tr.ones(*a) @ tr.ones(*b), *fragments)


def test_shape_errors_of_movement_ops():
    x = tr.ones(3, 4)
    _raises(ValueError, lambda: x.reshape(5, 2), "reshape: cannot reshape a tensor of shape (3, 4)",
            "(12 elements) into shape (5, 2)")
    _raises(ValueError, lambda: x.permute(0, 0), "permute: dims (0, 0) is not a permutation",
            "shape (3, 4)")
    _raises(IndexError, lambda: x.transpose(0, 2), "transpose: dim 2 out of range for shape (3, 4)")
    _raises(ValueError, lambda: tr.cat([tr.ones(2, 3), tr.ones(2, 4)]),
            "cat: tensors of shapes [(2, 3), (2, 4)] cannot be joined along dim 0")
    _raises(ValueError, lambda: tr.cat([tr.ones(()), tr.ones(())]), "cat: zero-dimensional")
    _raises(TypeError, lambda: tr.cat([]), "cat: expected a non-empty list or tuple of tensors")
    _raises(ValueError, lambda: tr.stack([tr.ones(2), tr.ones(3)]),
            "stack: expected tensors of equal shape, got [(2,), (3,)]")
    _raises(IndexError, lambda: tr.stack([tr.ones(2)], dim=3), "stack: dim 3 out of range")
    _raises(ValueError, lambda: x.split([1, 1]),
            "split: sections [1, 1] sum to 2 but dim 0 has size 3")
    _raises(ValueError, lambda: x.split(0), "split: split_size must be positive, got 0")
    _raises(ValueError, lambda: x.chunk(0), "chunk: chunks must be positive, got 0")
    _raises(IndexError, lambda: x.unsqueeze(4), "unsqueeze: dim 4 out of range for a result with 3")
    _raises(IndexError, lambda: x.squeeze(5), "squeeze: dimension 5 out of range", "2 dimension(s)")


def test_reduction_errors():
    x = tr.ones(3, 4)
    _raises(IndexError, lambda: x.sum(2), "sum: dimension 2 out of range for a tensor with 2",
            "expected -2 <= dim < 2")
    _raises(IndexError, lambda: x.mean(-3), "mean: dimension -3 out of range")
    _raises(RuntimeError, lambda: tr.zeros(0).max(),
            "max: expected a non-empty tensor, got shape (0,)")
    _raises(RuntimeError, lambda: tr.zeros(2, 0).min(), "min: expected a non-empty tensor")
    _raises(TypeError, lambda: x.max(dim=(0, 1)), "max: dim must be an int or None, got (0, 1)")
    _raises(TypeError, lambda: tr.arange(3).mean(),
            "mean: expected a floating tensor, got dtype int64")
    _raises(ValueError, lambda: x.clamp(), "clamp: at least one of min and max must be given")


def test_softmax_dim_out_of_range():
    _raises(IndexError, lambda: tr.ones(3, 4).softmax(2),
            "softmax: dim 2 out of range for a tensor of shape (3, 4)")
    _raises(IndexError, lambda: tr.ones(3).log_softmax(-2), "log_softmax: dim -2 out of range")


def test_fused_op_input_checks():
    _raises(ValueError, lambda: fused.LSTMCellStep.apply(tr.ones(2, 8), tr.ones(2, 3)),
            "LSTMCellStep: got gates (2, 8) and state (2, 3)", "(B, 4*H)", "(B, H)")
    _raises(ValueError, lambda: fused.LSTMCellStep.apply(tr.ones(8), tr.ones(2)),
            "LSTMCellStep: got gates (8,) and state (2,)")
    gi, gh, h = tr.ones(2, 6), tr.ones(2, 5), tr.ones(2, 2)
    _raises(ValueError, lambda: fused.GRUCellStep.apply(gi, gh, h),
            "GRUCellStep: got gi (2, 6), gh (2, 5) and state (2, 2)", "(B, 3*H)")
    x = tr.ones(3, 4)
    _raises(IndexError, lambda: fused.CrossEntropyRows.apply(x, np.array([0, 4, -100])),
            "cross_entropy: target 4 is out of range for 4 classes", "shape (3, 4)", "[0, 4)")
    _raises(IndexError, lambda: fused.CrossEntropyRows.apply(x, np.array([0, -1, 1])),
            "cross_entropy: target -1 is out of range")
    _raises(ValueError, lambda: fused.CrossEntropyRows.apply(x, np.array([0.0, 1.0, 2.0])),
            "cross_entropy: expected integer class ids of shape (3,)", "got float64 of shape (3,)")
    _raises(ValueError, lambda: fused.CrossEntropyRows.apply(x, np.array([0, 1])),
            "integer class ids of shape (3,)", "got int64 of shape (2,)")
    _raises(ValueError, lambda: fused.CrossEntropyRows.apply(tr.ones(4), np.array([0])),
            "cross_entropy: expected logits of shape (N, C), got shape (4,)")


# ---- backward ----


def test_backward_on_non_scalar_needs_a_gradient():
    y = tr.ones(3, 4, requires_grad=True) * 2
    _raises(RuntimeError, y.backward, "backward: grad can be implicitly created only for scalar",
            "shape (3, 4)", "pass gradient=")
    _raises(RuntimeError, lambda: y.backward(tr.ones(4)),
            "backward: gradient has shape (4,) but the tensor has shape (3, 4)")


def test_second_backward_through_freed_graph():
    x = tr.ones(2, requires_grad=True)
    with tr.scope("cell"):
        y = (x.exp() * 2).sum()
    y.backward()
    _raises(RuntimeError, y.backward, "backward through the graph a second time", "op Sum",
            "scope cell", "retain_graph=True")


def test_backward_of_a_tensor_that_does_not_require_grad():
    _raises(RuntimeError, tr.ones(1).backward, "does not require grad")


def test_function_returning_the_wrong_number_of_gradients():
    class Bad(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g

    y = Bad.apply(tr.ones(2, requires_grad=True), tr.ones(2, requires_grad=True))
    _raises(RuntimeError, lambda: y.sum().backward(), "Bad.backward returned 1 gradients",
            "expected 2")


def test_function_returning_a_gradient_of_the_wrong_shape():
    class Bad(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return np.ones(5)

    y = Bad.apply(tr.ones(2, 3, requires_grad=True))
    _raises(RuntimeError, lambda: y.sum().backward(),
            "Bad.backward returned a gradient of shape (5,) for input 0, which has shape (2, 3)",
            "expected a shape that broadcasts to it")


def test_apply_without_a_tensor():
    _raises(TypeError, lambda: Function.apply(1.0), "Function.apply: expected at least one Tensor")


def test_base_function_must_be_subclassed():
    _raises(NotImplementedError, lambda: Function.apply(tr.ones(1)), "must define a static forward")


# ---- creation and dtypes ----


def test_requires_grad_on_integer_tensors():
    _raises(RuntimeError, lambda: tr.tensor([1, 2], requires_grad=True),
            "requires_grad: only floating point tensors can require gradients", "dtype int64")
    _raises(RuntimeError, lambda: tr.arange(3).requires_grad_(), "dtype int64")
    _raises(RuntimeError, lambda: tr.zeros(2, dtype=tr.int32, requires_grad=True), "dtype int32")
    _raises(RuntimeError, lambda: tr.tensor([True], requires_grad=True), "dtype bool")


@pytest.mark.parametrize(
    ("data", "exc", "fragments"),
    [
        ("abc", TypeError, ("tensor: cannot make a tensor from a string ('abc')",)),
        (b"ab", TypeError, ("tensor: cannot make a tensor from a string",)),
        (["a", "b"], TypeError, ("tensor: unsupported data of dtype <U1", "expected numbers")),
        ([object()], TypeError, ("tensor: unsupported data of dtype object",)),
        (None, TypeError, ("tensor: unsupported data of dtype object",)),
        ({"a": 1}, TypeError, ("tensor: unsupported data of dtype object",)),
        ([1 + 2j], TypeError, ("tensor: complex data is not supported (got dtype complex128)",)),
        (np.array([1j], np.complex64), TypeError, ("tensor: complex data", "complex64")),
        ([[1, 2], [3]], ValueError, ("tensor: could not make a tensor from ragged",
                                     "nested sequences of equal lengths")),
        ([[1.0], 2.0], ValueError, ("tensor: could not make a tensor from ragged",)),
    ],
)
def test_unsupported_data_at_creation(data, exc, fragments):
    _raises(exc, lambda: tr.tensor(data), *fragments)


def test_unsupported_dtypes():
    _raises(TypeError, lambda: tr.tensor([1.0], dtype=np.float16), "unsupported dtype float16",
            "use float32 or float64")
    _raises(TypeError, lambda: tr.ones(2).to("complex64"), "unsupported dtype complex64")
    _raises(TypeError, lambda: tr.set_default_dtype(np.int32),
            "set_default_dtype: expected float32 or float64, got int32")


def test_creation_argument_errors():
    _raises(ValueError, lambda: tr.zeros(-1), "zeros: expected a shape of non-negative ints",
            "(-1,)")
    _raises(ValueError, lambda: tr.randn(2, 1.5), "randn: expected a shape of non-negative ints")
    _raises(TypeError, lambda: tr.from_numpy([1, 2]),
            "from_numpy: expected a numpy.ndarray, got list")
    _raises(TypeError, lambda: tr.manual_seed(1.5), "manual_seed: expected an int, got float")
    _raises(TypeError, lambda: tr.ones(2) @ "a", "matmul: cannot make a tensor from a string")


# ---- indexing ----


@pytest.mark.parametrize(
    ("index", "fragments"),
    [
        (5, ("getitem: index 5 is out of bounds for axis 0 with size 3", "tensor of shape (3, 4)")),
        ((slice(None), -9), ("getitem: index -9 is out of bounds for axis 1 with size 4",)),
        ([0, 7], ("getitem: index 7 is out of bounds for axis 0 with size 3",)),
        (np.ones(4, bool), ("getitem: boolean index did not match", "tensor of shape (3, 4)")),
        ((0, 0, 0), ("getitem: too many indices", "tensor of shape (3, 4)")),
        (1.5, ("getitem: only integers, slices", "tensor of shape (3, 4)")),
    ],
)
def test_indexing_errors(index, fragments):
    x = tr.ones(3, 4, requires_grad=True)
    _raises(IndexError, lambda: x[index], *fragments)


def test_index_tensor_out_of_range():
    _raises(IndexError, lambda: tr.ones(3)[tr.tensor([0, 3])], "getitem: index 3 is out of bounds")


# ---- tensor conversions and in-place rules ----


def test_conversion_errors():
    x = tr.ones(3, 4, requires_grad=True)
    _raises(ValueError, x.item, "item: only a tensor with one element", "got shape (3, 4)")
    _raises(RuntimeError, lambda: bool(x), "bool: a tensor of shape (3, 4) has more than one value")
    _raises(TypeError, lambda: len(tr.tensor(1.0)), "len() of a 0-d tensor")
    _raises(RuntimeError, x.zero_, "zero_: a leaf that requires grad cannot be changed in place")
    _raises(RuntimeError, lambda: (x * 2).requires_grad_(False), "only leaf tensors can be changed")
    _raises(RuntimeError, lambda: tr.ones(2).register_hook(print),
            "register_hook: cannot register a hook on a tensor that does not require grad")


# ---- Value ----


def test_value_errors():
    _raises(TypeError, lambda: tr.Value("a"), "Value: expected a real number, got str")
    _raises(TypeError, lambda: tr.Value(True), "Value: expected a real number, got bool")
    _raises(ValueError, lambda: tr.Value(float("nan")), "Value: expected a finite number, got nan")
    _raises(TypeError, lambda: tr.Value(1.0) + "a", "Value +: expected a Value or a real number")
    _raises(TypeError, lambda: tr.Value(1.0) * np.ones(2), "Value *: expected a Value or a real")
    _raises(ValueError, lambda: tr.Value(-1.0).log(), "log: expected a positive number, got -1.0")
    _raises(ZeroDivisionError, lambda: tr.Value(1.0) / 0, "Value /: division by zero")
    _raises(ZeroDivisionError, lambda: 1.0 / tr.Value(0.0), "Value /: division by zero")
    _raises(ValueError, lambda: tr.Value(-1.0) ** 0.5, "pow: -1.0 ** 0.5 is not a real number")
    _raises(ValueError, lambda: tr.Value(0.0) ** -1, "pow: 0.0 ** -1.0 is undefined")


# ---- gradcheck ----


def test_gradcheck_reports_input_index_and_both_values():
    class WrongGrad(Function):
        @staticmethod
        def forward(ctx, a):
            return a * a

        @staticmethod
        def backward(ctx, g):
            return g  # should be 2 a g

    x = tr.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=tr.float64, requires_grad=True)
    x.name = "weights"
    msg = _raises(tr.autograd.GradcheckError, lambda: tr.autograd.gradcheck(WrongGrad.apply, [x]),
                  "gradients disagree for input 0 (weights) of shape (2, 2) at index (0, 0)",
                  "analytic", "numerical")
    assert "index (0, 0)" in msg
    _raises(tr.autograd.GradcheckError,
            lambda: tr.autograd.gradcheck(WrongGrad.apply, [x], mode="projection"),
            "gradients disagree for input 0 (weights) of shape (2, 2) along a random direction")


def test_gradcheck_argument_errors():
    x = tr.ones(2, dtype=tr.float64, requires_grad=True)
    _raises(ValueError, lambda: tr.autograd.gradcheck(lambda a: a, [tr.ones(2)]),
            "gradcheck: no input requires grad")
    _raises(ValueError, lambda: tr.autograd.gradcheck(lambda a: a, [x], mode="x"),
            "gradcheck: mode must be 'full', 'projection' or 'auto', got 'x'")
    _raises(TypeError, lambda: tr.autograd.gradcheck(lambda a: 3, [x]),
            "gradcheck: fn must return tensors, got int")
    with pytest.warns(UserWarning, match="gradcheck: inputs are not float64"):
        x32 = tr.ones(2, requires_grad=True)
        tr.autograd.gradcheck(lambda a: a * 2, [x32], eps=1e-2, atol=1e-2)

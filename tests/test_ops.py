"""One table drives the op tests: forward against NumPy, backward by gradcheck (float64, random
output weights), on both kernel backends.

Each row is ``Op(name, fn, ref, shapes, domain)``: ``fn`` takes tensors and ``ref`` takes the
same inputs as float64 NumPy arrays; ``shapes`` lists the input shapes to try (0-d, 1-d, 2-d,
3-d and broadcasting pairs); ``domain`` says where inputs are drawn (away from kinks and poles,
where finite differences are meaningless). Adding an op means adding a row here; the last test
fails when an op class in ``tinyrnn.ops`` has no row.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn.engine import Function
from tinyrnn.ops import elementwise, fused, linalg, movement, reduce

UNARY = [(), (5,), (3, 4), (2, 3, 4)]
BINARY = [
    ((), ()),
    ((5,), (5,)),
    ((3, 4), (3, 4)),
    ((2, 3, 4), (2, 3, 4)),
    ((3, 1), (1, 4)),
    ((3, 4), (4,)),
    ((4,), (3, 4)),
    ((), (3, 4)),
    ((2, 1, 4), (3, 1)),
]
ND = [(5,), (3, 4), (2, 3, 4)]  # at least one dimension


@dataclass
class Op:
    name: str
    fn: Callable[..., Any]
    ref: Callable[..., Any]
    shapes: list[tuple[tuple[int, ...], ...]]
    domain: str | tuple[str, ...] = "real"
    nondiff: tuple[int, ...] = ()  # inputs that are not differentiable (a where condition)


def _un(shapes):
    return [(s,) for s in shapes]


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def _log_softmax(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return a - m - np.log(np.exp(a - m).sum(axis=axis, keepdims=True))


def _softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _lstm_ref(gates, c_prev):
    i, f, g, o = np.split(gates, 4, axis=1)
    c = _sig(f) * c_prev + _sig(i) * np.tanh(g)
    return _sig(o) * np.tanh(c), c


def _gru_ref(gi, gh, h_prev):
    ir, iz, in_ = np.split(gi, 3, axis=1)
    hr, hz, hn = np.split(gh, 3, axis=1)
    r, z = _sig(ir + hr), _sig(iz + hz)
    n = np.tanh(in_ + r * hn)
    return (1 - z) * n + z * h_prev


TARGET = np.array([2, 0, -100, 3, 1])  # one row ignored (ignore_index=-100)


def _ce_ref(x):
    logp = _log_softmax(x, 1)
    keep = TARGET != -100
    return np.where(keep, -logp[np.arange(len(TARGET)), np.where(keep, TARGET, 0)], 0.0)


MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])
IDX = np.array([2, 0, 2, 2, 1])  # repeated indices: gradients must add up
F32_ROW = np.arange(4, dtype=np.float32)  # float32 constants keep float32 results float32
F32_ROWS = np.ones((2, 3), dtype=np.float32)

OPS = [
    # ---- element-wise, binary (broadcasting) ----
    Op("add", lambda a, b: a + b, np.add, BINARY),
    Op("sub", lambda a, b: a - b, np.subtract, BINARY),
    Op("mul", lambda a, b: a * b, np.multiply, BINARY),
    Op("div", lambda a, b: a / b, np.divide, BINARY, ("real", "away0")),
    Op("pow", lambda a, b: a**b, np.power, BINARY, ("positive", "real")),
    Op("add_scalar", lambda a: 2.5 + a, lambda a: 2.5 + a, _un(UNARY)),
    Op("rsub_scalar", lambda a: 2.0 - a, lambda a: 2.0 - a, _un(UNARY)),
    Op("mul_scalar", lambda a: a * -3.0, lambda a: a * -3.0, _un(UNARY)),
    Op("rdiv_scalar", lambda a: 1.5 / a, lambda a: 1.5 / a, _un(UNARY), "away0"),
    Op("pow_int", lambda a: a**3, lambda a: a**3, _un(UNARY)),
    Op("pow_half", lambda a: a**0.5, np.sqrt, _un(UNARY), "positive"),
    Op("rpow", lambda a: 2.0**a, lambda a: 2.0**a, _un(UNARY)),
    Op("add_array", lambda a: a + F32_ROW, lambda a: a + F32_ROW, _un([(3, 4)])),
    # ---- element-wise, unary ----
    Op("neg", lambda a: -a, np.negative, _un(UNARY)),
    Op("exp", lambda a: a.exp(), np.exp, _un(UNARY)),
    Op("log", lambda a: a.log(), np.log, _un(UNARY), "positive"),
    Op("sqrt", lambda a: a.sqrt(), np.sqrt, _un(UNARY), "positive"),
    Op("abs", lambda a: a.abs(), np.abs, _un(UNARY), "away0"),
    Op("tanh", lambda a: a.tanh(), np.tanh, _un(UNARY)),
    Op("tanh_large", lambda a: (a * 30).tanh(), lambda a: np.tanh(a * 30), _un([(6,)])),
    Op("sigmoid", lambda a: a.sigmoid(), _sig, _un(UNARY)),
    Op("sigmoid_large", lambda a: (a * 50).sigmoid(), lambda a: _sig(a * 50), _un([(6,)])),
    Op("relu", lambda a: a.relu(), lambda a: np.maximum(a, 0), _un(UNARY), "away0"),
    Op("clamp", lambda a: a.clamp(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), _un(UNARY), "kinks"),
    Op("clamp_min", lambda a: a.clamp(min=0.5), lambda a: np.maximum(a, 0.5), _un(UNARY), "kinks"),
    Op("clamp_max", lambda a: a.clamp(max=-0.5), lambda a: np.minimum(a, -0.5), _un(UNARY),
       "kinks"),
    Op(
        "where",
        lambda c, a, b: tr.where(c > 0, a, b),
        lambda c, a, b: np.where(c > 0, a, b),
        [((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), (4,)), ((), (2, 3), (3,))],
        nondiff=(0,),
    ),
    Op("where_scalar", lambda c, a: tr.where(c > 0, a, 0.0), lambda c, a: np.where(c > 0, a, 0.0),
       [((3, 4), (3, 4))], nondiff=(0,)),
    # ---- reductions ----
    Op("sum", lambda a: a.sum(), np.sum, _un(UNARY)),
    Op("sum_dim0", lambda a: a.sum(0), lambda a: a.sum(0), _un(ND)),
    Op("sum_dim-1_keep", lambda a: a.sum(-1, keepdim=True), lambda a: a.sum(-1, keepdims=True),
       _un(ND)),
    Op("sum_dims", lambda a: a.sum((0, 2)), lambda a: a.sum((0, 2)), _un([(2, 3, 4)])),
    Op("mean", lambda a: a.mean(), np.mean, _un(UNARY)),
    Op("mean_dim1", lambda a: a.mean(1), lambda a: a.mean(1), _un([(3, 4), (2, 3, 4)])),
    Op("mean_keep", lambda a: a.mean(-1, keepdim=True), lambda a: a.mean(-1, keepdims=True),
       _un(ND)),
    Op("max", lambda a: a.max(), np.max, _un(UNARY)),
    Op("min", lambda a: a.min(), np.min, _un(UNARY)),
    Op("max_dim", lambda a: a.max(dim=-1).values, lambda a: a.max(-1), _un(ND)),
    Op("max_dim_keep", lambda a: a.max(0, keepdim=True).values, lambda a: a.max(0, keepdims=True),
       _un(ND)),
    Op("min_dim", lambda a: a.min(dim=1).values, lambda a: a.min(1), _un([(3, 4), (2, 3, 4)])),
    Op("max_dim_0d", lambda a: a.max(dim=0).values, lambda a: a, _un([()])),
    # ---- movement ----
    Op("reshape", lambda a: a.reshape(2, -1), lambda a: a.reshape(2, -1),
       _un([(4,), (3, 4), (2, 3, 4)])),
    Op("view_0d", lambda a: a.view(1, 1), lambda a: a.reshape(1, 1), _un([()])),
    Op("flatten", lambda a: a.flatten(), lambda a: a.reshape(-1), _un(UNARY)),
    Op("permute", lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), _un([(2, 3, 4)])),
    Op("transpose", lambda a: a.transpose(0, -1), lambda a: np.swapaxes(a, 0, -1), _un(ND)),
    Op("T", lambda a: a.T, lambda a: a.T, _un(UNARY)),
    Op("squeeze", lambda a: a.squeeze(), np.squeeze, _un([(1, 3, 1), (3, 4), (1,)])),
    Op("squeeze_dim", lambda a: a.squeeze(1), lambda a: a.squeeze(1), _un([(3, 1, 2)])),
    Op("unsqueeze", lambda a: a.unsqueeze(0), lambda a: a[None], _un(UNARY)),
    Op("unsqueeze_-1", lambda a: a.unsqueeze(-1), lambda a: a[..., None], _un(UNARY)),
    Op("getitem_int", lambda a: a[1], lambda a: a[1], _un(ND)),
    Op("getitem_neg", lambda a: a[-1], lambda a: a[-1], _un(ND)),
    Op("getitem_slice", lambda a: a[1:3], lambda a: a[1:3], _un(ND)),
    Op("getitem_step", lambda a: a[::-2], lambda a: a[::-2], _un(ND)),
    Op("getitem_tuple", lambda a: a[:, 1:3], lambda a: a[:, 1:3], _un([(3, 4), (2, 3, 4)])),
    Op("getitem_none_ellipsis", lambda a: a[None, ..., 0], lambda a: a[None, ..., 0],
       _un([(3, 4), (2, 3, 4)])),
    Op("getitem_0d_ellipsis", lambda a: a[...], lambda a: a[...], _un([()])),
    Op("getitem_list", lambda a: a[[0, 2]], lambda a: a[[0, 2]], _un([(3, 4), (3,)])),
    Op("getitem_repeated", lambda a: a[IDX], lambda a: a[IDX], _un([(3,), (3, 4), (3, 2, 2)])),
    Op("getitem_int_tensor", lambda a: a[tr.tensor(IDX)], lambda a: a[IDX], _un([(3, 4)])),
    Op("getitem_2d_index", lambda a: a[np.array([[0, 1], [1, 0]])],
       lambda a: a[np.array([[0, 1], [1, 0]])], _un([(3, 4)])),
    Op("getitem_pairs", lambda a: a[[0, 2, 2], [1, 1, 3]], lambda a: a[[0, 2, 2], [1, 1, 3]],
       _un([(3, 4)])),
    Op("getitem_mixed", lambda a: a[1:, [0, 0, 3]], lambda a: a[1:, [0, 0, 3]], _un([(3, 4)])),
    Op("getitem_mask", lambda a: a[MASK], lambda a: a[MASK], _un([(3, 4)])),
    Op("getitem_mask_tensor", lambda a: a[tr.tensor(MASK)], lambda a: a[MASK], _un([(3, 4)])),
    Op("getitem_row_mask", lambda a: a[np.array([True, False, True])],
       lambda a: a[np.array([True, False, True])], _un([(3, 4), (3, 2, 2)])),
    Op("cat0", lambda a, b: tr.cat([a, b]), lambda a, b: np.concatenate([a, b]),
       [((2, 3), (4, 3)), ((1,), (5,)), ((2, 3, 4), (1, 3, 4))]),
    Op("cat_last", lambda a, b, c: tr.cat([a, b, c], dim=-1),
       lambda a, b, c: np.concatenate([a, b, c], -1),
       [((3, 1), (3, 2), (3, 4)), ((2,), (1,), (3,))]),
    Op("stack0", lambda a, b: tr.stack([a, b]), lambda a, b: np.stack([a, b]),
       [((), ()), ((3,), (3,)), ((2, 3), (2, 3))]),
    Op("stack_last", lambda a, b, c: tr.stack([a, b, c], dim=-1),
       lambda a, b, c: np.stack([a, b, c], -1), [((3,), (3,), (3,)), ((2, 3), (2, 3), (2, 3))]),
    Op("split", lambda a: a.split(2, dim=-1), lambda a: np.split(a, [2], -1), _un([(3, 4), (4,)])),
    Op("split_uneven", lambda a: a.split(2), lambda a: np.split(a, [2, 4]), _un([(5,), (5, 2)])),
    Op("split_sections", lambda a: a.split([1, 3], dim=1), lambda a: np.split(a, [1], 1),
       _un([(2, 4), (2, 4, 3)])),
    Op("chunk", lambda a: a.chunk(3, dim=0), lambda a: np.split(a, [2, 4]), _un([(6,), (5, 2)])),
    Op("unbind", lambda a: movement.Unbind.apply(a), lambda a: list(a), _un(ND)),
    Op("unbind_one_step", lambda a: movement.Unbind.apply(a)[0], lambda a: a[0],
       _un([(1, 3), (1,)])),
    Op("cast_identity", lambda a: movement.Cast.apply(a, dtype=a.dtype), lambda a: a, _un(UNARY)),
    # ---- matmul ----
    Op(
        "matmul",
        lambda a, b: a @ b,
        np.matmul,
        [
            ((4,), (4,)),
            ((4,), (4, 3)),
            ((3, 4), (4,)),
            ((3, 4), (4, 5)),
            ((2, 3, 4), (2, 4, 5)),
            ((2, 3, 4), (4, 5)),
            ((3, 4), (2, 4, 5)),
            ((4,), (2, 4, 5)),
            ((2, 3, 4), (4,)),
            ((2, 1, 3, 4), (5, 4, 2)),
        ],
    ),
    Op("matmul_tr_matmul", lambda a, b: tr.matmul(a, b), np.matmul, [((1, 1), (1, 1))]),
    # column-major operands (transposes): gradients are computed in their layout
    Op("matmul_of_transposes", lambda a, b: a.T @ b.T, lambda a, b: a.T @ b.T, [((4, 3), (5, 4))]),
    Op("matmul_x_wt", lambda a, b: a @ b.T, lambda a, b: a @ b.T,
       [((3, 4), (5, 4)), ((2, 3, 4), (5, 4))]),
    Op("rmatmul_array", lambda a: F32_ROWS @ a, lambda a: F32_ROWS @ a, _un([(3, 4)])),
    # ---- fused: softmax family, cross-entropy rows, recurrent cell steps ----
    Op("softmax", lambda a: a.softmax(-1), lambda a: _softmax(a, -1), _un(UNARY)),
    Op("softmax_dim0", lambda a: a.softmax(0), lambda a: _softmax(a, 0), _un(ND)),
    Op("softmax_mid", lambda a: a.softmax(1), lambda a: _softmax(a, 1), _un([(2, 3, 4)])),
    Op("log_softmax", lambda a: a.log_softmax(-1), lambda a: _log_softmax(a, -1), _un(UNARY)),
    Op("log_softmax_dim0", lambda a: a.log_softmax(0), lambda a: _log_softmax(a, 0), _un(ND)),
    Op("log_softmax_large", lambda a: (a * 100).log_softmax(-1),
       lambda a: _log_softmax(a * 100, -1), _un([(3, 4)])),
    Op("cross_entropy_rows", lambda a: fused.CrossEntropyRows.apply(a, TARGET, ignore_index=-100),
       _ce_ref, _un([(5, 4)])),
    Op("cross_entropy_rows_tensor_target",
       lambda a: fused.CrossEntropyRows.apply(a, tr.tensor(TARGET), ignore_index=-100),
       _ce_ref, _un([(5, 4)])),
    Op("squared_error_mean", lambda a, b: fused.SquaredError.apply(a, b),
       lambda a, b: ((a - b) ** 2).mean(), [((3, 4), (3, 4)), ((5,), (5,))]),
    Op("squared_error_sum", lambda a, b: fused.SquaredError.apply(a, b, reduction="sum"),
       lambda a, b: ((a - b) ** 2).sum(), [((2, 3), (2, 3))]),
    Op("squared_error_none", lambda a, b: fused.SquaredError.apply(a, b, reduction="none"),
       lambda a, b: (a - b) ** 2, [((2, 3), (2, 3))]),
    Op("lstm_cell_step", fused.LSTMCellStep.apply, _lstm_ref, [((3, 8), (3, 2)), ((1, 4), (1, 1))]),
    Op("lstm_cell_step_h_only", lambda g, c: fused.LSTMCellStep.apply(g, c)[0],
       lambda g, c: _lstm_ref(g, c)[0], [((2, 12), (2, 3))]),
    Op("lstm_cell_step_c_only", lambda g, c: fused.LSTMCellStep.apply(g, c)[1],
       lambda g, c: _lstm_ref(g, c)[1], [((2, 12), (2, 3))]),
    Op("gru_cell_step", fused.GRUCellStep.apply, _gru_ref,
       [((3, 6), (3, 6), (3, 2)), ((1, 3), (1, 3), (1, 1))]),
    # ---- compositions across families ----
    Op("expression", lambda a, b: ((a @ b).tanh() * 2 - b.sum(0)).sigmoid().mean(0),
       lambda a, b: _sig(np.tanh(a @ b) * 2 - b.sum(0)).mean(0), [((3, 4), (4, 5))]),
]

CASES = [pytest.param(op, shapes, id=f"{op.name}-{shapes}") for op in OPS for shapes in op.shapes]


def _draw(rng: np.random.Generator, shape: tuple[int, ...], domain: str) -> np.ndarray:
    if domain == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if domain == "away0":  # |x| in [0.2, 2]: away from the kink of abs/relu and the pole of 1/x
        return rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    if domain == "kinks":  # away from the clamp bounds +-0.5
        return rng.choice([-1.0, 1.0], shape) * rng.choice([0.1, 0.3, 0.7, 1.2], shape)
    return rng.standard_normal(shape)


def _inputs(rng, op: Op, shapes) -> list[np.ndarray]:
    domains = op.domain if isinstance(op.domain, tuple) else (op.domain,) * len(shapes)
    pairs = zip(shapes, domains, strict=True)
    return [np.asarray(_draw(rng, s, d), dtype=np.float64) for s, d in pairs]


def _tensors(op: Op, arrays: list[np.ndarray]) -> list[tr.Tensor]:
    return [tr.tensor(a, requires_grad=k not in op.nondiff) for k, a in enumerate(arrays)]


def _flat(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


@pytest.mark.parametrize(("op", "shapes"), CASES)
def test_forward_float64(op, shapes, rng, backend):
    arrays = _inputs(rng, op, shapes)
    out = _flat(op.fn(*_tensors(op, arrays)))
    ref = _flat(op.ref(*[a.copy() for a in arrays]))
    assert len(out) == len(ref)
    for o, r in zip(out, ref, strict=True):
        assert isinstance(o, tr.Tensor)
        assert o.shape == np.shape(r), op.name
        assert o.dtype == tr.float64
        np.testing.assert_allclose(o.data, r, rtol=1e-12, atol=1e-12, err_msg=op.name)


@pytest.mark.parametrize(("op", "shapes"), CASES)
def test_forward_float32(op, shapes, rng, backend):
    arrays = _inputs(rng, op, shapes)
    out = _flat(op.fn(*_tensors(op, [a.astype(np.float32) for a in arrays])))
    ref = _flat(op.ref(*[a.astype(np.float32).astype(np.float64) for a in arrays]))
    for o, r in zip(out, ref, strict=True):
        assert o.dtype == tr.float32, f"{op.name} gave {o.dtype} from float32 inputs"
        np.testing.assert_allclose(o.data, r, rtol=2e-5, atol=2e-5, err_msg=op.name)


@pytest.mark.parametrize(("op", "shapes"), CASES)
def test_backward_gradcheck(op, shapes, rng, backend):
    inputs = _tensors(op, _inputs(rng, op, shapes))
    assert tr.autograd.gradcheck(op.fn, inputs, seed=int(rng.integers(1 << 30)))


@pytest.mark.parametrize(("op", "shapes"), CASES)
def test_backward_float32_grads_keep_dtype(op, shapes, rng, backend):
    arrays = _inputs(rng, op, shapes)
    xs = _tensors(op, [a.astype(np.float32) for a in arrays])
    outs = [o for o in _flat(op.fn(*xs)) if o.requires_grad]
    loss = sum((o * tr.tensor(rng.standard_normal(o.shape).astype(np.float32))).sum() for o in outs)
    loss.backward()
    for x in xs:
        if not x.requires_grad:
            assert x.grad is None
            continue
        assert x.grad is not None and x.grad.dtype == tr.float32 and x.grad.shape == x.shape


def _op_classes_used(out: Any) -> set[type]:
    seen, stack, found = set(), [o.grad_fn for o in _flat(out) if o.grad_fn is not None], set()
    while stack:
        ctx = stack.pop()
        if id(ctx) in seen:
            continue
        seen.add(id(ctx))
        found.add(ctx.fn)
        stack.extend(p.grad_fn for p in ctx.parents if getattr(p, "grad_fn", None) is not None)
    return found


def test_every_tensor_op_class_has_a_row(rng):
    defined = {
        cls
        for module in (elementwise, reduce, movement, linalg, fused)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Function) and cls is not Function and cls.__module__ == module.__name__
    }
    used: set[type] = set()
    for op in OPS:
        xs = _tensors(op, _inputs(rng, op, op.shapes[0]))
        used |= _op_classes_used(op.fn(*xs))
    missing = sorted(c.__name__ for c in defined - used)
    assert not missing, f"op classes without a row in OPS: {missing}"


def test_matmul_gradients_come_back_in_each_operands_layout(rng):
    """``x @ W.T`` (the usual linear layer): the gradient of ``W.T`` is computed column-major,
    like ``W.T``, so the transpose's backward hands W a row-major gradient, like W, and
    optimizer updates run over matching memory."""
    w = tr.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    a = tr.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    x = rng.standard_normal((3, 4))
    u, v = rng.standard_normal((3, 5)), rng.standard_normal((3, 3))
    ((tr.tensor(x) @ w.T) * tr.tensor(u)).sum().backward()
    ((a.T @ tr.tensor(x.T)) * tr.tensor(v)).sum().backward()
    assert w.grad.data.flags.c_contiguous and a.grad.data.flags.c_contiguous
    np.testing.assert_allclose(w.grad.data, u.T @ x, rtol=1e-12)
    np.testing.assert_allclose(a.grad.data, x.T @ v.T, rtol=1e-12)


def test_repeated_indices_add_gradients():
    x = tr.zeros(3, 2, dtype=tr.float64, requires_grad=True)
    x[[0, 2, 2, 2]].sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0], [0.0, 0.0], [3.0, 3.0]]


def test_max_ties_share_the_gradient_when_reducing_everything():
    x = tr.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5, 0.0]


def test_max_with_dim_returns_values_and_indices(rng):
    a = rng.standard_normal((3, 4))
    values, indices = tr.tensor(a).max(dim=1)
    np.testing.assert_array_equal(values.data, a.max(1))
    np.testing.assert_array_equal(indices.data, a.argmax(1))
    assert indices.dtype == tr.int64
    values, indices = tr.tensor(a).min(dim=0, keepdim=True)
    np.testing.assert_array_equal(indices.data, a.argmin(0)[None])
    assert tr.tensor(2.5).max(dim=0).indices.item() == 0


def test_cast_between_float_dtypes_keeps_each_grad_dtype(rng):
    x = tr.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    w = rng.standard_normal(4)
    y = x.double()
    assert y.dtype == tr.float64 and y.grad_fn is not None
    (y * tr.tensor(w)).sum().backward()
    assert x.grad.dtype == tr.float32
    np.testing.assert_allclose(x.grad.data, w.astype(np.float32))
    z = tr.tensor(rng.standard_normal(3), requires_grad=True)
    z.float().sum().backward()
    assert z.grad.dtype == tr.float64 and z.grad.tolist() == [1.0, 1.0, 1.0]
    assert x.to(tr.float32) is x


def test_cast_to_integer_is_not_differentiable():
    x = tr.tensor([1.7, -2.2], requires_grad=True)
    n = x.long()
    assert n.dtype == tr.int64 and n.tolist() == [1, -2] and not n.requires_grad


def test_mixed_float_dtypes_promote_and_grads_come_back_in_each_dtype(rng):
    a = tr.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    b = tr.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    out = a * b
    assert out.dtype == tr.float64
    out.sum().backward()
    assert a.grad.dtype == tr.float32 and b.grad.dtype == tr.float64
    np.testing.assert_allclose(a.grad.data, b.data.sum(0), rtol=1e-6)


def test_comparisons_give_bool_tensors_without_grad(rng):
    a = tr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for got, want in [
        (a > 2, [False, False, True]),
        (a >= 2, [False, True, True]),
        (a < 2, [True, False, False]),
        (a <= 2, [True, True, False]),
        (a == 2, [False, True, False]),
        (a != 2, [True, False, True]),
    ]:
        assert got.dtype == tr.bool_ and not got.requires_grad and got.tolist() == want
    assert bool((a > 0).all()) and not bool((a > 2.5).all()) and bool((a > 2.5).any())


def test_argmax_argmin(rng):
    a = rng.standard_normal((3, 4))
    t = tr.tensor(a)
    assert t.argmax().item() == a.argmax() and t.argmin().item() == a.argmin()
    np.testing.assert_array_equal(tr.argmax(t, 1).data, a.argmax(1))
    np.testing.assert_array_equal(t.argmin(0, keepdim=True).data, a.argmin(0)[None])
    assert tr.tensor(1.0).argmax(0).item() == 0


def test_functional_forms_match_methods(rng):
    a = tr.tensor(rng.uniform(0.5, 2, (2, 3)))
    pairs = [
        (tr.exp(a), a.exp()),
        (tr.log(a), a.log()),
        (tr.sqrt(a), a.sqrt()),
        (tr.abs(-a), a),
        (tr.tanh(a), a.tanh()),
        (tr.sigmoid(a), a.sigmoid()),
        (tr.relu(a), a.relu()),
        (tr.sum(a, 1), a.sum(1)),
        (tr.mean(a), a.mean()),
        (tr.max(a), a.max()),
        (tr.min(a), a.min()),
        (tr.reshape(a, (3, 2)), a.reshape(3, 2)),
        (tr.transpose(a, 0, 1), a.T),
        (tr.permute(a, (1, 0)), a.T),
        (tr.unsqueeze(a, 0), a[None]),
        (tr.squeeze(a[None]), a),
        (tr.clamp(a, max=1.0), a.clamp(max=1.0)),
        (tr.softmax(a, 1), a.softmax(1)),
        (tr.log_softmax(a, 1), a.log_softmax(1)),
        (tr.flatten(a), a.reshape(-1)),
        (tr.cat(tr.split(a, 1, 1), 1), a),
        (tr.cat(tr.chunk(a, 2, 1), 1), a),
    ]
    for got, want in pairs:
        np.testing.assert_array_equal(got.data, want.data)


def test_gradcheck_uses_random_projections_for_large_inputs(rng, monkeypatch):
    import importlib

    gc_module = importlib.import_module("tinyrnn.autograd.gradcheck")  # the module itself

    calls = []
    full, proj = gc_module._check_full, gc_module._check_projection
    monkeypatch.setattr(gc_module, "_check_full", lambda *a: calls.append("full") or full(*a))
    monkeypatch.setattr(gc_module, "_check_projection",
                        lambda *a: calls.append("projection") or proj(*a))
    big = tr.tensor(rng.standard_normal((50, 50)), requires_grad=True)  # 2,500 > 2,000 elements
    w = tr.tensor(rng.standard_normal((50, 8)), requires_grad=True)
    assert tr.autograd.gradcheck(lambda a, b: (a @ b).tanh().log_softmax(1), [big, w])
    assert calls == ["projection", "projection"]
    calls.clear()
    small = tr.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert tr.autograd.gradcheck(lambda a: a.sigmoid(), [small], mode="projection")
    assert tr.autograd.gradcheck(lambda a: a.sigmoid(), [small])
    assert calls == ["projection", "full"]


def test_unbind_needs_a_first_axis():
    with pytest.raises(ValueError, match=r"unbind: .* non-empty first axis, got shape \(\)"):
        movement.Unbind.apply(tr.tensor(1.0, requires_grad=True))
    with pytest.raises(ValueError, match=r"unbind: .* got shape \(0, 2\)"):
        movement.Unbind.apply(tr.zeros(0, 2, requires_grad=True))

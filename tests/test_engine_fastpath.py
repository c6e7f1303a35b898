"""The engine's short paths: element-wise ops whose gradients skip the shape and dtype checks
(``Context.exact``), the one- and two-input paths of ``Function.apply``, the chain walk without
the heap, and the Context fields that are class-level defaults. Each case is checked against
numerical gradients or against the general path, so a short path that skips work it needed
fails here."""

from __future__ import annotations

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn.engine import Context, Function


def _leaf(rng, *shape, dtype=np.float64):
    return tr.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)


@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((), (2, 3)), ((2, 3), ())],
)
def test_binary_ops_with_and_without_broadcast(rng, shape_a, shape_b):
    a, b = _leaf(rng, *shape_a), _leaf(rng, *shape_b)

    def f(a_, b_):
        return ((a_ * b_ + a_) / (b_ * b_ + 2.0) - b_).tanh()

    assert tr.autograd.gradcheck(f, [a, b])


def test_exact_only_without_broadcast_promotion_or_zero_dims(rng):
    x, y = _leaf(rng, 2, 3), _leaf(rng, 2, 3)
    assert (x * y).grad_fn.exact and (x * 2.0).grad_fn.exact and (3 - x).grad_fn.exact
    assert x.tanh().grad_fn.exact
    assert not (x * _leaf(rng, 3)).grad_fn.exact  # broadcast
    assert not (x * _leaf(rng, 2, 3, dtype=np.float32)).grad_fn.exact  # type promotion
    assert not (x * np.float32(2.0)).grad_fn.exact  # a NumPy scalar is not a weak Python number
    assert not (_leaf(rng) * 2.0).grad_fn.exact  # 0-d results come back as NumPy scalars
    assert not (x @ _leaf(rng, 3, 2)).grad_fn.exact  # not an element-wise op


def test_mixed_dtypes_get_gradients_in_their_own_dtype(rng):
    a = _leaf(rng, 2, 3, dtype=np.float32)
    b = _leaf(rng, 2, 3)
    (a * b + a).tanh().sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    t = np.tanh(a.data.astype(np.float64) * b.data + a.data)
    np.testing.assert_allclose(a.grad.data, (1 - t**2) * (b.data + 1), rtol=1e-5)
    np.testing.assert_allclose(b.grad.data, (1 - t**2) * a.data, rtol=1e-5)


def test_zero_dim_chain_through_kernels(rng):
    """0-d results come back from NumPy as scalars: they take the checked path, and a gradient
    accumulated twice into a 0-d leaf stays an array."""
    x = _leaf(rng)
    assert tr.autograd.gradcheck(lambda x_: (x_ * x_ + 0.5).tanh().sigmoid().relu(), [x])
    for _ in range(2):
        (x * x + 0.5).tanh().sigmoid().relu().backward()
    assert isinstance(x.grad.data, np.ndarray) and x.grad.shape == ()


def test_hook_on_an_exact_op_output_can_change_the_gradient(rng):
    x = _leaf(rng, 2, 2)
    y = x * 3.0
    assert y.grad_fn.exact
    y.register_hook(lambda g: g * 0 + 1)  # replaces dL/dy by ones
    assert not y.grad_fn.exact  # the backward's fast path runs no hooks
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.full((2, 2), 3.0))


def test_ops_are_run_after_all_their_consumers(rng):
    """Branches that merge late: each op runs once, after every path into it has added up."""
    x = _leaf(rng, 3)

    def f(x_):
        a = x_.tanh()
        b = a * x_
        c = (b + a).exp() * a
        d = (c * b - a).sigmoid()
        return d * c + b

    assert tr.autograd.gradcheck(f, [x])


class _TwoOut(Function):
    """(2 x, x**2): a two-output op, for the sweep's per-output gradient lists."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 2 * x, x * x

    @staticmethod
    def backward(ctx, g2, gsq):
        (x,) = ctx.saved_tensors
        return 2 * g2 + 2 * x * gsq


@pytest.mark.parametrize(
    "graph",
    [
        "same_producer_twice",  # the op run next is reached again from the same op
        "two_producers",  # the op run next goes to the heap when a second one is reached
        "two_outputs_into_one_op",  # both outputs of a two-output op feed one op
        "two_outputs_then_heap",  # a two-output op waiting in the heap gets its second output
        "one_output_twice",  # one output of the op run next is reached twice
        "one_output_twice_via_heap",  # the same for a two-output op waiting in the heap
        "two_output_root",  # the sweep starts from one output of a two-output op
    ],
)
def test_chain_walk_hands_over_to_the_heap(rng, graph):
    """The sweep keeps the only waiting op and its gradient out of the heap; every way an op
    can be reached again, or stop being the only one waiting, gives the numerical gradient."""
    x = _leaf(rng, 2, 3)

    def f(x_):
        t = x_.tanh()
        if graph == "same_producer_twice":
            return (t * t).exp() * 0.5
        if graph == "two_producers":
            return t * x_.sigmoid() + 1.0
        a, sq = _TwoOut.apply(t)
        if graph == "two_outputs_into_one_op":
            return a * sq
        if graph == "two_outputs_then_heap":
            return a * sq.tanh()
        if graph == "one_output_twice":
            return a * a
        if graph == "one_output_twice_via_heap":
            return a * a + sq
        return sq

    assert tr.autograd.gradcheck(f, [x])


def test_element_wise_results_of_a_parameter_are_plain_tensors(rng):
    """The element-wise ops make their result Tensor inline (``Node._array_node``): of plain
    class, recorded, and carrying the op's context, as ``Tensor._from_op`` would make it."""
    w = tr.nn.Parameter(tr.tensor(rng.standard_normal((2, 3))))
    for y in (w * 2.0, 2.0 * w, w + w, w.tanh(), -w):
        assert type(y) is tr.Tensor and y.requires_grad and not y.is_leaf
        assert (y.grad_fn.exact, y._idx, y.grad, y.name) == (True, 0, None, None)
    with tr.no_grad():
        assert not (w * 2.0).requires_grad and (w * 2.0).grad_fn is None
    # a broadcast op may promote: a complex result is not tracked, as for any other op
    z = w * np.array([1j, 2j, 3j])
    assert z.dtype == np.complex128 and not z.requires_grad
    assert (w * np.ones((4, 2, 3), np.float32)).requires_grad


def test_forward_sees_fresh_context_fields():
    seen = {}

    class Peek(Function):
        @staticmethod
        def forward(ctx, x):
            seen.update(parents=ctx.parents, scope=ctx.scope, serial=ctx.serial, exact=ctx.exact)
            seen.update(n_out=ctx.n_out, options=ctx.options, hooks=ctx.hooks, freed=ctx.freed)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    y = Peek.apply(tr.ones(2, requires_grad=True))
    assert seen == {
        "parents": (), "scope": (), "serial": -1, "exact": False,
        "n_out": 1, "options": {}, "hooks": None, "freed": False,
    }  # fmt: skip
    ctx = y.grad_fn
    assert ctx.serial >= 0 and ctx.n_out == 1 and ctx.out_meta is None and ctx.out_grads is None
    with pytest.raises(AttributeError, match="'Context' object has no attribute 'nope'"):
        ctx.nope  # noqa: B018


def test_options_are_kept_per_op_and_default_to_empty(rng):
    x = _leaf(rng, 2, 3)
    s = x.sum(dim=1, keepdim=True)
    c = x.clamp(-0.5, 0.5)
    assert s.grad_fn.options == {"dim": 1, "keepdim": True}
    assert c.grad_fn.options == {"lo": -0.5, "hi": 0.5}
    assert (x * 2).grad_fn.options == {}


def test_freed_follows_the_saved_arrays(rng):
    x = _leaf(rng, 2)
    y = x.exp()
    ctx = y.grad_fn
    assert not ctx.freed
    y.sum().backward(retain_graph=True)
    assert not ctx.freed and ctx.saved_tensors is not None
    y.sum().backward()
    assert ctx.freed and ctx.saved_tensors is None


def test_context_made_directly_has_every_field():
    ctx = Context(Function, (True, False))
    fields = (ctx.parents, ctx.scope, ctx.serial, ctx.exact, ctx.saved_tensors)
    assert fields == ((), (), -1, False, ())
    assert (ctx.n_out, ctx.out_meta, ctx.options, ctx.hooks, ctx.out_grads, ctx.freed) == (
        1, None, {}, None, None, False,
    )  # fmt: skip


def test_apply_without_a_node_names_the_op():
    from tinyrnn.ops.elementwise import Add, Tanh, Where

    for call in (lambda: Add.apply(1.0, 2.0), lambda: Tanh.apply(1.0),
                 lambda: Where.apply(np.array([True]), 1.0, 2.0)):  # fmt: skip
        with pytest.raises(TypeError, match=r"\.apply: expected at least one Tensor or Value"):
            call()


def test_untracked_results_under_no_grad_and_for_constants(rng):
    x = _leaf(rng, 2)
    with tr.no_grad():
        for y in (x * x, x.tanh(), x.sum(dim=0)):
            assert y.grad_fn is None and not y.requires_grad
    z = tr.ones(2) * tr.ones(2)
    assert z.grad_fn is None and not z.requires_grad

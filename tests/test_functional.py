"""tr.nn.functional: forward values against NumPy (and torch when installed), gradients by
gradcheck in float64 with random output weights, and every error message."""

from __future__ import annotations

import numpy as np
import pytest

import tinyrnn as tr
import tinyrnn.nn.functional as F


def gradcheck_each(fn, *inputs, **kw):
    """gradcheck ``fn`` at ``inputs`` (random output weights, float64, every input needing grad)."""
    assert any(isinstance(a, tr.Tensor) and a.requires_grad for a in inputs)
    assert tr.autograd.gradcheck(fn, list(inputs), **kw)


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
    with pytest.raises(
        ValueError,
        match=r"linear: input of shape \(5, 2\) does not match weight "
        r"of shape \(4, 3\).*in_features=3",
    ):
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


# ---- embedding ----


def test_embedding_forward_and_scatter_add_grad():
    w = rand64(5, 3)
    ids = tr.tensor([[1, 4, 1], [0, 1, 2]])
    y = F.embedding(ids, w)
    np.testing.assert_array_equal(y.data, w.data[ids.data])
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(g)
    expected = np.zeros((5, 3))
    for (i, j), k in np.ndenumerate(ids.data):
        expected[k] += g[i, j]
    np.testing.assert_allclose(w.grad.data, expected, rtol=1e-12)
    assert np.all(expected[1] != 0) and np.all(expected[3] == 0)
    gradcheck_each(lambda t: F.embedding(ids, t), w)


def test_embedding_padding_idx_gets_no_gradient():
    w = rand64(4, 2)
    ids = tr.tensor([0, 2, 2, 3])
    y = F.embedding(ids, w, padding_idx=2)
    np.testing.assert_array_equal(y.data, w.data[ids.data])
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(w.grad.data[2], [0.0, 0.0])
    np.testing.assert_array_equal(w.grad.data[0], [1.0, 1.0])


def test_embedding_errors():
    w = tr.randn(5, 3)
    with pytest.raises(
        IndexError,
        match=r"embedding: id 5 is out of range for an embedding table "
        r"of 5 rows \(weight \(5, 3\)\); ids must be in \[0, 4\]",
    ):
        F.embedding(tr.tensor([0, 5]), w)
    with pytest.raises(IndexError, match=r"embedding: id -1 is out of range"):
        F.embedding(tr.tensor([-1, 2]), w)
    with pytest.raises(TypeError, match=r"embedding: expected integer ids .* got dtype float32"):
        F.embedding(tr.tensor([1.0]), w)
    with pytest.raises(ValueError, match=r"embedding: weight must be 2-D"):
        F.embedding(tr.tensor([1]), tr.randn(5))
    with pytest.raises(ValueError, match=r"embedding: padding_idx 9 out of range for 5 rows"):
        F.embedding(tr.tensor([1]), w, padding_idx=9)


# ---- softmax ----


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax(dim):
    x = rand64(3, 4)
    e = np.exp(x.data - x.data.max(axis=dim, keepdims=True))
    p = e / e.sum(axis=dim, keepdims=True)
    np.testing.assert_allclose(F.softmax(x, dim).data, p, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(x, dim).data, np.log(p), rtol=1e-12)
    gradcheck_each(lambda t: F.softmax(t, dim), x)
    gradcheck_each(lambda t: F.log_softmax(t, dim), x)


def test_softmax_is_stable_for_large_logits():
    x = tr.tensor([1000.0, 0.0, -1000.0])
    np.testing.assert_allclose(F.softmax(x, 0).data, [1.0, 0.0, 0.0])
    assert np.isfinite(F.log_softmax(x, 0).data).all()


# ---- cross-entropy and nll ----


def _np_cross_entropy(x, t, ignore_index=-100, weight=None):
    """Per-row losses and the mean denominator, from plain NumPy."""
    logp = x - x.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    w = np.ones(x.shape[1]) if weight is None else weight
    rows = []
    denom = 0.0
    for i, c in enumerate(t):
        if c == ignore_index:
            rows.append(0.0)
        else:
            rows.append(-w[c] * logp[i, c])
            denom += w[c]
    return np.array(rows), denom


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_numpy_with_ignore_index(reduction):
    x = rand64(6, 4)
    t = np.array([0, 3, -100, 1, 1, -100])
    rows, denom = _np_cross_entropy(x.data, t)
    out = F.cross_entropy(x, tr.tensor(t), reduction=reduction)
    expected = {"mean": rows.sum() / denom, "sum": rows.sum(), "none": rows}[reduction]
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    gradcheck_each(lambda a: F.cross_entropy(a, tr.tensor(t), reduction=reduction), x)
    out.backward(np.ones(out.shape))
    np.testing.assert_array_equal(x.grad.data[[2, 5]], 0.0)  # ignored rows get no gradient


def test_cross_entropy_custom_ignore_index_and_weight():
    x = rand64(5, 3)
    t = np.array([0, 2, 1, 2, 0])
    w = np.array([0.2, 1.0, 3.0])
    rows, denom = _np_cross_entropy(x.data, t, ignore_index=2)
    np.testing.assert_allclose(
        F.cross_entropy(x, tr.tensor(t), ignore_index=2).data, rows.sum() / denom, rtol=1e-12
    )
    rows, denom = _np_cross_entropy(x.data, t, weight=w)
    np.testing.assert_allclose(
        F.cross_entropy(x, tr.tensor(t), weight=tr.tensor(w)).data, rows.sum() / denom, rtol=1e-12
    )
    gradcheck_each(lambda a: F.cross_entropy(a, tr.tensor(t), weight=w), x)


def test_cross_entropy_spatial_and_unbatched_shapes():
    x = rand64(2, 3, 4, 5)  # (N, C, d1, d2)
    t = np.random.default_rng(2).integers(0, 3, size=(2, 4, 5))
    flat = np.moveaxis(x.data, 1, -1).reshape(-1, 3)
    rows, _ = _np_cross_entropy(flat, t.reshape(-1))
    none = F.cross_entropy(x, tr.tensor(t), reduction="none")
    assert none.shape == (2, 4, 5)
    np.testing.assert_allclose(none.data, rows.reshape(2, 4, 5), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(x, tr.tensor(t)).data, rows.mean(), rtol=1e-12)
    gradcheck_each(lambda a: F.cross_entropy(a, tr.tensor(t)), x)
    v = rand64(4)
    rows, _ = _np_cross_entropy(v.data[None], np.array([2]))
    out = F.cross_entropy(v, tr.tensor(2))
    assert out.shape == ()
    np.testing.assert_allclose(out.data, rows[0], rtol=1e-12)
    assert F.cross_entropy(v, tr.tensor(2), reduction="none").shape == ()
    gradcheck_each(lambda a: F.cross_entropy(a, tr.tensor(2)), v)


def test_cross_entropy_probability_targets_and_label_smoothing():
    x = rand64(4, 3)
    p = np.random.default_rng(3).dirichlet(np.ones(3), size=4)
    logp = F.log_softmax(x, 1).data
    np.testing.assert_allclose(
        F.cross_entropy(x, tr.tensor(p)).data, -(p * logp).sum(1).mean(), rtol=1e-12
    )
    gradcheck_each(lambda a: F.cross_entropy(a, tr.tensor(p)), x)
    t = np.array([0, 2, -100, 1])
    e = 0.1
    keep = t != -100
    nll = -logp[np.arange(4)[keep], t[keep]].sum() / keep.sum()
    smooth = -logp[keep].sum() / keep.sum()
    expected = (1 - e) * nll + e / 3 * smooth
    np.testing.assert_allclose(
        F.cross_entropy(x, tr.tensor(t), label_smoothing=e).data, expected, rtol=1e-12
    )
    gradcheck_each(lambda a: F.cross_entropy(a, tr.tensor(t), label_smoothing=e), x)


def test_cross_entropy_all_ignored_mean_is_nan():
    out = F.cross_entropy(tr.randn(2, 3), tr.tensor([-100, -100]))
    assert np.isnan(out.item())
    assert F.cross_entropy(tr.randn(2, 3), tr.tensor([-100, -100]), reduction="sum").item() == 0


def test_cross_entropy_float32_keeps_dtype():
    out = F.cross_entropy(tr.randn(3, 4), tr.tensor([0, 1, 2]))
    assert out.dtype == tr.float32


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_numpy(reduction):
    x = rand64(5, 4)
    logp = F.log_softmax(x, 1)
    t = np.array([3, -100, 0, 0, 2])
    rows, denom = _np_cross_entropy(x.data, t)
    out = F.nll_loss(logp, tr.tensor(t), reduction=reduction)
    expected = {"mean": rows.sum() / denom, "sum": rows.sum(), "none": rows}[reduction]
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    w = np.array([1.0, 2.0, 0.5, 4.0])
    gradcheck_each(lambda a: F.nll_loss(a, tr.tensor(t), weight=w, reduction=reduction), x)


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_class_loss_errors(fn):
    name = fn.__name__
    x = tr.randn(4, 3)
    with pytest.raises(
        ValueError,
        match=rf"{name}: target of shape \(3,\) does not match input "
        rf"of shape \(4, 3\); expected target shape \(4,\)",
    ):
        fn(x, tr.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=rf"{name}: target of shape \(4, 1\) does not match"):
        fn(x, tr.tensor([[0], [1], [2], [0]]))
    with pytest.raises(
        IndexError,
        match=rf"{name}: target id 3 is out of range for input of "
        rf"shape \(4, 3\) with 3 classes; ids must be in \[0, 2\] or equal "
        r"ignore_index=-100",
    ):
        fn(x, tr.tensor([0, 3, 1, 1]))
    with pytest.raises(IndexError, match=rf"{name}: target id -2 is out of range"):
        fn(x, tr.tensor([0, -2, 1, 1]))
    with pytest.raises(
        ValueError,
        match=rf"{name}: reduction must be 'mean', 'sum' or 'none', "
        r"got 'avg'",
    ):
        fn(x, tr.tensor([0, 1, 1, 1]), reduction="avg")
    with pytest.raises(
        ValueError,
        match=rf"{name}: weight must have shape \(3,\) \(one per "
        r"class\), got \(2,\)",
    ):
        fn(x, tr.tensor([0, 1, 1, 1]), weight=tr.ones(2))
    with pytest.raises(ValueError, match=rf"{name}: input must have a class dimension"):
        fn(tr.tensor(1.0), tr.tensor(0))


def test_class_loss_type_errors():
    with pytest.raises(
        TypeError,
        match=r"nll_loss: class-index targets must be integers \(int64\)"
        r", got dtype float32 for input of shape \(2, 3\)",
    ):
        F.nll_loss(tr.randn(2, 3), tr.tensor([0.0, 1.0]))
    with pytest.raises(
        ValueError,
        match=r"cross_entropy: a probability target must have the "
        r"input's shape \(2, 3\), got \(2,\)",
    ):
        F.cross_entropy(tr.randn(2, 3), tr.tensor([0.0, 1.0]))
    with pytest.raises(
        ValueError,
        match=r"cross_entropy: label_smoothing must be in \[0, 1\], "
        r"got 2",
    ):
        F.cross_entropy(tr.randn(2, 3), tr.tensor([0, 1]), label_smoothing=2)
    with pytest.raises(TypeError, match=r"cross_entropy: expected input to be a Tensor"):
        F.cross_entropy(np.zeros((2, 3)), tr.tensor([0, 1]))


# ---- mse and binary cross-entropy ----


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction):
    x, y = rand64(3, 4), rand64(3, 4)
    d2 = (x.data - y.data) ** 2
    expected = {"mean": d2.mean(), "sum": d2.sum(), "none": d2}[reduction]
    np.testing.assert_allclose(F.mse_loss(x, y, reduction).data, expected, rtol=1e-12)
    gradcheck_each(lambda a, b: F.mse_loss(a, b, reduction), x, y)
    np.testing.assert_allclose(F.mse_loss(x, y.data, reduction).data, expected, rtol=1e-12)


def test_mse_loss_errors():
    with pytest.raises(
        ValueError,
        match=r"mse_loss: target of shape \(3, 1\) does not match input "
        r"of shape \(3,\); they must be equal",
    ):
        F.mse_loss(tr.ones(3), tr.ones(3, 1))
    with pytest.raises(ValueError, match=r"mse_loss: reduction must be"):
        F.mse_loss(tr.ones(3), tr.ones(3), reduction="mean ")


def _np_bce(x, y, w=None, pw=None):
    sig = 1 / (1 + np.exp(-x))
    pw = 1.0 if pw is None else pw
    loss = -(pw * y * np.log(sig) + (1 - y) * np.log(1 - sig))
    return loss if w is None else loss * w


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_matches_numpy(reduction):
    x = rand64(4, 3)
    y = tr.rand(4, 3, dtype=tr.float64)
    w = np.random.default_rng(4).random((4, 3))
    pw = np.array([0.5, 2.0, 3.0])
    for kw, (ww, pp) in (({}, (None, None)), ({"weight": w, "pos_weight": pw}, (w, pw))):
        rows = _np_bce(x.data, y.data, ww, pp)
        expected = {"mean": rows.mean(), "sum": rows.sum(), "none": rows}[reduction]
        out = F.binary_cross_entropy_with_logits(x, y, reduction=reduction, **kw)
        np.testing.assert_allclose(out.data, expected, rtol=1e-12)
        gradcheck_each(
            lambda a, b, kw=kw: F.binary_cross_entropy_with_logits(a, b, reduction=reduction, **kw),
            x,
            rand64(4, 3).sigmoid().detach().requires_grad_(),
        )


def test_bce_with_logits_stable_and_exact_gradient_at_zero():
    x = tr.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=tr.float64, requires_grad=True)
    y = tr.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=tr.float64)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(loss.data, [1000.0, 0.0, np.log(2), 0.0, 1000.0], atol=1e-15)
    loss.sum().backward()
    sig = 0.5 * (1 + np.tanh(x.data / 2))
    np.testing.assert_allclose(x.grad.data, sig - y.data, atol=1e-15)
    assert np.isfinite(x.grad.data).all()


def test_bce_with_logits_errors():
    with pytest.raises(
        ValueError,
        match=r"binary_cross_entropy_with_logits: target size \(2,\) "
        r"must be the same as input size \(2, 1\)",
    ):
        F.binary_cross_entropy_with_logits(tr.ones(2, 1), tr.ones(2))


# ---- PyTorch parity (when installed) ----


def test_losses_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4))
    t = np.array([0, 3, -100, 1, 2, 3])
    w = rng.random(4) + 0.5
    cases = [
        ({}, {}),
        ({"weight": w}, {"weight": torch.tensor(w)}),
        ({"label_smoothing": 0.2}, {"label_smoothing": 0.2}),
        (
            {"weight": w, "label_smoothing": 0.3},
            {"weight": torch.tensor(w), "label_smoothing": 0.3},
        ),
    ]
    for red in ("mean", "sum", "none"):
        for ours_kw, torch_kw in cases:
            a = tr.tensor(x, requires_grad=True)
            b = torch.tensor(x, requires_grad=True)
            ours = F.cross_entropy(a, tr.tensor(t), reduction=red, **ours_kw)
            ref = tf.cross_entropy(b, torch.tensor(t), reduction=red, **torch_kw)
            np.testing.assert_allclose(ours.data, ref.detach().numpy(), rtol=1e-12)
            g = rng.standard_normal(ours.shape)
            ours.backward(g)
            ref.backward(torch.tensor(g))
            np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-10, atol=1e-14)
    logp = tf.log_softmax(torch.tensor(x), 1).numpy()
    np.testing.assert_allclose(
        F.nll_loss(tr.tensor(logp), tr.tensor(t), weight=w).data,
        tf.nll_loss(torch.tensor(logp), torch.tensor(t), weight=torch.tensor(w)).numpy(),
        rtol=1e-12,
    )
    p = rng.dirichlet(np.ones(4), size=6)
    np.testing.assert_allclose(
        F.cross_entropy(tr.tensor(x), tr.tensor(p), label_smoothing=0.1).data,
        tf.cross_entropy(torch.tensor(x), torch.tensor(p), label_smoothing=0.1).numpy(),
        rtol=1e-12,
    )
    y = rng.random((6, 4))
    pw = rng.random(4) * 3
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(tr.tensor(x * 30), tr.tensor(y), pos_weight=pw).data,
        tf.binary_cross_entropy_with_logits(
            torch.tensor(x * 30), torch.tensor(y), pos_weight=torch.tensor(pw)
        ).numpy(),
        rtol=1e-12,
    )

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
    with pytest.raises(
        TypeError, match=r"nn.init.normal_: expected a floating tensor, got dtype int64"
    ):
        init.normal_(tr.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"nn.init.uniform_: expected a <= b, got a=1, b=0"):
        init.uniform_(tr.empty(2), 1, 0)
    with pytest.raises(ValueError, match=r"nn.init.normal_: std must be non-negative, got -1"):
        init.normal_(tr.empty(2), 0, -1)


def test_xavier_and_kaiming_bounds_and_std():
    t = init.xavier_uniform_(tr.empty(300, 200, dtype=tr.float64), gain=2.0)
    a = 2.0 * math.sqrt(6 / 500)
    assert np.abs(t.data).max() <= a and np.abs(t.data).max() > 0.95 * a
    t = init.xavier_normal_(tr.empty(300, 200, dtype=tr.float64))
    assert abs(t.data.std() - math.sqrt(2 / 500)) < 0.003
    t = init.kaiming_uniform_(tr.empty(300, 200, dtype=tr.float64), a=math.sqrt(5))
    bound = 1 / math.sqrt(200)
    assert np.abs(t.data).max() <= bound and np.abs(t.data).max() > 0.95 * bound
    t = init.kaiming_uniform_(tr.empty(300, 200), mode="fan_out", nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / 300)
    assert np.abs(t.data).max() <= bound * (1 + 1e-6)
    t = init.kaiming_normal_(tr.empty(400, 300, dtype=tr.float64), nonlinearity="relu")
    assert abs(t.data.std() - math.sqrt(2 / 300)) < 0.003
    t = init.xavier_uniform_(tr.empty(4, 3, 5))  # receptive field 5
    assert np.abs(t.data).max() <= math.sqrt(6 / (15 + 20))


def test_normal_constant_zeros_ones():
    t = init.normal_(tr.empty(100000, dtype=tr.float64), mean=2.0, std=0.5)
    assert abs(t.data.mean() - 2.0) < 0.01 and abs(t.data.std() - 0.5) < 0.01
    np.testing.assert_array_equal(init.constant_(tr.empty(2, 2), 0.25).data, 0.25)
    np.testing.assert_array_equal(init.zeros_(tr.ones(3)).data, 0.0)
    np.testing.assert_array_equal(init.ones_(tr.zeros(3)).data, 1.0)


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (7, 3), (4, 2, 3)])
def test_orthogonal(shape):
    q = init.orthogonal_(tr.empty(*shape, dtype=tr.float64), gain=1.5).data.reshape(shape[0], -1)
    rows, cols = q.shape
    if rows <= cols:
        np.testing.assert_allclose(q @ q.T, 2.25 * np.eye(rows), atol=1e-12)
    else:
        np.testing.assert_allclose(q.T @ q, 2.25 * np.eye(cols), atol=1e-12)


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(
        ValueError, match=r"nn.init.calculate_gain: unsupported nonlinearity 'gelu'"
    ):
        init.calculate_gain("gelu")


def test_fan_errors():
    with pytest.raises(
        ValueError,
        match=r"nn.init.xavier_uniform_: fan in and fan out can not be "
        r"computed for a tensor with fewer than 2 dimensions \(shape \(3,\)\)",
    ):
        init.xavier_uniform_(tr.empty(3))
    with pytest.raises(
        ValueError,
        match=r"nn.init.kaiming_uniform_: mode must be 'fan_in' or "
        r"'fan_out', got 'fan'",
    ):
        init.kaiming_uniform_(tr.empty(3, 3), mode="fan")
    with pytest.raises(
        ValueError,
        match=r"nn.init.orthogonal_: only tensors with 2 or more "
        r"dimensions are supported, got shape \(3,\)",
    ):
        init.orthogonal_(tr.empty(3))


# ---- Linear ----


def test_linear_shapes_init_and_forward():
    layer = tr.nn.Linear(16, 4)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.weight.shape == (4, 16) and layer.bias.shape == (4,)
    assert layer.weight.dtype == tr.float32 and layer.weight.requires_grad
    bound = 1 / math.sqrt(16)
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.bias.data).max() <= bound
    x = tr.randn(3, 5, 16)
    np.testing.assert_allclose(
        layer(x).data, x.data @ layer.weight.data.T + layer.bias.data, rtol=1e-5, atol=1e-6
    )
    assert "in_features=16, out_features=4, bias=True" in repr(layer)


def test_linear_no_bias_dtype_and_default_dtype():
    layer = tr.nn.Linear(3, 2, bias=False)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    assert "bias" not in layer.state_dict()
    assert tr.nn.Linear(3, 2, dtype=tr.float64).weight.dtype == tr.float64
    tr.set_default_dtype(tr.float64)
    try:
        assert tr.nn.Linear(3, 2).bias.dtype == tr.float64
    finally:
        tr.set_default_dtype(tr.float32)


def test_linear_reproducible_init():
    tr.manual_seed(3)
    a = tr.nn.Linear(4, 4).state_dict()
    tr.manual_seed(3)
    b = tr.nn.Linear(4, 4).state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_linear_gradients():
    layer = tr.nn.Linear(3, 2, dtype=tr.float64)
    x = tr.randn(4, 3, dtype=tr.float64, requires_grad=True)
    for t in (x, layer.weight, layer.bias):
        assert tr.autograd.gradcheck(lambda _t: layer(x), [t])


def test_linear_errors():
    with pytest.raises(
        ValueError,
        match=r"Linear: expected input with last dimension "
        r"in_features=3, got shape \(2, 4\)",
    ):
        tr.nn.Linear(3, 2)(tr.ones(2, 4))
    with pytest.raises(TypeError, match=r"Linear: expected a Tensor input, got list"):
        tr.nn.Linear(3, 2)([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"Linear: in_features must be a non-negative int, got -1"):
        tr.nn.Linear(-1, 2)
    with pytest.raises(
        ValueError,
        match=r"Linear: out_features must be a non-negative int, "
        r"got 2.5",
    ):
        tr.nn.Linear(3, 2.5)
    with pytest.raises(TypeError, match=r"parameters must be float32 or float64, got dtype int64"):
        tr.nn.Linear(3, 2, dtype=tr.int64)


# ---- Embedding ----


def test_embedding_layer():
    emb = tr.nn.Embedding(1000, 8)
    assert emb.weight.shape == (1000, 8)
    assert abs(emb.weight.data.std() - 1.0) < 0.05  # N(0, 1)
    ids = tr.tensor([[3, 3, 7]])
    out = emb(ids)
    assert out.shape == (1, 3, 8)
    out.backward(np.ones((1, 3, 8), np.float32))
    np.testing.assert_array_equal(emb.weight.grad.data[3], 2.0)  # repeated id adds up
    np.testing.assert_array_equal(emb.weight.grad.data[7], 1.0)
    assert emb.weight.grad.data.sum() == 3 * 8
    assert repr(emb) == "Embedding(1000, 8)"


def test_embedding_padding_row():
    emb = tr.nn.Embedding(5, 3, padding_idx=-1)
    assert emb.padding_idx == 4
    np.testing.assert_array_equal(emb.weight.data[4], 0.0)
    emb(tr.tensor([4, 1])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.data[4], 0.0)
    assert "padding_idx=4" in repr(emb)


def test_embedding_errors():
    emb = tr.nn.Embedding(4, 2)
    with pytest.raises(
        IndexError,
        match=r"embedding: id 4 is out of range for an embedding table "
        r"of 4 rows",
    ):
        emb(tr.tensor([0, 4]))
    with pytest.raises(TypeError, match=r"embedding: expected integer ids"):
        emb(tr.tensor([0.0]))
    with pytest.raises(ValueError, match=r"Embedding: padding_idx 4 must be within \[-4, 3\]"):
        tr.nn.Embedding(4, 2, padding_idx=4)


# ---- Dropout ----


def test_dropout_train_and_eval():
    drop = tr.nn.Dropout(0.5)
    x = tr.ones(1000)
    assert drop.training
    y = drop(x)
    assert set(np.unique(y.data).tolist()) == {0.0, 2.0}
    drop.eval()
    assert drop(x) is x
    drop.train()
    assert (drop(x).data == 0).any()
    assert repr(drop) == "Dropout(p=0.5)"
    seq = tr.nn.Sequential(tr.nn.Linear(3, 3), tr.nn.Dropout(0.9)).eval()
    assert not seq[1].training


@pytest.mark.parametrize("p", [-0.5, 1.01, None])
def test_dropout_layer_bad_p(p):
    with pytest.raises(ValueError, match=r"Dropout: probability p must be between 0 and 1"):
        tr.nn.Dropout(p)


# ---- loss modules ----


def test_loss_modules_match_functional():
    F = tr.nn.functional
    x = tr.randn(5, 3)
    t = tr.tensor([0, 2, 1, -100, 2])
    w = tr.tensor([1.0, 2.0, 0.5])
    ce = tr.nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)
    np.testing.assert_array_equal(
        ce(x, t).data, F.cross_entropy(x, t, weight=w, label_smoothing=0.1).data
    )
    assert list(ce.state_dict()) == ["weight"]
    assert list(tr.nn.CrossEntropyLoss().state_dict()) == []
    logp = F.log_softmax(x, 1)
    np.testing.assert_array_equal(
        tr.nn.NLLLoss(reduction="sum")(logp, t).data, F.nll_loss(logp, t, reduction="sum").data
    )
    y = tr.randn(5, 3)
    np.testing.assert_array_equal(tr.nn.MSELoss()(x, y).data, F.mse_loss(x, y).data)
    yb = tr.rand(5, 3)
    bce = tr.nn.BCEWithLogitsLoss(pos_weight=[1.0, 2.0, 3.0], reduction="none")
    np.testing.assert_array_equal(
        bce(x, yb).data,
        F.binary_cross_entropy_with_logits(
            x, yb, reduction="none", pos_weight=np.array([1.0, 2.0, 3.0])
        ).data,
    )
    assert list(bce.state_dict()) == ["pos_weight"]
    with pytest.raises(ValueError, match=r"cross_entropy: target of shape \(4,\) does not match"):
        tr.nn.CrossEntropyLoss()(x, tr.tensor([0, 1, 2, 0]))

"""nn.Module: registration, attribute errors, traversal order and sharing, modes, grads,
state dicts (round trip; strict and non-strict loads; a failed load changes nothing)."""

from __future__ import annotations

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(tr.ones(4))
        self.register_buffer("count", tr.zeros(1))
        self.note = "plain attribute"

    def forward(self, x):
        return self.fc(x) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(4, 2)
        self.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])

    def forward(self, x):
        h = self.head(self.block(x))
        for layer in self.layers:
            h = layer(h)
        return h


# PyTorch's order: a module's own parameters, then its children's, depth first
NAMES = [
    "block.scale",
    "block.fc.weight",
    "block.fc.bias",
    "head.weight",
    "head.bias",
    "layers.0.weight",
    "layers.0.bias",
    "layers.1.weight",
    "layers.1.bias",
]


@pytest.fixture(autouse=True)
def _seed():
    tr.manual_seed(0)


def test_registration_and_named_parameters_order():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == NAMES
    assert len(list(net.parameters())) == 9
    assert [n for n, _ in net.named_modules()] == [
        "",
        "block",
        "block.fc",
        "head",
        "layers",
        "layers.0",
        "layers.1",
    ]
    assert [n for n, _ in net.named_children()] == ["block", "head", "layers"]
    assert [n for n, _ in net.block.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in net.named_buffers()] == ["block.count"]
    assert net.block.note == "plain attribute"
    assert "note" not in net.block._parameters
    assert isinstance(net.block.scale, nn.Parameter)
    assert all(p.requires_grad and p.is_leaf for p in net.parameters())


def test_names_and_order_match_torch():
    torch = pytest.importorskip("torch")

    class TBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 4)
            self.scale = torch.nn.Parameter(torch.ones(4))
            self.register_buffer("count", torch.zeros(1))

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = TBlock()
            self.head = torch.nn.Linear(4, 2)
            self.layers = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)])

        def forward(self, x):
            h = self.head(self.block.fc(x) * self.block.scale)
            for layer in self.layers:
                h = layer(h)
            return h

    ref = TNet()
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert list(net.state_dict()) == list(ref.state_dict())
    net.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})  # loads unchanged
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(
        net(tr.tensor(x)).data, ref(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6
    )


def test_getattr_raises_attribute_error_for_unknown_names():
    net = Net()
    with pytest.raises(AttributeError, match=r"'Net' object has no attribute 'haed'"):
        _ = net.haed
    assert not hasattr(net, "wieght")
    assert getattr(net, "missing", None) is None


def test_assign_before_init_and_reassignment_rules():
    class Forgot(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tr.ones(1))

    with pytest.raises(
        AttributeError,
        match=r"cannot assign 'w' before Module.__init__\(\) is "
        r"called in Forgot.__init__",
    ):
        Forgot()
    b = Block()
    with pytest.raises(
        TypeError,
        match=r"cannot assign Tensor as parameter 'scale' of Block "
        r"\(nn.Parameter or None expected\)",
    ):
        b.scale = tr.ones(4)
    with pytest.raises(
        TypeError,
        match=r"cannot assign int as child module 'fc' of Block "
        r"\(nn.Module or None expected\)",
    ):
        b.fc = 3
    with pytest.raises(
        TypeError,
        match=r"cannot assign list as buffer 'count' of Block "
        r"\(Tensor or None expected\)",
    ):
        b.count = [1]
    with pytest.raises(TypeError, match=r"register_buffer: cannot register ndarray as buffer 'x'"):
        b.register_buffer("x", np.zeros(2))
    with pytest.raises(KeyError, match=r"register_buffer: attribute 'scale' already exists"):
        b.register_buffer("scale", tr.zeros(1))
    b.count = tr.full((1,), 5.0)  # a buffer takes a new tensor
    assert b.state_dict()["count"][0] == 5.0
    b.scale = None  # a parameter can be removed
    assert "scale" not in dict(b.named_parameters()) and b.scale is None
    b.scale = nn.Parameter(tr.zeros(4))
    assert "scale" in dict(b.named_parameters())
    del b.fc
    assert "fc.weight" not in b.state_dict()
    with pytest.raises(AttributeError):
        _ = b.fc


def test_shared_parameters_and_modules_appear_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.Linear(2, 2), shared)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert len(list(seq.modules())) == 3

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = nn.Linear(3, 3)
            self.b.weight = self.a.weight

    tied = Tied()
    assert [n for n, _ in tied.named_parameters()] == ["a.weight", "a.bias", "b.bias"]
    x = tr.randn(2, 3)
    tied.b(tied.a(x)).sum().backward()
    assert tied.a.weight.grad is not None  # both uses accumulate into the one parameter
    opt = tr.optim.SGD(tied.parameters(), lr=0.1)
    opt.step()


def test_train_eval_and_call():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.train(False)
    assert not net.layers[1].training
    out = net(tr.randn(5, 3))
    assert out.shape == (5, 2)

    class NoForward(nn.Module):
        pass

    with pytest.raises(NotImplementedError, match=r"NoForward must define forward\(\)"):
        NoForward()(1)


def test_zero_grad_and_requires_grad():
    net = Net()
    net(tr.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_double_and_float_cast_parameters_and_buffers():
    net = Net().double()
    assert all(p.dtype == tr.float64 for p in net.parameters())
    assert net.block.count.dtype == tr.float64
    net.float()
    assert all(p.dtype == tr.float32 for p in net.parameters())


def test_state_dict_round_trip():
    a, b = Net(), Net()
    sd = a.state_dict()
    assert list(sd) == NAMES[:1] + ["block.count"] + NAMES[1:]
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    sd["head.bias"][...] = 123.0  # a copy: the model is not changed through it
    assert a.head.bias.data[0] != 123.0
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=n)
    x = tr.randn(3, 3)
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_state_dict_copies_in_place_and_accepts_tensors():
    net = Net()
    w = net.head.weight
    data = w.data
    sd = {k: tr.tensor(v) for k, v in Net().state_dict().items()}
    net.load_state_dict(sd)
    assert net.head.weight is w and w.data is data
    np.testing.assert_array_equal(w.data, sd["head.weight"].data)


def test_load_state_dict_casts_to_parameter_dtype():
    net = Net()
    sd = {k: v.astype(np.float64) for k, v in Net().double().state_dict().items()}
    net.load_state_dict(sd)
    assert all(p.dtype == tr.float32 for p in net.parameters())
    np.testing.assert_array_equal(net.head.weight.data, sd["head.weight"].astype(np.float32))
    sd["block.count"] = np.array([7])  # an int array loads into a float buffer
    net.load_state_dict(sd)
    assert net.block.count.dtype == tr.float32 and net.block.count.item() == 7.0


def _snapshot(m):
    return {k: v.copy() for k, v in m.state_dict().items()}


def _assert_same(m, snap):
    now = m.state_dict()
    assert list(now) == list(snap)
    for k in snap:
        np.testing.assert_array_equal(now[k], snap[k], err_msg=k)


def test_strict_load_errors_name_every_key_and_change_nothing():
    net = Net()
    snap = _snapshot(net)
    good = Net().state_dict()
    missing = {k: v for k, v in good.items() if k != "head.bias"}
    with pytest.raises(
        RuntimeError,
        match=r"Error\(s\) in loading state_dict for Net: missing "
        r"key\(s\): head.bias",
    ):
        net.load_state_dict(missing)
    _assert_same(net, snap)
    extra = dict(good, **{"head.gamma": np.zeros(2)})
    with pytest.raises(RuntimeError, match=r"unexpected key\(s\): head.gamma"):
        net.load_state_dict(extra)
    _assert_same(net, snap)
    bad_shape = dict(good, **{"layers.1.weight": np.zeros((2, 3))})
    with pytest.raises(
        RuntimeError,
        match=r"layers.1.weight: shape \(2, 3\) in the state dict, "
        r"\(2, 2\) in the model",
    ):
        net.load_state_dict(bad_shape)
    _assert_same(net, snap)  # the keys before the bad one were not loaded either
    bad_dtype = dict(good, **{"head.bias": np.array(["a", "b"])})
    with pytest.raises(RuntimeError, match=r"head.bias: dtype <U1 cannot be loaded into float32"):
        net.load_state_dict(bad_dtype)
    _assert_same(net, snap)
    several = {k: v for k, v in good.items() if k != "head.weight"}
    several["x"] = np.zeros(1)
    several["block.scale"] = np.zeros(5)
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(several)
    msg = str(err.value)
    assert "missing key(s): head.weight" in msg and "unexpected key(s): x" in msg
    assert "block.scale: shape (5,) in the state dict, (4,) in the model" in msg
    _assert_same(net, snap)
    with pytest.raises(
        TypeError,
        match=r"load_state_dict: expected a mapping of names to arrays, "
        r"got list",
    ):
        net.load_state_dict([1, 2])


def test_non_strict_load_reports_missing_and_unexpected():
    net = Net()
    src = Net()
    sd = {k: v for k, v in src.state_dict().items() if not k.startswith("layers.")}
    sd["extra.weight"] = np.zeros(3)
    result = net.load_state_dict(sd, strict=False)
    assert result.missing_keys == [
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "layers.1.bias",
    ]
    assert result.unexpected_keys == ["extra.weight"]
    missing, unexpected = result  # a named tuple, as PyTorch's
    assert missing == result.missing_keys and unexpected == result.unexpected_keys
    np.testing.assert_array_equal(net.head.weight.data, src.head.weight.data)
    snap = _snapshot(net)
    with pytest.raises(
        RuntimeError,
        match=r"head.bias: shape \(3,\) in the state dict, \(2,\) in "
        r"the model",
    ):
        net.load_state_dict(
            {"head.bias": np.zeros(3), "head.weight": np.zeros((2, 4))}, strict=False
        )
    _assert_same(net, snap)


def test_sequential_and_module_list():
    seq = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.0), nn.Linear(4, 2))
    assert len(seq) == 3 and isinstance(seq[2], nn.Linear)
    assert [type(m).__name__ for m in seq] == ["Linear", "Dropout", "Linear"]
    assert seq(tr.ones(5, 3)).shape == (5, 2)
    ml = nn.ModuleList()
    ml.append(nn.Linear(2, 2)).extend([nn.Linear(2, 2)])
    assert len(ml) == 2 and [n for n, _ in ml.named_parameters()][-1] == "1.bias"
    with pytest.raises(TypeError, match=r"ModuleList.append: expected a Module, got int"):
        ml.append(3)
    text = repr(seq)
    assert text.startswith("Sequential(") and "(0): Linear(in_features=3" in text


def test_deep_module_tree_has_no_recursion_limit():
    root = nn.Module()
    node = root
    for _ in range(3000):
        child = nn.Module()
        child.w = nn.Parameter(tr.zeros(1))
        node.next = child
        node = child
    assert len(list(root.parameters())) == 3000
    assert len(root.state_dict()) == 3000
    root.load_state_dict(root.state_dict())

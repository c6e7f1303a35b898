"""Parity with PyTorch in float64: cells and layers, outputs, final states and every gradient.

The reference values were written by ``scripts/make_torch_fixtures.py`` into ``tests/fixtures``,
so these checks run without torch; ``test_live_*`` recompute a few cases with torch when it is
installed. Agreement is required to 1e-10 relative.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn import nn

FIXTURES = Path(__file__).parent / "fixtures"
RTOL = 1e-10

LAYER_KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
LAYER_FLAGS = list(itertools.product((1, 2), (False, True), (False, True), (False, True)))


def _case(path: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        prefix = name + "/"
        case = {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}
    assert case, f"no fixture {name} in {path}"
    return case


def _close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    err = float(np.abs(actual - expected).max(initial=0.0))
    assert err <= RTOL * scale, f"{what}: max abs error {err:.3e} vs scale {scale:.3e}"


def _leaf(a: np.ndarray) -> tr.Tensor:
    return tr.tensor(a, dtype=tr.float64, requires_grad=True)


def _load_weights(module: nn.Module, case: dict[str, np.ndarray]) -> None:
    names = [n for n, _ in module.named_parameters()]
    module.load_state_dict({n: case[n] for n in names})
    module.double()


def _check_grads(module: nn.Module, case: dict[str, np.ndarray]) -> None:
    for name, p in module.named_parameters():
        _close(p.grad.data, case[f"grad/{name}"], f"grad of {name}")


# ---- cells ----


def make_cell(kind: str, bias: bool, fused: bool) -> nn.Module:
    if kind.startswith("rnn"):
        return nn.RNNCell(4, 3, bias=bias, nonlinearity=kind[4:], fused=fused)
    cls = nn.LSTMCell if kind == "lstm" else nn.GRUCell
    return cls(4, 3, bias=bias, fused=fused)


def run_cell_case(case: dict[str, np.ndarray], kind: str, bias: bool, fused: bool) -> None:
    cell = make_cell(kind, bias, fused)
    _load_weights(cell, case)
    x, h0 = _leaf(case["x"]), _leaf(case["h0"])
    if kind == "lstm":
        c0 = _leaf(case["c0"])
        h, c = cell(x, (h0, c0))
        _close(h.data, case["h"], "h")
        _close(c.data, case["c"], "c")
        ((h * tr.tensor(case["g_h"])).sum() + (c * tr.tensor(case["g_c"])).sum()).backward()
        _close(c0.grad.data, case["grad_c0"], "grad of c0")
    else:
        h = cell(x, h0)
        _close(h.data, case["h"], "h")
        (h * tr.tensor(case["g_h"])).sum().backward()
    _close(x.grad.data, case["grad_x"], "grad of x")
    _close(h0.grad.data, case["grad_h0"], "grad of h0")
    _check_grads(cell, case)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "opbyop"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_cell_matches_torch_fixture(kind, bias, fused):
    case = _case(FIXTURES / "torch_cells.npz", f"{kind}_{'bias' if bias else 'nobias'}")
    run_cell_case(case, kind, bias, fused)


# ---- layers ----


def make_layer(kind: str, layers: int, bidi: bool, batch_first: bool, fused: bool) -> nn.Module:
    kw = dict(num_layers=layers, bidirectional=bidi, batch_first=batch_first, fused=fused)
    if kind.startswith("rnn"):
        return nn.RNN(4, 3, nonlinearity=kind[4:], **kw)
    return (nn.LSTM if kind == "lstm" else nn.GRU)(4, 3, **kw)


def run_layer_case(case, kind, layers, bidi, batch_first, fused=True) -> None:
    mod = make_layer(kind, layers, bidi, batch_first, fused)
    _load_weights(mod, case)
    x = _leaf(case["x"])
    h0 = _leaf(case["h0"]) if "h0" in case else None
    c0 = _leaf(case["c0"]) if "c0" in case else None
    hx = (h0, c0) if kind == "lstm" and h0 is not None else h0
    lengths = case.get("lengths")
    out, state = mod(x, hx, lengths=None if lengths is None else lengths.tolist())
    h, c = state if kind == "lstm" else (state, None)
    _close(out.data, case["out"], "output")
    _close(h.data, case["h"], "h_n")
    loss = (out * tr.tensor(case["g_out"])).sum() + (h * tr.tensor(case["g_h"])).sum()
    if c is not None:
        _close(c.data, case["c"], "c_n")
        loss = loss + (c * tr.tensor(case["g_c"])).sum()
    loss.backward()
    _close(x.grad.data, case["grad_x"], "grad of the input")
    if h0 is not None:
        _close(h0.grad.data, case["grad_h0"], "grad of h_0")
    if c0 is not None:
        _close(c0.grad.data, case["grad_c0"], "grad of c_0")
    _check_grads(mod, case)


def _layer_name(kind, layers, bidi, bf, lens):
    return (
        f"{kind}_l{layers}_{'bi' if bidi else 'uni'}_{'bf' if bf else 'tf'}_"
        f"{'len' if lens else 'full'}"
    )


@pytest.mark.parametrize(
    "layers,bidi,batch_first,lens", LAYER_FLAGS, ids=[_layer_name("", *f)[1:] for f in LAYER_FLAGS]
)
@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_layer_matches_torch_fixture(kind, layers, bidi, batch_first, lens):
    case = _case(
        FIXTURES / f"torch_layers_{kind}.npz", _layer_name(kind, layers, bidi, batch_first, lens)
    )
    assert ("lengths" in case) == lens
    run_layer_case(case, kind, layers, bidi, batch_first)


@pytest.mark.parametrize("kind", ("lstm", "gru"))
def test_layer_op_by_op_matches_torch_fixture(kind):
    flags = (2, True, False, True)
    case = _case(FIXTURES / f"torch_layers_{kind}.npz", _layer_name(kind, *flags))
    run_layer_case(case, kind, *flags[:3], fused=False)


def test_torch_state_dict_names_and_shapes_match():
    case = _case(FIXTURES / "torch_layers_lstm.npz", "lstm_l2_bi_tf_len")
    mod = nn.LSTM(4, 3, num_layers=2, bidirectional=True)
    torch_names = [k for k in case if k.startswith(("weight_", "bias_"))]
    assert [n for n, _ in mod.named_parameters()] == torch_names
    assert all(p.shape == case[n].shape for n, p in mod.named_parameters())


# ---- live comparison with torch, when installed ----


def _fixture_script():
    path = Path(__file__).parent.parent / "scripts" / "make_torch_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_torch_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_live_cells_match_torch(kind):
    pytest.importorskip("torch")
    script = _fixture_script()
    for seed, bias in ((7, True), (8, False)):
        run_cell_case(script.cell_case(kind, bias, seed), kind, bias, fused=True)


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_live_layers_match_torch(kind):
    pytest.importorskip("torch")
    script = _fixture_script()
    for seed, flags in enumerate(
        [(2, True, True, True), (1, False, False, True), (2, False, True, False)]
    ):
        run_layer_case(script.layer_case(kind, *flags, 1000 + seed), kind, *flags[:3])


def test_live_torch_state_dict_loads_unchanged():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = torch.nn.GRU(4, 6, num_layers=2, batch_first=True).double()
    mod = nn.GRU(4, 6, num_layers=2, batch_first=True).double()
    mod.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 5, 4))
    out, h = mod(tr.tensor(x))
    ref_out, ref_h = ref(torch.from_numpy(x))
    _close(out.data, ref_out.detach().numpy(), "output")
    _close(h.data, ref_h.detach().numpy(), "h_n")

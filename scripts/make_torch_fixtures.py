"""Write the PyTorch reference values that tests/test_parity_torch.py checks tinyrnn against.

Needs torch (``pip install .[parity]``); the tests themselves only read the ``.npz`` files, so
they run without torch. Everything is float64. For every configuration the file holds, under the
key prefix ``"<config>/"``: the weights under PyTorch's parameter names, the input ``x``, the
initial state (``h0``, ``c0``) when one is given, ``lengths`` when the batch has variable
lengths, random cotangents (``g_out``, ``g_h``, ``g_c``), PyTorch's outputs (``out``, ``h``,
``c``) and the gradients of ``<g_out, out> + <g_h, h> + <g_c, c>`` with respect to every
parameter (``grad/<name>``), the input (``grad_x``) and the initial state (``grad_h0``,
``grad_c0``).

Usage: ``python scripts/make_torch_fixtures.py [--out tests/fixtures]``.
Variable lengths go through ``pack_padded_sequence(enforce_sorted=False)``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

CELL_KINDS = {
    "rnn_tanh": lambda i, h, bias: nn.RNNCell(i, h, bias=bias, nonlinearity="tanh"),
    "rnn_relu": lambda i, h, bias: nn.RNNCell(i, h, bias=bias, nonlinearity="relu"),
    "lstm": lambda i, h, bias: nn.LSTMCell(i, h, bias=bias),
    "gru": lambda i, h, bias: nn.GRUCell(i, h, bias=bias),
}

LAYER_KINDS = {
    "rnn_tanh": lambda i, h, **kw: nn.RNN(i, h, nonlinearity="tanh", **kw),
    "rnn_relu": lambda i, h, **kw: nn.RNN(i, h, nonlinearity="relu", **kw),
    "lstm": lambda i, h, **kw: nn.LSTM(i, h, **kw),
    "gru": lambda i, h, **kw: nn.GRU(i, h, **kw),
}

# Sizes kept small so the fixture files stay a few kilobytes each.
T, B, I, H = 5, 3, 4, 3  # noqa: E741 (the shape letters used throughout)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().copy()


def _randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def cell_case(kind: str, bias: bool, seed: int) -> dict[str, np.ndarray]:
    """One step of a cell with a random input and state, and its gradients."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cell = CELL_KINDS[kind](I, H, bias).double()
    x = _randn(gen, B, I).requires_grad_()
    h0 = _randn(gen, B, H).requires_grad_()
    out: dict[str, np.ndarray] = {name: _np(p) for name, p in cell.named_parameters()}
    out.update(x=_np(x), h0=_np(h0))
    if kind == "lstm":
        c0 = _randn(gen, B, H).requires_grad_()
        h, c = cell(x, (h0, c0))
        g_h, g_c = _randn(gen, B, H), _randn(gen, B, H)
        ((h * g_h).sum() + (c * g_c).sum()).backward()
        out.update(c0=_np(c0), g_h=_np(g_h), g_c=_np(g_c), h=_np(h), c=_np(c))
        out.update(grad_c0=_np(c0.grad))
    else:
        h = cell(x, h0)
        g_h = _randn(gen, B, H)
        (h * g_h).sum().backward()
        out.update(g_h=_np(g_h), h=_np(h))
    out.update(grad_x=_np(x.grad), grad_h0=_np(h0.grad))
    out.update({f"grad/{name}": _np(p.grad) for name, p in cell.named_parameters()})
    return out


def layer_case(
    kind: str, layers: int, bidirectional: bool, batch_first: bool, with_lengths: bool, seed: int
) -> dict[str, np.ndarray]:
    """A whole layer over a sequence, optionally with variable lengths and an initial state."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mod = LAYER_KINDS[kind](
        I, H, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first
    ).double()
    dirs = 2 if bidirectional else 1
    x = _randn(gen, *((B, T, I) if batch_first else (T, B, I))).requires_grad_()
    out: dict[str, np.ndarray] = {name: _np(p) for name, p in mod.named_parameters()}
    out["x"] = _np(x)
    # Give an initial state in half of the cases, so both hx=None and hx=given are covered.
    given = not batch_first
    h0 = _randn(gen, layers * dirs, B, H).requires_grad_() if given else None
    c0 = _randn(gen, layers * dirs, B, H).requires_grad_() if given and kind == "lstm" else None
    if given:
        out["h0"] = _np(h0)
        if c0 is not None:
            out["c0"] = _np(c0)
    hx = (h0, c0) if kind == "lstm" and given else h0
    if with_lengths:
        # Unsorted, and the longest shorter than T in one-layer cases (a fully padded step).
        lengths = torch.tensor([4, 2, 3] if layers == 1 else [5, 1, 3])
        out["lengths"] = lengths.numpy().astype(np.int64)
        packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
        y_packed, state = mod(packed, hx)
        y, _ = pad_packed_sequence(y_packed, batch_first=batch_first, total_length=T)
    else:
        y, state = mod(x, hx)
    h, c = state if kind == "lstm" else (state, None)
    g_out = _randn(gen, *y.shape)
    g_h = _randn(gen, *h.shape)
    loss = (y * g_out).sum() + (h * g_h).sum()
    out.update(out=_np(y), h=_np(h), g_out=_np(g_out), g_h=_np(g_h))
    if c is not None:
        g_c = _randn(gen, *c.shape)
        loss = loss + (c * g_c).sum()
        out.update(c=_np(c), g_c=_np(g_c))
    loss.backward()
    out["grad_x"] = _np(x.grad)
    if given:
        out["grad_h0"] = _np(h0.grad)
        if c0 is not None:
            out["grad_c0"] = _np(c0.grad)
    out.update({f"grad/{name}": _np(p.grad) for name, p in mod.named_parameters()})
    return out


def layer_config_name(
    kind: str, layers: int, bidirectional: bool, batch_first: bool, with_lengths: bool
) -> str:
    return (
        f"{kind}_l{layers}_{'bi' if bidirectional else 'uni'}_"
        f"{'bf' if batch_first else 'tf'}_{'len' if with_lengths else 'full'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parent.parent / "tests/fixtures")
    )
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    cells: dict[str, np.ndarray] = {}
    for seed, (kind, bias) in enumerate(itertools.product(CELL_KINDS, (True, False))):
        case = cell_case(kind, bias, seed)
        name = f"{kind}_{'bias' if bias else 'nobias'}"
        cells.update({f"{name}/{k}": v for k, v in case.items()})
    np.savez_compressed(out_dir / "torch_cells.npz", **cells)

    for kind in LAYER_KINDS:
        arrays: dict[str, np.ndarray] = {}
        flags = itertools.product((1, 2), (False, True), (False, True), (False, True))
        for seed, (layers, bidi, bf, lens) in enumerate(flags):
            case = layer_case(kind, layers, bidi, bf, lens, 100 + seed)
            name = layer_config_name(kind, layers, bidi, bf, lens)
            arrays.update({f"{name}/{k}": v for k, v in case.items()})
        np.savez_compressed(out_dir / f"torch_layers_{kind}.npz", **arrays)
    print(f"wrote fixtures to {out_dir}")


if __name__ == "__main__":
    main()

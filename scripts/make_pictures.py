"""Make the graph pictures shown in the README, into docs/pictures/ (SVG; PNG with --png).

- ``seed_neurons.svg``: the seed article's worked example (a 2-unit tanh RNN over two steps) at
  neuron level, one record per weight and unit with its value and gradient;
- ``lstm_unfolded.svg``: a one-layer LSTM built op by op over three steps, one cluster per
  step, each weight drawn once with an edge into every step, the state as the red spine;
- ``lstm_rolled.svg``: the same graph folded into one cell with recurrent edges ``×3``;
- ``vanishing_gradients.svg``: a vanilla RNN beside an LSTM over 16 steps of the same input,
  loss at the last step only; each step is one cell coloured by ``‖∂L/∂h_t‖`` on a log scale.

Run: ``python3 scripts/make_pictures.py [--out docs/pictures] [--png]``. The pictures are
deterministic (seeded), so rerunning reproduces the committed files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tinyrnn as tr  # noqa: E402
from tinyrnn import nn  # noqa: E402
from tinyrnn.worked_example import neuron_graph  # noqa: E402


def seed_neurons() -> tuple[tr.Value, dict]:
    with tr.viz.record_grads():
        loss, _ = neuron_graph()
    return loss, {"grads": True}


def lstm_graph() -> tuple[nn.LSTM, tr.Tensor]:
    tr.manual_seed(0)
    lstm = nn.LSTM(3, 4, fused=False)
    x = tr.randn(3, 2, 3)
    x.name = "x"
    out, _ = lstm(x)
    loss = (out * out).mean()
    loss.name = "loss"
    return lstm, loss


def vanishing() -> tuple[tuple[nn.Module, nn.Module], tr.Tensor]:
    """A tanh RNN and an LSTM (forget-gate bias 1, the usual start) read the same 16 steps;
    the loss is a random projection of each one's final hidden state ``h_n``, summed."""
    tr.manual_seed(4)
    steps, hidden = 16, 16
    rnn = nn.RNN(4, hidden)
    lstm = nn.LSTM(4, hidden)
    with tr.no_grad():
        lstm.bias_ih_l0.data[hidden : 2 * hidden] = 1.0
    x = tr.randn(steps, 1, 4)
    w = tr.tensor(np.random.default_rng(0).standard_normal((hidden, 1)).astype(np.float32))
    _, h_rnn = rnn(x)
    _, (h_lstm, _) = lstm(x)
    loss = (h_rnn[0] @ w).sum() + (h_lstm[0] @ w).sum()
    loss.name = "loss"
    with tr.viz.record_grads():
        loss.backward()
    return (rnn, lstm), loss


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "pictures"
    )
    ap.add_argument("--png", action="store_true", help="also write PNG files")
    args = ap.parse_args(argv)
    if tr.viz.find_renderer() is None:
        print(
            "make_pictures: no Graphviz renderer found; pip install graphviz-pure", file=sys.stderr
        )
        return 2
    seed, seed_opts = seed_neurons()
    lstm, loss = lstm_graph()
    models, vloss = vanishing()
    jobs = [
        ("seed_neurons", seed, seed_opts),
        ("lstm_unfolded", loss, {}),
        ("lstm_rolled", loss, {"rolled": True}),
        ("vanishing_gradients", vloss, {"grads": True, "collapse": True}),
    ]
    formats = ("svg", "png") if args.png else ("svg",)
    for name, root, options in jobs:
        dot = tr.viz.draw(root, **options)
        for fmt in formats:
            path = tr.viz.render(dot, args.out / f"{name}.{fmt}", format=fmt)
            print(path)
    del lstm, models
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

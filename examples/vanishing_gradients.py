"""How far back in time does the gradient reach? |dL/dh_t| against t for RNN, LSTM and GRU.

Backpropagation through time multiplies one Jacobian per step. For a vanilla tanh RNN each
factor is diag(1 - h_t^2) W_hh, whose size is usually below one, so the gradient of a loss at
the last step with respect to an early hidden state shrinks exponentially: the network cannot
learn what happened long ago (the vanishing-gradient problem the seed article mentions). The LSTM
adds a cell state updated by c_t = f * c_{t-1} + i * g, a path on which the gradient is scaled
only by the forget gate f; the GRU mixes h_t = (1 - z) * n + z * h_{t-1} with a similar
additive path. Both keep larger gradients far back.

This script runs each cell (PyTorch's default initialisation) over the same random input
sequence, sets L = w . h_T for a random w, backpropagates, and reads dL/dh_t for every t from
the unrolled graph (``retain_grad``). It also shows the usual LSTM trick of starting the forget
gate's bias at 1, which keeps f near 0.73 instead of 0.5 and the cell path open.

Run: python examples/vanishing_gradients.py [--steps 100] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import tinyrnn as tr
from tinyrnn import nn


def gradient_norms(cell: nn.Module, x: tr.Tensor, w: tr.Tensor) -> np.ndarray:
    """Mean over the batch of ||dL/dh_t||, t = 0..T-1, for L = sum_b w . h_T[b]."""
    state = None
    hidden = []
    for t in range(x.shape[0]):
        state = cell(x[t], state)
        h = state[0] if isinstance(state, tuple) else state  # the LSTM's state is (h, c)
        h.retain_grad()  # keep dL/dh_t although h_t is not a leaf
        hidden.append(h)
    loss = (hidden[-1] @ w).sum()
    loss.backward()
    return np.array([np.linalg.norm(h.grad.numpy(), axis=1).mean() for h in hidden])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="sequence length T")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--inits", type=int, default=5, help="initialisations averaged")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a shorter run (used by tests)")
    parser.add_argument("--out", type=Path, default=Path("tinyrnn-out/examples"))
    args = parser.parse_args(argv)
    T = 60 if args.quick else args.steps
    if args.quick:
        args.inits = 3
    n_in, H, B = 8, args.hidden, args.batch

    # float64, because far back the vanilla RNN's gradient drops below float32's smallest
    # number (about 1e-45) and would read as exactly 0.
    previous_dtype = tr.get_default_dtype()
    tr.set_default_dtype(tr.float64)
    try:
        return _run(args, T, n_in, H, B)
    finally:
        tr.set_default_dtype(previous_dtype)


def _run(args: argparse.Namespace, T: int, n_in: int, H: int, B: int) -> dict:
    # One input sequence and one read-out vector, shared by every cell.
    tr.manual_seed(args.seed)
    x = tr.randn(T, B, n_in)
    w = tr.randn(H)

    def lstm_forget_bias_1(n_in: int, H: int) -> nn.LSTMCell:
        cell = nn.LSTMCell(n_in, H)
        cell.bias_ih.data[H : 2 * H] += 1.0  # gate order i, f, g, o: rows H..2H are f
        return cell

    makers = {
        "vanilla RNN": nn.RNNCell,
        "LSTM": nn.LSTMCell,
        "GRU": nn.GRUCell,
        "LSTM, forget bias 1": lstm_forget_bias_1,
    }
    # One random initialisation can be lucky or unlucky, so average (geometrically, as the
    # sizes span many orders of magnitude) over several.
    norms = {}
    for name, make in makers.items():
        logs = [np.log(gradient_norms(make(n_in, H), x, w)) for _ in range(args.inits)]
        norms[name] = np.exp(np.mean(logs, axis=0))

    back = [k for k in (0, 10, 25, 50, 75, 100) if k < T]
    print(
        f"|dL/dh_t| for L = w . h_T, T = {T}, H = {H}: mean over {B} sequences, "
        f"geometric mean over {args.inits} initialisations"
    )
    print(f"{'steps back (T - t):':>24}" + "".join(f"{k:>10}" for k in back))
    for name, n in norms.items():
        print(f"{name:>24}" + "".join(f"{n[T - 1 - k]:>10.1e}" for k in back))
    far = min(50, T - 1)
    far_back = {name: float(n[T - 1 - far]) for name, n in norms.items()}
    for name in ("LSTM", "GRU"):
        ratio = far_back[name] / far_back["vanilla RNN"]
        print(f"{far} steps back, the {name} gradient is {ratio:.1e} times the vanilla RNN's")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot)")
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, n in norms.items():
            ax.semilogy(np.arange(T)[::-1], n, label=name)
        ax.set_xlabel("steps back from the loss (T - t)")
        ax.set_ylabel("|dL/dh_t| (log scale)")
        ax.set_title("Gradient reaching back in time, at initialisation")
        ax.legend()
        fig.tight_layout()
        path = args.out / "vanishing_gradients.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        print(f"plot: {path}")

    return {"steps": T, "far": far, "norms": norms, "far_back": far_back}


if __name__ == "__main__":
    main()

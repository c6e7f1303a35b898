"""Write a new recurrent cell in ten lines, check its gradients, train it, draw it.

The cell is the minimal gated unit (MGU, Zhou et al. 2016): a GRU with a single gate,

    f  = sigmoid(x W_f^T + h U_f^T + b_f)              (forget/update gate)
    h~ = tanh(x W_h^T + (f * h) U_h^T + b_h)           (candidate state)
    h' = (1 - f) * h + f * h~

A cell in tinyrnn is a Module whose ``forward(x, state)`` returns the next state, written with
ordinary tensor operations: no backward code. ``nn.Recurrent`` runs it over a sequence, and
backpropagation through time is the engine's backward over the unrolled graph. The script

1. checks the cell's gradients against finite differences (``tr.autograd.gradcheck``, float64,
   random output weights), for the inputs, the state and all six parameters;
2. trains it on a memory task: read a stream of symbols, output the symbol seen ``--delay``
   steps ago (chance is 1 / number of symbols);
3. draws its unrolled graph, every gate op visible, one cluster per time step.

Run: python examples/custom_cell.py [--steps 300] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import tinyrnn as tr
from tinyrnn import nn


def uniform(*shape: int) -> nn.Parameter:
    """A parameter drawn from U(-1/sqrt(H), 1/sqrt(H)), H = shape[0], as PyTorch's cells do."""
    k = shape[0] ** -0.5
    return nn.Parameter(tr.rand(*shape) * (2 * k) - k)


class MGUCell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        H, I = hidden_size, input_size  # noqa: E741
        self.hidden_size = H
        self.W_f, self.U_f, self.b_f = uniform(H, I), uniform(H, H), uniform(H)
        self.W_h, self.U_h, self.b_h = uniform(H, I), uniform(H, H), uniform(H)

    def forward(self, x: tr.Tensor, h: tr.Tensor) -> tr.Tensor:
        f = (x @ self.W_f.T + h @ self.U_f.T + self.b_f).sigmoid()
        h_tilde = (x @ self.W_h.T + (f * h) @ self.U_h.T + self.b_h).tanh()
        return (1 - f) * h + f * h_tilde

    def initial_state(self, batch_size: int) -> tr.Tensor:  # lets nn.Recurrent start from 0
        return tr.zeros(batch_size, self.hidden_size, dtype=self.W_f.dtype)


class DelayModel(nn.Module):
    """Symbols -> one-hot -> MGU over time -> linear read-out at every step."""

    def __init__(self, symbols: int, hidden: int):
        super().__init__()
        self.symbols = symbols
        self.rnn = nn.Recurrent(MGUCell(symbols, hidden), name="mgu")
        self.head = nn.Linear(hidden, symbols)

    def forward(self, ids: np.ndarray) -> tr.Tensor:  # ids (T, B) -> logits (T, B, symbols)
        x = tr.tensor(np.eye(self.symbols, dtype=np.float32)[ids])
        outputs, _ = self.rnn(x)
        return self.head(outputs)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    parser.add_argument("--delay", type=int, default=4, help="how far back to recall")
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer steps (used by tests)")
    parser.add_argument("--out", type=Path, default=Path("tinyrnn-out/examples"))
    args = parser.parse_args(argv)
    steps = 150 if args.quick else args.steps
    tr.manual_seed(args.seed)

    # ---- 1. gradient check in float64: inputs, state and every parameter ----
    cell = MGUCell(3, 5).double()
    x = tr.randn(4, 3, dtype=tr.float64, requires_grad=True)
    h = tr.randn(4, 5, dtype=tr.float64, requires_grad=True)
    params = list(cell.parameters())
    # gradcheck perturbs each input in place, parameters included, so `cell` sees them
    ok = tr.autograd.gradcheck(lambda x, h, *_: cell(x, h), [x, h, *params])
    print(f"gradcheck of MGUCell (x, h and {len(params)} parameters): {'passed' if ok else ''}")

    # ---- 2. train on the delayed-recall task ----
    T, B, d = 20, 32, args.delay
    rng = np.random.default_rng(args.seed)
    model = DelayModel(args.symbols, args.hidden)
    optimizer = tr.optim.Adam(model.parameters(), lr=0.01)

    def batch() -> tuple[np.ndarray, np.ndarray]:
        ids = rng.integers(0, args.symbols, size=(T, B))
        return ids, ids[:-d]  # target at step t (t >= d) is the input at step t - d

    def accuracy(logits: tr.Tensor, targets: np.ndarray) -> float:
        return float((logits.numpy()[d:].argmax(-1) == targets).mean())

    for step in range(1, steps + 1):
        ids, targets = batch()
        logits = model(ids)
        loss = nn.functional.cross_entropy(
            logits[d:].reshape(-1, args.symbols), targets.reshape(-1)
        )
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0 or step == steps:
            print(
                f"step {step:4d}: loss {loss.item():.3f}, accuracy {accuracy(logits, targets):.2f}"
            )
    with tr.no_grad():
        ids, targets = batch()
        test_accuracy = accuracy(model(ids), targets)
    print(
        f"recalling the symbol {d} steps back on new sequences: accuracy {test_accuracy:.3f} "
        f"(chance {1 / args.symbols:.2f})"
    )

    # ---- 3. draw three unrolled steps of the cell, and the same folded into one ----
    args.out.mkdir(parents=True, exist_ok=True)
    small = DelayModel(args.symbols, 4)
    loss = small(rng.integers(0, args.symbols, size=(3, 1))).sum()
    pictures = [
        tr.viz.render(loss, args.out / "custom_cell_unrolled.svg"),
        tr.viz.render(loss, args.out / "custom_cell_rolled.svg", rolled=True),
    ]
    for path in pictures:
        print(f"picture: {path}")

    return {"gradcheck": ok, "accuracy": test_accuracy, "chance": 1 / args.symbols,
            "pictures": pictures}  # fmt: skip


if __name__ == "__main__":
    main()

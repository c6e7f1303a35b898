"""Sequences of different lengths in one batch: padding plus ``lengths``, many-to-one.

Each example is a sequence of 2 to 20 digits; the label says whether its last digit is larger
than its first. Sequences in a batch are padded to the longest one with a padding symbol, and the
layer is told the real lengths: ``nn.GRU(...)(x, lengths=lengths)``. Then each sequence stops at
its own end: its outputs past the end are zero, and ``h_n`` holds its state after its last real
digit, which is exactly what the classifier needs here (the answer depends on the last digit).

The script first shows that padding with ``lengths`` changes nothing: the final states of a
padded batch equal those of each sequence run alone (and without ``lengths`` they do not: the
padding steps keep updating the state). Then it trains the classifier on padded batches.

Run: python examples/variable_length.py [--steps 400] [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np

import tinyrnn as tr
from tinyrnn import nn

PAD = 10  # digits are 0..9; 10 pads


def make_batch(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded digits (B, T_max), lengths (B,) and labels (B,): last digit > first digit."""
    lengths = rng.integers(2, 21, size=size)
    ids = np.full((size, lengths.max()), PAD, dtype=np.int64)
    labels = np.zeros(size, dtype=np.int64)
    for b, n in enumerate(lengths):
        digits = rng.integers(0, 10, size=n)
        while digits[-1] == digits[0]:  # no ties
            digits[-1] = rng.integers(0, 10)
        ids[b, :n] = digits
        labels[b] = digits[-1] > digits[0]
    return ids, lengths, labels


class Classifier(nn.Module):
    """Digits -> embedding -> GRU over the real steps -> 2 classes from the final state."""

    def __init__(self, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(11, 16)
        self.rnn = nn.GRU(16, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)

    def final_state(self, ids: np.ndarray, lengths: np.ndarray | None) -> tr.Tensor:
        _, h_n = self.rnn(self.embed(ids), lengths=lengths)  # h_n: (layers, B, hidden)
        return h_n[-1]

    def forward(self, ids: np.ndarray, lengths: np.ndarray) -> tr.Tensor:
        return self.head(self.final_state(ids, lengths))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer steps (used by tests)")
    args = parser.parse_args(argv)
    steps = 200 if args.quick else args.steps
    tr.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = Classifier(args.hidden)

    # ---- 1. padding with lengths = running each sequence on its own ----
    ids, lengths, _ = make_batch(rng, 8)
    with tr.no_grad():
        padded = model.final_state(ids, lengths).numpy()
        ignoring = model.final_state(ids, None).numpy()
        alone = np.stack([model.final_state(ids[b : b + 1, :n], None).numpy()[0]
                          for b, n in enumerate(lengths)])  # fmt: skip
    diff_with = float(np.abs(padded - alone).max())
    diff_without = float(np.abs(ignoring - alone).max())
    print(f"lengths in this batch: {lengths.tolist()}")
    print(f"max |h_n(padded batch, lengths) - h_n(each sequence alone)| = {diff_with:.1e}")
    print(f"max |h_n(padded batch, no lengths) - h_n(each sequence alone)| = {diff_without:.2f}")

    # ---- 2. train on padded batches ----
    optimizer = tr.optim.Adam(model.parameters(), lr=0.01)
    for step in range(1, steps + 1):
        ids, lengths, labels = make_batch(rng, 64)
        loss = nn.functional.cross_entropy(model(ids, lengths), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            print(f"step {step}: loss {loss.item():.3f}")

    ids, lengths, labels = make_batch(np.random.default_rng(10_000 + args.seed), 1000)
    with tr.no_grad():
        predicted = model(ids, lengths).numpy().argmax(-1)
    accuracy = float((predicted == labels).mean())
    by_length = {n: float((predicted == labels)[lengths == n].mean()) for n in (2, 10, 20)}
    print(f"accuracy on 1,000 new sequences: {accuracy:.3f} (chance 0.5)")
    print("  by length: " + ", ".join(f"{n} digits {a:.2f}" for n, a in by_length.items()))
    return {"accuracy": accuracy, "by_length": by_length,
            "diff_with_lengths": diff_with, "diff_without_lengths": diff_without}  # fmt: skip


if __name__ == "__main__":
    main()

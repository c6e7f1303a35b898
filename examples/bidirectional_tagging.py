"""Where do the words end? A tagger that reads both ways beats one that reads left to right.

The sonnets with spaces and punctuation removed become a stream of letters
("shallicomparetheetoasummersday..."); the task is to tag every letter that ends a word
(many-to-many: one output per input). Whether "the" ends a word depends on what follows
("the|e", "then", "there"), so the right context matters. A one-way GRU sees only the letters so
far when it tags a letter; a bidirectional GRU (``nn.GRU(..., bidirectional=True)``) runs a
second GRU from the right and concatenates both states, so every tag sees the whole window.
Both are trained the same way on the first 90% of the text and scored on the last 10%.

Run: python examples/bidirectional_tagging.py [--steps 400] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import re

import numpy as np

import tinyrnn as tr
from tinyrnn import nn
from tinyrnn.data import load_text


def letters_and_word_ends(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Letters a-z as ids 0..25, and 1 where a letter ends a word, else 0."""
    words = re.findall(r"[a-z]+", text.lower())
    letters = np.frombuffer("".join(words).encode("ascii"), dtype=np.uint8) - ord("a")
    ends = np.zeros(len(letters), dtype=np.int64)
    ends[np.cumsum([len(w) for w in words]) - 1] = 1
    return letters.astype(np.int64), ends


class Tagger(nn.Module):
    """Embedding -> GRU (one-way or bidirectional) -> a 2-way classifier at every step."""

    def __init__(self, hidden: int, bidirectional: bool):
        super().__init__()
        self.embed = nn.Embedding(26, 16)
        self.rnn = nn.GRU(16, hidden, bidirectional=bidirectional)
        self.head = nn.Linear(2 * hidden if bidirectional else hidden, 2)

    def forward(self, ids: np.ndarray) -> tr.Tensor:  # (T, B) -> logits (T, B, 2)
        outputs, _ = self.rnn(self.embed(ids))
        return self.head(outputs)


def segment(model: Tagger, letters: np.ndarray) -> str:
    """The letters with a space after each one the model tags as a word end."""
    with tr.no_grad():
        tags = model(letters[:, None]).numpy()[:, 0].argmax(-1)
    return "".join(
        chr(97 + c) + (" " if t else "") for c, t in zip(letters, tags, strict=True)
    ).strip()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--hidden", type=int, default=48)
    parser.add_argument("--window", type=int, default=40, help="letters per training window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer steps (used by tests)")
    args = parser.parse_args(argv)
    steps, hidden = (150, 32) if args.quick else (args.steps, args.hidden)

    letters, ends = letters_and_word_ends(load_text("sonnets"))
    split = int(0.9 * len(letters))
    T, B = args.window, 32
    print(
        f"{len(letters):,} letters, {ends.mean():.0%} of them end a word; training on the "
        f"first {split:,}, testing on the rest"
    )

    def windows(lo: int, hi: int, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
        starts = rng.integers(lo, hi - T, size=n)
        index = starts[None, :] + np.arange(T)[:, None]  # (T, n)
        return letters[index], ends[index]

    test_x, test_y = windows(split, len(letters), np.random.default_rng(12345), 256)
    word_starts = np.flatnonzero(ends[split:]) + split + 1
    first = word_starts[word_starts > split + 200][0]
    last = word_starts[word_starts > first + 60][0]
    example = letters[first:last]  # a held-out stretch of whole words
    results, models = {}, {}
    for name, bidirectional in (("one-way", False), ("bidirectional", True)):
        tr.manual_seed(args.seed)
        rng = np.random.default_rng(args.seed)  # both models see the same batches
        model = Tagger(hidden, bidirectional)
        optimizer = tr.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(steps):
            x, y = windows(0, split, rng, B)
            loss = nn.functional.cross_entropy(model(x).reshape(-1, 2), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with tr.no_grad():
            predicted = model(test_x).numpy().argmax(-1)
        hits = int(((predicted == 1) & (test_y == 1)).sum())
        results[name] = {
            "accuracy": float((predicted == test_y).mean()),
            # F1 of the "word end" tag: the harmonic mean of precision and recall
            "f1": 2 * hits / max(int((predicted == 1).sum() + (test_y == 1).sum()), 1),
        }
        models[name] = model

    print(f"held-out tagging after {steps} steps ({len(test_y.ravel()):,} letters):")
    for name, r in results.items():
        print(f"  {name:>13}: accuracy {r['accuracy']:.3f}, word-end F1 {r['f1']:.3f}")
    print("segmenting a held-out stretch of letters:")
    for name, model in models.items():
        print(f"  {name:>13}: {segment(model, example)}")
    return results


if __name__ == "__main__":
    main()

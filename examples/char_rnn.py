"""min-char-rnn in tinyrnn: a vanilla RNN that learns text one character at a time.

Andrej Karpathy's min-char-rnn.py (2015) trains a character-level RNN in about 100 lines of
NumPy, 30 of which are the hand-written backward pass. This is the same model and the same
training recipe, with tinyrnn computing the gradients instead:

    h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h)      x_t: one-hot vector of the t-th character
    y_t = W_hy h_t + b_y                           scores for the next character
    loss = sum_t -log softmax(y_t)[next character]

The text is read in chunks of 25 characters; the hidden state is carried from chunk to chunk
(detached, so gradients stop at the chunk border: truncated backpropagation through time).
The update is Adagrad with learning rate 0.1 after clipping every gradient entry to [-5, 5],
and the loss is printed smoothed, as in the original.

Run: python examples/char_rnn.py [--text FILE] [--iterations 3000] [--quick]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

import tinyrnn as tr
from tinyrnn import nn
from tinyrnn.data import load_text


class CharRNN(nn.Module):
    def __init__(self, vocab_size: int, hidden_size: int):
        super().__init__()
        # min-char-rnn's initialisation: small random weights, zero biases
        self.W_xh = nn.Parameter(tr.randn(hidden_size, vocab_size) * 0.01)
        self.W_hh = nn.Parameter(tr.randn(hidden_size, hidden_size) * 0.01)
        self.W_hy = nn.Parameter(tr.randn(vocab_size, hidden_size) * 0.01)
        self.b_h = nn.Parameter(tr.zeros(hidden_size))
        self.b_y = nn.Parameter(tr.zeros(vocab_size))
        self.eye = np.eye(vocab_size, dtype=np.float32)  # rows are the one-hot vectors

    def forward(self, ids: list[int], h: tr.Tensor) -> tuple[tr.Tensor, tr.Tensor]:
        """Scores (T, V) for the character after each of ``ids``, and the last hidden state."""
        scores = []
        for ix in ids:
            x = tr.tensor(self.eye[ix])
            h = (self.W_xh @ x + self.W_hh @ h + self.b_h).tanh()
            scores.append(self.W_hy @ h + self.b_y)
        return tr.stack(scores), h


def sample(model: CharRNN, h: tr.Tensor, seed_ix: int, n: int, rng: np.random.Generator) -> list:
    """n character ids drawn from the model, starting after character ``seed_ix``."""
    ids, ix = [], seed_ix
    with tr.no_grad():
        for _ in range(n):
            y, h = model([ix], h)
            p = y[0].softmax(-1).numpy().astype(np.float64)
            ix = int(rng.choice(len(p), p=p / p.sum()))
            ids.append(ix)
    return ids


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, help="a UTF-8 text file (default: the sonnets)")
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--seq-length", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (used by tests)")
    args = parser.parse_args(argv)
    iterations = 300 if args.quick else args.iterations

    data = args.text.read_text(encoding="utf-8") if args.text else load_text("sonnets")
    chars = sorted(set(data))
    vocab_size, n = len(chars), args.seq_length
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    print(f"data has {len(data):,} characters, {vocab_size} unique")

    tr.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = CharRNN(vocab_size, args.hidden)
    optimizer = tr.optim.Adagrad(model.parameters(), lr=0.1)
    smooth_loss = -math.log(1.0 / vocab_size) * n  # loss at iteration 0
    losses = []
    p, h = 0, tr.zeros(args.hidden)
    for it in range(iterations):
        if p + n + 1 >= len(data) or it == 0:
            h, p = tr.zeros(args.hidden), 0  # back to the start of the text
        inputs = [char_to_ix[ch] for ch in data[p : p + n]]
        targets = [char_to_ix[ch] for ch in data[p + 1 : p + n + 1]]

        scores, h = model(inputs, h)
        loss = nn.functional.cross_entropy(scores, np.array(targets), reduction="sum")
        optimizer.zero_grad()
        loss.backward()  # backpropagation through the 25 steps of this chunk
        nn.utils.clip_grad_value_(model.parameters(), 5.0)  # against exploding gradients
        optimizer.step()
        h = h.detach()  # carry the state on, but not the graph

        losses.append(loss.item())
        smooth_loss = smooth_loss * 0.999 + loss.item() * 0.001
        if it % 500 == 0 or it == iterations - 1:
            text = "".join(chars[i] for i in sample(model, h, inputs[0], 160, rng))
            print(f"----\n{text}\n----\niter {it}, smooth loss {smooth_loss:.2f}")
        p += n

    first, last = losses[0], float(np.mean(losses[-50:]))
    print(f"loss per {n}-character chunk: {first:.1f} at the first iteration, {last:.1f} over "
          f"the last 50 ({last / n:.2f} nats per character)")  # fmt: skip
    return {"first_loss": first, "last_loss": last, "smooth_loss": smooth_loss}


if __name__ == "__main__":
    main()

"""An encoder-decoder that rewrites dates in words as ISO dates: "the 5th of march 1987" ->
"1987-03-05".

Input and output are sequences of different lengths (10 to 26 characters in, always 10 out),
so one RNN reading and writing in step is not enough. The encoder, a GRU, reads the input
characters (a padded batch with ``lengths``). The decoder, another GRU, starts from the
encoder's final state and writes the output one character at a time, each step reading the
character written before (during training the true one: teacher forcing). Each decoder step
also looks back at the encoder's outputs with dot-product attention (Luong et al. 2015): a
softmax over the input positions picks where to read, say, the day, wherever the format put it.
At test time decoding is greedy: each step takes the likeliest character and feeds it back.
The data are generated here in four formats; the score is exact-match accuracy on dates held
out from training.

Run: python examples/seq2seq.py [--steps 600] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt

import numpy as np

import tinyrnn as tr
from tinyrnn import nn

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]  # fmt: skip
IN_CHARS = " ,0123456789abcdefghijklmnopqrstuvwxyz"  # index 0 pads
OUT_CHARS = "^0123456789-"  # "^" starts the output


def ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def write_date(date: dt.date, style: int) -> str:
    month = MONTHS[date.month - 1]
    return [
        f"{month} {date.day}, {date.year}",
        f"{date.day} {month} {date.year}",
        f"the {ordinal(date.day)} of {month} {date.year}",
        f"{month[:3]} {date.day} {date.year}",
    ][style]


def make_dates(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """n random (written, ISO) pairs between 1900 and 2099."""
    first, days = dt.date(1900, 1, 1), (dt.date(2099, 12, 31) - dt.date(1900, 1, 1)).days
    out = []
    for offset, style in zip(rng.integers(0, days, n), rng.integers(0, 4, n), strict=True):
        date = first + dt.timedelta(days=int(offset))
        out.append((write_date(date, int(style)), date.isoformat()))
    return out


def encode_inputs(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Character ids (T_max, B) padded with 0, and lengths (B,)."""
    lengths = np.array([len(t) for t in texts])
    ids = np.zeros((lengths.max(), len(texts)), dtype=np.int64)
    for b, text in enumerate(texts):
        ids[: len(text), b] = [IN_CHARS.index(c) + 1 for c in text]
    return ids, lengths


def encode_outputs(texts: list[str]) -> np.ndarray:
    """Output ids (11, B): "^" then the 10 ISO characters."""
    return np.array([[OUT_CHARS.index(c) for c in "^" + t] for t in texts]).T


class DateTranslator(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.in_embed = nn.Embedding(len(IN_CHARS) + 1, 24)
        self.encoder = nn.GRU(24, hidden)
        self.out_embed = nn.Embedding(len(OUT_CHARS), 16)
        self.decoder = nn.GRU(16, hidden)
        self.head = nn.Linear(2 * hidden, len(OUT_CHARS))

    def encode(self, ids: np.ndarray, lengths: np.ndarray) -> tuple[tr.Tensor, tr.Tensor]:
        """Encoder outputs (S, B, H), zero past each end, and final states (1, B, H)."""
        return self.encoder(self.in_embed(ids), lengths=lengths)

    def read_out(self, dec: tr.Tensor, enc: tr.Tensor, lengths: np.ndarray) -> tr.Tensor:
        """Logits from each decoder state and its attention context over the input."""
        queries, keys = dec.transpose(0, 1), enc.transpose(0, 1)  # (B, T, H), (B, S, H)
        scores = queries @ keys.transpose(1, 2)  # (B, T, S): how well each input step matches
        real = np.arange(enc.shape[0])[None, None, :] < lengths[:, None, None]
        weights = tr.where(real, scores, -1e9).softmax(-1)  # padding gets no attention
        context = weights @ keys  # (B, T, H): a weighted average of the encoder outputs
        return self.head(tr.cat([queries, context], -1)).transpose(0, 1)  # (T, B, V)

    def forward(self, ids: np.ndarray, lengths: np.ndarray, out_ids: np.ndarray) -> tr.Tensor:
        """Teacher forcing: logits (10, B, V) for out_ids[1:] given out_ids[:-1]."""
        enc, h_n = self.encode(ids, lengths)
        dec, _ = self.decoder(self.out_embed(out_ids[:-1]), h_n)
        return self.read_out(dec, enc, lengths)

    def translate(self, texts: list[str]) -> list[str]:
        """Greedy decoding: feed back the likeliest character, 10 times."""
        ids, lengths = encode_inputs(texts)
        with tr.no_grad():
            enc, state = self.encode(ids, lengths)
            previous = np.zeros((1, len(texts)), dtype=np.int64)  # "^"
            written = []
            for _ in range(10):
                dec, state = self.decoder(self.out_embed(previous), state)
                previous = self.read_out(dec, enc, lengths).numpy().argmax(-1)  # (1, B)
                written.append(previous[0])
        return ["".join(OUT_CHARS[i] for i in column) for column in np.array(written).T]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer steps (used by tests)")
    args = parser.parse_args(argv)
    steps = 200 if args.quick else args.steps
    tr.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    test = make_dates(np.random.default_rng(10_000 + args.seed), 500)
    held_out = {iso for _, iso in test}  # no test date (in any format) is used for training
    print("the task, for example:")
    for text, iso in test[:4]:
        print(f"{text!r:>32} -> {iso!r}")

    model = DateTranslator(args.hidden)
    optimizer = tr.optim.Adam(model.parameters(), lr=0.005)
    for step in range(1, steps + 1):
        pairs = [p for p in make_dates(rng, args.batch + 8) if p[1] not in held_out]
        texts, isos = zip(*pairs[: args.batch], strict=True)
        ids, lengths = encode_inputs(list(texts))
        out_ids = encode_outputs(list(isos))
        logits = model(ids, lengths, out_ids)
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, len(OUT_CHARS)), out_ids[1:].reshape(-1)
        )
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 100 == 0:
            print(f"step {step}: loss {loss.item():.3f}")

    predicted = model.translate([text for text, _ in test])
    right = [p == iso for p, (_, iso) in zip(predicted, test, strict=True)]
    accuracy = float(np.mean(right))
    print(f"exact match on {len(test)} held-out dates: {accuracy:.3f}")
    for (text, iso), p, ok in list(zip(test, predicted, right, strict=True))[:6]:
        print(f"  {text!r:>32} -> {p}  {'ok' if ok else 'wrong, expected ' + iso}")
    return {"accuracy": accuracy, "steps": steps}


if __name__ == "__main__":
    main()

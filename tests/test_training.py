"""Training actually learns: an LSTM solves a copy task of delay 10 that a vanilla RNN of the
same size does not, and a GRU fits a noisy sine. Seeded, so every run is the same."""

from __future__ import annotations

import numpy as np
import pytest

import tinyrnn as tr
import tinyrnn.nn.functional as F
from tinyrnn import nn

# ---- the copying memory task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016) ----
#
# Input: S random symbols out of K, then DELAY blanks whose last one is a delimiter, then S
# blanks; during those last S steps the network must output the S symbols in order. Each
# symbol is recalled DELAY + S steps after it was seen; chance accuracy is 1/K.

K, S, DELAY = 8, 5, 10
T = S + DELAY + S
BLANK, DELIM = K, K + 1


def copy_batch(rng, batch):
    symbols = rng.integers(0, K, (S, batch))
    x = np.zeros((T, batch, K + 2), np.float32)
    for i in range(S):
        x[i, np.arange(batch), symbols[i]] = 1
    x[S:, :, BLANK] = 1
    x[S + DELAY - 1, :, BLANK] = 0
    x[S + DELAY - 1, :, DELIM] = 1
    return tr.tensor(x), tr.tensor(symbols.T.reshape(-1))  # targets batch-major, (B*S,)


def train_copy(kind, hidden=32, iterations=900, batch=32, seed=0):
    tr.manual_seed(seed)
    rng = np.random.default_rng(seed)
    rnn = (nn.LSTM if kind == "lstm" else nn.RNN)(K + 2, hidden)
    if kind == "lstm":
        # the usual forget-gate bias of 1 per bias vector (Gers et al. 2000; Jozefowicz et al.
        # 2015), so the cell starts out remembering
        for b in (rnn.bias_ih_l0, rnn.bias_hh_l0):
            b.data[hidden : 2 * hidden] = 1.0
    head = nn.Linear(hidden, K)
    opt = tr.optim.Adam([*rnn.parameters(), *head.parameters()], lr=0.02)

    def logits(x):
        out, _ = rnn(x)
        recall = out[S + DELAY :].transpose(0, 1)  # (B, S, H), batch-major like the targets
        return head(recall.reshape(-1, hidden))

    for _ in range(iterations):
        x, target = copy_batch(rng, batch)
        loss = F.cross_entropy(logits(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, target = copy_batch(np.random.default_rng(1234), 400)
    with tr.no_grad():
        return float((logits(x).argmax(1).data == target.data).mean())


def test_copy_batch_layout():
    x, target = copy_batch(np.random.default_rng(0), 3)
    assert x.shape == (T, 3, K + 2) and target.shape == (3 * S,)
    np.testing.assert_array_equal(x.data[:S].argmax(-1).T.reshape(-1), target.data)
    assert (x.data[S + DELAY - 1, :, DELIM] == 1).all()
    assert (x.data.sum(-1) == 1).all()


@pytest.mark.slow
def test_lstm_solves_copy_task_of_delay_10_that_a_vanilla_rnn_fails():
    lstm_accuracy = train_copy("lstm")
    rnn_accuracy = train_copy("rnn")
    assert lstm_accuracy >= 0.95, lstm_accuracy
    assert rnn_accuracy <= 0.75, rnn_accuracy  # same size, data, optimizer and budget


# ---- a GRU fits a noisy sine ----


def sine_batch(rng, batch, steps=40, noise=0.1):
    """Noisy samples of sines with random phase and frequency; the target is the next clean
    value."""
    phase = rng.uniform(0, 2 * np.pi, batch)
    freq = rng.uniform(0.15, 0.35, batch)
    clean = np.sin(freq * np.arange(steps + 1)[:, None] + phase)
    noisy = clean + noise * rng.standard_normal(clean.shape)
    x = tr.tensor(noisy[:-1, :, None].astype(np.float32))
    return x, tr.tensor(clean[1:, :, None].astype(np.float32))


def test_gru_fits_a_noisy_sine():
    tr.manual_seed(0)
    rng = np.random.default_rng(0)
    gru, head = nn.GRU(1, 16), nn.Linear(16, 1)
    opt = tr.optim.Adam([*gru.parameters(), *head.parameters()], lr=0.02)
    warmup = 5  # the first steps cannot know the phase yet
    for _ in range(200):
        x, y = sine_batch(rng, 16)
        out, _ = gru(x)
        loss = F.mse_loss(head(out)[warmup:], y[warmup:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = sine_batch(np.random.default_rng(99), 200)
    with tr.no_grad():
        out, _ = gru(x)
        test_loss = F.mse_loss(head(out)[warmup:], y[warmup:]).item()
    naive = F.mse_loss(x[warmup:], y[warmup:]).item()  # repeat the current noisy value
    assert test_loss < 0.02  # the targets have variance 0.5
    assert test_loss < 0.4 * naive

"""The character-level model behind `tinyrnn demo/train/sample/render`."""

from __future__ import annotations

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn.charmodel import (
    CharModel,
    CharModelError,
    Trainer,
    TrainSettings,
    load_checkpoint,
    read_text_file,
    sample,
    unrolled_loss,
)

TEXT = "the quick brown fox jumps over the lazy dog.\n" * 12
VOCAB = "".join(sorted(set(TEXT)))


def small_model(cell: str = "gru") -> CharModel:
    tr.manual_seed(0)
    return CharModel(VOCAB, cell=cell, hidden_size=12, embedding_dim=6)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_forward_shapes_and_state(cell):
    model = small_model(cell)
    ids = model.encode(TEXT[:10])[:, None]
    logits, state = model(ids)
    assert logits.shape == (10, 1, len(VOCAB))
    h = state[0] if cell == "lstm" else state
    assert h.shape == (1, 1, 12)
    # running the text in two pieces with the carried state gives the same scores
    first, state1 = model(ids[:4])
    second, _ = model(ids[4:], state1)
    np.testing.assert_allclose(second.numpy(), logits.numpy()[4:], rtol=1e-5, atol=1e-6)
    assert model.decode(ids[:, 0]) == TEXT[:10]


def test_constructor_errors():
    with pytest.raises(ValueError, match="CharModel: cell must be one of rnn, lstm, gru, got 'x'"):
        CharModel(VOCAB, cell="x")
    with pytest.raises(ValueError, match=r"at least 2 distinct characters.*got 3 characters \(2"):
        CharModel("aab")


def test_encode_unknown_characters():
    with pytest.raises(CharModelError, match=r"2 character\(s\) not in the model's vocabulary"):
        small_model().encode("the #@ fox")


def test_training_lowers_loss_and_resumes_identically(tmp_path):
    settings = TrainSettings(seq_len=12, batch_size=8, lr=0.02, seed=3)
    model = small_model()
    trainer = Trainer(model, TEXT, settings)
    start = trainer.evaluate()
    for _ in range(6):
        trainer.train_step()
    path = trainer.save(tmp_path / "ck.npz")
    for _ in range(6):
        trainer.train_step()
    assert trainer.evaluate() < start - 0.3
    resumed_model, ckpt = load_checkpoint(path)
    resumed = Trainer(resumed_model, TEXT, settings)
    resumed.restore(ckpt)
    assert resumed.state.step == 6 and resumed.state.losses == trainer.state.losses[:6]
    for _ in range(6):
        resumed.train_step()
    np.testing.assert_allclose(resumed.state.losses, trainer.state.losses, rtol=1e-5)


def test_batches_depend_only_on_seed_and_step():
    trainer = Trainer(small_model(), TEXT, TrainSettings(seq_len=12, batch_size=4, seed=1))
    x1, y1 = trainer.batch(5)
    x2, _ = trainer.batch(5)
    x3, _ = trainer.batch(6)
    assert x1.shape == y1.shape == (12, 4)
    np.testing.assert_array_equal(x1, x2)
    assert not np.array_equal(x1, x3)
    np.testing.assert_array_equal(x1[1:], y1[:-1])  # targets are the inputs shifted by one


def test_trainer_holds_out_the_end_of_the_text():
    trainer = Trainer(small_model(), TEXT, TrainSettings(seq_len=12, val_fraction=0.25))
    assert len(trainer.val_ids) == len(TEXT) // 4
    assert len(trainer.train_ids) + len(trainer.val_ids) == len(TEXT)


def test_trainer_text_too_short():
    with pytest.raises(CharModelError, match="the text has 9 characters; training windows need"):
        Trainer(small_model(), TEXT[:9], TrainSettings(seq_len=12))


def test_sample_is_reproducible_and_temperature_sharpens():
    model = small_model()
    a = sample(model, 30, 1.0, prime="the ", rng=7)
    assert a == sample(model, 30, 1.0, prime="the ", rng=7) and len(a) == 30
    assert set(a) <= set(VOCAB)
    # trained a little, at a low temperature sampling is greedy: the same text whatever the seed
    trainer = Trainer(model, TEXT, TrainSettings(seq_len=12, batch_size=8, lr=0.05))
    for _ in range(40):
        trainer.train_step()
    assert sample(model, 20, 0.01, rng=1) == sample(model, 20, 0.01, rng=2)
    assert sample(model, 40, 5.0, rng=1) != sample(model, 40, 5.0, rng=2)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("inf"), float("nan")])
def test_sample_bad_temperature(temperature):
    with pytest.raises(ValueError, match="sample: temperature must be a positive number"):
        sample(small_model(), 5, temperature)


def test_sample_empty_prime():
    with pytest.raises(ValueError, match="sample: prime must hold at least one character"):
        sample(small_model(), 5, prime="")


def test_unrolled_loss_graph_has_one_cluster_per_step():
    model = small_model("lstm")
    mode = model.rnn.fused
    loss = unrolled_loss(model, TEXT, 3)
    assert loss.shape == ()
    assert tr.viz.draw(loss).source.count("subgraph cluster_lstm_l0_t") == 3
    gates = tr.viz.draw(unrolled_loss(model, TEXT, 2, gates=True)).source
    assert gates.count("subgraph cluster_lstm_l0_t") == 2 and "Sigmoid" in gates
    assert model.rnn.fused == mode  # the training mode is restored
    with pytest.raises(CharModelError, match="need 6 characters to unroll 5 steps"):
        unrolled_loss(model, "abc", 5)


def test_read_text_file_normalises_line_endings(tmp_path):
    path = tmp_path / "dos.txt"
    path.write_bytes(b"one\r\ntwo\r\n")
    assert read_text_file(path) == "one\ntwo\n"


def test_load_checkpoint_from_a_newer_version(tmp_path):
    trainer = Trainer(small_model(), TEXT, TrainSettings(seq_len=12))
    ckpt = trainer.checkpoint()
    ckpt["version"] = 99
    tr.save(ckpt, tmp_path / "future.npz")
    with pytest.raises(CharModelError, match="is a version 99 checkpoint; this tinyrnn reads"):
        load_checkpoint(tmp_path / "future.npz")


def test_load_checkpoint_directory_without_checkpoint(tmp_path):
    with pytest.raises(CharModelError, match="is a directory without a checkpoint.npz"):
        load_checkpoint(tmp_path)

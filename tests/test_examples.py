"""Every script in examples/ runs in its quick mode and reaches the outcome it claims.

The scripts are imported and their ``main(argv)`` called in-process (faster than a subprocess;
each returns its measured numbers).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn._blas import blas_threads

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Small matrices: BLAS threads only add overhead (and contend on a shared machine)."""
    with blas_threads(1):
        yield


def load_example(name: str):
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"tinyrnn_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def has_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def test_vanishing_gradients_lstm_and_gru_reach_further_back(tmp_path):
    r = load_example("vanishing_gradients").main(["--quick", "--out", str(tmp_path)])
    far, T = r["far"], r["steps"]
    assert far >= 40
    rnn = r["norms"]["vanilla RNN"]
    # the vanilla RNN's gradient vanishes: many orders of magnitude lost over `far` steps
    assert rnn[T - 1 - far] < 1e-6 * rnn[T - 1]
    for gated in ("LSTM", "GRU", "LSTM, forget bias 1"):
        assert r["far_back"][gated] > 10 * r["far_back"]["vanilla RNN"], gated
    assert r["far_back"]["LSTM, forget bias 1"] > 100 * r["far_back"]["LSTM"]
    if has_matplotlib():
        assert (tmp_path / "vanishing_gradients.png").stat().st_size > 1000


@pytest.mark.slow
def test_forecasting_beats_the_naive_baseline(tmp_path):
    r = load_example("forecasting").main(["--quick", "--out", str(tmp_path)])
    naive = r["naive"]
    assert 20 < naive < 40  # the sunspot cycle makes "same as last year" poor
    for cell in ("RNN", "LSTM", "GRU"):
        assert r["rmse"][cell] < 0.8 * naive, (cell, r["rmse"])
    if has_matplotlib():
        assert (tmp_path / "forecasting.png").stat().st_size > 1000


def test_custom_cell_passes_gradcheck_learns_and_is_drawn(tmp_path):
    r = load_example("custom_cell").main(["--quick", "--out", str(tmp_path)])
    assert r["gradcheck"] is True
    assert r["accuracy"] > 0.9 > 3 * r["chance"]
    unrolled, rolled = (Path(p) for p in r["pictures"])
    text = unrolled.read_text()
    assert text.count("mgu · t=") == 3 and "Sigmoid" in text
    assert "×3" in rolled.read_text()


@pytest.mark.slow
def test_bidirectional_tagger_beats_one_way():
    r = load_example("bidirectional_tagging").main(["--quick"])
    one_way, both = r["one-way"], r["bidirectional"]
    assert both["accuracy"] > 0.9 and both["accuracy"] > one_way["accuracy"] + 0.04
    assert both["f1"] > one_way["f1"] + 0.1


def test_variable_length_padding_with_lengths_is_exact_and_classifier_learns():
    r = load_example("variable_length").main(["--quick"])
    assert r["diff_with_lengths"] < 1e-5  # padded batch == each sequence alone
    assert r["diff_without_lengths"] > 1e-2  # the padding steps would change the state
    assert r["accuracy"] > 0.9
    assert min(r["by_length"].values()) > 0.8  # short and long sequences alike


@pytest.mark.slow
def test_seq2seq_gets_most_held_out_dates_exactly_right():
    r = load_example("seq2seq").main(["--quick"])
    assert r["accuracy"] > 0.8


def test_seq2seq_data_and_decoding_shapes():
    s2s = load_example("seq2seq")
    rng = np.random.default_rng(0)
    pairs = s2s.make_dates(rng, 50)
    for text, iso in pairs:
        year, month, day = (int(v) for v in iso.split("-"))
        assert str(year) in text and str(day) in text
        assert s2s.MONTHS[month - 1][:3] in text
    assert s2s.ordinal(1) == "1st" and s2s.ordinal(12) == "12th" and s2s.ordinal(23) == "23rd"
    ids, lengths = s2s.encode_inputs([t for t, _ in pairs])
    assert ids.shape == (lengths.max(), 50) and (ids[lengths[0] :, 0] == 0).all()
    tr.manual_seed(0)
    model = s2s.DateTranslator(8)
    out = model.translate([t for t, _ in pairs[:3]])
    assert [len(o) for o in out] == [10, 10, 10]
    assert all(set(o) <= set(s2s.OUT_CHARS) for o in out)


def test_seed_example_corrects_the_article_and_agrees_with_hand_bptt(tmp_path):
    r = load_example("seed_example").main(["--out", str(tmp_path)])
    np.testing.assert_allclose(r["h1"], np.tanh([0.6, 0.5]))
    U = np.array([[0.1, 0.4], [0.6, 0.7]])
    np.testing.assert_allclose(r["h2"], np.tanh(np.array([0.2, 0.8]) + U @ r["h1"] + [0.1, 0.2]))
    assert abs(r["h2"][0] - 0.515) > 0.02  # the article's value is off
    np.testing.assert_allclose(r["dL_dW"], r["dL_dW_by_hand"], rtol=1e-12)
    np.testing.assert_allclose(r["neuron_h2"], r["h2"], rtol=1e-12)  # Values == Tensors
    np.testing.assert_allclose(r["neuron_dL_dW"], r["dL_dW"], rtol=1e-12)
    assert Path(r["picture"]).stat().st_size > 1000


def test_char_rnn_loss_falls(tmp_path):
    r = load_example("char_rnn").main(["--quick"])
    assert r["first_loss"] > 100  # 25 characters x ln(62) = 103 at the start
    assert r["last_loss"] < 0.8 * r["first_loss"]


def test_char_rnn_reads_a_given_text_file(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_text("abcabcabd " * 40)
    r = load_example("char_rnn").main(["--text", str(path), "--iterations", "120"])
    assert r["last_loss"] < 0.5 * r["first_loss"]

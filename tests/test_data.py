"""The data shipped in the package: present, intact, and loaded offline."""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest

from tinyrnn.data import TEXTS, load_sunspots, load_text

SHA256 = {
    "sonnets.txt": "edb826e5a801c955ab21026b3660306838fbf29ec29ea01886b2854c6d639b55",
    "sunspots.csv": "f67889b1d9002cd5227f0e0ef54e35b419cdd85a31279adef6f73fb41e5c0a9b",
}


@pytest.mark.parametrize("name", sorted(SHA256))
def test_files_are_the_documented_ones(name):
    raw = resources.files("tinyrnn.data").joinpath(name).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SHA256[name]
    sources = resources.files("tinyrnn.data").joinpath("SOURCES.md").read_text()
    assert SHA256[name] in sources and f"`{name}`" in sources


def test_sonnets():
    text = load_text("sonnets")
    assert len(text) == 95_728 and "\r" not in text
    assert text.startswith("THE SONNETS")
    # all 154 sonnets, numbered in Roman numerals on lines of their own
    assert "\nCLIV\n" in text and "\nCLV\n" not in text
    assert text.rstrip().endswith("Love's fire heats water, water cools not love.")
    assert set(TEXTS) == {"sonnets"}


def test_unknown_corpus_is_named():
    with pytest.raises(ValueError, match=r"load_text: unknown corpus 'hamlet'; available: sonnets"):
        load_text("hamlet")


def test_sunspots():
    years, counts = load_sunspots()
    assert years.dtype == np.int64 and counts.dtype == np.float64
    np.testing.assert_array_equal(years, np.arange(1700, 2009))
    assert (counts >= 0).all() and counts.max() == pytest.approx(190.2)
    # the 11-year cycle: the strongest period of the series is close to 11 years
    spectrum = np.abs(np.fft.rfft(counts - counts.mean()))
    period = len(counts) / (np.argmax(spectrum[1:]) + 1)
    assert 9.5 < period < 12.5

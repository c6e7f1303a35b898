"""Small real data sets shipped inside the package, so the demo and examples run offline.

- ``load_text("sonnets")``: Shakespeare's 154 sonnets as one string (95,728 characters).
- ``load_sunspots()``: yearly mean sunspot numbers 1700-2008 as two NumPy arrays.

Provenance and licences are in ``SOURCES.md`` next to this file.

>>> from tinyrnn.data import load_text, load_sunspots
>>> text = load_text("sonnets")
>>> text.splitlines()[0]
'THE SONNETS'
>>> years, counts = load_sunspots()
>>> int(years[0]), int(years[-1]), len(counts)
(1700, 2008, 309)
"""

from __future__ import annotations

from importlib import resources

import numpy as np

TEXTS = {"sonnets": "sonnets.txt"}


def _read(filename: str) -> str:
    return resources.files(__name__).joinpath(filename).read_text(encoding="utf-8")


def load_text(name: str = "sonnets") -> str:
    """Return a vendored text corpus as one string.

    Args:
        name: the corpus; one of ``TEXTS`` (``"sonnets"``).

    Returns:
        The whole text, ``\\n`` line endings.

    >>> from tinyrnn.data import load_text
    >>> "From fairest creatures we desire increase," in load_text("sonnets")
    True
    """
    if name not in TEXTS:
        raise ValueError(
            f"load_text: unknown corpus {name!r}; available: {', '.join(sorted(TEXTS))}"
        )
    return _read(TEXTS[name])


def load_sunspots() -> tuple[np.ndarray, np.ndarray]:
    """Return the yearly sunspot numbers 1700-2008.

    Returns:
        ``(years, counts)``: ``years`` an int64 array of shape (309,), ``counts`` the yearly mean
        sunspot number as a float64 array of shape (309,).

    >>> from tinyrnn.data import load_sunspots
    >>> years, counts = load_sunspots()
    >>> years.shape, counts.dtype.name, float(counts[0])
    ((309,), 'float64', 5.0)
    """
    lines = _read("sunspots.csv").strip().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    years = np.array([int(year) for year, _ in rows], dtype=np.int64)
    counts = np.array([float(count) for _, count in rows], dtype=np.float64)
    return years, counts


__all__ = ["TEXTS", "load_sunspots", "load_text"]

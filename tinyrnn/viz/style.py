"""Looks: shapes and colours of each kind of node, label text, and the gradient colour scale.

Ops are rounded boxes in blue, parameters warm boxes, inputs grey boxes, the output green;
scalar ``Value`` ops are small circles between micrograd-style records (``label | data |
grad``). With gradients, fills follow ``log10`` of the gradient norm on the viridis scale
(dark: small, yellow: large), with a legend; zero or missing gradients stay grey.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

import numpy as np

FONT = "Helvetica"

NODE_STYLE: dict[str, dict[str, str]] = {
    "op": {"shape": "box", "style": "rounded,filled", "fillcolor": "#dbe9f6", "color": "#4a7ab5"},
    "param": {"shape": "box", "style": "filled", "fillcolor": "#fde7c2", "color": "#c77c02"},
    "input": {"shape": "box", "style": "filled", "fillcolor": "#eeeeee", "color": "#888888"},
    "output": {"shape": "box", "style": "filled", "fillcolor": "#d5f0d5", "color": "#2e8b2e"},
    "cell": {
        "shape": "box3d",
        "style": "filled",
        "fillcolor": "#dbe9f6",
        "color": "#4a7ab5",
    },
    "summary": {
        "shape": "note",
        "style": "filled,dashed",
        "fillcolor": "#fff8dc",
        "color": "#999999",
    },
    "sop": {
        "shape": "circle",
        "style": "filled",
        "fillcolor": "#dbe9f6",
        "color": "#4a7ab5",
        "width": "0.45",
        "fixedsize": "true",
    },
    "record": {"shape": "plaintext", "margin": "0"},
}

GREY = {"fillcolor": "#f2f2f2", "color": "#bbbbbb", "fontcolor": "#999999"}
NO_GRAD = "#e4e4e4"

STEP_CLUSTER = {"style": "rounded,filled", "fillcolor": "#f7f9fc", "color": "#9fb3c8"}
PAD_CLUSTER = {"style": "rounded,filled,dashed", "fillcolor": "#ececec", "color": "#b0b0b0"}
PART_PAD_CLUSTER = {"style": "rounded,filled,dashed", "fillcolor": "#f1f1f1", "color": "#9fb3c8"}
CELL_CLUSTER = {"style": "rounded,filled", "fillcolor": "#fdf6e9", "color": "#d08a1b"}
LAYER_CLUSTER = {"style": "rounded,dashed", "color": "#c8c8c8"}

SPINE_EDGE = {"color": "#c0392b", "penwidth": "2.2", "weight": "4"}
BACK_EDGE = {
    "color": "#c0392b",
    "penwidth": "2.2",
    "fontcolor": "#c0392b",
    "constraint": "false",
    "class": "recurrent",
}
WEIGHT_EDGE = {"color": "#c77c02a0"}

SCALAR_OP_NAMES = {
    "SAdd": "+",
    "SMul": "×",
    "SPow": "^",
    "SNeg": "−",
    "SExp": "exp",
    "SLog": "log",
    "STanh": "tanh",
    "SSigmoid": "σ",
    "SRelu": "relu",
}

# Output names of multi-output built-in ops, for edge labels.
OUTPUT_NAMES = {"LSTMCellStep": ("h", "c"), "LSTM cell": ("h", "c")}

# viridis at 9 evenly spaced points (matplotlib's table), for log-scale gradient colours
_VIRIDIS = [
    (0x44, 0x01, 0x54),
    (0x47, 0x2D, 0x7B),
    (0x3B, 0x52, 0x8B),
    (0x2C, 0x72, 0x8E),
    (0x21, 0x91, 0x8C),
    (0x28, 0xAE, 0x80),
    (0x5E, 0xC9, 0x62),
    (0xAD, 0xDC, 0x30),
    (0xFD, 0xE7, 0x25),
]


def esc(text: str) -> str:
    """User text (names, scopes) made safe inside a DOT label: backslashes doubled."""
    return text.replace("\\", "\\\\")


def fmt(x: float) -> str:
    """Short number text: 4 significant digits, scientific when tiny or huge.

    >>> fmt(0.5370), fmt(1.2e-7), fmt(0.0)
    ('0.537', '1.2e-07', '0')
    """
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    a = abs(x)
    if a < 1e-3 or a >= 1e5:
        return f"{x:.2g}" if a < 1e-3 else f"{x:.3g}"
    return f"{x:.4g}"


def shape_text(shape: Any) -> str:
    """``(3, 16)`` style text; ``()`` for 0-d tensors."""
    if shape is None:
        return "?"
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def shapes_text(shapes: list[Any]) -> str:
    """Shapes of several outputs, with repeats counted: ``3 × (2, 4)``.

    >>> shapes_text([(2, 4), (2, 4), (2, 4)]), shapes_text([(2, 4), (2, 3)])
    ('3 × (2, 4)', '(2, 4) (2, 3)')
    """
    texts = [shape_text(s) for s in shapes]
    if len(texts) > 1 and len(set(texts)) == 1:
        return f"{len(texts):,} × {texts[0]}"
    if len(texts) > 4:
        return " ".join(texts[:3]) + f" … ({len(texts):,} outputs)"
    return " ".join(texts)


def value_text(data: Any) -> str:
    """A short summary of a payload: the numbers when few, else mean and spread."""
    if data is None:
        return ""
    if not isinstance(data, np.ndarray) or data.ndim == 0:
        return fmt(float(data))
    if data.size == 0:
        return "[]"
    if data.size <= 4:
        return "[" + ", ".join(fmt(float(v)) for v in data.ravel()) + "]"
    if data.dtype.kind not in "fiub":
        return data.dtype.name
    d = data.astype(np.float64)
    return f"μ={fmt(float(d.mean()))} σ={fmt(float(d.std()))}"


def grad_norm(g: Any) -> float:
    """Euclidean norm of a gradient payload (ndarray, Tensor or float)."""
    if g is None:
        return math.nan
    if hasattr(g, "data") and not isinstance(g, np.ndarray):
        g = g.data
    if isinstance(g, np.ndarray):
        return float(np.sqrt(np.sum(np.square(g, dtype=np.float64))))
    return abs(float(g))


class GradScale:
    """Maps ``log10`` of gradient norms to colours; built from all norms in the picture.

    >>> s = GradScale([1e-6, 1e-3, 1.0])
    >>> s.lo, s.hi
    (-6, 0)
    >>> s.color(1.0), s.color(0.0)
    ('#fde725', '#e4e4e4')
    """

    def __init__(self, norms: list[float]):
        logs = [math.log10(v) for v in norms if v > 0 and math.isfinite(v)]
        self.empty = not logs
        lo = math.floor(min(logs)) if logs else -1
        hi = math.ceil(max(logs)) if logs else 0
        if hi <= lo:
            hi = lo + 1
        self.lo, self.hi = lo, hi

    def unit(self, norm: float) -> float:
        return (math.log10(norm) - self.lo) / (self.hi - self.lo)

    def color(self, norm: float) -> str:
        if not (norm > 0 and math.isfinite(norm)):
            return NO_GRAD
        return _rgb(min(1.0, max(0.0, self.unit(norm))))

    def font(self, norm: float) -> str:
        """Black on the light end of the scale, white on the dark end."""
        if not (norm > 0 and math.isfinite(norm)):
            return "#333333"
        return "#ffffff" if self.unit(norm) < 0.55 else "#111111"

    def legend(self, note: str = "") -> str:
        """An HTML-like label: one coloured cell per decade, small to large."""
        span = self.hi - self.lo
        stride = max(1, math.ceil(span / 8))
        cells = []
        for e in range(self.lo, self.hi + 1, stride):
            color = _rgb((e - self.lo) / span)
            font = "#ffffff" if (e - self.lo) / span < 0.55 else "#111111"
            cells.append(f'<TD BGCOLOR="{color}"><FONT COLOR="{font}">1e{e}</FONT></TD>')
        cells.append(f'<TD BGCOLOR="{NO_GRAD}">0 / none</TD>')
        head = f'<TR><TD COLSPAN="{len(cells)}"><B>‖gradient‖, log scale</B></TD></TR>'
        foot = ""
        if note:
            foot = f'<TR><TD COLSPAN="{len(cells)}">{escape(note)}</TD></TR>'
        return (
            '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">'
            f"{head}<TR>{''.join(cells)}</TR>{foot}</TABLE>>"
        )


def _rgb(u: float) -> str:
    x = u * (len(_VIRIDIS) - 1)
    i = min(int(x), len(_VIRIDIS) - 2)
    f = x - i
    a, b = _VIRIDIS[i], _VIRIDIS[i + 1]
    return "#" + "".join(f"{round(a[k] + (b[k] - a[k]) * f):02x}" for k in range(3))


def record_label(title: str, data: str, grad: str, grad_fill: str = "", grad_font: str = "") -> str:
    """micrograd's ``label | data | grad`` record as an HTML-like table label."""
    fill = f' BGCOLOR="{grad_fill}"' if grad_fill else ""
    font_open = f'<FONT COLOR="{grad_font}">' if grad_font else ""
    font_close = "</FONT>" if grad_font else ""
    title_cell = f"<TD><B>{escape(title)}</B></TD>" if title else ""
    return (
        '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3" BGCOLOR="#ffffff">'
        f"<TR>{title_cell}<TD>data {escape(data)}</TD>"
        f"<TD{fill}>{font_open}grad {escape(grad)}{font_close}</TD></TR></TABLE>>"
    )

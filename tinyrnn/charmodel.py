"""A character-level language model (the min-char-rnn task), its training loop and sampling.

The model reads one character at a time and predicts the next:

    e_t = E[c_t]                       (an embedding row per character, size ``embedding_dim``)
    h_t = cell(e_t, h_{t-1})           (``rnn``, ``lstm`` or ``gru``, ``hidden_size`` units)
    p(c_{t+1} | c_1..c_t) = softmax(W h_t + b)

and is trained with the mean cross-entropy of the next character over random windows of the
text (truncated backpropagation through time over ``seq_len`` steps, Adam, gradient clipping).
The last ``val_fraction`` of the text is held out for a validation loss.

Checkpoints are ``tr.save`` files holding the model's configuration (vocabulary, cell, sizes),
its ``state_dict``, the optimizer's ``state_dict``, the step count and the loss history, so that
training resumes where it stopped. The command line (``tinyrnn demo/train/sample/render``) is a
thin layer over this module.

>>> import tinyrnn as tr
>>> from tinyrnn.charmodel import CharModel, sample
>>> _ = tr.manual_seed(0)
>>> model = CharModel("ab\\n", cell="gru", hidden_size=8, embedding_dim=4)
>>> logits, state = model(model.encode("abba")[:, None])
>>> logits.shape
(4, 1, 3)
>>> len(sample(model, 10, prime="a", rng=0))
10
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import nn as _nn
from . import no_grad, tensor
from .nn import functional as F
from .tensor import Tensor

CHECKPOINT_KIND = "tinyrnn.charmodel"
CHECKPOINT_VERSION = 1
CELLS = ("rnn", "lstm", "gru")


class CharModelError(ValueError):
    """A user-facing problem with a text file or a checkpoint; the message is one line."""


# ---- text ----


def read_text_file(path: str | Path, min_chars: int = 2) -> str:
    """Read a UTF-8 text file for training, refusing files that are not usable text.

    Raises ``CharModelError`` naming the file when it is missing, a directory, empty, binary
    (NUL bytes or not UTF-8) or shorter than ``min_chars`` characters.

    >>> import tempfile, os
    >>> from tinyrnn.charmodel import read_text_file
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "t.txt")
    >>> _ = open(p, "w").write("hello\\n")
    >>> read_text_file(p)
    'hello\\n'
    """
    p = Path(path)
    if not p.exists():
        raise CharModelError(f"no such file: {str(p)!r}")
    if p.is_dir():
        raise CharModelError(f"{str(p)!r} is a directory, not a text file")
    raw = p.read_bytes()
    if not raw.strip():
        raise CharModelError(f"{str(p)!r} is empty; give a text file with some text in it")
    if b"\x00" in raw:
        raise CharModelError(f"{str(p)!r} looks like a binary file (it contains NUL bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CharModelError(
            f"{str(p)!r} is not UTF-8 text (undecodable byte at offset {e.start})"
        ) from None
    text = text.replace("\r\n", "\n")
    if len(text) < min_chars:
        raise CharModelError(
            f"{str(p)!r} has only {len(text)} characters; need at least {min_chars}"
        )
    return text


def text_digest(text: str) -> str:
    """SHA-256 of the text (UTF-8), stored in checkpoints to recognise the training text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---- model ----


class CharModel(_nn.Module):
    """Embedding -> recurrent layer -> linear read-out over a fixed character vocabulary.

    Args:
        vocab: the characters the model knows, each once (``"".join(sorted(set(text)))``).
        cell: ``"rnn"`` (tanh), ``"lstm"`` or ``"gru"``.
        hidden_size: H, units of the recurrent layer.
        embedding_dim: E, size of each character's embedding.
        num_layers: stacked recurrent layers.

    Shapes: ``forward(ids, state=None)`` takes integer ids (T, B) and returns logits (T, B, V)
    and the final state (``h_n``, or ``(h_n, c_n)`` for the LSTM), V = ``len(vocab)``.

    >>> from tinyrnn.charmodel import CharModel
    >>> m = CharModel("abc", cell="lstm", hidden_size=4, embedding_dim=2)
    >>> m.decode(m.encode("cab").tolist())
    'cab'
    """

    def __init__(
        self,
        vocab: str,
        cell: str = "lstm",
        hidden_size: int = 128,
        embedding_dim: int = 32,
        num_layers: int = 1,
    ):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"CharModel: cell must be one of {', '.join(CELLS)}, got {cell!r}")
        if len(vocab) < 2 or len(set(vocab)) != len(vocab):
            raise ValueError(
                f"CharModel: vocab must hold at least 2 distinct characters, each once; "
                f"got {len(vocab)} characters ({len(set(vocab))} distinct)"
            )
        self.vocab = vocab
        self.cell = cell
        self.hidden_size = int(hidden_size)
        self.embedding_dim = int(embedding_dim)
        self.num_layers = int(num_layers)
        self._index = {ch: i for i, ch in enumerate(vocab)}
        layer = {"rnn": _nn.RNN, "lstm": _nn.LSTM, "gru": _nn.GRU}[cell]
        self.embed = _nn.Embedding(len(vocab), self.embedding_dim)
        self.rnn = layer(self.embedding_dim, self.hidden_size, num_layers=self.num_layers)
        self.head = _nn.Linear(self.hidden_size, len(vocab))

    def config(self) -> dict[str, Any]:
        """The constructor arguments, enough to rebuild the model (``CharModel(**config)``)."""
        return {
            "vocab": self.vocab,
            "cell": self.cell,
            "hidden_size": self.hidden_size,
            "embedding_dim": self.embedding_dim,
            "num_layers": self.num_layers,
        }

    def encode(self, text: str) -> np.ndarray:
        """Character ids of ``text`` as an int64 array of shape (len(text),)."""
        missing = sorted(set(text) - set(self._index))
        if missing:
            shown = "".join(missing[:10])
            raise CharModelError(
                f"{len(missing)} character(s) not in the model's vocabulary: {shown!r}"
            )
        return np.fromiter((self._index[ch] for ch in text), dtype=np.int64, count=len(text))

    def decode(self, ids: Any) -> str:
        """The characters for a sequence of ids."""
        return "".join(self.vocab[int(i)] for i in ids)

    def forward(self, ids: Any, state: Any = None) -> tuple[Tensor, Any]:
        x = self.embed(ids)
        out, state = self.rnn(x, state)
        return self.head(out), state


# ---- training ----


@dataclass
class TrainSettings:
    """How a ``Trainer`` trains: window length, batch, optimizer and held-out share."""

    seq_len: int = 64
    batch_size: int = 32
    lr: float = 3e-3
    clip: float = 5.0
    seed: int = 0
    val_fraction: float = 0.1


@dataclass
class TrainState:
    """Progress that a checkpoint carries: steps done, per-step training loss, validation."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)


class Trainer:
    """Trains a ``CharModel`` on a text with Adam over random windows; saves and resumes.

    Batches are drawn from ``np.random.default_rng([seed, step])``, so a resumed run sees the
    same batches an uninterrupted one would.

    >>> import tinyrnn as tr
    >>> from tinyrnn.charmodel import CharModel, Trainer, TrainSettings
    >>> _ = tr.manual_seed(0)
    >>> text = "abcabcabcabc" * 20
    >>> model = CharModel("abc", cell="gru", hidden_size=8, embedding_dim=4)
    >>> trainer = Trainer(model, text, TrainSettings(seq_len=8, batch_size=4, lr=0.03))
    >>> first = trainer.train_step()
    >>> last = [trainer.train_step() for _ in range(30)][-1]
    >>> last < first / 4
    True
    """

    def __init__(self, model: CharModel, text: str, settings: TrainSettings | None = None):
        self.model = model
        self.settings = settings or TrainSettings()
        s = self.settings
        ids = model.encode(text)
        if len(ids) < s.seq_len + 1:
            raise CharModelError(
                f"the text has {len(ids)} characters; training windows need at least "
                f"{s.seq_len + 1}"
            )
        n_val = int(len(ids) * s.val_fraction)
        if n_val < s.seq_len + 1 or len(ids) - n_val < s.seq_len + 1:
            n_val = 0  # too short to hold text out: validate on training windows
        self.train_ids = ids[: len(ids) - n_val]
        self.val_ids = ids[len(ids) - n_val :]
        self.text_sha256 = text_digest(text)
        self.optimizer = _optim().Adam(model.parameters(), lr=s.lr)
        self.state = TrainState()

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and next-character targets for ``step``, each (seq_len, batch_size) int64."""
        return self._windows(self.train_ids, np.random.default_rng([self.settings.seed, step]))

    def _windows(self, data: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        starts = rng.integers(0, len(data) - s.seq_len, size=s.batch_size)
        window = data[starts[None, :] + np.arange(s.seq_len + 1)[:, None]]
        return window[:-1], window[1:]

    def loss(self, inputs: np.ndarray, targets: np.ndarray) -> Tensor:
        """Mean next-character cross-entropy (nats) of the model on one batch."""
        logits, _ = self.model(inputs)
        V = logits.shape[-1]
        return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))

    def train_step(self) -> float:
        """One optimizer step on the next batch; returns its loss."""
        inputs, targets = self.batch(self.state.step)
        self.model.train()
        self.optimizer.zero_grad()
        loss = self.loss(inputs, targets)
        loss.backward()
        _nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.clip)
        self.optimizer.step()
        value = float(loss.item())
        self.state.step += 1
        self.state.losses.append(value)
        return value

    def evaluate(self, batches: int = 4) -> float:
        """Mean loss on held-out windows (on training windows when the text is too short)."""
        data = self.val_ids if len(self.val_ids) else self.train_ids
        rng = np.random.default_rng([self.settings.seed, 2**40])  # the same windows every time
        self.model.eval()
        total = 0.0
        with no_grad():
            for _ in range(batches):
                inputs, targets = self._windows(data, rng)
                total += float(self.loss(inputs, targets).item())
        self.model.train()
        value = total / batches
        self.state.val_steps.append(self.state.step)
        self.state.val_losses.append(value)
        return value

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to rebuild the model and resume training, for ``tr.save``."""
        return {
            "kind": CHECKPOINT_KIND,
            "version": CHECKPOINT_VERSION,
            "config": self.model.config(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "settings": asdict(self.settings),
            "progress": asdict(self.state),
            "text_sha256": self.text_sha256,
        }

    def save(self, path: str | Path) -> Path:
        """Write ``checkpoint()`` to ``path`` with ``tr.save`` (atomically) and return the path."""
        from .serialization import save

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save(self.checkpoint(), path)
        return path

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Load model weights, optimizer state and progress from a checkpoint dict."""
        self.model.load_state_dict(ckpt["model"])
        if "optimizer" in ckpt:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        p = ckpt.get("progress", {})
        self.state = TrainState(
            step=int(p.get("step", 0)),
            losses=[float(v) for v in p.get("losses", [])],
            val_steps=[int(v) for v in p.get("val_steps", [])],
            val_losses=[float(v) for v in p.get("val_losses", [])],
        )


def _optim() -> Any:
    from . import optim

    return optim


# ---- checkpoints ----


def load_checkpoint(path: str | Path) -> tuple[CharModel, dict[str, Any]]:
    """Load a checkpoint written by ``Trainer.save``; return the rebuilt model and the dict.

    Raises ``CharModelError`` naming the file when it is missing, unreadable, or not a
    character-model checkpoint (for example a checkpoint of another model).
    """
    from .serialization import load

    p = Path(path)
    if p.is_dir() and (p / "checkpoint.npz").exists():
        p = p / "checkpoint.npz"
    if not p.exists():
        raise CharModelError(f"no such checkpoint: {str(p)!r}")
    if p.is_dir():
        raise CharModelError(f"{str(p)!r} is a directory without a checkpoint.npz in it")
    try:
        ckpt = load(p)
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        raise CharModelError(f"cannot read checkpoint {str(p)!r}: {_one_line(e)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != CHECKPOINT_KIND:
        raise CharModelError(
            f"{str(p)!r} is not a tinyrnn character-model checkpoint (write one with "
            f"'tinyrnn train' or 'tinyrnn demo')"
        )
    if int(ckpt.get("version", 0)) > CHECKPOINT_VERSION:
        raise CharModelError(
            f"{str(p)!r} is a version {ckpt.get('version')} checkpoint; this tinyrnn reads "
            f"version {CHECKPOINT_VERSION} and older"
        )
    try:
        config = dict(ckpt["config"])
        model = CharModel(
            vocab=str(config["vocab"]),
            cell=str(config["cell"]),
            hidden_size=int(config["hidden_size"]),
            embedding_dim=int(config["embedding_dim"]),
            num_layers=int(config["num_layers"]),
        )
        model.load_state_dict(ckpt["model"])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise CharModelError(
            f"checkpoint {str(p)!r} does not match a character model: {_one_line(e)}"
        ) from None
    model.eval()
    return model, ckpt


def _one_line(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return " ".join(text.split())


# ---- sampling ----


def sample(
    model: CharModel,
    length: int,
    temperature: float = 1.0,
    prime: str = "\n",
    rng: Any = None,
) -> str:
    """Generate ``length`` characters after ``prime``, drawing each from softmax(logits / T).

    Low temperatures pick the likeliest characters (repetitive), high ones add variety (and
    mistakes). ``rng``: a seed or a ``numpy.random.Generator``.

    >>> import tinyrnn as tr
    >>> from tinyrnn.charmodel import CharModel, sample
    >>> _ = tr.manual_seed(0)
    >>> m = CharModel("xy", cell="rnn", hidden_size=4, embedding_dim=2)
    >>> s = sample(m, 5, temperature=0.5, prime="x", rng=1)
    >>> len(s), set(s) <= {"x", "y"}
    (5, True)
    """
    if temperature <= 0 or not math.isfinite(temperature):
        raise ValueError(f"sample: temperature must be a positive number, got {temperature}")
    if not prime:
        raise ValueError("sample: prime must hold at least one character")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    ids = model.encode(prime)
    model.eval()
    out: list[int] = []
    with no_grad():
        logits, state = model(ids[:, None])
        last = logits.numpy()[-1, 0]
        for _ in range(length):
            z = last.astype(np.float64) / temperature
            p = np.exp(z - z.max())
            p /= p.sum()
            nxt = int(gen.choice(len(p), p=p))
            out.append(nxt)
            logits, state = model(np.array([[nxt]]), state)
            last = logits.numpy()[-1, 0]
    return model.decode(out)


def unrolled_loss(model: CharModel, text: str, steps: int, gates: bool = False) -> Tensor:
    """The loss graph of the model over the first ``steps + 1`` characters of ``text``: the
    graph that ``tinyrnn render`` and the demo draw, one node group per time step.

    The recurrent layer runs as it trains (its whole-sequence node is drawn as one cell per
    step), or with every gate op visible when ``gates`` is True (``fused=False``); the mode is
    restored afterwards.
    """
    ids = model.encode(text[: steps + 1])
    if len(ids) < steps + 1:
        raise CharModelError(f"need {steps + 1} characters to unroll {steps} steps")
    inputs = tensor(ids[:-1][:, None])
    inputs.name = "chars"
    layers = [m for m in model.modules() if hasattr(m, "fused")] if gates else []
    saved = [m.fused for m in layers]
    for m in layers:
        m.fused = False
    try:
        logits, _ = model(inputs)
    finally:
        for m, fused in zip(layers, saved, strict=True):
            m.fused = fused
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[1:])
    loss.name = "loss"
    return loss


__all__ = [
    "CELLS",
    "CHECKPOINT_KIND",
    "CharModel",
    "CharModelError",
    "TrainSettings",
    "TrainState",
    "Trainer",
    "load_checkpoint",
    "read_text_file",
    "sample",
    "text_digest",
    "unrolled_loss",
]

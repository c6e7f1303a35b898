"""The ``tinyrnn`` command (also ``python -m tinyrnn``).

Subcommands:

- ``demo``: train a character-level LSTM on the bundled sonnets, print samples, draw pictures.
- ``seed-example``: the seed article's worked example, step by step, with its pictures.
- ``train TEXT_FILE``: train a character-level model on any text, with resumable checkpoints.
- ``sample CHECKPOINT``: generate text from a checkpoint.
- ``render CHECKPOINT``: draw a checkpoint's model unrolled over k steps (or rolled).

User errors (a missing file, an empty or binary text, a checkpoint of another model, a bad
option) end with one line on stderr naming what is wrong and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEMO_OUT = Path("tinyrnn-out") / "demo"
SEED_OUT = Path("tinyrnn-out") / "seed-example"
TEMPERATURES = (0.5, 0.8, 1.0)
PICTURE_FORMATS = (".svg", ".png", ".dot")
MAX_RENDER_STEPS = 200


class UsageError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option ends with one line on stderr instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# ---- option types: each names what it expected ----


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tinyrnn`` command, one subparser per subcommand."""
    parser = _Parser(
        prog="tinyrnn",
        description="tinyrnn: recurrent networks from scratch, with pictures of their graphs.",
        epilog="Start with 'tinyrnn demo' or 'tinyrnn seed-example'; "
        "'tinyrnn COMMAND --help' explains each command.",
    )
    parser.add_argument("--version", action="version", version=f"tinyrnn {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    cells = ("rnn", "lstm", "gru")

    p = sub.add_parser(
        "demo",
        help="train a character-level LSTM on Shakespeare's sonnets (about a minute)",
        description="Train a character-level model on Shakespeare's sonnets (bundled with "
        "tinyrnn), print text it generates at a few temperatures, and write the unrolled and "
        "rolled graph pictures, a loss plot and a checkpoint to an output folder.",
    )
    p.add_argument("--steps", metavar="N", type=_positive_int, help="training steps (600)")
    p.add_argument("--cell", choices=cells, default="lstm", help="recurrent cell (lstm)")
    p.add_argument("--hidden", metavar="H", type=_positive_int, help="hidden units (128)")
    p.add_argument("--seed", metavar="S", type=_nonnegative_int, default=0, help="random seed (0)")
    p.add_argument(
        "--out", metavar="DIR", type=Path, default=DEMO_OUT, help=f"output folder ({DEMO_OUT})"
    )
    p.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=_cmd_demo, parser=p)

    p = sub.add_parser(
        "seed-example",
        help="the seed article's 2-unit RNN worked example, step by step",
        description="Compute the seed article's worked example (a 2-unit tanh RNN over two "
        "steps) with tinyrnn: h1, h2 (correcting the article's arithmetic), the gradients by "
        "backpropagation through time, and pictures of the neuron-level and unrolled graphs.",
    )
    p.add_argument(
        "--out", metavar="DIR", type=Path, default=SEED_OUT, help=f"output folder ({SEED_OUT})"
    )
    p.set_defaults(run=_cmd_seed_example, parser=p)

    p = sub.add_parser(
        "train",
        help="train a character-level model on a text file (resumable)",
        description="Train a character-level model on TEXT_FILE (UTF-8). A checkpoint is "
        "written to the output folder every --every steps, at the end, and on Ctrl-C; "
        "--resume continues from it.",
    )
    p.add_argument("text_file", metavar="TEXT_FILE", type=Path, help="UTF-8 text to learn")
    p.add_argument("--out", metavar="DIR", type=Path, help="output folder (tinyrnn-out/<name>)")
    p.add_argument(
        "--steps", metavar="N", type=_positive_int, default=2000, help="total steps (2000)"
    )
    p.add_argument("--cell", choices=cells, help="recurrent cell (lstm)")
    p.add_argument("--hidden", metavar="H", type=_positive_int, help="hidden units (128)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument(
        "--seq-len", metavar="T", type=_positive_int, default=64, help="BPTT window (64)"
    )
    p.add_argument(
        "--batch-size", metavar="B", type=_positive_int, default=32, help="windows a step (32)"
    )
    p.add_argument(
        "--lr", metavar="LR", type=_positive_float, default=3e-3, help="Adam learning rate (3e-3)"
    )
    p.add_argument("--seed", metavar="S", type=_nonnegative_int, default=0, help="random seed (0)")
    p.add_argument(
        "--every", metavar="N", type=_positive_int, default=200, help="checkpoint interval (200)"
    )
    p.set_defaults(run=_cmd_train, parser=p)

    p = sub.add_parser(
        "sample",
        help="generate text from a checkpoint",
        description="Generate text from a checkpoint written by 'tinyrnn train' or "
        "'tinyrnn demo' (a checkpoint.npz file, or the folder holding it).",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", type=Path, help="checkpoint file")
    p.add_argument(
        "--length", metavar="N", type=_positive_int, default=500, help="characters (500)"
    )
    p.add_argument(
        "--temperature",
        metavar="T",
        type=_positive_float,
        default=0.8,
        help="lower: safer, higher: wilder (0.8)",
    )
    p.add_argument("--prime", metavar="TEXT", default="\n", help="text to start from (a newline)")
    p.add_argument(
        "--seed",
        metavar="S",
        type=_nonnegative_int,
        help="random seed (none: a new text each time)",
    )
    p.set_defaults(run=_cmd_sample, parser=p)

    p = sub.add_parser(
        "render",
        help="draw a checkpoint's model unrolled over k time steps",
        description="Draw the computation graph of a checkpoint's model over K time steps: "
        "one cluster per step, each weight drawn once (or, with --rolled, one cell with a "
        "recurrent edge). The format follows --out's suffix: .svg, .png or .dot.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", type=Path, help="checkpoint file")
    p.add_argument(
        "--steps", metavar="K", type=_positive_int, default=5, help="time steps to unroll (5)"
    )
    p.add_argument("--rolled", action="store_true", help="fold the steps into one cell")
    p.add_argument("--gates", action="store_true", help="draw every gate op, not fused cells")
    p.add_argument("--out", metavar="FILE", type=Path, help="picture file (next to CHECKPOINT)")
    p.set_defaults(run=_cmd_render, parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tinyrnn`` command with ``argv`` (default ``sys.argv[1:]``); return the exit
    status: 0 on success, 2 for a user error (one line on stderr), 130 when interrupted."""
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:  # reported by the subcommand, so the message names it
            where = getattr(args, "parser", parser)
            where.error(f"unrecognized arguments: {' '.join(extras)}")
    except SystemExit as e:  # --help, --version and option errors
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return 0
    from ._blas import blas_threads
    from .charmodel import CharModelError

    try:
        with blas_threads(1):
            return int(args.run(args) or 0)
    except (UsageError, CharModelError) as e:
        print(f"tinyrnn {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"tinyrnn {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `tinyrnn sample ckpt | head`
        return 0


def _version() -> str:
    from . import __version__

    return __version__


# ---- demo ----


def _cmd_demo(args: argparse.Namespace) -> int:
    import tinyrnn as tr

    from .charmodel import CharModel, Trainer, TrainSettings, sample
    from .data import load_text

    quick = args.quick
    steps = args.steps or (60 if quick else 600)
    hidden = args.hidden or (48 if quick else 128)
    settings = TrainSettings(
        seq_len=24 if quick else 64,
        batch_size=16 if quick else 32,
        lr=1e-2 if quick else 5e-3,
        seed=args.seed,
    )
    out = _out_dir(args.out)
    text = load_text("sonnets")
    tr.manual_seed(args.seed)
    vocab = "".join(sorted(set(text)))
    model = CharModel(vocab, cell=args.cell, hidden_size=hidden)
    trainer = Trainer(model, text, settings)
    print(
        f"Training a character-level {args.cell.upper()} ({hidden} hidden units) on "
        f"Shakespeare's sonnets: {len(text):,} characters, {len(vocab)} distinct.\n"
        f"{steps} steps, each on {settings.batch_size} windows of {settings.seq_len} "
        f"characters (backpropagation through {settings.seq_len} time steps). "
        f"Output: {out}/"
    )
    if not _train_loop(trainer, steps, label="demo", evaluate_every=max(steps // 6, 10)):
        print(f"Stopped at step {trainer.state.step} (Ctrl-C); here is what the model has learned.")
    losses = trainer.state.losses
    last = max(5, len(losses) // 20)
    val = _held_out(trainer)
    print(
        f"Loss (nats per character): {losses[0]:.3f} at the first step, "
        f"{_mean(losses[-last:]):.3f} over the last {last}; on held-out text {val:.3f}.\n"
        f"(Guessing uniformly among {len(vocab)} characters gives {math.log(len(vocab)):.3f}.)"
    )
    ckpt = trainer.save(out / "checkpoint.npz")
    samples = []
    length = 120 if quick else 300
    for temperature in TEMPERATURES:
        body = sample(model, length, temperature, prime="\n", rng=args.seed)
        samples.append(f"--- temperature {temperature} ---\n{body}\n")
    print("\nText the model writes (lower temperature: safer; higher: wilder):\n")
    print("\n".join(samples))
    (out / "samples.txt").write_text("\n".join(samples), encoding="utf-8")
    written = [ckpt, out / "samples.txt"]
    written += _model_pictures(model, text, steps=3 if quick else 5, out=out)
    plot = _loss_plot(trainer, out / "loss.png")
    if plot is None:
        print("note: matplotlib is not installed, so no loss plot (pip install matplotlib)")
    else:
        written.append(plot)
    print(f"Wrote to {out}/:")
    for path in written:
        print(f"  {path.name}")
    print(f"Next: tinyrnn sample {ckpt} --temperature 0.7")
    return 0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / max(len(values), 1)


def _out_dir(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {str(path)!r} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create output folder {str(path)!r}: {e.strerror}") from None
    return path


@contextmanager
def _deferred_interrupt() -> Iterator[dict[str, bool]]:
    """Turn the first Ctrl-C into a flag checked between steps (so a checkpoint is never
    written from a half-finished update); a second Ctrl-C interrupts at once."""
    flag = {"stop": False}

    def handler(signum: int, frame: Any) -> None:
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C alone
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _smoothed(values: Sequence[float], beta: float = 0.9) -> list[float]:
    """Exponential moving average with Adam's bias correction (no lag toward a start value)."""
    out, avg = [], 0.0
    for k, v in enumerate(values, start=1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta**k))
    return out


def _held_out(trainer: Any) -> float:
    """The held-out loss at the current step (measured now unless it just was)."""
    state = trainer.state
    if state.val_steps and state.val_steps[-1] == state.step:
        return float(state.val_losses[-1])
    return float(trainer.evaluate())


def _train_loop(
    trainer: Any,
    steps: int,
    label: str,
    checkpoint: Path | None = None,
    every: int = 0,
    evaluate_every: int = 0,
) -> bool:
    """Run ``trainer`` up to ``steps`` total steps with a progress bar (loss, speed); every
    ``every`` steps save ``checkpoint``, every ``evaluate_every`` steps measure the held-out
    loss. Return False when stopped by Ctrl-C (after saving ``checkpoint`` if one is given)."""
    from tqdm.auto import tqdm

    chars = trainer.settings.seq_len * trainer.settings.batch_size
    start = trainer.state.step
    t0 = time.perf_counter()
    with _deferred_interrupt() as flag:
        bar = tqdm(
            range(start, steps),
            desc=label,
            unit="step",
            initial=start,
            total=steps,
            disable=None,
            dynamic_ncols=True,
        )
        for step in bar:
            trainer.train_step()
            done = step + 1
            smooth = _smoothed(trainer.state.losses[-50:])[-1]
            rate = chars * (done - start) / max(time.perf_counter() - t0, 1e-9)
            if evaluate_every and done % evaluate_every == 0:
                trainer.evaluate()
            held_out = ""
            if trainer.state.val_losses:
                held_out = f", held-out {trainer.state.val_losses[-1]:.3f}"
            bar.set_postfix_str(f"loss {smooth:.3f}{held_out}, {rate / 1000:.1f}k chars/s")
            if checkpoint is not None and every and done % every == 0 and done < steps:
                trainer.save(checkpoint)
                bar.write(f"step {done}/{steps}: loss {smooth:.3f}{held_out}, checkpoint saved")
            if flag["stop"]:
                bar.close()
                if checkpoint is not None:
                    trainer.save(checkpoint)
                return False
        bar.close()
    return True


def _model_pictures(model: Any, text: str, steps: int, out: Path) -> list[Path]:
    """Unrolled and rolled pictures of the model over ``steps`` characters of ``text``."""
    from .charmodel import unrolled_loss

    written = []
    for rolled, name in ((False, "unrolled"), (True, "rolled")):
        loss = unrolled_loss(model, text, steps)
        written.append(_render(loss, out / f"{name}.svg", rolled=rolled))
    return written


def _render(root: Any, path: Path, **options: Any) -> Path:
    from . import viz

    fmt = path.suffix.lstrip(".")
    result = viz.render(root, path, format=fmt, **options)
    return Path(result) if result is not None else path


def _loss_plot(trainer: Any, path: Path) -> Path | None:
    """Training loss per step (raw and smoothed) and held-out loss; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    losses = trainer.state.losses
    smooth = _smoothed(losses)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(range(1, len(losses) + 1), losses, color="0.75", lw=0.8, label="training batch")
    ax.plot(range(1, len(losses) + 1), smooth, color="C0", lw=1.8, label="training (smoothed)")
    if trainer.state.val_losses:
        ax.plot(
            trainer.state.val_steps,
            trainer.state.val_losses,
            "o",
            color="C3",
            label="held-out text",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats per character)")
    ax.set_title(f"character-level {trainer.model.cell.upper()} on the sonnets")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---- seed-example ----


def _cmd_seed_example(args: argparse.Namespace) -> int:
    from .worked_example import compute, render_pictures, report

    out = _out_dir(args.out)
    print(report(compute()))
    written = render_pictures(out)
    print(f"\nPictures (one node per weight and unit, gradients shown) in {out}/:")
    for path in written:
        print(f"  {path.name}")
    return 0


# ---- train ----


def _cmd_train(args: argparse.Namespace) -> int:
    import tinyrnn as tr

    from .charmodel import CharModel, Trainer, TrainSettings, load_checkpoint, read_text_file

    text = read_text_file(args.text_file, min_chars=args.seq_len + 1)
    out = _out_dir(args.out or Path("tinyrnn-out") / (args.text_file.stem or "model"))
    path = out / "checkpoint.npz"
    settings = TrainSettings(
        seq_len=args.seq_len, batch_size=args.batch_size, lr=args.lr, seed=args.seed
    )
    if args.resume:
        if not path.exists():
            raise UsageError(f"--resume: no checkpoint at {str(path)!r}; run without --resume")
        model, ckpt = load_checkpoint(path)
        for option, value, saved in (
            ("--cell", args.cell, model.cell),
            ("--hidden", args.hidden, model.hidden_size),
        ):
            if value is not None and value != saved:
                raise UsageError(
                    f"{option} {value} does not match the checkpoint's {saved} "
                    f"({str(path)!r}); leave it out to resume"
                )
        missing = sorted(set(text) - set(model.vocab))
        if missing:
            raise UsageError(
                f"--resume: {str(args.text_file)!r} has characters the checkpoint's model does "
                f"not know: {''.join(missing[:10])!r}"
            )
        settings = _saved_settings(ckpt.get("settings"), settings)
        trainer = Trainer(model, text, settings)
        trainer.restore(ckpt)
        if ckpt.get("text_sha256") != trainer.text_sha256:
            print(f"note: {args.text_file} differs from the text this checkpoint was trained on")
        if trainer.state.step >= args.steps:
            raise UsageError(
                f"--steps {args.steps}: the checkpoint has already done {trainer.state.step} "
                f"steps; ask for more"
            )
        print(f"Resuming from step {trainer.state.step} of {str(path)!r}")
    else:
        if path.exists():
            raise UsageError(
                f"{str(path)!r} exists; pass --resume to continue it, or choose another --out"
            )
        tr.manual_seed(args.seed)
        vocab = "".join(sorted(set(text)))
        if len(vocab) < 2:
            raise UsageError(f"{str(args.text_file)!r} uses only one distinct character")
        model = CharModel(vocab, cell=args.cell or "lstm", hidden_size=args.hidden or 128)
        trainer = Trainer(model, text, settings)
    print(
        f"Training a character-level {model.cell.upper()} ({model.hidden_size} hidden units) on "
        f"{args.text_file}: {len(text):,} characters, {len(model.vocab)} distinct; "
        f"{args.steps} steps. Checkpoint: {path}"
    )
    finished = _train_loop(
        trainer, args.steps, "train", checkpoint=path, every=args.every, evaluate_every=args.every
    )
    if not finished:
        print(
            f"tinyrnn train: interrupted at step {trainer.state.step}; checkpoint saved to "
            f"{path}; continue with: tinyrnn train {args.text_file} --out {out} --resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    val = _held_out(trainer)
    trainer.save(path)
    print(
        f"step {trainer.state.step}: training loss {_mean(trainer.state.losses[-20:]):.3f}, "
        f"held-out {val:.3f} nats per character. Checkpoint: {path}"
    )
    print(sample_text_block(model, seed=args.seed))
    print(f"Next: tinyrnn sample {path}")
    return 0


def _saved_settings(saved: Any, default: Any) -> Any:
    """The checkpoint's training settings (window length, batch, learning rate, seed), so a
    resumed run continues the same run; fields missing from it keep ``default``'s values."""
    from .charmodel import TrainSettings

    if not isinstance(saved, dict):
        return default
    fields = {k: type(v)(saved[k]) if k in saved else v for k, v in default.__dict__.items()}
    return TrainSettings(**fields)


def sample_text_block(model: Any, seed: int | None = 0, length: int = 200) -> str:
    """A short sample at temperature 0.8, framed for printing."""
    from .charmodel import sample

    return f"--- sample (temperature 0.8) ---\n{sample(model, length, 0.8, rng=seed)}\n"


# ---- sample ----


def _cmd_sample(args: argparse.Namespace) -> int:
    from .charmodel import load_checkpoint, sample

    model, _ = load_checkpoint(args.checkpoint)
    if not args.prime:
        raise UsageError("--prime: give at least one character")
    missing = sorted(set(args.prime) - set(model.vocab))
    if missing:
        raise UsageError(
            f"--prime: character(s) {''.join(missing[:10])!r} are not in the model's vocabulary"
        )
    text = sample(model, args.length, args.temperature, prime=args.prime, rng=args.seed)
    sys.stdout.write(args.prime + text + "\n")
    sys.stdout.flush()
    return 0


# ---- render ----


def _cmd_render(args: argparse.Namespace) -> int:
    from .charmodel import load_checkpoint, sample, unrolled_loss

    if args.steps > MAX_RENDER_STEPS:
        raise UsageError(f"--steps {args.steps}: at most {MAX_RENDER_STEPS} steps can be drawn")
    if args.out is not None and args.out.suffix.lower() not in PICTURE_FORMATS:
        raise UsageError(
            f"--out {str(args.out)!r}: unsupported picture format "
            f"{args.out.suffix or '(no suffix)'!r}; use one of {', '.join(PICTURE_FORMATS)}"
        )
    model, _ = load_checkpoint(args.checkpoint)
    kind = "rolled" if args.rolled else "unrolled"
    if args.out is None:
        ckpt = args.checkpoint
        folder = ckpt if ckpt.is_dir() else ckpt.parent
        stem = "checkpoint" if ckpt.is_dir() else ckpt.stem
        args.out = folder / f"{stem}-{kind}-{args.steps}.svg"
    _out_dir(args.out.parent)
    text = "\n" + sample(model, args.steps, temperature=1.0, rng=0)
    loss = unrolled_loss(model, text, args.steps, gates=args.gates)
    path = _render(loss, args.out, rolled=args.rolled)
    print(f"Wrote the {kind} graph of {args.steps} steps to {path}")
    return 0


__all__ = ["build_parser", "main"]

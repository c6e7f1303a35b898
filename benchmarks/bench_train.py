"""One training step of a recurrent layer: tinyrnn (fused and op by op) beside PyTorch.

A step is: forward over the whole sequence, an MSE loss against a fixed random target, backward
(BPTT through the unrolled graph), and an SGD update. Cells: ``nn.RNN`` (tanh), ``nn.LSTM``,
``nn.GRU``, one layer, float32, at (batch, steps, input, hidden):

- S = (1, 100, 32, 32): dispatch-bound, the cost per node decides;
- M = (32, 64, 64, 128): mixed;
- L = (64, 128, 256, 512): BLAS-bound (slow: seconds per step for op by op).

Implementations: ``tinyrnn fused`` (the default layers: one whole-sequence node per layer and
direction), ``tinyrnn op-by-op`` (``fused=False``: every gate its own node), and PyTorch's
``nn.RNN/LSTM/GRU`` when torch is installed. Everything runs in this process with one thread
(BLAS, OpenMP and torch), so the comparison is per core. Times are the median (and the minimum)
over the timed steps after warm-up; the ratio columns divide by PyTorch's median.

Run: ``python3 benchmarks/bench_train.py [--quick] [--sizes S,M] [--cells lstm,gru]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tinyrnn as tr  # noqa: E402
import tinyrnn.nn.functional as F  # noqa: E402

SIZES = {
    "S": (1, 100, 32, 32),
    "M": (32, 64, 64, 128),
    "L": (64, 128, 256, 512),
}
CELLS = ("rnn", "lstm", "gru")
LR = 0.01


def _data(size: str):
    batch, steps, n_in, hidden = SIZES[size]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, n_in)).astype(np.float32)
    target = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    return x, target


def make_tinyrnn(cell: str, size: str, fused: bool):
    """A step function for tinyrnn's layer."""
    _, _, n_in, hidden = SIZES[size]
    tr.manual_seed(0)
    layer = {"rnn": tr.nn.RNN, "lstm": tr.nn.LSTM, "gru": tr.nn.GRU}[cell](
        n_in, hidden, fused=fused
    )
    opt = tr.optim.SGD(layer.parameters(), lr=LR)
    x, target = (tr.tensor(a) for a in _data(size))

    def step() -> float:
        out, _ = layer(x)
        loss = F.mse_loss(out, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def make_torch(cell: str, size: str):
    """A step function for PyTorch's layer, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    _, _, n_in, hidden = SIZES[size]
    torch.manual_seed(0)
    layer = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](n_in, hidden)
    opt = torch.optim.SGD(layer.parameters(), lr=LR)
    x, target = (torch.from_numpy(a) for a in _data(size))

    def step() -> float:
        out, _ = layer(x)
        loss = torch.nn.functional.mse_loss(out, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def time_steps(step, seconds: float, min_steps: int, warmup: int) -> tuple[float, float, int]:
    """Median and minimum seconds per step, and the number of timed steps."""
    for _ in range(warmup):
        step()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_steps or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        if len(times) >= 1000:
            break
    return statistics.median(times), min(times), len(times)


def _fmt(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one warm-up and 3 timed steps")
    parser.add_argument("--sizes", default="S,M,L", help="comma-separated subset of S,M,L")
    parser.add_argument("--cells", default=",".join(CELLS), help="subset of rnn,lstm,gru")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing budget per case")
    args = parser.parse_args(argv)
    sizes = [s.strip().upper() for s in args.sizes.split(",") if s.strip()]
    cells = [c.strip().lower() for c in args.cells.split(",") if c.strip()]
    bad = [s for s in sizes if s not in SIZES] + [c for c in cells if c not in CELLS]
    if bad:
        parser.error(f"unknown size or cell: {', '.join(bad)} (sizes S,M,L; cells rnn,lstm,gru)")
    seconds, min_steps, warmup = (0.0, 3, 1) if args.quick else (args.seconds, 5, 2)

    header = (
        f"{'cell':5} {'size':4} {'(B, T, I, H)':18} {'fused ms':>10} {'op-by-op ms':>12} "
        f"{'torch ms':>10} {'fused/torch':>12} {'op-by-op/torch':>15}"
    )
    print("one training step (forward, MSE loss, backward, SGD), float32, 1 thread;")
    print("median [min] ms per step")
    print(header)
    print("-" * len(header))
    for cell in cells:
        for size in sizes:
            results: dict[str, tuple[float, float] | None] = {}
            makers = {
                "fused": lambda c=cell, s=size: make_tinyrnn(c, s, True),
                "opbyop": lambda c=cell, s=size: make_tinyrnn(c, s, False),
                "torch": lambda c=cell, s=size: make_torch(c, s),
            }
            for name, make in makers.items():
                step = make()
                if step is None:
                    results[name] = None
                    continue
                med, best, _ = time_steps(step, seconds, min_steps, warmup)
                results[name] = (med * 1e3, best * 1e3)
            torch_ms = results["torch"][0] if results["torch"] else None

            def cellfmt(r):
                return "-" if r is None else f"{_fmt(r[0])} [{_fmt(r[1])}]"

            def ratio(r, base=torch_ms):
                return "-" if r is None or base is None else f"{r[0] / base:.2f}"

            print(
                f"{cell:5} {size:4} {str(SIZES[size]):18} {cellfmt(results['fused']):>10} "
                f"{cellfmt(results['opbyop']):>12} {cellfmt(results['torch']):>10} "
                f"{ratio(results['fused']):>12} {ratio(results['opbyop']):>15}",
                flush=True,
            )


if __name__ == "__main__":
    main()

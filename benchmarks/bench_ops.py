"""Per-op cost (forward + backward) of tinyrnn beside hand-written NumPy and PyTorch eager.

Two workloads, each one training step of a chain of small ops:

- ``elementwise``: ``y = tanh(y * w + b)`` repeated 100 times on 4x4 tensors (300 ops), then
  ``sum`` and backward; ``w`` and ``b`` are parameters (the W1 workload of the project's
  performance baselines).
- ``matmul``: ``y = tanh(y @ W + b)`` repeated 50 times with ``y`` (4, 16) and ``W`` (16, 16)
  (150 ops), then ``sum`` and backward.

Every implementation runs in this one process, one thread, and computes the same gradients
(checked before timing). Times are per op: step time divided by the number of ops in the chain;
the table gives the median and the minimum over the timed steps. On a shared machine the minimum
is the steadier number.

Run: ``python3 benchmarks/bench_ops.py [--seconds 1.0] [--rounds 3]``.
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

WORKLOADS = {
    # name: (layers, ops per layer, x shape, weight shape, bias shape, uses matmul)
    "elementwise": (100, 3, (4, 4), (4, 4), (4, 4), False),
    "matmul": (50, 3, (4, 16), (16, 16), (16,), True),
}


def _data(name: str, dtype=np.float32):
    layers, _, xs, ws, bs, _ = WORKLOADS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dtype)
    w = (rng.standard_normal(ws) * (0.25 if name == "matmul" else 1.0)).astype(dtype)
    b = (rng.standard_normal(bs) * 0.1).astype(dtype)
    return layers, x, w, b


# ---- implementations: each returns step() -> (grad_w, grad_b) ----


def make_tinyrnn(name: str):
    layers, x, w, b = _data(name)
    matmul = WORKLOADS[name][5]
    xt = tr.tensor(x)
    wt = tr.tensor(w, requires_grad=True)
    bt = tr.tensor(b, requires_grad=True)

    def step():
        wt.grad = bt.grad = None
        y = xt
        for _ in range(layers):
            y = ((y @ wt) if matmul else (y * wt)) + bt
            y = y.tanh()
        y.sum().backward()
        return wt.grad.data, bt.grad.data

    return step


def make_numpy(name: str):
    layers, x, w, b = _data(name)
    matmul = WORKLOADS[name][5]

    def step():
        ins, outs = [], []
        y = x
        for _ in range(layers):
            ins.append(y)
            y = np.tanh(((y @ w) if matmul else (y * w)) + b)
            outs.append(y)
        g = np.ones_like(y)
        gw = np.zeros_like(w)
        gb = np.zeros_like(b)
        for yin, yout in zip(reversed(ins), reversed(outs), strict=True):
            g = g * (1 - yout * yout)
            gb += g.sum(axis=0) if matmul else g
            if matmul:
                gw += yin.T @ g
                g = g @ w.T
            else:
                gw += g * yin
                g = g * w
        return gw, gb

    return step


def make_torch(name: str):
    import torch

    torch.set_num_threads(1)
    layers, x, w, b = _data(name)
    matmul = WORKLOADS[name][5]
    xt = torch.from_numpy(x)
    wt = torch.from_numpy(w.copy()).requires_grad_()
    bt = torch.from_numpy(b.copy()).requires_grad_()

    def step():
        wt.grad = bt.grad = None
        y = xt
        for _ in range(layers):
            y = ((y @ wt) if matmul else (y * wt)) + bt
            y = y.tanh()
        y.sum().backward()
        return wt.grad.numpy(), bt.grad.numpy()

    return step


IMPLEMENTATIONS = {"tinyrnn": make_tinyrnn, "numpy fwd+bwd": make_numpy, "torch eager": make_torch}


def _time(step, seconds: float, rounds: int) -> tuple[float, float]:
    """Median of the per-round medians and overall minimum of the step time, in seconds."""
    for _ in range(3):
        step()
    medians, best = [], float("inf")
    for _ in range(rounds):
        times = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(times) < 5:
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        medians.append(statistics.median(times))
        best = min(best, min(times))
    return statistics.median(medians), best


COMPILE_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from tinyrnn import kernels
from tinyrnn.kernels import jit
t_import = time.perf_counter() - t0
rng = np.random.default_rng(0)
B, H, C = 4, 8, 5
ids = np.array([0, 1, 4, -100])
times = {}
for dt in (np.float32, np.float64):
    def m(*shape):
        return rng.standard_normal(shape).astype(dt)
    args = {
        "sigmoid_fwd": (m(B, H),),
        "sigmoid_bwd": (m(B, H), m(B, H)),
        "tanh_bwd": (m(B, H), m(B, H)),
        "relu_bwd": (m(B, H), m(B, H)),
        "log_softmax_fwd": (m(B, C),),
        "log_softmax_bwd": (m(B, C), m(B, C)),
        "softmax_fwd": (m(B, C),),
        "softmax_bwd": (m(B, C), m(B, C)),
        "cross_entropy_fwd": (m(B, C), ids, -100),
        "cross_entropy_bwd": (m(B, C), ids, -100, m(B)),
        "lstm_cell_fwd": (m(B, 4 * H), m(B, H)),
        "lstm_cell_bwd": (m(B, 4 * H), m(B, H), m(B, H), m(B, H), m(B, H)),
        "gru_cell_fwd": (m(B, 3 * H), m(B, 3 * H), m(B, H)),
        "gru_cell_bwd": (m(B, 3 * H), m(B, 3 * H), m(B, H), m(B, H)),
    }
    assert set(args) == set(kernels.NAMES), set(kernels.NAMES) ^ set(args)
    for name, a in args.items():
        t = time.perf_counter()
        getattr(jit, name)(*a)
        times[f"{name}[{np.dtype(dt).name}]"] = time.perf_counter() - t
print(json.dumps({"import": t_import, "kernels": times}))
"""


def compile_times() -> None:
    """Cold (empty Numba cache) and warm (cached) time to first call of every kernel."""
    import json
    import subprocess
    import tempfile

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": root}
        for label in ("cold (empty cache)", "warm (from cache)"):
            t = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", COMPILE_PROBE], env=env, capture_output=True, text=True,
                check=True,
            )
            wall = time.perf_counter() - t
            res = json.loads(out.stdout)
            total = sum(res["kernels"].values())
            print(
                f"{label:<20} import numba + kernels {res['import']:.2f} s, first call of "
                f"{len(res['kernels'])} kernel/dtype pairs {total:.2f} s, process {wall:.2f} s"
            )
            if label.startswith("cold"):
                slow = sorted(res["kernels"].items(), key=lambda kv: -kv[1])[:3]
                print("  slowest:", ", ".join(f"{k} {v:.2f} s" for k, v in slow))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    parser.add_argument("--compile", action="store_true", help="also time the cold kernel compile")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401

        impls = list(IMPLEMENTATIONS)
    except ImportError:
        impls = [k for k in IMPLEMENTATIONS if k != "torch eager"]
    from tinyrnn import kernels

    print(f"tinyrnn {tr.__version__}, kernels: {kernels.backend_name()}, numpy {np.__version__}")
    print(f"{'workload':<12} {'implementation':<15} {'us/op median':>13} {'us/op min':>10}")
    for name in args.workload or list(WORKLOADS):
        layers, per_layer = WORKLOADS[name][:2]
        n_ops = layers * per_layer
        steps = {impl: IMPLEMENTATIONS[impl](name) for impl in impls}
        ref = steps["numpy fwd+bwd"]()
        for impl, step in steps.items():  # same gradients everywhere before timing
            for got, want in zip(step(), ref, strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4, err_msg=impl)
        for impl, step in steps.items():
            med, best = _time(step, args.seconds, args.rounds)
            print(f"{name:<12} {impl:<15} {med / n_ops * 1e6:>13.2f} {best / n_ops * 1e6:>10.2f}")
    if args.compile:
        compile_times()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

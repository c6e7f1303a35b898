"""The matrix products of a recurrent time step: packed BLAS against OpenBLAS's unpacked kernel.

Every step of a recurrent layer multiplies a batch of rows by a weight matrix (``h W``,
forward) and the step's gradient by its transpose (``dZ W^T``, backward). ``kernels.gemm``
sends a float32 product with C-contiguous operands to OpenBLAS's unpacked kernel where that
kernel is bound (``kernels.gemm.DIRECT``); elsewhere it calls ``cblas_sgemm``, which packs
both operands on every call. This script times, per product, in microseconds (float32, one
thread, the median of rounds of repeated calls, each from a compiled loop so no Python call is
included):

- ``packed``: ``cblas_sgemm`` on ``h W`` (what runs without the unpacked kernel);
- ``packed W^T h^T``: the same product computed transposed, an (n, B) result (the form the
  compiled cells use for large matrices when they have only packed BLAS; the copy back to
  (B, n) is not included);
- ``unpacked``: ``h W`` through the unpacked kernel (only where ``DIRECT``);
- ``numpy``: ``np.matmul(h, W, out=...)`` from Python, and ``torch``: ``torch.matmul`` with
  ``out=``, one thread, when PyTorch is installed (both include their Python call).

Run: ``python3 benchmarks/bench_gemm.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tinyrnn.kernels import gemm as G  # noqa: E402

# (M, K, N): a batch of M rows times a K x N matrix
SHAPES = [
    (32, 128, 512),  # LSTM step at size M, forward (h W_hh^T)
    (32, 512, 128),  # its backward (dZ W_hh)
    (32, 128, 384),  # GRU step at size M
    (64, 128, 512),
    (32, 512, 2048),  # LSTM step, H = 512
    (64, 512, 2048),  # LSTM step at size L
    (2048, 64, 512),  # the input projection of a whole sequence at size M
    (8192, 256, 2048),  # the same at size L: a tall product, where packing pays
]


@numba.njit(cache=False)
def _packed(a, b, out, n):
    for _ in range(n):
        G._call(a, b, out, 0.0)


@numba.njit(cache=False)
def _unpacked(a, b, out, n):
    for _ in range(n):
        G._call_direct(a, b, out)


def _per_call(fn, calls: int, rounds: int) -> float:
    """Median over rounds of the time per call, in microseconds (``fn(n)`` makes n calls)."""
    fn(1)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(calls)
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times) * 1e6


def _row(m: int, k: int, n: int, rounds: int, torch) -> dict[str, float]:
    """The times of one product, checked against float64 first."""
    rng = np.random.default_rng(m + k + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    bt = np.ascontiguousarray(b.T)
    out, out_t = np.empty((m, n), np.float32), np.empty((n, m), np.float32)
    want, tol = a.astype(np.float64) @ b, 1e-2 * np.sqrt(k)
    calls = max(3, int(2e8 / (2 * m * k * n)))  # about 0.1 s per round at 100 GFLOP/s
    row = {
        "packed": _per_call(lambda c: _packed(a, b, out, c), calls, rounds),
        "packed W^T h^T": _per_call(lambda c: _packed(bt, a.T, out_t, c), calls, rounds),
    }
    np.testing.assert_allclose(out_t.T, want, rtol=1e-3, atol=tol)
    if G.DIRECT:
        row["unpacked"] = _per_call(lambda c: _unpacked(a, b, out, c), calls, rounds)
        np.testing.assert_allclose(out, want, rtol=1e-3, atol=tol)

    def numpy_calls(c):
        for _ in range(c):
            np.matmul(a, b, out=out)

    row["numpy"] = _per_call(numpy_calls, calls, rounds)
    if torch is not None:
        ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)

        def torch_calls(c):
            for _ in range(c):
                torch.matmul(ta, tb, out=tout)

        row["torch"] = _per_call(torch_calls, calls, rounds)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per case")
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    print(f"unpacked kernel bound: {G.DIRECT}; float32, one thread, us per product (median)")
    cols = ["packed", "packed W^T h^T", "unpacked", "numpy", "torch"]
    print(f"| product | {' | '.join(cols)} |")
    print("|---" * (len(cols) + 1) + "|")
    for m, k, n in SHAPES:
        row = _row(m, k, n, args.rounds, torch)
        cells = [f"{row[c]:.1f}" if c in row else "" for c in cols]
        print(f"| {m}x{k} @ {k}x{n} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Speed of a training step: tinyrnn's paths beside PyTorch, JAX and hand-written NumPy.

One command runs everything and writes a Markdown table and a JSON file::

    python3 benchmarks/bench_speed.py            # full: S, M, L; 1 and 2 threads (~10-20 min)
    python3 benchmarks/bench_speed.py --quick    # S and M, 1 thread, shorter timing (~5 min)
    python3 benchmarks/bench_speed.py --report benchmarks/results/speed.json  # table only

A training step is: forward over the whole sequence, MSE loss of a linear readout (16 outputs)
of the last hidden state against a fixed target, backward, plain SGD update of every parameter.
Cells: Elman RNN (tanh), LSTM, GRU (PyTorch's formulations and parameter layout) and the
Minimal Gated Unit (a custom cell nobody ships fused)::

    f = sigmoid(x W_f^T + b_f + h U_f^T + c_f);  h~ = tanh(x W_h^T + b_h + (f h) U_h^T + c_h)
    h' = (1 - f) h + f h~

Sizes (batch, steps, input, hidden): S = (1, 100, 32, 32), M = (32, 64, 64, 128),
L = (64, 128, 256, 512); float32.

Implementations, each case (implementation, cell, size, threads) in its own fresh process:

- ``tinyrnn/sequence``: ``nn.RNN/LSTM/GRU(fused="sequence")``, one graph node per layer and
  direction whose forward and backward run the time loop in one compiled call each;
- ``tinyrnn/step``: ``fused="step"``, one fused node per time step (for pictures and teaching);
  for the MGU, ``nn.Recurrent`` over the custom cell (the unrolled graph, op by op);
- ``tinyrnn/compiled``: the cell written from tinyrnn ops as a custom cell, compiled with
  ``tinyrnn.compile`` (for RNN/LSTM/GRU: the built-in cells written as custom cells);
- ``torch/fused``: ``torch.nn.RNN/LSTM/GRU``; ``torch/ops``: the cell from raw torch ops in a
  Python loop; ``jax/scan``: the raw-op cell in ``lax.scan`` under one ``jax.jit`` (skipped when
  JAX is not installed); ``numpy/bptt``: forward and backpropagation through time written by
  hand, input projection and weight gradients as single products.

1 thread: ``OMP/OPENBLAS/MKL/NUMBA/VECLIB/NUMEXPR_NUM_THREADS=1``, ``torch.set_num_threads(1)``
and the worker pinned to one CPU; 2 threads: the same variables set to 2, not pinned.
Timing: the first call is timed apart (it includes compiles), one more call is not timed, then
calls are timed until at least 5 (3 at L) and 1.5 s (1 s at L). Reported: median, minimum and
spread (p90 - p10 over the median), and the ratio of each tinyrnn median to the best peer's
(the fastest of torch, JAX and NumPy for that cell, size and thread count).

Also measured: the machine's single-thread float32 GEMM rate (and the fraction of it each
tinyrnn step reaches, from ``2 T B G H (2I + 3H)`` FLOPs); peak memory of one LSTM step at
B=32, I=64, H=128 for T = 100 and 1,000; the per-op overhead of the dynamic graph (a chain of
300 small element-wise ops, forward and backward, tinyrnn beside PyTorch eager, in three
alternating rounds of one process each, reporting the median of the three medians); the compile
cost of a new custom cell and the start-up of a second process that finds it in the cache;
and, first, a float64 check that every implementation computes the same loss and gradients.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CELLS = ("rnn", "lstm", "gru", "mgu")
GATES = {"rnn": 1, "lstm": 4, "gru": 3, "mgu": 2}
SIZES = {"S": (1, 100, 32, 32), "M": (32, 64, 64, 128), "L": (64, 128, 256, 512)}
READOUT = 16
LR = 0.01
TINYRNN = ("tinyrnn/sequence", "tinyrnn/step", "tinyrnn/compiled")
PEERS = ("torch/fused", "torch/ops", "jax/scan", "numpy/bptt")
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
# JAX medians (ms) measured on this machine for the notes the project started from
# (research/perf-baselines.md, 1 thread, pinned); used only when JAX is not installed here.
JAX_NOTE_MS = {
    ("rnn", "S"): 0.333, ("rnn", "M"): 5.94, ("rnn", "L"): 365,
    ("lstm", "S"): 1.06, ("lstm", "M"): 27.8, ("lstm", "L"): 1484,
    ("gru", "S"): 0.837, ("gru", "M"): 20.8, ("gru", "L"): 1066,
    ("mgu", "S"): 0.776, ("mgu", "M"): 13.9,
}  # fmt: skip


# =============================================================================================
# data and parameters (shared by every implementation: PyTorch's layout and gate order)
# =============================================================================================


def make_data(cell: str, B: int, T: int, n_in: int, H: int, dtype, seed: int = 0) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    G = GATES[cell] * H
    bound = 1.0 / np.sqrt(H)

    def u(*shape):
        return rng.uniform(-bound, bound, shape).astype(dtype)

    return {
        "W_ih": u(G, n_in), "W_hh": u(G, H), "b_ih": u(G), "b_hh": u(G),
        "Wo": u(READOUT, H), "bo": u(READOUT),
        "x": rng.standard_normal((T, B, n_in)).astype(dtype),
        "y": rng.standard_normal((B, READOUT)).astype(dtype),
    }  # fmt: skip


PARAMS = ("W_ih", "W_hh", "b_ih", "b_hh", "Wo", "bo")


# =============================================================================================
# tinyrnn
# =============================================================================================


def _tinyrnn_cells():
    import tinyrnn as tr

    class Elman(tr.nn.Module):
        """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh), from tinyrnn ops."""

        def forward(self, x, h):
            return (
                x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
            ).tanh()

    class LSTMOps(tr.nn.Module):
        def forward(self, x, state):
            h, c = state
            g = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
            i, f, gg, o = g.chunk(4, 1)
            c = f.sigmoid() * c + i.sigmoid() * gg.tanh()
            return o.sigmoid() * c.tanh(), c

    class GRUOps(tr.nn.Module):
        def forward(self, x, h):
            i_r, i_z, i_n = (x @ self.weight_ih.T + self.bias_ih).chunk(3, 1)
            h_r, h_z, h_n = (h @ self.weight_hh.T + self.bias_hh).chunk(3, 1)
            r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
            return (1 - z) * (i_n + r * h_n).tanh() + z * h

    class MGU(tr.nn.Module):
        def forward(self, x, h):
            n = h.shape[1]
            gx = x @ self.weight_ih.T + self.bias_ih
            w, b = self.weight_hh, self.bias_hh
            f = (gx[:, :n] + h @ w[:n].T + b[:n]).sigmoid()
            h_tilde = (gx[:, n:] + (f * h) @ w[n:].T + b[n:]).tanh()
            return (1 - f) * h + f * h_tilde

    return {"rnn": Elman, "lstm": LSTMOps, "gru": GRUOps, "mgu": MGU}


def tinyrnn_impl(variant: str, cell: str, d: dict):
    import tinyrnn as tr
    import tinyrnn.nn.functional as F

    T, B, _ = d["x"].shape
    H = d["W_hh"].shape[1]
    x, y = tr.tensor(d["x"]), tr.tensor(d["y"])
    wo = tr.nn.Parameter(tr.tensor(d["Wo"].copy()))
    bo = tr.nn.Parameter(tr.tensor(d["bo"].copy()))
    names = {"W_ih": "weight_ih", "W_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh"}
    if cell != "mgu" and variant in ("tinyrnn/sequence", "tinyrnn/step", "tinyrnn/default"):
        kwargs = {} if variant == "tinyrnn/default" else {"fused": variant[8:]}
        layer = {"rnn": tr.nn.RNN, "lstm": tr.nn.LSTM, "gru": tr.nn.GRU}[cell](
            d["x"].shape[2], H, **kwargs
        )
        for k, n in names.items():
            getattr(layer, n + "_l0").data = d[k].copy()
        pmap = {k: getattr(layer, n + "_l0") for k, n in names.items()}

        def run():
            out, hn = layer(x)
            return (hn[0] if isinstance(hn, tuple) else hn)[0], out
    else:
        module = _tinyrnn_cells()[cell]()
        for k, n in names.items():
            setattr(module, n, tr.nn.Parameter(tr.tensor(d[k].copy())))
        pmap = {k: getattr(module, n) for k, n in names.items()}
        zeros = tr.zeros(B, H, dtype=d["x"].dtype)
        state = (zeros, zeros) if cell == "lstm" else zeros
        if variant == "tinyrnn/compiled":
            try:
                rec = tr.nn.Recurrent(module, compile=True)
            except TypeError:  # nn.Recurrent without the compile option
                from tinyrnn.compile import compile_cell

                rec = compile_cell(module)
        else:
            rec = tr.nn.Recurrent(module)

        def run():
            out, final = rec(x, state)
            return (final[0] if isinstance(final, tuple) else final), out

    pmap.update({"Wo": wo, "bo": bo})
    params = [pmap[k] for k in PARAMS]
    opt = tr.optim.SGD(params, lr=LR)

    def loss_fn():
        h, out = run()
        return F.mse_loss(h @ wo.T + bo, y), out

    def step():
        opt.zero_grad()
        loss, _ = loss_fn()
        loss.backward()
        opt.step()

    def grads():
        opt.zero_grad()
        loss, _ = loss_fn()
        loss.backward()
        return float(loss.item()), {k: pmap[k].grad.data.copy() for k in PARAMS}

    def path():
        _, out = loss_fn()
        stack, seen, names_seen = [out.grad_fn], set(), set()
        while stack:
            ctx = stack.pop()
            if ctx is None or id(ctx) in seen:
                continue
            seen.add(id(ctx))
            names_seen.add(ctx.name)
            stack.extend(p._ctx for p in ctx.parents if getattr(p, "_ctx", None) is not None)
        if any(n.endswith("Sequence") for n in names_seen):
            return "sequence"
        if "CompiledLoop" in names_seen:
            return "compiled"
        return "per-step" if any(n.endswith("Step") for n in names_seen) else "op-by-op"

    return step, grads, path


# =============================================================================================
# PyTorch
# =============================================================================================


def torch_impl(variant: str, cell: str, d: dict):
    import torch

    dtype = torch.float64 if d["x"].dtype.name == "float64" else torch.float32
    T, B, _ = d["x"].shape
    H = d["W_hh"].shape[1]
    t = {k: torch.tensor(v, dtype=dtype) for k, v in d.items()}
    x, y = t["x"], t["y"]
    wo, bo = t["Wo"].requires_grad_(), t["bo"].requires_grad_()
    if variant == "torch/fused":
        layer = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
            d["x"].shape[2], H
        ).to(dtype)
        with torch.no_grad():
            for k, n in (("W_ih", "weight_ih_l0"), ("W_hh", "weight_hh_l0"),
                         ("b_ih", "bias_ih_l0"), ("b_hh", "bias_hh_l0")):  # fmt: skip
                getattr(layer, n).copy_(t[k])
        pmap = {
            "W_ih": layer.weight_ih_l0, "W_hh": layer.weight_hh_l0,
            "b_ih": layer.bias_ih_l0, "b_hh": layer.bias_hh_l0,
        }  # fmt: skip

        def last_h():
            _, hn = layer(x)
            return (hn[0] if isinstance(hn, tuple) else hn)[0]
    else:
        pmap = {k: t[k].requires_grad_() for k in ("W_ih", "W_hh", "b_ih", "b_hh")}

        def last_h():
            w_ih_t, w_hh_t = pmap["W_ih"].t(), pmap["W_hh"].t()
            b_ih, b_hh = pmap["b_ih"], pmap["b_hh"]
            h = torch.zeros(B, H, dtype=dtype)
            c = torch.zeros(B, H, dtype=dtype)
            for step in range(T):
                xt = x[step]
                if cell == "rnn":
                    h = torch.tanh(xt @ w_ih_t + b_ih + h @ w_hh_t + b_hh)
                elif cell == "lstm":
                    i, f, g, o = (xt @ w_ih_t + b_ih + h @ w_hh_t + b_hh).chunk(4, 1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                elif cell == "gru":
                    i_r, i_z, i_n = (xt @ w_ih_t + b_ih).chunk(3, 1)
                    h_r, h_z, h_n = (h @ w_hh_t + b_hh).chunk(3, 1)
                    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
                    h = (1 - z) * torch.tanh(i_n + r * h_n) + z * h
                else:
                    gx = xt @ w_ih_t + b_ih
                    f = torch.sigmoid(gx[:, :H] + h @ w_hh_t[:, :H] + b_hh[:H])
                    ht = torch.tanh(gx[:, H:] + (f * h) @ w_hh_t[:, H:] + b_hh[H:])
                    h = (1 - f) * h + f * ht
            return h

    pmap.update({"Wo": wo, "bo": bo})
    params = [pmap[k] for k in PARAMS]
    opt = torch.optim.SGD(params, lr=LR)

    def loss_fn():
        return torch.nn.functional.mse_loss(last_h() @ wo.t() + bo, y)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()

    def grads():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        return float(loss.item()), {k: pmap[k].grad.detach().numpy().copy() for k in PARAMS}

    return step, grads, lambda: variant[6:]


# =============================================================================================
# JAX (only where installed)
# =============================================================================================


def jax_impl(variant: str, cell: str, d: dict):
    import jax
    import jax.numpy as jnp

    if d["x"].dtype.name == "float64":
        jax.config.update("jax_enable_x64", True)
    H = d["W_hh"].shape[1]
    params = {k: jnp.asarray(d[k]) for k in PARAMS}
    x, y = jnp.asarray(d["x"]), jnp.asarray(d["y"])

    def cell_step(p, carry, xt):
        h, c = carry
        if cell == "rnn":
            h = jnp.tanh(xt @ p["W_ih"].T + p["b_ih"] + h @ p["W_hh"].T + p["b_hh"])
        elif cell == "lstm":
            i, f, g, o = jnp.split(xt @ p["W_ih"].T + p["b_ih"] + h @ p["W_hh"].T + p["b_hh"], 4, 1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
        elif cell == "gru":
            i_r, i_z, i_n = jnp.split(xt @ p["W_ih"].T + p["b_ih"], 3, 1)
            h_r, h_z, h_n = jnp.split(h @ p["W_hh"].T + p["b_hh"], 3, 1)
            r, z = jax.nn.sigmoid(i_r + h_r), jax.nn.sigmoid(i_z + h_z)
            h = (1 - z) * jnp.tanh(i_n + r * h_n) + z * h
        else:
            gx = xt @ p["W_ih"].T + p["b_ih"]
            w, b = p["W_hh"], p["b_hh"]
            f = jax.nn.sigmoid(gx[:, :H] + h @ w[:H].T + b[:H])
            ht = jnp.tanh(gx[:, H:] + (f * h) @ w[H:].T + b[H:])
            h = (1 - f) * h + f * ht
        return (h, c), None

    def loss_fn(p):
        z = jnp.zeros((x.shape[1], H), x.dtype)
        (h, _), _ = jax.lax.scan(lambda carry, xt: cell_step(p, carry, xt), (z, z), x)
        return jnp.mean((h @ p["Wo"].T + p["bo"] - y) ** 2)

    @jax.jit
    def update(p):
        loss, g = jax.value_and_grad(loss_fn)(p)
        return {k: p[k] - LR * g[k] for k in p}, loss

    state = {"p": params}

    def step():
        state["p"], loss = update(state["p"])
        loss.block_until_ready()

    def grads():
        loss, g = jax.value_and_grad(loss_fn)(params)
        return float(loss), {k: __import__("numpy").asarray(g[k]) for k in PARAMS}

    return step, grads, lambda: "scan+jit"


# =============================================================================================
# NumPy, written by hand
# =============================================================================================


def numpy_impl(variant: str, cell: str, d: dict):
    import numpy as np

    p = {k: d[k].copy() for k in PARAMS}
    x, y = d["x"], d["y"]
    T, B, n_in = x.shape
    H = p["W_hh"].shape[1]

    def sig(v):
        return 1 / (1 + np.exp(-v))

    def loss_and_grads():
        W_ih, W_hh, b_ih, b_hh = p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"]
        X = x.reshape(T * B, n_in)
        hs = np.zeros((T + 1, B, H), x.dtype)
        cache = []
        if cell == "gru":
            xp = (X @ W_ih.T + b_ih).reshape(T, B, -1)
        else:
            xp = (X @ W_ih.T + b_ih + (0 if cell == "mgu" else b_hh)).reshape(T, B, -1)
        c = np.zeros((B, H), x.dtype)
        for t in range(T):
            h = hs[t]
            if cell == "rnn":
                hs[t + 1] = np.tanh(xp[t] + h @ W_hh.T)
            elif cell == "lstm":
                g = xp[t] + h @ W_hh.T
                i, f = sig(g[:, :H]), sig(g[:, H : 2 * H])
                gg, o = np.tanh(g[:, 2 * H : 3 * H]), sig(g[:, 3 * H :])
                c_prev = c
                c = f * c + i * gg
                tc = np.tanh(c)
                hs[t + 1] = o * tc
                cache.append((i, f, gg, o, c_prev, tc))
            elif cell == "gru":
                gh = h @ W_hh.T + b_hh
                r = sig(xp[t, :, :H] + gh[:, :H])
                z = sig(xp[t, :, H:2*H] + gh[:, H:2*H])  # fmt: skip
                n = np.tanh(xp[t, :, 2*H:] + r * gh[:, 2*H:])  # fmt: skip
                hs[t + 1] = (1 - z) * n + z * h
                cache.append((r, z, n, gh[:, 2*H:]))  # fmt: skip
            else:
                f = sig(xp[t, :, :H] + h @ W_hh[:H].T + b_hh[:H])
                fh = f * h
                ht = np.tanh(xp[t, :, H:] + fh @ W_hh[H:].T + b_hh[H:])
                hs[t + 1] = (1 - f) * h + f * ht
                cache.append((f, fh, ht))
        hT = hs[T]
        diff = hT @ p["Wo"].T + p["bo"] - y
        loss = float(np.mean(diff * diff))
        dpred = (2.0 / diff.size) * diff
        g = {"Wo": dpred.T @ hT, "bo": dpred.sum(0)}
        dh = dpred @ p["Wo"]
        G = xp.shape[2]
        dxp = np.zeros((T, B, G), x.dtype)  # gradient of the input projection
        dgh = np.zeros((T, B, G), x.dtype) if cell in ("gru", "mgu") else None
        dc = np.zeros((B, H), x.dtype)
        for t in range(T - 1, -1, -1):
            h = hs[t]
            if cell == "rnn":
                dp = dh * (1 - hs[t + 1] ** 2)
                dxp[t] = dp
                dh = dp @ W_hh
            elif cell == "lstm":
                i, f, gg, o, c_prev, tc = cache[t]
                dct = dc + dh * o * (1 - tc * tc)
                dg = np.concatenate(
                    [dct * gg * i * (1 - i), dct * c_prev * f * (1 - f), dct * i * (1 - gg * gg),
                     dh * tc * o * (1 - o)], axis=1)  # fmt: skip
                dxp[t] = dg
                dh = dg @ W_hh
                dc = dct * f
            elif cell == "gru":
                r, z, n, ghn = cache[t]
                dn = dh * (1 - z) * (1 - n * n)
                dz = dh * (h - n) * z * (1 - z)
                dr = dn * ghn * r * (1 - r)
                dxp[t] = np.concatenate([dr, dz, dn], axis=1)
                dgh[t] = np.concatenate([dr, dz, dn * r], axis=1)
                dh = dgh[t] @ W_hh + dh * z
            else:
                f, fh, ht = cache[t]
                dht = dh * f * (1 - ht * ht)  # pre-activation of h~
                dfh = dht @ W_hh[H:]
                df = (dh * (ht - h) + dfh * h) * f * (1 - f)
                dxp[t] = np.concatenate([df, dht], axis=1)
                dgh[t] = dxp[t]
                dh = dh * (1 - f) + dfh * f + df @ W_hh[:H]
        D = dxp.reshape(T * B, G)
        Dh = D if dgh is None else dgh.reshape(T * B, G)
        Hp = hs[:T].reshape(T * B, H)
        g["W_ih"] = D.T @ X
        g["b_ih"] = D.sum(0)
        if cell == "mgu":  # the recurrent products read h (forget gate) and f * h (candidate)
            fh_all = np.stack([c_[1] for c_ in cache]).reshape(T * B, H)
            g["W_hh"] = np.concatenate([Dh[:, :H].T @ Hp, Dh[:, H:].T @ fh_all], axis=0)
        else:
            g["W_hh"] = Dh.T @ Hp
        g["b_hh"] = Dh.sum(0)
        return loss, g

    def step():
        _, g = loss_and_grads()
        for k in PARAMS:
            p[k] -= LR * g[k]

    def grads():
        loss, g = loss_and_grads()
        return loss, {k: v.copy() for k, v in g.items()}

    return step, grads, lambda: "hand-written"


IMPLS = {
    "tinyrnn/sequence": tinyrnn_impl, "tinyrnn/step": tinyrnn_impl,
    "tinyrnn/compiled": tinyrnn_impl, "torch/fused": torch_impl, "torch/ops": torch_impl,
    "jax/scan": jax_impl, "numpy/bptt": numpy_impl,
}  # fmt: skip


def applies(impl: str, cell: str) -> bool:
    """MGU has no fused layer anywhere (and no built-in tinyrnn layer)."""
    return not (cell == "mgu" and impl in ("torch/fused", "tinyrnn/sequence"))


# =============================================================================================
# workers (run in a fresh process each)
# =============================================================================================


def _timed(step, large: bool) -> dict:
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    if not large:
        step()
    times: list[float] = []
    min_calls, min_time = (3, 1.0) if large else (5, 1.5)
    start = time.perf_counter()
    while len(times) < min_calls or (time.perf_counter() - start < min_time and len(times) < 1000):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    q = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    med = statistics.median(times)
    return {
        "first_s": first, "median_ms": med * 1e3, "min_ms": times[0] * 1e3,
        "spread": (q[8] - q[0]) / med, "calls": len(times),
    }  # fmt: skip


def _cpu_fraction(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, (time.process_time() - c0) / max(time.perf_counter() - w0, 1e-9)


def worker_train(job: dict) -> dict:
    import numpy as np

    B, T, n_in, H = SIZES[job["size"]] if "size" in job else job["shape"]
    dtype = np.float64 if job.get("dtype") == "float64" else np.float32
    d = make_data(job["cell"], B, T, n_in, H, dtype)
    if job["impl"].startswith("torch"):
        import torch

        torch.set_num_threads(job["threads"])
    step, grads, path = IMPLS[job["impl"]](job["impl"], job["cell"], d)
    if job.get("check"):
        loss, g = grads()
        return {"loss": loss, "grads": {k: v.tolist() for k, v in g.items()}}
    res, cpu = _cpu_fraction(lambda: _timed(step, job.get("size") == "L"))
    res.update(path=path(), cpu_per_wall=cpu)
    return res


def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_memory(job: dict) -> dict:
    import ctypes
    import gc

    import numpy as np

    d = make_data("lstm", 32, job["steps"], 64, 128, np.float32)
    if job["impl"].startswith("torch"):
        import torch

        torch.set_num_threads(1)
    step, _, path = IMPLS[job["impl"]](job["impl"], "lstm", d)
    step()
    step()
    if job["impl"].startswith("tinyrnn"):  # count the step's arrays, not those kept from before
        from tinyrnn.ops.sequence import BUFFERS

        BUFFERS.clear()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    before = _rss_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    step()
    return {"peak_delta_mib": _rss_mib("VmHWM") - before, "rss_before_mib": before,
            "maxrss_mib": _rss_mib("VmHWM"), "path": path()}  # fmt: skip


def worker_gemm(job: dict) -> dict:
    import numpy as np

    rates = {}
    rng = np.random.default_rng(0)
    for m, k, n in ((32, 128, 512), (2048, 64, 512), (64, 512, 2048), (8192, 256, 2048),
                    (1024, 1024, 1024)):  # fmt: skip
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        c = np.empty((m, n), np.float32)
        np.matmul(a, b, out=c)
        reps, best, start = 0, [], time.perf_counter()
        while reps < 5 or time.perf_counter() - start < 0.5:
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            best.append(time.perf_counter() - t0)
            reps += 1
        rates[f"{m}x{k}@{k}x{n}"] = 2 * m * k * n / statistics.median(best) / 1e9
    return {"gflops": rates, "peak_gflops": max(rates.values())}


def worker_overhead(job: dict) -> dict:
    """W1: y = tanh(y * w + b) 100 times on 4x4 (300 ops), sum, backward, SGD update."""
    import numpy as np

    rng = np.random.default_rng(0)
    w0, b0, x0 = (rng.standard_normal((4, 4)).astype(np.float32) * 0.5 for _ in range(3))
    if job["impl"] == "tinyrnn":
        import tinyrnn as tr

        w, b = tr.nn.Parameter(tr.tensor(w0)), tr.nn.Parameter(tr.tensor(b0))
        x = tr.tensor(x0)

        def step():
            y = x
            for _ in range(100):
                y = (y * w + b).tanh()
            y.sum().backward()
            for p in (w, b):
                p.data -= 0.001 * p.grad.data
                p.grad = None
    else:
        import torch

        torch.set_num_threads(1)
        w = torch.tensor(w0, requires_grad=True)
        b = torch.tensor(b0, requires_grad=True)
        x = torch.tensor(x0)

        def step():
            y = x
            for _ in range(100):
                y = torch.tanh(y * w + b)
            y.sum().backward()
            with torch.no_grad():
                for p in (w, b):
                    p -= 0.001 * p.grad
                    p.grad = None

    res = _timed(step, False)
    res["us_per_op"] = res["median_ms"] * 1e3 / 300
    res["us_per_op_min"] = res["min_ms"] * 1e3 / 300
    return res


def _combine_rounds(rounds: list[dict]) -> dict:
    """One overhead result from several rounds: the median of their medians, the minimum of
    their minima (the rounds themselves are kept)."""
    ok = [r for r in rounds if _ok(r)]
    if not ok:
        return rounds[0]
    return {
        "us_per_op": statistics.median(r["us_per_op"] for r in ok),
        "us_per_op_min": min(r["us_per_op_min"] for r in ok),
        "rounds": rounds,
    }


def worker_compile(job: dict) -> dict:
    """Time to the first training step of a custom cell (MGU, size S): imports, trace and
    compile in a process with an empty cache; the same in a second process with the cache."""
    t_start = time.perf_counter()
    import numpy as np

    import tinyrnn  # noqa: F401

    t_import = time.perf_counter() - t_start
    d = make_data("mgu", *SIZES["S"], np.float32)
    step, _, _ = tinyrnn_impl("tinyrnn/compiled", "mgu", d)
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    step()
    second = time.perf_counter() - t0
    from tinyrnn.compile import runtime

    hits = misses = 0
    for fns in runtime._PROGRAMS.values():
        for fn in fns:
            stats = getattr(fn, "stats", None)  # Numba dispatchers count their cache use
            if stats is not None:
                hits += sum(stats.cache_hits.values())
                misses += sum(stats.cache_misses.values())
    return {"import_s": t_import, "first_step_s": first, "second_step_s": second,
            "to_first_step_s": time.perf_counter() - t_start - second,
            "programs": runtime.STATS["programs_built"], "numba_cache_hits": hits,
            "numba_cache_misses": misses}  # fmt: skip


def worker_default_path(job: dict) -> dict:
    """Which path ``nn.RNN/LSTM/GRU`` take when constructed with default arguments."""
    import numpy as np

    out = {}
    for cell in ("rnn", "lstm", "gru"):
        d = make_data(cell, 2, 3, 2, 2, np.float32)
        out[cell] = tinyrnn_impl("tinyrnn/default", cell, d)[2]()
    return out


WORKERS = {
    "default_path": worker_default_path,
    "train": worker_train,
    "memory": worker_memory,
    "gemm": worker_gemm,
    "overhead": worker_overhead,
    "compile": worker_compile,
}


def _pin_least_busy_cpu() -> None:
    """Pin this process to the CPU with the most idle time over 0.2 s (Linux only)."""
    if not hasattr(os, "sched_setaffinity"):
        return

    def idle():
        out = {}
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu") and line[3].isdigit():
                f = line.split()
                out[int(f[0][3:])] = int(f[4]) + int(f[5])
        return out

    a = idle()
    time.sleep(0.2)
    b = idle()
    cpus = sorted(os.sched_getaffinity(0))
    best = max(cpus, key=lambda c: b.get(c, 0) - a.get(c, 0))
    os.sched_setaffinity(0, {best})


def run_worker(spec: str) -> None:
    job = json.loads(spec)
    if job.get("threads", 1) == 1 and job.get("pin", True):
        _pin_least_busy_cpu()
    sys.path.insert(0, str(ROOT))
    result = WORKERS[job["kind"]](job)
    print("RESULT " + json.dumps(result), flush=True)


# =============================================================================================
# parent: run the cases, each in its own process, and write the report
# =============================================================================================


def available(module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
    return subprocess.run([sys.executable, "-c", code]).returncode == 0


def spawn(job: dict, threads: int = 1, env_extra: dict | None = None, timeout: float = 900):
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false" if threads == 1 else ""
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    job = {**job, "threads": threads}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)],
            capture_output=True, text=True, env=env, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["process_wall_s"] = wall
            return res
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": " | ".join(tail) or f"exit status {proc.returncode}"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def check_correctness(impls: list[str]) -> dict:
    """float64, (B, T, I, H) = (3, 5, 4, 6): loss and every gradient against numpy/bptt."""
    import numpy as np

    out = {}
    for cell in CELLS:
        ref = spawn({"kind": "train", "impl": "numpy/bptt", "cell": cell, "shape": [3, 5, 4, 6],
                     "dtype": "float64", "check": True, "pin": False})  # fmt: skip
        for impl in impls:
            if not applies(impl, cell) or impl == "numpy/bptt":
                continue
            got = spawn({"kind": "train", "impl": impl, "cell": cell, "shape": [3, 5, 4, 6],
                         "dtype": "float64", "check": True, "pin": False})  # fmt: skip
            if "error" in got or "error" in ref:
                out[f"{impl} {cell}"] = {"error": got.get("error") or ref.get("error")}
                continue
            errs = [
                float(np.max(np.abs(np.array(got["grads"][k]) - np.array(ref["grads"][k]))))
                / max(float(np.max(np.abs(np.array(ref["grads"][k])))), 1e-300)
                for k in PARAMS
            ]
            out[f"{impl} {cell}"] = {
                "loss_rel_err": abs(got["loss"] - ref["loss"]) / abs(ref["loss"]),
                "grad_rel_err": max(errs),
            }
            log(f"check {impl:18s} {cell:5s} {out[f'{impl} {cell}']}")
    return out


def flops(cell: str, size: str) -> float:
    """Matrix-product FLOPs of one training step: forward x W_ih^T and h W_hh^T, backward the
    two weight gradients and the recurrent dh (the input needs no gradient here, so no dx):
    2 T B G H (I + H) three times, less the dx product 2 T B G H I."""
    B, T, n_in, H = SIZES[size]
    return 2 * T * B * GATES[cell] * H * (2 * n_in + 3 * H)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="S and M, 1 thread, fewer extras")
    ap.add_argument("--sizes", default=None, help="comma-separated subset of S,M,L")
    ap.add_argument("--cells", default=None, help="comma-separated subset of rnn,lstm,gru,mgu")
    ap.add_argument("--threads", default=None, help="comma-separated thread counts (1,2)")
    ap.add_argument("--out", default=str(HERE / "results"), help="folder for speed.md/.json")
    ap.add_argument("--report", default=None, help="rewrite speed.md from this speed.json")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        run_worker(args.worker)
        return 0
    if args.report:
        md = markdown(json.loads(Path(args.report).read_text()))
        (Path(args.report).parent / "speed.md").write_text(md)
        print(md)
        return 0
    sizes = (args.sizes or ("S,M" if args.quick else "S,M,L")).split(",")
    cells = (args.cells or ",".join(CELLS)).split(",")
    threads = [int(t) for t in (args.threads or ("1" if args.quick else "1,2")).split(",")]
    have_torch, have_jax = available("torch"), available("jax")
    impls = list(TINYRNN) + [i for i in PEERS if (have_torch or not i.startswith("torch"))
                             and (have_jax or not i.startswith("jax"))]  # fmt: skip
    started = time.time()
    report: dict = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "torch": have_torch, "jax": have_jax},
        "sizes": SIZES, "cells": cells, "threads": threads, "impls": impls, "quick": args.quick,
    }  # fmt: skip
    log(f"implementations: {', '.join(impls)}" + ("" if have_jax else " (jax not installed)"))
    report["default_path"] = spawn({"kind": "default_path", "pin": False})
    log(f"default path of the layers: {report['default_path']}")
    report["check"] = check_correctness(impls)
    report["gemm"] = spawn({"kind": "gemm"})
    log(f"gemm: {report['gemm']}")
    train = []
    for n_threads in threads:
        for size in sizes:
            for cell in cells:
                for impl in impls:
                    if not applies(impl, cell):
                        continue
                    job = {"kind": "train", "impl": impl, "cell": cell, "size": size}
                    res = spawn(job, n_threads, timeout=1800)
                    res.update(job, threads=n_threads)
                    train.append(res)
                    shown = res.get("error") or f"{res['median_ms']:.3f} ms [{res['min_ms']:.3f}]"
                    log(f"{n_threads}t {size} {cell:5s} {impl:18s} {shown}")
    report["train"] = train
    # three rounds, the frameworks alternating, each run in its own process: a burst of load
    # from elsewhere on this shared machine then moves one round, not the reported median
    ov_impls = ["tinyrnn"] + (["torch"] if have_torch else [])
    rounds = {impl: [] for impl in ov_impls}
    for _ in range(3):
        for impl in ov_impls:
            rounds[impl].append(spawn({"kind": "overhead", "impl": impl}))
    report["overhead"] = {impl: _combine_rounds(rs) for impl, rs in rounds.items()}
    log(f"overhead: {report['overhead']}")
    mem_impls = ["tinyrnn/sequence", "tinyrnn/compiled", "tinyrnn/step", "numpy/bptt"] + (
        ["torch/fused", "torch/ops"] if have_torch else []
    )
    report["memory"] = [
        {
            **spawn({"kind": "memory", "impl": impl, "steps": steps}, timeout=1800),
            "impl": impl,
            "steps": steps,
        }  # fmt: skip
        for steps in ((100,) if args.quick else (100, 1000))
        for impl in mem_impls
    ]
    log(f"memory: {[(m['impl'], m['steps'], m.get('peak_delta_mib')) for m in report['memory']]}")
    with tempfile.TemporaryDirectory() as cache:
        env = {"TINYRNN_CACHE_DIR": cache}
        report["compile"] = {
            "new_cell": spawn({"kind": "compile"}, env_extra=env),
            "second_process": spawn({"kind": "compile"}, env_extra=env),
        }
    log(f"compile: {report['compile']}")
    report["elapsed_s"] = time.time() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps(report, indent=1))
    (out / "speed.md").write_text(markdown(report))
    print(markdown(report))
    log(f"wrote {out / 'speed.md'} and {out / 'speed.json'} in {report['elapsed_s'] / 60:.1f} min")
    return 0


# =============================================================================================
# the Markdown report
# =============================================================================================


def _cell(r: dict | None) -> str:
    if r is None:
        return ""
    if "error" in r:
        return "error"
    return f"{r['median_ms']:.3g} [{r['min_ms']:.3g}] ±{r['spread'] * 50:.0f}%"


def _default_impl(rep: dict, cell: str) -> str:
    """The tinyrnn variant the layer takes with default arguments (MGU: the unrolled graph)."""
    path = rep.get("default_path", {}).get(cell, "per-step")
    return "tinyrnn/sequence" if path == "sequence" else "tinyrnn/step"


def _ok(r: dict | None) -> bool:
    return bool(r) and "error" not in r


def markdown(rep: dict) -> str:
    m = rep["machine"]
    by = {(r["threads"], r["size"], r["cell"], r["impl"]): r for r in rep["train"]}
    impls = rep["impls"]
    defaults = ", ".join(f"{c}: {_default_impl(rep, c)[8:]}" for c in ("rnn", "lstm", "gru"))
    lines = [
        "# tinyrnn speed: one training step (float32)",
        "",
        f"Machine: {m['cpus']} CPUs, Python {m['python']}, {m['platform']}; torch installed: "
        f"{m['torch']}, jax installed: {m['jax']}. Every case ran in its own process. Times in "
        "ms: median [min] ±half the p10-p90 spread. Ratios: tinyrnn median / best peer median "
        "(the fastest of torch, jax and numpy in that row). Path the layers take with default "
        f"arguments: {defaults}; the MGU has no built-in layer (``step`` is ``nn.Recurrent`` "
        "over the cell, op by op).",
        "",
    ]
    for n_threads in rep["threads"]:
        lines += [f"## {n_threads} thread{'s' if n_threads > 1 else ''}", ""]
        if n_threads > 1:
            lines += [
                "tinyrnn's sequence kernels and compiled loops keep their per-step products on "
                "one BLAS thread whatever the settings (threads on these small products lost "
                "badly whenever the other core was busy); only the products outside the time "
                "loop use the second thread.",
                "",
            ]
        head = ["cell", "size", *impls, "sequence / best", "compiled / best", "default / best"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for size in SIZES:
            for cell in CELLS:
                row = [by.get((n_threads, size, cell, i)) for i in impls]
                if not any(row):
                    continue
                peers = [by.get((n_threads, size, cell, i)) for i in PEERS]
                peer_ms = [p["median_ms"] for p in peers if _ok(p)]
                best = min(peer_ms) if peer_ms else None

                def ratio(impl, best=best, size=size, cell=cell, n=n_threads):
                    r = by.get((n, size, cell, impl))
                    return f"{r['median_ms'] / best:.2f}" if _ok(r) and best else ""

                ratios = [ratio("tinyrnn/sequence"), ratio("tinyrnn/compiled"),
                          ratio(_default_impl(rep, cell))]  # fmt: skip
                lines.append("| " + " | ".join([cell, size, *map(_cell, row), *ratios]) + " |")
        lines.append("")
    gemm = rep["gemm"].get("peak_gflops")
    if gemm:
        cols = [i for i in ("tinyrnn/sequence", "tinyrnn/compiled", "torch/fused", "numpy/bptt")
                if i in impls]  # fmt: skip
        lines += [
            f"## Fraction of the single-thread GEMM rate ({gemm:.0f} GFLOP/s measured)",
            "",
            "FLOPs of a step: 2 T B G H (2I + 3H), the matrix products of forward, weight "
            "gradients and the recurrent backward (no dx: the input needs no gradient; G = 1, "
            "4, 3, 2 for RNN, LSTM, GRU, MGU); rate = "
            "FLOPs / median time, 1 thread. GEMM rates measured: "
            + ", ".join(f"{k} {v:.0f}" for k, v in rep["gemm"]["gflops"].items())
            + " GFLOP/s.",
            "",
            "| cell | size | GFLOP | " + " | ".join(cols) + " |",
            "|---|---|---|" + "---|" * len(cols),
        ]
        for size in SIZES:
            for cell in CELLS:
                f = flops(cell, size)
                vals = []
                for impl in cols:
                    r = by.get((1, size, cell, impl))
                    vals.append(f"{f / (r['median_ms'] / 1e3) / 1e9 / gemm:.0%}" if _ok(r) else "")
                if any(vals):
                    lines.append(f"| {cell} | {size} | {f / 1e9:.3g} | " + " | ".join(vals) + " |")
        lines.append("")
    mem = rep.get("memory", [])
    if mem:
        steps_list = sorted({x["steps"] for x in mem})
        lines += [
            "## Peak memory of one LSTM training step (B=32, I=64, H=128)",
            "",
            "Peak RSS during one step minus the RSS before it, MiB (after two warm-up steps).",
            "",
            "| implementation | " + " | ".join(f"T={s}" for s in steps_list) + " |",
            "|---|" + "---|" * len(steps_list),
        ]
        for impl in dict.fromkeys(x["impl"] for x in mem):
            vals = []
            for n in steps_list:
                r = next((x for x in mem if x["impl"] == impl and x["steps"] == n), None)
                vals.append(f"{r['peak_delta_mib']:.0f}" if r and "peak_delta_mib" in r else "")
            lines.append(f"| {impl} | " + " | ".join(vals) + " |")
        lines.append("")
    ov = rep.get("overhead", {})
    if ov:
        lines += [
            "## Per-op overhead of the dynamic graph",
            "",
            "y = tanh(y * w + b) 100 times on 4x4 tensors (300 ops), sum, backward, update; "
            "µs per op, median of three alternating rounds (one process each) [min].",
            "",
            "| framework | µs / op |",
            "|---|---|",
        ]
        for impl, r in ov.items():
            if _ok(r):
                lines.append(f"| {impl} | {r['us_per_op']:.2f} [{r['us_per_op_min']:.2f}] |")
        lines.append("")
    comp = rep.get("compile", {})
    a, b = comp.get("new_cell", {}), comp.get("second_process", {})
    if _ok(a) and _ok(b):
        lines += [
            "## Compile cost of a new custom cell (MGU, size S, float32)",
            "",
            "| process | import tinyrnn | first step (trace + compile, or load) | start to first "
            "step done | compiled functions: loaded from cache / compiled |",
            "|---|---|---|---|---|",
        ]
        for label, r in (("first (empty cache)", a), ("second (same cache)", b)):
            lines.append(
                f"| {label} | {r['import_s']:.2f} s | {r['first_step_s']:.2f} s | "
                f"{r['to_first_step_s']:.2f} s | {r['numba_cache_hits']} / "
                f"{r['numba_cache_misses']} |"
            )
        lines.append("")
    lines += _targets(rep, by)
    chk = rep.get("check", {})
    if chk:
        worst = max((v.get("grad_rel_err", 1.0) for v in chk.values()), default=0.0)
        worst_loss = max((v.get("loss_rel_err", 1.0) for v in chk.values()), default=0.0)
        errs = [k for k, v in chk.items() if "error" in v]
        lines += [
            "## Correctness (float64, B=3, T=5, I=4, H=6, against numpy/bptt)",
            "",
            f"{len(chk)} implementation/cell pairs; worst relative error of the loss "
            f"{worst_loss:.1e}, of any gradient (max abs error / max abs value) {worst:.1e}"
            + (f"; failed: {', '.join(errs)}" if errs else "")
            + ".",
            "",
        ]
    return "\n".join(lines) + "\n"


def _targets(rep: dict, by: dict) -> list[str]:
    """The issue's targets, each with the numbers behind the verdict (1 thread)."""
    out = ["## Targets (1 thread)", ""]
    jax_here = rep["machine"]["jax"]

    def med(size, cell, impl):
        r = by.get((1, size, cell, impl))
        return r["median_ms"] if _ok(r) else None

    def jax_ms(size, cell):
        return med(size, cell, "jax/scan") if jax_here else JAX_NOTE_MS.get((cell, size))

    src = "jax measured" if jax_here else "jax from the baseline notes, not measured here"
    nan = float("nan")
    for label, impl_of in (
        ("default path", lambda c: _default_impl(rep, c)),
        ("sequence path", lambda c: "tinyrnn/sequence"),
    ):
        for size in SIZES:
            for cell in ("rnn", "lstm", "gru"):
                t = med(size, cell, impl_of(cell))
                tf, jx = med(size, cell, "torch/fused"), jax_ms(size, cell)
                peers = [v for v in (tf, jx) if v]
                if t is None or not peers:
                    continue
                out.append(
                    f"- built-in {cell} {size}, {label} ({impl_of(cell)[8:]}): {t:.3g} ms vs torch "
                    f"fused {tf or nan:.3g} ms, jax {jx or nan:.3g} ms ({src}): "
                    + ("met" if t <= min(peers) else f"NOT met ({t / min(peers):.2f}x)")
                )
    c, to, jx = (
        med("S", "mgu", "tinyrnn/compiled"),
        med("S", "mgu", "torch/ops"),
        jax_ms("S", "mgu"),
    )
    if c and to:
        line = f"- custom MGU S: compiled {c:.3g} ms; 10x faster than torch ops ({to:.3g} ms): "
        line += "met" if c * 10 <= to else f"NOT met ({to / c:.1f}x)"
        if jx:
            line += f"; within 1.2x of jax ({jx:.3g} ms, {src}): "
            line += "met" if c <= 1.2 * jx else f"NOT met ({c / jx:.2f}x)"
        out.append(line)
    for size in ("M", "L"):
        for cell in ("rnn", "lstm", "gru"):
            c, tf = med(size, cell, "tinyrnn/compiled"), med(size, cell, "torch/fused")
            if c and tf:
                out.append(
                    f"- {cell} written as a custom cell, {size}: compiled {c:.3g} ms vs torch "
                    f"fused {tf:.3g} ms: " + ("met" if c <= tf else f"NOT met ({c / tf:.2f}x)")
                )
    ov = rep.get("overhead", {})
    if _ok(ov.get("tinyrnn")) and _ok(ov.get("torch")):
        a, b = ov["tinyrnn"]["us_per_op"], ov["torch"]["us_per_op"]
        out.append(
            f"- per-op overhead: tinyrnn {a:.2f} µs vs torch eager {b:.2f} µs per op (target: at "
            "most half): " + ("met" if a <= b / 2 else f"NOT met ({a / b:.2f}x)")
        )
    mem = {(x["impl"], x["steps"]): x.get("peak_delta_mib") for x in rep.get("memory", [])}
    f_mem = mem.get(("torch/fused", 1000))
    for impl in dict.fromkeys(("tinyrnn/sequence", "tinyrnn/compiled", _default_impl(rep, "lstm"))):
        t_mem = mem.get((impl, 1000))
        if t_mem and f_mem:
            out.append(
                f"- memory at T=1000, {impl}: {t_mem:.0f} MiB vs torch fused LSTM {f_mem:.0f} MiB: "
                + ("met" if t_mem <= f_mem else "NOT met")
            )
    second = rep.get("compile", {}).get("second_process", {})
    if "first_step_s" in second:
        out.append(
            "- a second process reuses the cache: first compiled step "
            f"{second['first_step_s']:.2f} s, "
            f"{second['to_first_step_s']:.2f} s from start including imports (target: training "
            "starts in under a second): " + ("met" if second["first_step_s"] < 1.0 else "NOT met")
        )
    return [*out, ""]


if __name__ == "__main__":
    sys.exit(main())

"""Time to draw the graph of a long unrolled sequence, and the size of the picture.

Builds the training graph of ``nn.LSTM`` over ``--steps`` time steps (default 10,000; one
sequence, input 4, hidden 8), fused and op by op, and of a hand-written ``Value`` chain, then
times ``tr.viz.draw(loss)`` with default options (``max_nodes=2000``): reading the graph,
grouping the steps, shrinking the picture to the cap (collapsed cells, first and last steps
kept) and writing the DOT text. Rendering is timed separately when a renderer is installed.
The claim checked: drawing finishes in well under 10 s and the picture is bounded.

Run: ``python3 benchmarks/bench_viz.py [--steps 10000] [--layers 2] [--render]``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tinyrnn as tr  # noqa: E402

LIMIT_S = 10.0


def count(source: str) -> tuple[int, int]:
    """Nodes and edges in DOT text (one statement per line)."""
    nodes = len(re.findall(r"^\s*\w+ \[label=", source, re.M))
    edges = len(re.findall(r"^\s*\w+ -> \w+", source, re.M))
    return nodes, edges


def lstm_graph(steps: int, layers: int, fused: bool) -> tuple[object, object]:
    tr.manual_seed(0)
    lstm = tr.nn.LSTM(4, 8, num_layers=layers, fused=fused)
    out, _ = lstm(tr.randn(steps, 1, 4))
    return lstm, (out * out).mean()


def value_chain(steps: int) -> object:
    h = tr.Value(0.1, label="h0")
    w = tr.Value(0.9, label="w")
    for t in range(steps):
        with tr.scope(f"rnn.t{t}"):
            h = (h * w + 0.1).tanh()
    return h


def bench(name: str, root: object, render: bool) -> bool:
    t0 = time.perf_counter()
    dot = tr.viz.draw(root)
    dt = time.perf_counter() - t0
    nodes, edges = count(dot.source)
    line = f"{name:<34} draw {dt:6.2f} s   picture: {nodes:5d} nodes {edges:5d} edges"
    if render and tr.viz.find_renderer() is not None:
        from tinyrnn.viz import renderer

        t0 = time.perf_counter()
        svg = renderer.run_renderer(tr.viz.find_renderer(), dot.source, "svg")
        line += f"   svg {time.perf_counter() - t0:5.2f} s ({len(svg) // 1024} KiB)"
    print(line)
    return dt < LIMIT_S and nodes <= 2000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--render", action="store_true", help="also time rendering to SVG")
    args = ap.parse_args()
    ok = True
    for fused in (True, False):
        t0 = time.perf_counter()
        lstm, loss = lstm_graph(args.steps, args.layers, fused)
        build = time.perf_counter() - t0
        kind = "fused" if fused else "op by op"
        print(f"LSTM {args.layers}x{args.steps} steps {kind}: graph built in {build:.1f} s")
        ok &= bench(f"  draw(loss), {kind}", loss, args.render)
        del lstm, loss
    ok &= bench(f"Value chain, {args.steps} steps", value_chain(args.steps), args.render)
    print("OK" if ok else f"FAILED: a draw took {LIMIT_S} s or more, or exceeded max_nodes")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The seed article's worked example, computed by tinyrnn: two steps of a 2-unit tanh RNN.

    h_t = tanh(W_h x_t + U_h h_{t-1} + b_h),  h_0 = 0,  x_1 = (1, 0),  x_2 = (0, 1)

The article gets h_1 = (0.537, 0.462) right, then slips in step 2: it writes
U_h h_1 = (0.1854, 0.7552) where 0.1*0.537 + 0.4*0.462 = 0.2385 and 0.6*0.537 + 0.7*0.462 =
0.6456, so its h_2 = (0.515, 0.942) should be (0.4919, 0.9283). Here tinyrnn computes both
steps, then backpropagates a loss through time (the article stops before that), and draws the
network one neuron per node. ``tinyrnn seed-example`` prints the same walk-through in more
detail.

Run: python examples/seed_example.py [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import tinyrnn as tr


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tinyrnn-out/examples"))
    parser.add_argument("--quick", action="store_true", help="accepted for symmetry; as fast")
    args = parser.parse_args(argv)

    # ---- the article's numbers, as float64 tensors; the weights are leaves we want dL/d of ----
    W_h = tr.tensor([[0.5, 0.2], [0.3, 0.8]], dtype=tr.float64, requires_grad=True)
    U_h = tr.tensor([[0.1, 0.4], [0.6, 0.7]], dtype=tr.float64, requires_grad=True)
    b_h = tr.tensor([0.1, 0.2], dtype=tr.float64, requires_grad=True)
    xs = [tr.tensor([1.0, 0.0], dtype=tr.float64), tr.tensor([0.0, 1.0], dtype=tr.float64)]
    h = tr.zeros(2, dtype=tr.float64)

    # ---- forward: unfold the recurrence over the two steps ----
    hs = []
    for t, x in enumerate(xs, start=1):
        with tr.scope(f"rnn.t{t}"):  # groups the step's nodes in pictures
            pre = W_h @ x + U_h @ h + b_h
            h = pre.tanh()
        h.retain_grad()  # keep dL/dh_t, although h_t is not a leaf
        hs.append(h)
        print(f"h{t} = tanh({pre.numpy().round(4)}) = {h.numpy().round(4)}")
    print(f"U_h h1 = {(U_h @ hs[0]).numpy().round(4)}  (the article has [0.1854 0.7552])")

    # ---- backward through time, for the loss L = h2[0] + h2[1] ----
    loss = h.sum()
    loss.backward()
    for t, h_t in enumerate(hs, start=1):
        print(f"dL/dh{t} = {h_t.grad.numpy().round(4)}")
    print(f"dL/dW_h =\n{W_h.grad.numpy().round(4)}\ndL/dU_h =\n{U_h.grad.numpy().round(4)}")
    print(f"dL/db_h = {b_h.grad.numpy().round(4)}")

    # the same gradient by hand: both steps add a term, since W_h is shared across time
    h1, h2 = hs[0].numpy(), hs[1].numpy()
    dpre2 = 1 - h2**2  # dL/dh2 = (1, 1), times tanh'
    dpre1 = (1 - h1**2) * (U_h.numpy().T @ dpre2)
    by_hand = np.outer(dpre2, xs[1].numpy()) + np.outer(dpre1, xs[0].numpy())
    print(f"dL/dW_h by hand matches: {np.allclose(by_hand, W_h.grad.numpy())}")

    # ---- the same two steps with scalars: one Value per weight and per unit ----
    def values(name: str, t: tr.Tensor) -> list:
        return [tr.Value(float(v), label=f"{name}[{i}]") for i, v in enumerate(t.numpy())]

    W = [values(f"W_h[{i}]", W_h[i]) for i in (0, 1)]  # labels W_h[0][0], W_h[0][1], ...
    U = [values(f"U_h[{i}]", U_h[i]) for i in (0, 1)]
    b = values("b_h", b_h)
    hv = [tr.Value(0.0, label=f"h0[{i}]", requires_grad=False) for i in (0, 1)]
    with tr.viz.record_grads():  # keep every intermediate gradient for the picture
        for t, x in enumerate(xs, start=1):
            x1, x2 = x.tolist()
            with tr.scope(f"rnn.t{t}"):
                hv = [
                    (W[i][0] * x1 + W[i][1] * x2 + U[i][0] * hv[0] + U[i][1] * hv[1] + b[i]).tanh()
                    for i in (0, 1)
                ]
        neuron_loss = hv[0] + hv[1]
        neuron_loss.backward()
    args.out.mkdir(parents=True, exist_ok=True)
    picture = tr.viz.render(neuron_loss, args.out / "seed_example_neurons.svg", grads=True)
    print(f"neuron-level picture: {picture}")

    return {
        "h1": h1,
        "h2": h2,
        "dL_dW": W_h.grad.numpy(),
        "dL_dW_by_hand": by_hand,
        "neuron_h2": np.array([v.data for v in hv]),
        "neuron_dL_dW": np.array([[w.grad for w in row] for row in W]),
        "picture": picture,
    }


if __name__ == "__main__":
    main()

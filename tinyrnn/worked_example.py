"""The seed article's worked example: a 2-unit tanh RNN run for two steps, forward and backward.

The article defines

    h_t = tanh(W_h x_t + U_h h_{t-1} + b_h),   h_0 = 0,   x_1 = (1, 0),   x_2 = (0, 1)

with W_h = [[0.5, 0.2], [0.3, 0.8]], U_h = [[0.1, 0.4], [0.6, 0.7]], b_h = (0.1, 0.2), and gets
h_1 = (0.537, 0.462) right. Its h_2 has arithmetic slips: it writes U_h h_1 = (0.1854, 0.7552),
but 0.1*0.537 + 0.4*0.462 = 0.2385 and 0.6*0.537 + 0.7*0.462 = 0.6456 (0.2386 and 0.6457
with h_1 unrounded), and its sum 0.2 + 0.1854 + 0.1 is 0.4854, not 0.5702. The pre-activation is
(0.5386, 1.6457) and h_2 = (0.4919, 0.9283), not (0.515, 0.942). The article stops at the
forward pass; here the loss ``L = h_2[0] + h_2[1]`` (any scalar would do) is backpropagated
through time, once by tinyrnn and once by hand, and the two agree.

``compute()`` does it with vector ``Tensor``s; ``neuron_graph()`` builds the same network one
``Value`` per neuron and weight, for the neuron-level picture; ``report()`` writes the steps out.

>>> from tinyrnn.worked_example import compute
>>> r = compute()
>>> r["h2"].round(4).tolist()
[0.4919, 0.9283]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import Value, scope, tensor

W_H = [[0.5, 0.2], [0.3, 0.8]]
U_H = [[0.1, 0.4], [0.6, 0.7]]
B_H = [0.1, 0.2]
X = [[1.0, 0.0], [0.0, 1.0]]  # x_1, x_2
H0 = [0.0, 0.0]

# What the article prints for the second step (the slips corrected by ``compute``).
ARTICLE_H1 = (0.537, 0.462)
ARTICLE_UH_H1 = (0.1854, 0.7552)
ARTICLE_PRE2 = (0.5702, 1.7552)
ARTICLE_H2 = (0.515, 0.942)


def compute() -> dict[str, Any]:
    """Run the two steps with tinyrnn tensors (float64) and backpropagate ``L = sum(h_2)``.

    Returns:
        A dict of NumPy arrays: the pieces of each step (``Wx1, Uh0, pre1, h1, Wx2, Uh1, pre2,
        h2``), the loss ``L`` (a float), the hidden-state gradients ``dL_dh2, dL_dh1`` and the
        weight gradients ``dL_dW, dL_dU, dL_db``, all computed by tinyrnn's backward pass.

    >>> from tinyrnn.worked_example import compute
    >>> r = compute()
    >>> r["h1"].round(4).tolist(), r["Uh1"].round(4).tolist()
    ([0.537, 0.4621], [0.2386, 0.6457])
    """
    f64 = np.float64
    W = tensor(W_H, dtype=f64, requires_grad=True)
    U = tensor(U_H, dtype=f64, requires_grad=True)
    b = tensor(B_H, dtype=f64, requires_grad=True)
    x1, x2 = tensor(X[0], dtype=f64), tensor(X[1], dtype=f64)
    h0 = tensor(H0, dtype=f64)
    with scope("rnn.t1"):
        Wx1, Uh0 = W @ x1, U @ h0
        pre1 = Wx1 + Uh0 + b
        h1 = pre1.tanh()
    with scope("rnn.t2"):
        Wx2, Uh1 = W @ x2, U @ h1
        pre2 = Wx2 + Uh1 + b
        h2 = pre2.tanh()
    h1.retain_grad()
    h2.retain_grad()
    loss = h2.sum()
    loss.backward()
    steps = {"Wx1": Wx1, "Uh0": Uh0, "pre1": pre1, "h1": h1}
    steps.update({"Wx2": Wx2, "Uh1": Uh1, "pre2": pre2, "h2": h2})
    out: dict[str, Any] = {k: v.numpy().copy() for k, v in steps.items()}
    out["L"] = float(loss.item())
    grads = {"dL_dh2": h2, "dL_dh1": h1, "dL_dW": W, "dL_dU": U, "dL_db": b}
    out.update({k: np.asarray(v.grad) for k, v in grads.items()})
    return out


def by_hand(r: dict[str, Any]) -> dict[str, np.ndarray]:
    """Backpropagation through time for the two steps, written out with NumPy.

    ``d pre_2 = (1 - h_2^2) * dL/dh_2``, ``dL/dh_1 = U^T d pre_2``, ``d pre_1 = (1 - h_1^2) *
    dL/dh_1``; then ``dL/dW = d pre_2 x_2^T + d pre_1 x_1^T``, ``dL/dU = d pre_2 h_1^T + d pre_1
    h_0^T`` and ``dL/db = d pre_2 + d pre_1``: each shared weight sums one term per time step.

    >>> from tinyrnn.worked_example import by_hand, compute
    >>> r = compute(); g = by_hand(r)
    >>> bool(np.allclose(g["dL_dW"], r["dL_dW"]))
    True
    """
    U = np.array(U_H)
    x1, x2, h0 = np.array(X[0]), np.array(X[1]), np.array(H0)
    h1, h2 = r["h1"], r["h2"]
    dh2 = np.ones(2)
    dpre2 = (1 - h2**2) * dh2
    dh1 = U.T @ dpre2
    dpre1 = (1 - h1**2) * dh1
    return {
        "dL_dh2": dh2,
        "dpre2": dpre2,
        "dL_dh1": dh1,
        "dpre1": dpre1,
        "dL_dW": np.outer(dpre2, x2) + np.outer(dpre1, x1),
        "dL_dU": np.outer(dpre2, h1) + np.outer(dpre1, h0),
        "dL_db": dpre2 + dpre1,
    }


def neuron_graph() -> tuple[Value, dict[str, Value]]:
    """Build the same two steps with one ``Value`` per weight and neuron, and backpropagate.

    Each step runs inside ``tr.scope("rnn.t1")`` / ``("rnn.t2")``, so a picture groups it into
    one cluster, and the 12 weights are shared leaves used by both steps.

    Returns:
        ``(L, values)``: the loss Value (after ``backward``) and a dict of the named Values
        (``"W[0,1]"``, ``"h1[0]"``, ``"h2[1]"``, ...).

    >>> from tinyrnn.worked_example import neuron_graph
    >>> L, v = neuron_graph()
    >>> round(v["h2[0]"].data, 4), round(v["W[0,0]"].grad, 4)
    (0.4919, 0.113)
    """
    values: dict[str, Value] = {}

    def leaf(name: str, number: float, requires_grad: bool = True) -> Value:
        values[name] = Value(number, label=name, requires_grad=requires_grad)
        return values[name]

    W = [[leaf(f"W[{i},{j}]", W_H[i][j]) for j in range(2)] for i in range(2)]
    U = [[leaf(f"U[{i},{j}]", U_H[i][j]) for j in range(2)] for i in range(2)]
    b = [leaf(f"b[{i}]", B_H[i]) for i in range(2)]
    h = [leaf(f"h0[{i}]", H0[i], requires_grad=False) for i in range(2)]
    for t in (1, 2):
        x = [leaf(f"x{t}[{j}]", X[t - 1][j], requires_grad=False) for j in range(2)]
        with scope(f"rnn.t{t}"):
            new_h = []
            for i in range(2):
                pre = W[i][0] * x[0] + W[i][1] * x[1] + U[i][0] * h[0] + U[i][1] * h[1] + b[i]
                hi = pre.tanh()
                hi.label = f"h{t}[{i}]"
                values[hi.label] = hi
                new_h.append(hi)
        h = new_h
    loss = h[0] + h[1]
    loss.label = "L"
    loss.backward()
    return loss, values


def _vec(a: Any, digits: int = 4) -> str:
    return "(" + ", ".join(f"{float(v):.{digits}f}" for v in np.ravel(a)) + ")"


def _mat(a: Any, digits: int = 4) -> str:
    return "[" + "; ".join(" ".join(f"{float(v):.{digits}f}" for v in row) for row in a) + "]"


def report(r: dict[str, Any]) -> str:
    """The worked example as text: each step's numbers, the article's slip, and the gradients.

    >>> from tinyrnn.worked_example import compute, report
    >>> "= (0.2386, 0.6457)" in report(compute())
    True
    """
    g = by_hand(r)
    h1 = r["h1"]
    rounded_uh1 = np.array(U_H) @ np.array(ARTICLE_H1)
    agree = all(
        np.allclose(g[k], r[k], rtol=1e-12, atol=1e-12)
        for k in ("dL_dh2", "dL_dh1", "dL_dW", "dL_dU", "dL_db")
    )
    lines = [
        "The article's RNN: h_t = tanh(W_h x_t + U_h h_{t-1} + b_h), two hidden units",
        f"  W_h = {_mat(W_H, 1)}   U_h = {_mat(U_H, 1)}   b_h = {_vec(B_H, 1)}",
        f"  x1 = {_vec(X[0], 0)}   x2 = {_vec(X[1], 0)}   h0 = {_vec(H0, 0)}",
        "",
        "Step 1 (forward)",
        f"  W_h x1 = {_vec(r['Wx1'])}   U_h h0 = {_vec(r['Uh0'])}",
        f"  W_h x1 + U_h h0 + b_h = {_vec(r['pre1'])}",
        f"  h1 = tanh(...) = {_vec(r['h1'])}        (article: {_vec(ARTICLE_H1, 3)}, right)",
        "",
        "Step 2 (forward)",
        f"  W_h x2 = {_vec(r['Wx2'])}",
        f"  U_h h1 = ({U_H[0][0]}*{h1[0]:.4f} + {U_H[0][1]}*{h1[1]:.4f}, "
        f"{U_H[1][0]}*{h1[0]:.4f} + {U_H[1][1]}*{h1[1]:.4f}) = {_vec(r['Uh1'])}",
        f"    The article has U_h h1 = {_vec(ARTICLE_UH_H1)}: an arithmetic slip; with its rounded",
        f"    h1 = {_vec(ARTICLE_H1, 3)} the same sums give {_vec(rounded_uh1)}.",
        f"  W_h x2 + U_h h1 + b_h = {_vec(r['pre2'])}",
        f"    The article has {_vec(ARTICLE_PRE2)}; even from its own terms the first entry is",
        f"    0.2 + {ARTICLE_UH_H1[0]} + 0.1 = {0.3 + ARTICLE_UH_H1[0]:.4f}.",
        f"  h2 = tanh(...) = {_vec(r['h2'])}        (article: {_vec(ARTICLE_H2, 3)})",
        "",
        f"Loss (a stand-in; the article has none): L = h2[0] + h2[1] = {r['L']:.4f}",
        "",
        "Backward through time (tinyrnn's backward pass; the hand formulas give the same)",
        f"  dL/dh2 = {_vec(r['dL_dh2'])}",
        f"  dL/d(pre2) = (1 - h2^2) * dL/dh2 = {_vec(g['dpre2'])}"
        "   (the saturated unit passes little back)",
        f"  dL/dh1 = U_h^T dL/d(pre2) = {_vec(r['dL_dh1'])}",
        f"  dL/d(pre1) = (1 - h1^2) * dL/dh1 = {_vec(g['dpre1'])}",
        f"  dL/dW_h = dpre2 x2^T + dpre1 x1^T = {_mat(r['dL_dW'])}",
        f"  dL/dU_h = dpre2 h1^T + dpre1 h0^T = {_mat(r['dL_dU'])}",
        f"  dL/db_h = dpre2 + dpre1 = {_vec(r['dL_db'])}",
        f"  tinyrnn's gradients equal the hand-derived ones: {'yes' if agree else 'NO'}",
    ]
    return "\n".join(lines)


def render_pictures(out_dir: str | Path) -> list[Path]:
    """Write the neuron-level graph (one node per weight and unit, gradients shown) and the
    vector-level unrolled graph of the two steps into ``out_dir``; return the written paths.

    Uses ``tr.viz.render``; without a Graphviz renderer that writes ``.dot`` files instead.
    """
    from . import viz

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with viz.record_grads():  # keep every intermediate gradient for the pictures
        loss, _ = neuron_graph()
        vector_loss = _vector_loss()
    written = [_render(viz, loss, out / "seed_neurons.svg", grads=True)]
    written.append(_render(viz, vector_loss, out / "seed_unrolled.svg", grads=True))
    return written


def _vector_loss() -> Any:
    f64 = np.float64
    W = tensor(W_H, dtype=f64, requires_grad=True)
    U = tensor(U_H, dtype=f64, requires_grad=True)
    b = tensor(B_H, dtype=f64, requires_grad=True)
    W.name, U.name, b.name = "W_h", "U_h", "b_h"
    h = tensor(H0, dtype=f64)
    h.name = "h0"
    for t in (1, 2):
        x = tensor(X[t - 1], dtype=f64)
        x.name = f"x{t}"
        with scope(f"rnn.t{t}"):
            h = (W @ x + U @ h + b).tanh()
        h.name = f"h{t}"
    loss = h.sum()
    loss.name = "L"
    loss.backward(retain_graph=True)
    return loss


def _render(viz: Any, root: Any, path: Path, **options: Any) -> Path:
    result = viz.render(root, path, format="svg", **options)
    return Path(result) if result is not None else path

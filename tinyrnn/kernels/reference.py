"""Plain-NumPy kernels: the specification and test oracle of every jitted kernel.

Each function here has a twin of the same name and signature in ``jit.py``; the examples here
hold for both. Kernels are pure functions of arrays and scalars: no tensors, no graph. Shape
letters: ``B`` batch, ``H`` hidden, ``C`` classes. Element-wise kernels accept arrays of any
shape (0-d included); row-wise kernels take 2-D arrays and work along the last axis.
"""

from __future__ import annotations

import numpy as np

# ---- element-wise activations ----


def sigmoid_fwd(x):
    """y = 1 / (1 + exp(-x)), computed without overflow for large |x|. Float inputs keep their
    dtype; integer inputs give float64 (as ``np.tanh`` does).

    >>> sigmoid_fwd(np.array([-1000.0, 0.0, 1000.0])).tolist()
    [0.0, 0.5, 1.0]
    >>> sigmoid_fwd(np.array([0])).dtype
    dtype('float64')
    """
    e = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return y.astype(x.dtype, copy=False) if x.dtype.kind == "f" else y


def sigmoid_bwd(y, grad_output):
    """dL/dx = g * y * (1 - y), from the saved output y.

    >>> sigmoid_bwd(np.array([0.5]), np.array([2.0])).tolist()
    [0.5]
    """
    return grad_output * y * (1 - y)


def tanh_bwd(y, grad_output):
    """dL/dx = g * (1 - y**2), from the saved output y.

    >>> tanh_bwd(np.array([0.0, 1.0]), np.array([3.0, 3.0])).tolist()
    [3.0, 0.0]
    """
    return grad_output * (1 - y * y)


def relu_bwd(x, grad_output):
    """dL/dx = g where x > 0, else 0 (0 at x == 0, as PyTorch).

    >>> relu_bwd(np.array([-1.0, 0.0, 2.0]), np.array([5.0, 5.0, 5.0])).tolist()
    [0.0, 0.0, 5.0]
    """
    return np.where(x > 0, grad_output, 0).astype(grad_output.dtype, copy=False)


# ---- row-wise softmax family (2-D, along the last axis) ----


def log_softmax_fwd(x):
    """y_ij = x_ij - max_j x_ij - log sum_j exp(x_ij - max_j x_ij).

    >>> np.exp(log_softmax_fwd(np.array([[1000.0, 1000.0]]))).tolist()
    [[0.5, 0.5]]
    """
    m = x.max(axis=1, keepdims=True) if x.shape[1] else np.zeros((x.shape[0], 1), x.dtype)
    s = x - m
    with np.errstate(divide="ignore"):  # rows of no elements: log(0), on an empty result
        return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def log_softmax_bwd(y, grad_output):
    """dL/dx = g - softmax(x) * sum_j g_ij, from the saved output y = log_softmax(x).

    >>> y = log_softmax_fwd(np.zeros((1, 2)))
    >>> log_softmax_bwd(y, np.array([[1.0, 0.0]])).tolist()
    [[0.5, -0.5]]
    """
    return grad_output - np.exp(y) * grad_output.sum(axis=1, keepdims=True)


def softmax_fwd(x):
    """y_ij = exp(x_ij - max_j x_ij) / sum_j exp(x_ij - max_j x_ij).

    >>> softmax_fwd(np.array([[0.0, 0.0], [1000.0, 0.0]])).tolist()
    [[0.5, 0.5], [1.0, 0.0]]
    """
    m = x.max(axis=1, keepdims=True) if x.shape[1] else np.zeros((x.shape[0], 1), x.dtype)
    e = np.exp(x - m)
    return e / e.sum(axis=1, keepdims=True)


def softmax_bwd(y, grad_output):
    """dL/dx = y * (g - sum_j g_ij y_ij), from the saved output y.

    >>> softmax_bwd(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]])).tolist()
    [[0.25, -0.25]]
    """
    return y * (grad_output - (grad_output * y).sum(axis=1, keepdims=True))


def cross_entropy_fwd(x, target, ignore_index):
    """Per-row loss -log softmax(x)[target] (0 for ignored rows) and the softmax probabilities.

    x: (B, C) logits; target: (B,) int64 class ids. Returns (loss (B,), probs (B, C)).

    >>> loss, probs = cross_entropy_fwd(np.zeros((2, 2)), np.array([1, -100]), -100)
    >>> [round(v, 4) for v in loss.tolist()], probs.tolist()
    ([0.6931, 0.0], [[0.5, 0.5], [0.5, 0.5]])
    """
    logp = log_softmax_fwd(x)
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    rows = np.arange(x.shape[0])
    loss = np.where(keep, -logp[rows, safe], 0).astype(x.dtype, copy=False)
    return loss, np.exp(logp)


def cross_entropy_bwd(probs, target, ignore_index, grad_rows):
    """dL/dx_ij = g_i * (p_ij - [j == t_i]), and 0 on ignored rows. grad_rows: (B,).

    >>> cross_entropy_bwd(np.full((2, 2), 0.5), np.array([1, -100]), -100, np.ones(2)).tolist()
    [[0.5, -0.5], [0.0, 0.0]]
    """
    keep = target != ignore_index
    dx = probs.copy()
    rows = np.arange(probs.shape[0])
    dx[rows[keep], target[keep]] -= 1
    return dx * np.where(keep, grad_rows, 0).astype(probs.dtype, copy=False)[:, None]


# ---- fused recurrent cell steps ----


def lstm_cell_fwd(gates, c_prev):
    """One LSTM step after the affine part. gates: (B, 4H) pre-activations in order i, f, g, o.

    i, f, o = sigmoid(.), g = tanh(.); c = f * c_prev + i * g; h = o * tanh(c).
    Returns (h, c, acts, tanh_c) with acts (B, 4H) the activated gates, saved for backward.

    >>> h, c, acts, tanh_c = lstm_cell_fwd(np.zeros((1, 4)), np.ones((1, 1)))
    >>> c.tolist(), acts.tolist()   # i = f = o = 0.5, g = 0: c = 0.5 * 1 + 0.5 * 0
    ([[0.5]], [[0.5, 0.5, 0.0, 0.5]])
    """
    H = c_prev.shape[1]
    acts = np.empty_like(gates)
    acts[:, : 2 * H] = sigmoid_fwd(gates[:, : 2 * H])
    acts[:, 2 * H : 3 * H] = np.tanh(gates[:, 2 * H : 3 * H])
    acts[:, 3 * H :] = sigmoid_fwd(gates[:, 3 * H :])
    i, f, g, o = acts[:, :H], acts[:, H : 2 * H], acts[:, 2 * H : 3 * H], acts[:, 3 * H :]
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    return o * tanh_c, c, acts, tanh_c


def lstm_cell_bwd(acts, c_prev, tanh_c, grad_h, grad_c):
    """Backward of ``lstm_cell_fwd``: returns (grad_gates (B, 4H), grad_c_prev (B, H)).

    >>> h, c, acts, tanh_c = lstm_cell_fwd(np.zeros((1, 4)), np.ones((1, 1)))
    >>> g_h, g_c = np.zeros((1, 1)), np.ones((1, 1))
    >>> dgates, dc_prev = lstm_cell_bwd(acts, np.ones((1, 1)), tanh_c, g_h, g_c)
    >>> dc_prev.tolist()   # dc/dc_prev = f = 0.5
    [[0.5]]
    """
    H = c_prev.shape[1]
    i, f, g, o = acts[:, :H], acts[:, H : 2 * H], acts[:, 2 * H : 3 * H], acts[:, 3 * H :]
    dc = grad_c + grad_h * o * (1 - tanh_c * tanh_c)
    dgates = np.empty_like(acts)
    dgates[:, :H] = dc * g * i * (1 - i)
    dgates[:, H : 2 * H] = dc * c_prev * f * (1 - f)
    dgates[:, 2 * H : 3 * H] = dc * i * (1 - g * g)
    dgates[:, 3 * H :] = grad_h * tanh_c * o * (1 - o)
    return dgates, dc * f


def gru_cell_fwd(gi, gh, h_prev):
    """One GRU step after the affine parts (PyTorch's formulation, gates r, z, n).

    gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh, both (B, 3H).
    r = sigmoid(gi_r + gh_r); z = sigmoid(gi_z + gh_z); n = tanh(gi_n + r * gh_n);
    h = (1 - z) * n + z * h_prev. Returns (h, acts) with acts (B, 3H) = [r, z, n].

    >>> h, acts = gru_cell_fwd(np.zeros((1, 3)), np.zeros((1, 3)), np.ones((1, 1)))
    >>> h.tolist(), acts.tolist()   # r = z = 0.5, n = 0: h = 0.5 * 0 + 0.5 * 1
    ([[0.5]], [[0.5, 0.5, 0.0]])
    """
    H = h_prev.shape[1]
    acts = np.empty_like(gi)
    acts[:, : 2 * H] = sigmoid_fwd(gi[:, : 2 * H] + gh[:, : 2 * H])
    r, z = acts[:, :H], acts[:, H : 2 * H]
    acts[:, 2 * H :] = np.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
    n = acts[:, 2 * H :]
    return (1 - z) * n + z * h_prev, acts


def gru_cell_bwd(acts, gh, h_prev, grad_h):
    """Backward of ``gru_cell_fwd``: returns (grad_gi (B, 3H), grad_gh (B, 3H), grad_h_prev).

    >>> h, acts = gru_cell_fwd(np.zeros((1, 3)), np.zeros((1, 3)), np.ones((1, 1)))
    >>> dgi, dgh, dh_prev = gru_cell_bwd(acts, np.zeros((1, 3)), np.ones((1, 1)), np.ones((1, 1)))
    >>> dh_prev.tolist()   # dh/dh_prev = z = 0.5
    [[0.5]]
    """
    H = h_prev.shape[1]
    r, z, n = acts[:, :H], acts[:, H : 2 * H], acts[:, 2 * H :]
    dn = grad_h * (1 - z) * (1 - n * n)
    dz = grad_h * (h_prev - n) * z * (1 - z)
    dr = dn * gh[:, 2 * H :] * r * (1 - r)
    dgi = np.empty_like(acts)
    dgi[:, :H] = dr
    dgi[:, H : 2 * H] = dz
    dgi[:, 2 * H :] = dn
    dgh = dgi.copy()
    dgh[:, 2 * H :] = dn * r
    return dgi, dgh, grad_h * z

"""Numba-jitted kernels, twins of ``reference.py`` (same names, signatures and results).

Each kernel is one pass over memory with no temporaries. They are compiled on first call and
cached on disk (``cache=True``); where the package folder cannot hold a cache and no other cache
folder is writable, they are compiled in memory instead of failing at import.
"""

from __future__ import annotations

import numba
import numpy as np


def _njit(fn):
    """``numba.njit(cache=True)``, falling back to no cache where no cache locator is writable."""
    try:
        return numba.njit(cache=True)(fn)
    except RuntimeError:
        return numba.njit(cache=False)(fn)


# ---- element-wise activations: NumPy ufuncs made by Numba ----


class _Ufunc:
    """An element-wise kernel compiled by ``numba.vectorize`` into a NumPy ufunc (float32 and
    float64 loops, cached on disk like the other kernels), built on its first call.

    The ufunc's loop is called by NumPy from C: on a 4x4 array that is about 0.3 us a call,
    against 0.8 us through a Numba dispatcher, which matters for the small arrays of
    op-by-op graphs. It broadcasts, takes any strides, promotes integer inputs to the
    float64 loop and, like NumPy's own ufuncs, returns a NumPy scalar for 0-d inputs. Once
    built, ``tinyrnn.kernels`` refers to the ufunc itself (``.ufunc``); ``.py_func`` is the
    Python source and ``.dufunc`` Numba's object.
    """

    def __init__(self, fn, signatures: list[str]):
        self.py_func = fn
        self.signatures = signatures
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.dufunc = None
        self.ufunc: np.ufunc | None = None

    def build(self) -> np.ufunc:
        try:
            self.dufunc = numba.vectorize(self.signatures, cache=True)(self.py_func)
        except RuntimeError:  # no writable cache locator: compile in memory
            self.dufunc = numba.vectorize(self.signatures, cache=False)(self.py_func)
        self.ufunc = self.dufunc.ufunc
        from .. import kernels

        if vars(kernels).get(self.__name__) is self:  # (not after a switch of backend)
            setattr(kernels, self.__name__, self.ufunc)
        return self.ufunc

    def __call__(self, *args):
        return (self.ufunc or self.build())(*args)


def _vectorize(nargs: int):
    sigs = [f"{t}({', '.join([t] * nargs)})" for t in ("float32", "float64")]
    return lambda fn: _Ufunc(fn, sigs)


@_vectorize(1)
def sigmoid_fwd(x):
    """y = 1 / (1 + exp(-x)), computed without overflow for large |x|."""
    if x >= 0:
        return 1 / (1 + np.exp(-x))
    e = np.exp(x)
    return e / (1 + e)


@_vectorize(2)
def sigmoid_bwd(y, grad_output):
    """dL/dx = g * y * (1 - y), from the saved output y."""
    return grad_output * y * (1 - y)


@_vectorize(2)
def tanh_bwd(y, grad_output):
    """dL/dx = g * (1 - y**2), from the saved output y."""
    return grad_output * (1 - y * y)


@_vectorize(2)
def relu_bwd(x, grad_output):
    """dL/dx = g where x > 0, else 0 (0 at x == 0, as PyTorch)."""
    return grad_output if x > 0 else 0.0


# ---- row-wise softmax family (2-D, along the last axis) ----


@_njit
def log_softmax_fwd(x):
    """y_ij = x_ij - max_j x_ij - log sum_j exp(x_ij - max_j x_ij)."""
    B, C = x.shape
    out = np.empty_like(x)
    if C == 0:  # rows of no elements: nothing to normalise
        return out
    for b in range(B):
        m = -np.inf
        for j in range(C):
            m = max(m, x[b, j])
        s = 0.0
        for j in range(C):
            s += np.exp(x[b, j] - m)
        lse = m + np.log(s)
        for j in range(C):
            out[b, j] = x[b, j] - lse
    return out


@_njit
def log_softmax_bwd(y, grad_output):
    """dL/dx = g - softmax(x) * sum_j g_ij, from the saved output y = log_softmax(x)."""
    B, C = y.shape
    out = np.empty_like(grad_output)
    for b in range(B):
        s = 0.0
        for j in range(C):
            s += grad_output[b, j]
        for j in range(C):
            out[b, j] = grad_output[b, j] - np.exp(y[b, j]) * s
    return out


@_njit
def softmax_fwd(x):
    """y_ij = exp(x_ij - max_j x_ij) / sum_j exp(x_ij - max_j x_ij)."""
    B, C = x.shape
    out = np.empty_like(x)
    for b in range(B):
        m = -np.inf
        for j in range(C):
            m = max(m, x[b, j])
        s = 0.0
        for j in range(C):
            e = np.exp(x[b, j] - m)
            out[b, j] = e
            s += e
        for j in range(C):
            out[b, j] /= s
    return out


@_njit
def softmax_bwd(y, grad_output):
    """dL/dx = y * (g - sum_j g_ij y_ij), from the saved output y."""
    B, C = y.shape
    out = np.empty_like(grad_output)
    for b in range(B):
        s = 0.0
        for j in range(C):
            s += grad_output[b, j] * y[b, j]
        for j in range(C):
            out[b, j] = y[b, j] * (grad_output[b, j] - s)
    return out


@_njit
def cross_entropy_fwd(x, target, ignore_index):
    """Per-row loss -log softmax(x)[target] (0 for ignored rows) and the softmax probabilities.

    x: (B, C) logits; target: (B,) int64 class ids. Returns (loss (B,), probs (B, C)).
    """
    B, C = x.shape
    loss = np.zeros(B, dtype=x.dtype)
    probs = np.empty_like(x)
    for b in range(B):
        m = -np.inf
        for j in range(C):
            m = max(m, x[b, j])
        s = 0.0
        for j in range(C):
            s += np.exp(x[b, j] - m)
        lse = m + np.log(s)
        for j in range(C):
            probs[b, j] = np.exp(x[b, j] - lse)
        t = target[b]
        if t != ignore_index:
            loss[b] = lse - x[b, t]
    return loss, probs


@_njit
def cross_entropy_bwd(probs, target, ignore_index, grad_rows):
    """dL/dx_ij = g_i * (p_ij - [j == t_i]), and 0 on ignored rows. grad_rows: (B,)."""
    B, C = probs.shape
    dx = np.zeros_like(probs)
    for b in range(B):
        t = target[b]
        if t == ignore_index:
            continue
        g = grad_rows[b]
        for j in range(C):
            dx[b, j] = g * probs[b, j]
        dx[b, t] -= g
    return dx


# ---- fused recurrent cell steps ----


@_njit
def _sig(v):
    if v >= 0:
        return 1.0 / (1.0 + np.exp(-v))
    e = np.exp(v)
    return e / (1.0 + e)


@_njit
def _tanh(v):
    # tanh(v) = 2 sigmoid(2v) - 1, in float64. Numba has no vector maths library here and calls
    # libm's scalar tanh, measured about 6x slower than exp on the project machine; this form
    # is within a few units of 1e-16 of tanh (absolute), and saturates to +-1 without overflow.
    return 2.0 / (1.0 + np.exp(-2.0 * v)) - 1.0


@_njit
def lstm_cell_fwd(gates, c_prev):
    """One LSTM step after the affine part. gates: (B, 4H) pre-activations in order i, f, g, o.

    i, f, o = sigmoid(.), g = tanh(.); c = f * c_prev + i * g; h = o * tanh(c).
    Returns (h, c, acts, tanh_c) with acts (B, 4H) the activated gates, saved for backward.
    """
    B, H = c_prev.shape
    acts = np.empty_like(gates)
    h = np.empty_like(c_prev)
    c = np.empty_like(c_prev)
    tanh_c = np.empty_like(c_prev)
    for b in range(B):
        for k in range(H):
            i = _sig(gates[b, k])
            f = _sig(gates[b, H + k])
            g = _tanh(gates[b, 2 * H + k])
            o = _sig(gates[b, 3 * H + k])
            acts[b, k] = i
            acts[b, H + k] = f
            acts[b, 2 * H + k] = g
            acts[b, 3 * H + k] = o
            cc = f * c_prev[b, k] + i * g
            tc = _tanh(cc)
            c[b, k] = cc
            tanh_c[b, k] = tc
            h[b, k] = o * tc
    return h, c, acts, tanh_c


@_njit
def lstm_cell_bwd(acts, c_prev, tanh_c, grad_h, grad_c):
    """Backward of ``lstm_cell_fwd``: returns (grad_gates (B, 4H), grad_c_prev (B, H))."""
    B, H = c_prev.shape
    dgates = np.empty_like(acts)
    dc_prev = np.empty_like(c_prev)
    for b in range(B):
        for k in range(H):
            i = acts[b, k]
            f = acts[b, H + k]
            g = acts[b, 2 * H + k]
            o = acts[b, 3 * H + k]
            tc = tanh_c[b, k]
            gh = grad_h[b, k]
            dc = grad_c[b, k] + gh * o * (1 - tc * tc)
            dgates[b, k] = dc * g * i * (1 - i)
            dgates[b, H + k] = dc * c_prev[b, k] * f * (1 - f)
            dgates[b, 2 * H + k] = dc * i * (1 - g * g)
            dgates[b, 3 * H + k] = gh * tc * o * (1 - o)
            dc_prev[b, k] = dc * f
    return dgates, dc_prev


@_njit
def gru_cell_fwd(gi, gh, h_prev):
    """One GRU step after the affine parts (PyTorch's formulation, gates r, z, n).

    gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh, both (B, 3H).
    r = sigmoid(gi_r + gh_r); z = sigmoid(gi_z + gh_z); n = tanh(gi_n + r * gh_n);
    h = (1 - z) * n + z * h_prev. Returns (h, acts) with acts (B, 3H) = [r, z, n].
    """
    B, H = h_prev.shape
    acts = np.empty_like(gi)
    h = np.empty_like(h_prev)
    for b in range(B):
        for k in range(H):
            r = _sig(gi[b, k] + gh[b, k])
            z = _sig(gi[b, H + k] + gh[b, H + k])
            n = _tanh(gi[b, 2 * H + k] + r * gh[b, 2 * H + k])
            acts[b, k] = r
            acts[b, H + k] = z
            acts[b, 2 * H + k] = n
            h[b, k] = (1 - z) * n + z * h_prev[b, k]
    return h, acts


@_njit
def gru_cell_bwd(acts, gh, h_prev, grad_h):
    """Backward of ``gru_cell_fwd``: returns (grad_gi (B, 3H), grad_gh (B, 3H), grad_h_prev)."""
    B, H = h_prev.shape
    dgi = np.empty_like(acts)
    dgh = np.empty_like(acts)
    dh_prev = np.empty_like(h_prev)
    for b in range(B):
        for k in range(H):
            r = acts[b, k]
            z = acts[b, H + k]
            n = acts[b, 2 * H + k]
            g = grad_h[b, k]
            dn = g * (1 - z) * (1 - n * n)
            dz = g * (h_prev[b, k] - n) * z * (1 - z)
            dr = dn * gh[b, 2 * H + k] * r * (1 - r)
            dgi[b, k] = dr
            dgi[b, H + k] = dz
            dgi[b, 2 * H + k] = dn
            dgh[b, k] = dr
            dgh[b, H + k] = dz
            dgh[b, 2 * H + k] = dn * r
            dh_prev[b, k] = g * z
    return dgi, dgh, dh_prev

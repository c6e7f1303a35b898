"""Test cells written from tinyrnn ops, shared by the compiled-cell tests."""

from __future__ import annotations

import numpy as np

import tinyrnn as tr


def param(rng, *shape, scale=0.5):
    """A parameter of standard-normal entries times ``scale``."""
    return tr.nn.Parameter(tr.tensor(np.asarray(rng.standard_normal(shape) * scale)))


class LSTMFromOps(tr.nn.Module):
    """PyTorch's LSTM step (gates i, f, g, o) from tinyrnn ops, for ``n_in`` inputs and ``n``
    hidden units."""

    def __init__(self, rng, n_in, n, scale=0.5):
        super().__init__()
        self.w_ih, self.w_hh = (
            param(rng, 4 * n, n_in, scale=scale),
            param(rng, 4 * n, n, scale=scale),
        )
        self.b_ih, self.b_hh = param(rng, 4 * n, scale=scale), param(rng, 4 * n, scale=scale)

    def forward(self, x, state):
        h, c = state
        i, f, g, o = (x @ self.w_ih.T + self.b_ih + h @ self.w_hh.T + self.b_hh).chunk(4, 1)
        c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * c_new.tanh(), c_new


class MGU(tr.nn.Module):
    """Minimal Gated Unit: f = s(W_f x + U_f h + b_f), h~ = tanh(W_h x + U_h (f h) + b_h),
    h' = (1 - f) h + f h~, for ``n_in`` inputs and ``n`` hidden units."""

    def __init__(self, rng, n_in, n, scale=0.5):
        super().__init__()
        self.w_f, self.u_f, self.b_f = (
            param(rng, n, n_in, scale=scale),
            param(rng, n, n, scale=scale),
            param(rng, n, scale=scale),
        )
        self.w_h, self.u_h, self.b_h = (
            param(rng, n, n_in, scale=scale),
            param(rng, n, n, scale=scale),
            param(rng, n, scale=scale),
        )

    def forward(self, x, h):
        f = (x @ self.w_f.T + h @ self.u_f.T + self.b_f).sigmoid()
        h_tilde = (x @ self.w_h.T + (f * h) @ self.u_h.T + self.b_h).tanh()
        return (1 - f) * h + f * h_tilde

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

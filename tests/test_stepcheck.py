"""stepcheck: gradient checks through an unrolled sequence that name the step, parameter, gate."""

from __future__ import annotations

import numpy as np
import pytest

import tinyrnn as tr
from tinyrnn import nn
from tinyrnn.autograd import StepcheckError, stepcheck
from tinyrnn.ops.fused import LSTMCellStep


class FlaggedSigmoid(tr.autograd.Function):
    """sigmoid whose backward is wrong (50 % too large) where ``flag`` is set: a planted bug."""

    @staticmethod
    def forward(ctx, z, flag):
        s = 1 / (1 + np.exp(-z))
        ctx.save_for_backward(s, flag)
        return s

    @staticmethod
    def backward(ctx, grad_output):
        s, flag = ctx.saved_tensors
        return grad_output * s * (1 - s) * np.where(flag, 1.5, 1.0), None


class BrokenCell(nn.Module):
    """A gated cell (rows of ``weight``: gate f, then the candidate c) whose forget gate has
    the wrong derivative at the steps where the input's first feature is on."""

    gate_names = ("f", "c")

    def __init__(self, n_in, n_hidden):
        super().__init__()
        self.hidden = n_hidden
        self.weight = nn.Parameter(tr.randn(2 * n_hidden, n_in + n_hidden) * 0.5)
        self.bias = nn.Parameter(tr.zeros(2 * n_hidden))

    def initial_state(self, batch):
        return tr.zeros(batch, self.hidden, dtype=self.weight.dtype)

    def forward(self, x, h):
        z_f, z_c = (tr.cat([x, h], 1) @ self.weight.T + self.bias).chunk(2, 1)
        f = FlaggedSigmoid.apply(z_f, x.data[:, :1] > 0.5)
        return (1 - f) * h + f * z_c.tanh()


def marked_input(steps, marked_step, batch=2, features=3):
    x = tr.randn(steps, batch, features, dtype=tr.float64) * 0.1
    x.data[marked_step, :, 0] = 1.0
    return x


@pytest.mark.parametrize("bug_at", [7, 15])
def test_broken_cell_reports_step_parameter_gate_and_state(bug_at):
    tr.manual_seed(0)
    rec = nn.Recurrent(BrokenCell(3, 4)).double()
    x = marked_input(20, bug_at)
    with pytest.raises(StepcheckError) as info:
        stepcheck(rec, x)
    err = info.value
    assert (err.layer, err.step) == ("brokencell", bug_at)
    assert err.parameters == ["cell.weight", "cell.bias"]
    assert err.gates == {"cell.weight": ["f"], "cell.bias": ["f"]}
    assert err.state
    msg = str(err)
    assert f"first disagree at step t={bug_at} of layer 'brokencell'" in msg
    assert f"(scope brokencell.t{bug_at};" in msg
    assert "parameter 'cell.weight' (gate f): analytic" in msg
    assert "state entering the step (part 0)" in msg


def test_gradcheck_alone_only_says_the_weight_is_wrong():
    tr.manual_seed(0)
    cell = BrokenCell(3, 4).double()
    rec = nn.Recurrent(cell)
    x = marked_input(20, 7)
    with pytest.raises(tr.autograd.GradcheckError, match="gradients disagree for input 0"):
        tr.autograd.gradcheck(lambda w: rec(x)[0], [cell.weight])


def test_without_the_marker_the_broken_cell_passes():
    tr.manual_seed(0)
    rec = nn.Recurrent(BrokenCell(3, 4)).double()
    x = tr.randn(10, 2, 3, dtype=tr.float64) * 0.1
    assert stepcheck(rec, x)


class SwappedGatesStep(tr.autograd.Function):
    """The fused LSTM step with a planted bug: backward swaps the i and f gate gradients."""

    @staticmethod
    def forward(ctx, gates, c_prev):
        return LSTMCellStep.forward(ctx, gates, c_prev)

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        dgates, dc_prev = LSTMCellStep.backward(ctx, grad_h, grad_c)
        H = dc_prev.shape[1]
        dgates = np.concatenate([dgates[:, H : 2 * H], dgates[:, :H], dgates[:, 2 * H :]], 1)
        return dgates, dc_prev


class SwappedLSTMCell(nn.LSTMCell):
    def forward(self, x, state=None):
        h, c = state if state is not None else self.initial_state(x.shape[0])
        gates = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
        return SwappedGatesStep.apply(gates, c)


def test_swapped_gate_gradients_are_named_by_gate():
    tr.manual_seed(1)
    rec = nn.Recurrent(SwappedLSTMCell(3, 4), name="enc").double()
    with pytest.raises(StepcheckError) as info:
        stepcheck(rec, tr.randn(6, 2, 3, dtype=tr.float64))
    err = info.value
    assert (err.layer, err.step) == ("enc", 5)  # the last step: backward visits it first
    assert err.gates["cell.weight_ih"] == ["i", "f"]
    assert err.gates["cell.bias_hh"] == ["i", "f"]


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "opbyop"])
def test_builtin_layers_pass(fused):
    tr.manual_seed(2)
    x = tr.randn(4, 2, 3, dtype=tr.float64)
    lstm = nn.LSTM(3, 3, num_layers=2, bidirectional=True, fused=fused).double()
    assert stepcheck(lstm, x, lengths=[4, 2])
    assert stepcheck(nn.GRU(3, 2, fused=fused).double(), x, tr.randn(1, 2, 2, dtype=tr.float64))
    assert stepcheck(nn.RNN(3, 2, nonlinearity="relu").double(), x)


def test_parameters_are_restored_after_a_check():
    tr.manual_seed(3)
    rec = nn.Recurrent(BrokenCell(3, 4)).double()
    before = list(rec.named_parameters())
    with pytest.raises(StepcheckError):
        stepcheck(rec, marked_input(8, 3))
    after = list(rec.named_parameters())
    assert [n for n, _ in before] == [n for n, _ in after]
    assert all(a is b for (_, a), (_, b) in zip(before, after, strict=True))
    assert all(p.grad is None for _, p in after)


def test_module_without_steps_is_refused():
    with pytest.raises(ValueError, match="stepcheck: Linear ran no recurrent steps"):
        stepcheck(nn.Linear(3, 2).double(), tr.randn(2, 3, dtype=tr.float64))

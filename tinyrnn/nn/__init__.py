"""Neural-network building blocks: modules, layers, recurrent cells and layers, losses."""

from . import functional, init, utils
from .cells import GRUCell, LSTMCell, RNNCell
from .layers import Dropout, Embedding, Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, ModuleList, Parameter, Sequential
from .recurrent import GRU, LSTM, RNN, Bidirectional, Recurrent
from .tbptt import detach_state, time_windows, truncated_bptt

__all__ = [
    "BCEWithLogitsLoss",
    "Bidirectional",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "Linear",
    "MSELoss",
    "NLLLoss",
    "RNN",
    "RNNCell",
    "Recurrent",
    "Module",
    "ModuleList",
    "Parameter",
    "Sequential",
    "detach_state",
    "functional",
    "init",
    "time_windows",
    "truncated_bptt",
    "utils",
]

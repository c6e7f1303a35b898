"""Neural-network building blocks: modules, layers, recurrent cells and layers, losses."""

from . import functional, init, utils
from .layers import Dropout, Embedding, Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, ModuleList, Parameter, Sequential

__all__ = [
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Linear",
    "MSELoss",
    "NLLLoss",
    "Module",
    "ModuleList",
    "Parameter",
    "Sequential",
    "functional",
    "init",
    "utils",
]

"""Neural-network building blocks: modules, layers, recurrent cells and layers, losses."""

from . import functional, init
from .module import Module, ModuleList, Parameter, Sequential

__all__ = [
    "Module",
    "ModuleList",
    "Parameter",
    "Sequential",
    "functional",
    "init",
]

"""The public ``tr.autograd`` namespace: user-defined ``Function``s, ``gradcheck``, anomaly mode."""

from ..engine import Context, Function
from .anomaly import detect_anomaly
from .gradcheck import GradcheckError, gradcheck
from .stepcheck import StepcheckError, stepcheck

__all__ = [
    "Context",
    "Function",
    "GradcheckError",
    "StepcheckError",
    "detect_anomaly",
    "gradcheck",
    "stepcheck",
]

"""``detect_anomaly``: stop at the first NaN or Inf, naming the op, its scope and the shapes."""

from __future__ import annotations

from ..engine import STATE


class detect_anomaly:
    """Context manager: the first non-finite value made in forward or backward raises.

    The error names the op, its scope (layer and time step inside recurrent layers) and the
    input shapes.

    >>> import tinyrnn as tr
    >>> x = tr.tensor([0.0, 1.0], requires_grad=True)
    >>> with tr.autograd.detect_anomaly():
    ...     try:
    ...         y = x.log()
    ...     except RuntimeError as e:
    ...         print(str(e).split(";")[0])
    detect_anomaly: Log.forward produced a non-finite value in output 0 in scope (no scope)
    """

    def __enter__(self) -> detect_anomaly:
        self._prev = STATE.anomaly
        STATE.anomaly = True
        return self

    def __exit__(self, *exc: object) -> None:
        STATE.anomaly = self._prev

"""One physics, two ways to run it: on one device's floats or on arrays of many devices.

A device type's physics is a pure function of its state, parameters and action that
takes the arithmetic it needs from an ``ops`` argument: :data:`SCALAR` (Python
``min``/``max``/``math.sqrt`` on floats, the fast path for one device) or :data:`ARRAY`
(numpy ufuncs over all instances). The per-object ``Device.step`` calls it with
``SCALAR``; the type's :class:`Kernel` (its ``Kernel`` class attribute, used by
:class:`powergrid.batch.DeviceBatch`) gathers the state of all its instances into
arrays, calls it once with ``ARRAY`` and writes the results back. Both run the same
IEEE-754 operations in the same order, so they agree to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from powergrid.devices import Device, StepContext


def _where(condition: Any, a: Any, b: Any) -> Any:
    return a if condition else b


#: Arithmetic on Python floats (one device).
SCALAR = SimpleNamespace(minimum=min, maximum=max, abs=abs, sqrt=math.sqrt, where=_where,
                         isfinite=math.isfinite, not_=lambda x: not x)
#: Arithmetic on numpy arrays (all instances of a type at once).
ARRAY = SimpleNamespace(minimum=np.minimum, maximum=np.maximum, abs=np.abs, sqrt=np.sqrt, where=np.where,
                        isfinite=np.isfinite, not_=np.logical_not)


def clip(o: Any, x: Any, lo: Any, hi: Any) -> Any:
    """``x`` clipped to ``[lo, hi]`` (``min(max(x, lo), hi)``)."""
    return o.minimum(o.maximum(x, lo), hi)


def project_entry(x: Any, lo: Any, hi: Any, default: Any, o: Any) -> tuple[Any, Any]:
    """One action entry (float with ``o = SCALAR``, arrays with ``ARRAY``) read into ``[lo, hi]``.

    Returns the value and its projection distance: a NaN/inf entry becomes ``default`` at
    distance ``hi − lo``; a finite one is clipped at distance ``|clipped − x|``.
    """
    bad = o.not_(o.isfinite(x))
    value = o.where(bad, default, clip(o, x, lo, hi))
    return value, o.where(bad, hi - lo, o.abs(value - x))


class Kernel:
    """Steps all the given instances of one device type (same action shape) together.

    Subclasses name the float parameters they read in ``params`` (gathered once into
    arrays on ``self.p``) and implement :meth:`step`; a kernel may also implement
    ``settle(results, ctxs)``. ``self.dt`` holds each device's ``dt_h``.
    """

    params: tuple[str, ...] = ()

    def __init__(self, devices: Sequence[Device]) -> None:
        self.devices = list(devices)
        self.p = SimpleNamespace(**{name: np.array([float(getattr(d.params, name)) for d in self.devices])
                                    for name in self.params})
        self.dt = np.array([d.dt_h for d in self.devices])
        actions = [getattr(d, "actions", None) for d in self.devices]
        if actions[0] is not None:
            self.low = np.array([a.low for a in actions])
            self.high = np.array([a.high for a in actions])
            self.default = np.array([a.default for a in actions])

    def read(self, actions: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """All actions as an ``(n, k)`` array clipped like ``BoxAction.read``, and each projection distance."""
        n, k = self.low.shape
        rows = [self.default[i] if a is None else a for i, a in enumerate(actions)]
        try:
            A = np.array(rows, dtype=np.float64).reshape(n, k)
        except ValueError:  # a ragged or wrong-sized action: the per-object reader names it
            for d, a in zip(self.devices, actions):
                d.actions.read(a)
            raise
        values, distance = project_entry(A, self.low, self.high, self.default, ARRAY)
        return values, distance.sum(axis=1)

    def step(self, actions: Sequence[Any], ctxs: Sequence[StepContext]) -> None:
        """Step every device: ``actions[i]`` and ``ctxs[i]`` for ``devices[i]``."""
        raise NotImplementedError

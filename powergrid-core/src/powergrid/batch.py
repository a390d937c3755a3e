"""Step many devices at once: each device type's array kernel where it has one, its per-object ``step`` otherwise.

A device class may set ``Kernel``: a class built with a list of its instances (all of
one action shape) whose ``step(actions, ctxs)`` steps them together, and which may
have ``settle(results, ctxs)``. :class:`DeviceBatch` groups the devices it is given
(of one environment, or of all copies of a vector environment) by (type, action
shape) once, and then steps each group with one kernel call; a type without a
kernel, like a third-party plugin's, is stepped device by device as the environment does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from powergrid.devices import Device, StepContext
from powergrid.solvers.base import PowerFlowResult


class DeviceBatch:
    """A fixed list of devices stepped by type; ``actions``/``ctxs``/``results`` follow its order."""

    def __init__(self, devices: Sequence[Device]) -> None:
        self.devices = list(devices)
        groups: dict[tuple[type, Any], list[int]] = {}
        for i, d in enumerate(self.devices):
            groups.setdefault((type(d), getattr(d.action_space, "shape", None)), []).append(i)
        #: (device indices, kernel or None) per group
        self.groups: list[tuple[list[int], Any]] = []
        for (cls, _), index in groups.items():
            kernel = getattr(cls, "Kernel", None)
            self.groups.append((index, kernel([self.devices[i] for i in index]) if kernel else None))

    def step(self, actions: Sequence[Any], ctxs: Sequence[StepContext]) -> None:
        """``devices[i].step(actions[i], ctxs[i])`` for every ``i``, a kernel call per group that has one."""
        for index, kernel in self.groups:
            if kernel is None:
                for i in index:
                    self.devices[i].step(actions[i], ctxs[i])
            else:
                kernel.step([actions[i] for i in index], [ctxs[i] for i in index])

    def settle(self, results: Sequence[PowerFlowResult], ctxs: Sequence[StepContext]) -> None:
        """``devices[i].settle(results[i], ctxs[i])`` for every ``i``, batched where a kernel settles."""
        for index, kernel in self.groups:
            if kernel is not None and hasattr(kernel, "settle"):
                kernel.settle([results[i] for i in index], [ctxs[i] for i in index])
            else:
                for i in index:
                    self.devices[i].settle(results[i], ctxs[i])

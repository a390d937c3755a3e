"""A vertical and a horizontal protocol, written against core's public API only."""

from __future__ import annotations

import attrs
import numpy as np

from powergrid.agents import DeviceAgent
from powergrid.devices import box, clip_action
from powergrid.params import quantity
from powergrid.protocols import Directive, HorizontalProtocol, VerticalProtocol, mw_range, pending_mw, set_pending_mw

DISPATCHABLE = ("DG", "ESS")


def _dispatchable(agent) -> bool:
    return isinstance(agent, DeviceAgent) and type(agent.device).__name__ in DISPATCHABLE


@attrs.frozen
class ShareParams:
    floor: float = quantity("1", 0.0, ge=0, le=1, doc="the lowest share the parent can send")


class ProportionalShare(VerticalProtocol):
    """The parent's action ``s ∈ [0, 1]`` sets every DG and ESS child to ``lo + s·(hi − lo)`` MW, where
    ``(lo, hi)`` is what the child can hold over the next step; other children act on their own. An ``s`` outside
    ``[0, 1]`` is clipped, a NaN/inf one is 0.5, the distance reported in ``info()["projection"]``."""

    Params = ShareParams

    def __init__(self, params: ShareParams, parent) -> None:
        super().__init__(params, parent)
        self.sent: dict[str, float] = {}
        self.projection = 0.0

    def action_space(self):
        return box(0.0, 1.0)

    def reset(self, rng: np.random.Generator) -> None:
        self.sent, self.projection = {}, 0.0  # a new episode starts with nothing sent

    def directives(self, action, ctx):
        clipped, self.projection = clip_action(action, self.action_space())  # as the core projects a device action
        share = max(float(clipped[0]), self.params.floor)
        out = []
        for child in self.parent.children:
            if not _dispatchable(child):
                out.append(None)  # None: the child follows its own policy
                continue
            lo, hi = mw_range(child)
            self.sent[child.id] = lo + share * (hi - lo)
            out.append(Directive(action=np.array([self.sent[child.id]], np.float32)))
        return out

    def info(self):
        return {"setpoints_mw": dict(self.sent), "projection": self.projection}

    def rule_action(self, ctx):
        return np.array([0.5], np.float32)  # half of every range when no one learns the parent


@attrs.frozen
class CapParams:
    cap_mw: float = quantity("MW", 1.0, gt=0, doc="most the participants' generators may produce together")


class GenerationCap(HorizontalProtocol):
    """Scales the DG setpoints below the participants down in proportion when their sum exceeds ``cap_mw``."""

    Params = CapParams

    def reset(self, rng: np.random.Generator) -> None:
        self.capped = False

    def coordinate(self, actions, ctx) -> None:
        generators = [d for a in self.participants for d in a.devices() if type(d.device).__name__ == "DG"]
        total = sum(pending_mw(d) for d in generators)
        self.capped = total > self.params.cap_mw
        if self.capped:
            for d in generators:
                set_pending_mw(d, pending_mw(d) * self.params.cap_mw / total)

    def info(self):
        return {"capped": self.capped}

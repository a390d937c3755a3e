"""A rule-based policy for a battery's device agent: a schedule by the hour of day."""

from __future__ import annotations

import numpy as np

from powergrid.policies import Policy

CHARGE_HOURS = (10.0, 15.0)  # local time, h
DISCHARGE_HOURS = (17.0, 21.0)


class EveningPeak(Policy):
    """Charge at full power from 10 to 15 h, discharge at full power from 17 to 21 h, idle otherwise.

    Reads ``ctx.hour`` (local hour of day, 0–24, fractional) and returns an action in the agent's own
    action space in physical units: for an ESS, MW with + discharging (generator convention).
    """

    def act(self, ctx):
        space = self.agent.own_action_space
        low, high = float(space.low[0]), float(space.high[0])
        if CHARGE_HOURS[0] <= ctx.hour < CHARGE_HOURS[1]:
            mw = low
        elif DISCHARGE_HOURS[0] <= ctx.hour < DISCHARGE_HOURS[1]:
            mw = high
        else:
            mw = 0.0
        return np.array([mw], np.float32)

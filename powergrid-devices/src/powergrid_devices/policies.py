"""Rule-based internal policies of the device pack (``policy:`` names in YAML).

- ``mppt``: PV and wind at maximum power (no curtailment, no reactive power).
- ``price_arbitrage``: a battery charges at full feasible power while the price
  is below ``mean − band·|mean|`` and discharges above ``mean + band·|mean|``, with
  ``mean`` the running mean of the prices this policy has seen (``band`` =
  the ESS's ``arbitrage_band``, 0.1 by default).
- ``thermostat``: bang-bang control with a deadband of HVAC, heat pump and
  water heater (``thermostat_reading``/``thermostat_action`` of the device).

Each drives one device agent; a policy given to another kind of agent is an
error naming the agent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from powergrid.devices import StepContext
from powergrid.policies import Policy
from powergrid_devices.actions import RunningMean
from powergrid_devices.thermal import Hysteresis, thermostat_act


class _DevicePolicy(Policy):
    """A policy for device agents whose device has the method ``needs``."""

    name = ""
    needs = ""
    devices = ""

    def __init__(self, agent: Any, rng: np.random.Generator) -> None:
        super().__init__(agent, rng)
        device = getattr(agent, "device", None)
        if device is None or not hasattr(device, self.needs):
            what = type(device).__name__ if device is not None else type(agent).__name__
            raise TypeError(f"policy {self.name!r} drives {self.devices}; agent {agent.id!r} is a {what}")
        self.device = device


class MPPT(_DevicePolicy):
    """Renewables at maximum power."""

    name, needs, devices = "mppt", "mppt_action", "PV and Wind devices"

    def act(self, ctx: StepContext) -> Any:
        return self.device.mppt_action()


class PriceArbitrage(_DevicePolicy):
    """Battery arbitrage around the running mean price."""

    name, needs, devices = "price_arbitrage", "arbitrage_action", "ESS devices"

    def __init__(self, agent: Any, rng: np.random.Generator) -> None:
        super().__init__(agent, rng)
        self.prices = RunningMean()

    def act(self, ctx: StepContext) -> Any:
        mean = self.prices.peek(ctx.price)
        self.prices.add(ctx.price)
        return self.device.arbitrage_action(ctx.price, mean)


class Thermostat(_DevicePolicy):
    """Bang-bang temperature control with a deadband."""

    name, needs, devices = "thermostat", "thermostat_action", "HVAC, HeatPump and WaterHeater devices"

    def __init__(self, agent: Any, rng: np.random.Generator) -> None:
        super().__init__(agent, rng)
        self.state = Hysteresis()

    def act(self, ctx: StepContext) -> Any:
        return thermostat_act(self.device, self.state, ctx)

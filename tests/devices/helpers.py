"""Shared helpers of the device tests: build a device from raw params, a context over daily shapes."""

from __future__ import annotations

from typing import Any

import numpy as np

from powergrid.devices import Device, StepContext
from powergrid.params import build_params
from powergrid.plugins import get_registry
from powergrid.profiles import PROFILE_NAMES, daily_value

DEVICES = ("ESS", "DG", "PV", "Wind", "Shunt", "OLTC", "GridConnection", "FlexibleLoad", "HVAC", "EVCharger",
           "Electrolyzer", "FuelCell", "HeatPump", "WaterHeater", "CHP")


def device_class(name: str) -> type[Device]:
    return get_registry().load("device", name)


def make(name: str, dt_h: float = 0.25, seed: int = 0, **raw: Any) -> Device:
    """Device ``name`` built from raw (YAML-like) params and reset with ``seed``."""
    cls = device_class(name)
    device = cls(build_params(cls.Params, raw), dt_h)
    device.reset(np.random.default_rng(seed))
    return device


def context(n: int = 96, dt_h: float = 0.25, **constant: float) -> StepContext:
    """A context over the built-in daily shapes; ``name=value`` replaces a profile by a constant."""
    hours = np.arange(n) * dt_h % 24.0
    profiles = {role: daily_value(role, hours) for role in PROFILE_NAMES}
    for role, value in constant.items():
        profiles[role] = np.full(n, float(value))
    return StepContext(dt_h=dt_h, profiles=profiles, price=float(profiles["price"][0]))


def at(ctx: StepContext, tick: int) -> StepContext:
    """Move ``ctx`` to ``tick`` (hour and price follow)."""
    ctx.tick = tick
    ctx.hour = tick * ctx.dt_h % 24.0
    ctx.price = float(ctx.profiles["price"][tick])
    return ctx

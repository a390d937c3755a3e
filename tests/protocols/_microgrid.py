"""The microgrid of the ``setpoint`` rule's tests: case33bw (≈ 2.2 MW of load at 0 h) with the built-in daily shapes
from 0 h (or ``start_hour``), 15-minute ticks, 4 steps, physical actions; a learned parent ``mg`` over ``devices``
and its meter."""

from __future__ import annotations

from powergrid.env import MultiAgentPowerGridEnv

#: a 0.5 MW, 2 MWh battery at bus 6 (half full, η 0.95 each way)
ESS = {"id": "ess", "type": "ESS", "bus": 6, "params": {"p_max_mw": 0.5, "capacity_mwh": 2.0}}


def wind(p_rated_mw: float) -> list[dict]:
    """A wind farm at bus 1 (≈ 0.45·``p_rated_mw`` MW at 0 h), none at 0 MW."""
    return [{"id": "wind", "type": "Wind", "bus": 1, "params": {"p_rated_mw": p_rated_mw}}] if p_rated_mw else []


def microgrid(devices: list[dict], meter: dict | None = None,
              protocol: str | dict = "setpoint", start_hour: int = 0) -> MultiAgentPowerGridEnv:
    """The microgrid (not reset): ``devices`` under ``mg`` with ``protocol``, and the ``GridConnection`` ``meter`` at
    bus 0 with ``meter``'s params; its day from ``start_hour`` (h)."""
    pcc = {"id": "meter", "type": "GridConnection", "bus": 0, "params": {"element": "ext_grid", **(meter or {})}}
    parent = {"id": "mg", "kind": "grid", "policy": "learned", "protocol": protocol,
              "children": [d["id"] for d in devices] + ["meter"]}
    config = {"name": "microgrid", "network": {"type": "case33bw"},
              "time": {"step_minutes": 15, "steps_per_episode": 4, "start_hour": start_hour},
              "spaces": {"action": "physical"}, "agents": [parent, *devices, pcc]}
    return MultiAgentPowerGridEnv.from_config(config)


def play_rule(env: MultiAgentPowerGridEnv) -> MultiAgentPowerGridEnv:
    """``env`` after one tick played by ``mg``'s rule."""
    env.step({"mg": env.rule_action("mg")})
    return env


def after_first_tick(env: MultiAgentPowerGridEnv) -> float:
    """The meter's import (MW) after reset (seed 0) and tick 0 played by the rule (at tick 0 the meter has no
    reading)."""
    env.reset(seed=0)
    return play_rule(env).scenario.agents["meter"].device.import_mw


def load_change(env: MultiAgentPowerGridEnv) -> float:
    """MW the rule of ``mg`` adds to the import it predicts now: the forecast change of the loads behind its meter
    (``Setpoint.load_change_mw``; ≈ −0.22 MW at the second tick from 0 h, where the feeder's load falls)."""
    return env.scenario.agents["mg"].protocol.load_change_mw(env.ctx)


def rule_mw(env: MultiAgentPowerGridEnv, price: float, i: int = 0) -> float:
    """Entry ``i`` of ``mg``'s rule action (MW) at ``price`` ($/MWh)."""
    env.ctx.price = price
    return float(env.rule_action("mg")[i])

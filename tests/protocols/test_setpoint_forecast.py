"""Without a horizontal protocol that knows them, the ``setpoint`` rule predicts its meter's import with the forecast
change of the loads behind the meter (``Setpoint.load_change_mw``: their forecast, the schedule without its jitter,
with the share of the last reading's deviation from it that persists, less their actual MW at the last reading), as
the LMP market and ADMM do. Before, it predicted with no load change, so
at a morning ramp ``hold_import`` raised nothing and the import crossed its limit. case33bw, its ext_grid metered:
every load is behind the meter."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv

from ._microgrid import after_first_tick, microgrid

DG = {"id": "dg", "type": "DG", "bus": 5, "params": {"p_max_mw": 0.6, "cost_b": 400.0}}  # dear: its rule keeps it off


def _env(limit: float, start_hour: int) -> MultiAgentPowerGridEnv:
    return microgrid([DG], {"import_limit_mw": limit},
                     {"type": "setpoint", "hold_import": True, "margin_mw": 0.1}, start_hour=start_hour)


@pytest.mark.parametrize("start_hour", [0, 6])
def test_the_rule_predicts_with_the_forecast_change_of_the_loads_behind_its_meter(start_hour):
    env = _env(50.0, start_hour)
    after_first_tick(env)
    proto, net = env.scenario.agents["mg"].protocol, env.net
    # by hand: every in-service load (all behind the ext_grid), from its actual MW at tick 0 to its forecast at tick 1
    # with the share φ (15 min, τ = 1 h: e^−¼) of its deviation from the forecast at tick 0 that persists
    mw = (net.load.p_mw * net.load.scaling * net.load.in_service).to_numpy(float)
    f, a, phi = env.ctx.load_forecast, env.ctx.load_multipliers, np.exp(-0.25)
    assert env.ctx.load_persistence == pytest.approx(phi, rel=1e-15)
    change = float((f[1] * (1.0 + phi * (a[0] / f[0] - 1.0)) - a[0]) @ mw)
    assert abs(change) > 0.01
    assert proto.load_change_mw(env.ctx) == pytest.approx(change, abs=1e-12)
    rule = env.rule_action("mg")
    parts = [np.asarray(rule[s], np.float32) for s in proto._slices]
    plan, predicted = proto.predict(parts, env.ctx)
    assert predicted == pytest.approx(proto.predicted(plan, env.ctx, 0.0) + change, abs=1e-12)


def test_at_the_morning_ramp_hold_import_holds_the_limit_the_reading_alone_misses():
    """From 6 h the feeder's load rises ≈ 0.5 MW over the second tick (forecast 0.48 MW; the rest is its jitter). The
    limit is the first reading plus 0.1 MW, the rule's margin: from the reading alone the import is predicted at the
    limit less the margin, nothing rises and the import ends ≈ 0.43 MW over. With the forecast the DG rises ≈ 0.48 MW
    and the import ends inside the limit, by the margin less what the forecast misses."""
    reading = after_first_tick(_env(50.0, 6))
    free = _env(50.0, 6)
    after_first_tick(free)
    free.step({"mg": free.rule_action("mg")})
    rise = free.scenario.agents["meter"].device.import_mw - reading
    assert rise > 0.4  # the DG off: the import follows the load
    env = _env(reading + 0.1, 6)
    after_first_tick(env)
    rule = env.rule_action("mg")
    env.step({"mg": rule})
    assert 0.4 < rule[0] < 0.6
    assert env.scenario.agents["meter"].device.import_mw < reading + 0.1

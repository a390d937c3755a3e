"""The droop protocol's hour-ahead schedule: the scheduled interchange and the P–f law on its deviation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from powergrid.devices import StepContext
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.protocols import mw_range
from powergrid_protocols.droop import DroopParams

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _env(**params) -> MultiAgentPowerGridEnv:
    data = yaml.safe_load((CONFIGS / "droop.yaml").read_text())
    data["horizontal"][0]["params"].update(params)
    return MultiAgentPowerGridEnv.from_config(data)


def test_the_persistence_forecast_is_the_last_ticks_net_load():
    proto = _env(schedule="hour_ahead").scenario.horizontal[0]
    assert proto.pv_mw == pytest.approx(0.9)  # three 0.3 MW PV units
    proto.load_mw = np.array([0.4, 0.1])  # two loads (MW), a small case
    ctx = StepContext(dt_h=1.0, profiles={"solar": np.array([0.0, 0.5, 1.0, 0.7])},
                      load_multipliers=np.array([[1.0, 2.0], [0.5, 1.0], [1.0, 1.0]]))
    # N = 0.4·m1 + 0.1·m2 − 0.9·solar: 0.6, 0.3 − 0.45 = −0.15, 0.5 − 0.9 = −0.4; N(t−1) with N(0) at tick 0
    np.testing.assert_allclose(proto.persistence(ctx), [0.6, 0.6, -0.15])


def test_the_schedule_is_the_zones_net_load_an_hour_earlier_less_the_units_setpoints():
    env = _env(schedule="hour_ahead")
    proto = env.scenario.horizontal[0]
    net = env.scenario.net
    env.reset(seed=0)
    # by hand: the loads at the microgrids' buses (named mgK.*, 1.0 MW base each) less 3 × 0.3 MW of PV
    in_mg = net.bus.loc[net.load.bus, "name"].str.startswith("mg").to_numpy()
    base = (net.load.p_mw * net.load.scaling).to_numpy()
    assert base[in_mg].sum() == pytest.approx(3.0)
    for t in range(3):
        env.step({a: env.rule_action(a) for a in env.agents})
        prev = max(t - 1, 0)
        net_load = float(env.load_multipliers[prev] @ np.where(in_mg, base, 0.0)) - 0.9 * env.ctx.profiles["solar"][prev]
        setpoints = sum(d.device.p_mw for d in proto.units) - proto.share.sum()  # the agents' MW before droop
        assert proto.info()["p_ref_mw"] == pytest.approx(net_load - setpoints, abs=1e-6)


def test_the_frequency_deviation_follows_the_droop_law_on_the_deviation_from_the_schedule():
    """Δf(t+1) = −ΔP(t)/(ΣK + D), ΔP(t) = Σ PCC import + Σ unit MW − N(t−1): ΣK = (3·0.6 + 3·0.3)/(0.05·60) = 0.9."""
    env = _env(schedule="hour_ahead")
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    ranges: list[tuple[float, float]] = []
    coordinate = proto.coordinate

    def recorded(actions, ctx):  # each unit's MW range when droop shares (a DG off, an ESS full or empty: none)
        ranges[:] = [mw_range(d) for d in proto.units]
        coordinate(actions, ctx)

    proto.coordinate = recorded
    checked, delta_p, t = 0, None, 0
    while env.agents:
        env.step({a: env.rule_action(a) for a in env.agents})
        info = proto.info()
        # no unit stopped by a limit in the direction it picks up: every unit on its droop line
        up = info["delta_f_hz"] < 0
        free = all((d.device.p_mw < hi - 1e-6 if up else lo + 1e-6 < d.device.p_mw) for d, (lo, hi) in zip(proto.units, ranges))
        if delta_p is not None and free:
            assert info["delta_f_hz"] == pytest.approx(-delta_p / 0.9, abs=1e-6)
            # K_i = S_i/(R·f0): 0.2 MW/Hz per 0.6 MW DG, 0.1 per 0.3 MW ESS (units: ESS, DG of mg1, mg2, mg3)
            np.testing.assert_allclose(proto.share, -np.array([0.1, 0.2] * 3) * info["delta_f_hz"], atol=1e-6)
            checked += 1
        meters = sum(m.flow(env.last_result) for m in proto.meters)
        units = sum(d.device.p_mw for d in proto.units)
        delta_p = meters + units - float(proto.forecast_mw[t])
        assert info["imbalance_mw"] == pytest.approx(delta_p, abs=1e-6)
        t += 1
    assert checked >= 5  # measured 5 of 23 (the others have a DG off or a battery at a limit)
    assert np.abs(delta_p) < 1.0


def test_a_constant_schedule_is_the_default_and_keeps_p_ref_mw():
    assert DroopParams().schedule == "constant"
    env = _env(schedule="constant", p_ref_mw=0.5)
    env.reset(seed=0)
    for _ in range(2):
        env.step({a: env.rule_action(a) for a in env.agents})
        assert env.scenario.horizontal[0].info()["p_ref_mw"] == 0.5


def test_a_bad_schedule_is_one_config_error():
    with pytest.raises(Exception, match=r"horizontal\[0\]\.params\.schedule: expected one of 'constant', 'hour_ahead', "
                                        r"got 'hourly'"):
        _env(schedule="hourly")
    with pytest.raises(Exception, match=r"horizontal\[0\].*params\.schedule: hour_ahead .* expected measure: pcc, "
                                        r"got measure: ext_grid"):
        _env(schedule="hour_ahead", measure="ext_grid")

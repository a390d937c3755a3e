"""The droop protocol's hour-ahead schedule: the scheduled interchange and the P–f law on its deviation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from powergrid.devices import StepContext
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ConfigError
from powergrid.loads import LoadGroup
from powergrid.protocols import mw_range
from powergrid_protocols.droop import DroopParams

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _data(**params) -> dict:
    data = yaml.safe_load((CONFIGS / "droop.yaml").read_text())
    data["horizontal"][0]["params"].update(params)
    return data


def _env(**params) -> MultiAgentPowerGridEnv:
    return MultiAgentPowerGridEnv.from_config(_data(**params))


def _zone_load_mw(env: MultiAgentPowerGridEnv, tick: int) -> float:
    """By hand: the network loads at the microgrids' buses (named mgK.*, 1.0 MW base each), MW at ``tick``."""
    net = env.scenario.net
    in_mg = net.bus.loc[net.load.bus, "name"].str.startswith("mg").to_numpy()
    base = (net.load.p_mw * net.load.scaling).to_numpy()
    assert base[in_mg].sum() == pytest.approx(3.0)
    return float(env.load_multipliers[tick] @ np.where(in_mg, base, 0.0))


def _agent(data: dict, agent_id: str) -> dict:
    return next(a for a in data["agents"] if a["id"] == agent_id)


def _without(data: dict, suffix: str) -> dict:
    """``data`` without the device agents whose id ends with ``suffix``."""
    data["agents"] = [a for a in data["agents"] if not a["id"].endswith(suffix)]
    for a in data["agents"]:
        if "children" in a:
            a["children"] = [c for c in a["children"] if not c.endswith(suffix)]
    return data


def test_the_persistence_forecast_is_the_net_load_read_before_the_hour():
    proto = _env(schedule="hour_ahead").scenario.horizontal[0]
    proto.loads = LoadGroup(np.array([0, 1]), np.array([0.4, 0.1]))  # two loads (MW), a small case
    ctx = StepContext(dt_h=1.0, profiles={"solar": np.array([0.0, 0.5, 1.0, 0.7])},
                      load_multipliers=np.array([[1.0, 2.0], [0.5, 1.0], [1.0, 1.0]]))
    # three 0.3 MW PV: N = 0.4·m1 + 0.1·m2 − 0.9·solar: 0.6, 0.3 − 0.45 = −0.15, 0.5 − 0.9 = −0.4; N(t−1), N(0) at 0
    net_load, available = proto.persistence(ctx)
    np.testing.assert_allclose(net_load, [0.6, 0.6, -0.15])
    np.testing.assert_allclose(available, [[0.0] * 3, [0.0] * 3, [0.15] * 3])  # each PV's 0.3·solar, likewise
    # 15-minute ticks: an hour is 4 ticks, each scheduled from the tick before it (N(3) for ticks 4-7), N(0) at first
    m = np.array([[1.0, 0.0]] * 9) * np.arange(1, 10)[:, None]  # load 1: 0.4, 0.8, ... 3.6 MW
    ctx = StepContext(dt_h=0.25, profiles={"solar": np.zeros(9)}, load_multipliers=m)
    np.testing.assert_allclose(proto.persistence(ctx)[0], [0.4] * 4 + [1.6] * 4 + [3.2])
    # 30-minute ticks: N(1) for ticks 2-3, N(3) for tick 4
    ctx = StepContext(dt_h=0.5, profiles={"solar": np.zeros(5)}, load_multipliers=m[:5])
    np.testing.assert_allclose(proto.persistence(ctx)[0], [0.4, 0.4, 0.8, 0.8, 1.6])


def test_at_15_minute_ticks_the_hour_is_scheduled_from_the_tick_before_it():
    data = _data(schedule="hour_ahead")
    data["time"]["physics"] = "15min"
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    env.step({a: env.rule_action(a) for a in env.agents})
    solar = np.clip(env.ctx.profiles["solar"], 0.0, 1.0)
    for t in range(4, 96):  # by hand: the zone loads less 3 × 0.3 MW of PV at the last tick of the hour before
        before = t - t % 4 - 1
        assert proto.forecast_mw[t] == pytest.approx(_zone_load_mw(env, before) - 0.9 * solar[before], abs=1e-9)


def test_the_forecast_counts_a_participants_wind():
    data = _data(schedule="hour_ahead")
    data["agents"].append({"id": "mg1_wind", "type": "Wind", "bus": "mg1.634", "params": {"p_rated_mw": 0.2}})
    _agent(data, "mg1")["children"].append("mg1_wind")
    data["datasets"]["wind"] = {"provider": "caiso_2023", "hub": "NP15"}
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    env.step({a: env.rule_action(a) for a in env.agents})
    solar, wind = (np.clip(env.ctx.profiles[k], 0.0, 1.0) for k in ("solar", "wind"))
    assert wind.max() > 0.1  # the forecast below would fail without it
    for t in range(1, 24):  # N(t−1) = zone loads − 3 × 0.3 MW · solar − 0.2 MW · wind, an hour earlier
        net_load = _zone_load_mw(env, t - 1) - 0.9 * solar[t - 1] - 0.2 * wind[t - 1]
        assert proto.forecast_mw[t] == pytest.approx(net_load, abs=1e-9)


def test_without_pv_or_a_solar_profile_the_forecast_is_the_zone_load():
    data = _without(_data(schedule="hour_ahead"), "_pv")
    del data["datasets"]["solar"]
    env = MultiAgentPowerGridEnv.from_config(data)
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    assert "solar" not in env.ctx.profiles
    env.step({a: env.rule_action(a) for a in env.agents})
    np.testing.assert_allclose(proto.forecast_mw[1:], [_zone_load_mw(env, t) for t in range(23)], atol=1e-9)


def test_the_schedule_is_the_zones_net_load_an_hour_earlier_less_the_units_setpoints():
    env = _env(schedule="hour_ahead")
    proto = env.scenario.horizontal[0]
    units = [env.scenario.agents[f"mg{k}_{u}"] for k in (1, 2, 3) for u in ("dg", "ess")]
    sent: list[float] = []
    coordinate = proto.coordinate

    def recorded(actions, ctx):  # the MW the DG/ESS agents set, before droop adds its pick-up
        sent.append(sum(float(d.pending[0]) for d in units))
        coordinate(actions, ctx)

    proto.coordinate = recorded
    env.reset(seed=0)
    for t in range(6):
        env.step({a: env.rule_action(a) for a in env.agents})
        prev = max(t - 1, 0)  # by hand: the zone loads less 3 × 0.3 MW of PV at the solar profile, an hour earlier
        net_load = _zone_load_mw(env, prev) - 0.9 * env.ctx.profiles["solar"][prev]
        assert proto.info()["p_ref_mw"] == pytest.approx(net_load - sent[t], abs=1e-6)  # float32 setpoints
    assert max(sent) - min(sent) > 0.1  # the setpoints moved


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
    with pytest.raises(ConfigError, match=r"horizontal\[0\]\.params\.schedule: expected one of 'constant', "
                                          r"'hour_ahead', got 'hourly'"):
        _env(schedule="hourly")
    with pytest.raises(ConfigError, match=r"horizontal\[0\]: params\.schedule: hour_ahead .* expected measure: pcc, "
                                          r"got measure: ext_grid"):
        _env(schedule="hour_ahead", measure="ext_grid")
    with pytest.raises(ConfigError, match=r"horizontal\[0\]: params\.p_ref_mw: schedule: hour_ahead computes p_ref "
                                          r"every tick, expected no p_ref_mw .*got 0\.5"):
        _env(schedule="hour_ahead", p_ref_mw=0.5)


@pytest.mark.filterwarnings("ignore:.*reward.storage_value")  # mg3_ess behind no meter
def test_under_hour_ahead_a_participant_without_a_meter_is_a_config_error():
    data = _without(_data(schedule="hour_ahead"), "mg3_pcc")
    with pytest.raises(ConfigError, match=r"horizontal\[0\]: params\.schedule: hour_ahead .* expected a GridConnection "
                                          r"below every participant, got none below mg3"):
        MultiAgentPowerGridEnv.from_config(data)
    MultiAgentPowerGridEnv.from_config({**data, "horizontal": _data(schedule="constant")["horizontal"]})  # as before


def test_under_hour_ahead_a_device_the_schedule_leaves_out_is_a_config_error():
    data = _data(schedule="hour_ahead")
    data["agents"].append({"id": "mg2_load", "type": "FlexibleLoad", "bus": "mg2.634"})
    _agent(data, "mg2")["children"].append("mg2_load")
    with pytest.raises(ConfigError, match=r"horizontal\[0\]: params\.schedule: hour_ahead .* expected no other device "
                                          r"with active power, got FlexibleLoad mg2_load below mg2"):
        MultiAgentPowerGridEnv.from_config(data)



def test_a_load_at_an_out_of_service_bus_is_not_in_the_schedule():
    env = _env(schedule="hour_ahead")
    proto, net = env.scenario.horizontal[0], env.scenario.net
    env.reset(seed=0)
    row = int(np.flatnonzero(net.bus.loc[net.load.bus, "name"].to_numpy() == "mg1.634")[0])
    base = float(net.load.p_mw.iat[row] * net.load.scaling.iat[row])  # 0.115 MW at multiplier 1
    assert base > 0.1
    net.bus.loc[net.load.bus.iat[row], "in_service"] = False  # the flow no longer serves the load
    proto.attach(net)
    net_load, available = proto.persistence(env.ctx)
    # by hand: the zone loads without that load less the PV, read an hour earlier (N(0) at tick 0)
    served = [_zone_load_mw(env, t) - base * env.load_multipliers[t, row] for t in range(24)]
    np.testing.assert_allclose(net_load, np.array(served)[np.maximum(np.arange(24) - 1, 0)] - available.sum(axis=1),
                               atol=1e-9)


@pytest.mark.parametrize("physics", ["40min", "24min", "7min"])
def test_under_hour_ahead_a_step_that_does_not_divide_the_hour_is_a_config_error(physics):
    data = _data(schedule="hour_ahead")
    data["time"] = {"physics": physics, "episode": "1d" if physics != "7min" else "7h"}
    with pytest.raises(ConfigError, match=rf"horizontal\[0\]: params\.schedule: hour_ahead .* expected a physics step "
                                          rf"that divides 1h or is a whole number of hours, got time\.physics: {physics}"):
        MultiAgentPowerGridEnv.from_config(data)
    data["horizontal"] = _data(schedule="constant")["horizontal"]
    MultiAgentPowerGridEnv.from_config(data)  # a constant schedule has no hours


@pytest.mark.parametrize("physics", ["30s", "20min", "2h"])
def test_under_hour_ahead_a_step_that_divides_the_hour_or_is_whole_hours_builds(physics):
    data = _data(schedule="hour_ahead")
    data["time"] = {"physics": physics, "episode": "1d"}
    proto = MultiAgentPowerGridEnv.from_config(data).scenario.horizontal[0]
    assert proto.params.schedule == "hour_ahead"

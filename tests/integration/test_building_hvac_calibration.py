"""building_hvac is a sound experiment: its HVAC can hold the comfort band on every day, leaving the band never
pays, the meter bills the building (not the feeder), and the rule holds the band on less than the thermostat and
beats idle, random and every constant action (figures in configs/building_hvac.yaml)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.evaluate import run_episode

from ..conftest import CONFIGS

pytest.importorskip("powergrid_devices", reason="the building's HVAC comes with powergrid-devices")
thermal = pytest.importorskip("powergrid_devices.thermal")
embedded = pytest.importorskip(
    "powergrid_datasets.embedded", reason="the building's prices, loads and solar are the CAISO 2023 extract"
)

CONFIG = CONFIGS / "building_hvac.yaml"
DAYS = range(6)  # reset seeds


@pytest.fixture(scope="module")
def env() -> MultiAgentPowerGridEnv:
    return MultiAgentPowerGridEnv.from_config(CONFIG)


def _days(env, new_policy) -> list[tuple[float, float, float]]:
    """Each day's (return, HVAC °C·ticks outside the band, least meter import MW) under ``new_policy()``."""
    out = []
    for seed in DAYS:
        env.reset(seed=seed)
        policy = new_policy()
        ret = unsafe = 0.0
        least = np.inf
        while env.agents:
            _, rewards, _, _, _ = env.step(policy(env))
            ret += sum(rewards.values())
            unsafe += env.agent_costs()["hvac"][1]
            least = min(least, env.scenario.agents["pcc"].device.import_mw)
        out.append((ret, unsafe, least))
    return out


def _rule(env) -> dict:
    return {a: env.rule_action(a) for a in env.agents}


def _thermostat(env):
    """The building's rule with its HVAC on the ``thermostat`` policy (bang-bang about the band centre)."""
    hvac, state = env.scenario.agents["hvac"].device, thermal.Hysteresis()

    def act(env) -> dict:
        physical = np.asarray(env.physical_rule("building"), np.float64)
        physical[0] = thermal.thermostat_act(hvac, state, env.ctx)[0]
        return {"building": env.action_from_physical("building", physical)}
    return act


@pytest.fixture(scope="module")
def rule(env) -> list[tuple[float, float, float]]:
    return _days(env, lambda: _rule)


def test_the_hvac_can_hold_the_band_at_every_tick_and_starts_inside_it(env):
    hvac = env.scenario.agents["hvac"].device
    p = hvac.params
    ua = 1.0 / p.r_c_per_kw
    heat, cool = p.p_max_mw * 1000.0 * p.cop_heat, p.p_max_mw * 1000.0 * p.cop_cool
    assert p.t_min_c <= p.t_init_c - p.t_init_spread and p.t_init_c + p.t_init_spread <= p.t_max_c
    for seed in DAYS:
        env.reset(seed=seed)
        t_out = np.asarray(env.ctx.profiles["temperature"])
        assert np.all(heat >= ua * (p.t_min_c - t_out) - p.gain_kw), seed
        assert np.all(cool >= ua * (t_out - p.t_max_c) + p.gain_kw), seed


def test_a_degree_outside_the_band_costs_more_than_it_can_save(env):
    """safety_weight·dt (its price per °C·h, for a tick) plus the discomfort cost exceed what a °C outside the band for
    a tick can save: the heat that much less loss takes, UA·1 °C·dt, at the lower COP and the data's dearest 15-min
    price."""
    p = env.scenario.agents["hvac"].device.params
    dt = env.config.time.physics_s / 3600.0
    node = yaml.safe_load(CONFIG.read_text())["datasets"]["price"]["node"]
    price = np.asarray(embedded.series(f"lmp:{node}:LMP").resample(f"{env.config.time.physics_s // 60}min").data)
    saving = dt / p.r_c_per_kw / min(p.cop_heat, p.cop_cool) / 1000.0 * float(np.nanmax(price))
    rw = env.config.reward
    assert rw.safety_per_step(dt) + rw.cost_weight * p.discomfort_cost * dt > rw.cost_weight * saving, saving


def test_the_meter_bills_the_building_and_sells_its_pv_surplus(rule):
    """Metered at the building's service line the PV's midday surplus is exported (sold at sell_ratio) on every
    day; at the feeder's transformer the other houses' load kept the import above 0.047 MW."""
    assert all(least < 0.0 for _, _, least in rule), [least for _, _, least in rule]


def test_the_meter_reads_the_buildings_net_load(env):
    """At every tick the service line's meter imports the building's load (the network load at Bus R11) less what
    its HVAC, PV, battery and water heater inject, to the line's losses (< 5 kW); a meter of the wrong sign or
    element would read the PV's surplus as an import, or the feeder's other loads."""
    net = env.net
    rows = np.flatnonzero(net.load.bus.to_numpy() == net.bus.index[net.bus.name == "Bus R11"][0])
    base = (net.load.p_mw.to_numpy() * net.load.scaling.to_numpy())[rows]
    agents = env.scenario.agents
    env.reset(seed=3)
    misses = []
    while env.agents:
        env.step(_rule(env))
        load = float(env.load_multipliers[env.ctx.tick - 1][rows] @ base)
        injected = sum(agents[k].device.p_mw for k in ("hvac", "roof_pv", "battery", "hot_water"))
        misses.append(agents["pcc"].device.import_mw - (load - injected))
    assert len(rows) == 1 and np.max(np.abs(misses)) < 0.005, np.max(np.abs(misses))
    assert min(misses) > -0.005 and np.mean(misses) > 0.0  # the line's losses add to the import


def test_the_rule_holds_the_band_and_beats_the_thermostat_idle_random_and_constant_actions(env, rule):
    assert all(unsafe == 0.0 for _, unsafe, _ in rule)
    returns = np.array([r for r, _, _ in rule])
    bang_bang = _days(env, lambda: _thermostat(env))
    assert all(unsafe == 0.0 for _, unsafe, _ in bang_bang)
    assert np.all(returns > np.array([r for r, _, _ in bang_bang]))
    for policy in ("zero", "random", *(f"constant:{f}" for f in (0.0, 0.25, 0.5, 0.75, 1.0))):
        other = np.array([sum(run_episode(env, policy, seed).returns.values()) for seed in DAYS])
        assert np.all(returns > other), (policy, returns - other)

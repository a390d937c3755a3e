"""The example scenarios' horizontal protocols act on their scenario: the same day with and without the
``horizontal:`` block, every agent on its rule (the protocol-effect audit of session 36)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from powergrid.env import MultiAgentPowerGridEnv

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _day(name: str, seed: int, horizontal: bool) -> tuple[MultiAgentPowerGridEnv, list[np.ndarray], dict[str, float]]:
    """One rule day of ``configs/<name>.yaml``: the bus voltages (pu) of every tick and each DG's energy (MWh)."""
    data = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    if not horizontal:
        del data["horizontal"]
    env = MultiAgentPowerGridEnv.from_config(data)
    dgs = [d for d in env.scenario.device_agents if type(d.device).__name__ == "DG"]
    env.reset(seed=seed)
    volts, energy = [], dict.fromkeys((d.id for d in dgs), 0.0)
    while env.agents:
        env.step({a: env.rule_action(a) for a in env.agents})
        assert env.last_result.converged
        volts.append(np.asarray(env.last_result.vm_pu, float).copy())
        for d in dgs:
            energy[d.id] += float(d.device.p_mw) * env.ctx.dt_h
    return env, volts, energy


def test_the_volt_var_example_raises_its_inverters_lowest_voltage():
    """Day 2 takes the inverter buses below the 0.98 pu deadband edge; volt-var injects and lifts them."""
    env, with_vv, _ = _day("volt_var", 2, True)
    buses = [d.bus for d in env.scenario.horizontal[0].inverters]
    _, without, _ = _day("volt_var", 2, False)
    low_with = min(v[buses].min() for v in with_vv)
    low_without = min(v[buses].min() for v in without)
    assert low_without < 0.96  # measured 0.9535 pu
    assert low_with - low_without > 0.005  # measured +7.9 mpu (0.9614 pu)
    for volts in (with_vv, without):  # the feeder keeps 0.95–1.05 pu either way
        assert all(((v >= 0.95 - 1e-9) & (v <= 1.05 + 1e-9)).all() for v in volts)


def test_the_droop_example_shares_the_hours_forecast_error():
    """Hour-ahead schedule: droop picks up the deviation from it, not the whole import (day 0, measured: the DGs
    2.2 against 0.13 MWh, Δf −0.82 to +0.91 Hz; the old constant p_ref of 0.5 MW: 34.7 MWh, Δf to −4.06 Hz)."""
    env, _, with_droop = _day("droop", 0, True)
    _, _, without = _day("droop", 0, False)
    assert 0.5 < sum(with_droop.values()) - sum(without.values()) < 5.0
    proto = env.scenario.horizontal[0]
    env.reset(seed=0)
    delta_f = []
    while env.agents:
        env.step({a: env.rule_action(a) for a in env.agents})
        delta_f.append(proto.delta_f)
    assert 0.5 < max(abs(f) for f in delta_f) < 1.2  # IEEE 1547-2018 continuous operation: 58.8-61.2 Hz


def _lmp_day(pcc_limits: bool, seed: int) -> tuple[list[dict], float, float]:
    """One rule day of lmp_market.yaml: the market's info at each tick, mg1's safety (MW·ticks beyond its PCC
    agreement) and its cost ($)."""
    data = yaml.safe_load((CONFIGS / "lmp_market.yaml").read_text())
    data["horizontal"][0]["params"]["pcc_limits"] = pcc_limits
    env = MultiAgentPowerGridEnv.from_config(data)
    market, mg1 = env.scenario.horizontal[0], env._agent_ids.index("mg1")
    env.reset(seed=seed)
    infos, safety, cost = [], 0.0, 0.0
    while env.agents:
        env.step({a: env.rule_action(a) for a in env.agents})
        infos.append(market.info())
        safety += float(env._cost_safe[1, mg1])
        cost += float(env._cost_safe[0, mg1])
    return infos, safety, cost


def test_the_lmp_example_prices_its_congested_pccs_at_the_microgrids_offers():
    """Day 2 (a high-load day) takes the microgrids' PCC imports to their 1.2 MW agreements: the market congests
    their PCCs (measured 6 ticks, mg1.pcc on all 6) and prices mg1 at its own offer (the DG's marginal cost at the
    midpoint, 85 + 2·10·0.3 = 91 $/MWh; λ was 2.9-77.8 $/MWh), never failing; ignoring the agreements (every LMP the
    market price) it imports further beyond them (mg1's safety 0.57 against 0.15 MW·h; the microgrid's losses, which
    the DC model does not see, keep some). mg1 holds the right to its agreement, so only its import beyond 1.2 MW pays
    the congestion price: its day costs 1067.8 against 1055.1 $ (its DG runs more); (LMP − λ) on its whole import,
    as it paid before, is 308.1 $."""
    with_pcc, safety, cost = _lmp_day(True, 2)
    assert all(i["success"] for i in with_pcc)
    binding = [i for i in with_pcc if "mg1.pcc" in i["congested"]]
    assert len(binding) >= 4
    for i in binding:
        assert abs(i["lmp"]["mg1"] - 91.0) < 1e-4 and i["lmp"]["mg1"] - i["system_lambda"] > 10.0  # float32 offer
    without, safety_without, cost_without = _lmp_day(False, 2)
    assert all(i["success"] and not i["congested"] for i in without)
    assert all(abs(i["lmp"]["mg1"] - i["system_lambda"]) < 1e-6 for i in without)
    assert safety_without > 2 * safety
    assert 0.0 < cost - cost_without < 30.0

"""A stored MWh is credited to whoever pays for the energy that filled it (``Scenario.store_payers``).

``reward.storage_value: mean_price`` credits a store's change of deliverable energy (``Device.stored_mwh``) at the
episode's mean price at its end. The credit was put on the store's own row, so a learned battery with its meter
outside its subtree was paid for charging and never billed (hold-out review r40 finding 1: always charge +51.0 $/day
vs idle 0 on cigre_mv). It now goes to the meter billing the store's bus (the innermost where meters nest): every
agent over that meter sees the bill and the credit, an agent over the store only sees neither, and is warned.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv

pytest.importorskip("powergrid_devices", reason="the batteries and meters come with powergrid-devices")

STEPS, DT_H = 8, 0.25


def _config(agents: list[dict]) -> dict:
    """case33bw, 8 steps of 15 min at the CAISO 2023 day-ahead prices of a random day (shipped offline), physical
    actions, no safety term (the returns are the costs), the ESS at bus 5 and a GridConnection at the slack's
    ext_grid (sell ratio 1, no demand charge: its bill is price·import·Δt)."""
    return {
        "name": "store_credit_payer",
        "network": {"type": "case33bw"},
        "time": {"step_minutes": 15, "steps_per_episode": STEPS},
        "spaces": {"action": "physical"},
        "reward": {"safety_weight": 0.0},
        "datasets": {"price": {"provider": "caiso_2023", "node": "0096WD_7_N001"}},
        "agents": [*agents, {"id": "pcc", "type": "GridConnection", "bus": 0}],
    }


LONE = [{"id": "bat", "type": "ESS", "bus": 5, "policy": "learned"}]


def _play(env: MultiAgentPowerGridEnv, actions: dict, seed: int = 2) -> dict[str, float]:
    """Returns of one episode, plus by hand: ``bill`` (Σ price·import·Δt at the meter, $), ``credit`` (the episode's
    mean price × the battery's change of deliverable energy, $) and ``wear`` (Σ degradation_cost·|p|·Δt, $)."""
    env.reset(seed=seed)
    ess = env.scenario.agents[next(a for a in ("bat", "ess") if a in env.scenario.agents)].device
    pcc = env.scenario.agents["pcc"].device
    stored0 = ess.stored_mwh()
    out = dict.fromkeys(env.possible_agents, 0.0) | {"bill": 0.0, "wear": 0.0}
    prices = env.ctx.profiles["price"][:STEPS]
    for t in range(STEPS):
        _, rewards, *_ = env.step(actions)
        for aid, r in rewards.items():
            out[aid] += r
        out["bill"] += prices[t] * pcc.import_mw * DT_H
        out["wear"] += ess.params.degradation_cost * abs(ess.p_mw) * DT_H
    assert not env.agents
    out["credit"] = float(np.mean(prices)) * (ess.stored_mwh() - stored0)
    return out


def test_a_lone_learned_battery_is_not_paid_for_charging():
    """Charging at full power for 2 h fills the store (its credit is ≈ 0.76 MWh × the mean price > 0): it returned
    that credit with the energy billed to the meter; now it returns what idling does, 0, and discharging too."""
    env = MultiAgentPowerGridEnv.from_config(_config(LONE))
    idle = _play(env, {"bat": np.array([0.0])})
    charge = _play(env, {"bat": np.array([-0.5])})
    discharge = _play(env, {"bat": np.array([0.5])})
    assert charge["credit"] > 10.0 and discharge["credit"] < -10.0
    assert charge["bat"] <= idle["bat"] == 0.0
    assert discharge["bat"] == 0.0


def test_the_meters_learned_agent_returns_minus_its_bill_plus_the_credit():
    """A learned grid agent over the meter (and a PV) holds what the battery outside it charged: its return is
    −Σ price·import·Δt + mean price × the stored energy gained, by hand."""
    agents = [*LONE, {"id": "site", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
                      "children": ["pv", "pcc"]},
              {"id": "pv", "type": "PV", "bus": 24, "params": {"p_max_mw": 0.2}}]
    env = MultiAgentPowerGridEnv.from_config(_config(agents))
    for p_mw in (-0.5, 0.5):
        out = _play(env, {"bat": np.array([p_mw]), "site": env.action_space("site").high})
        assert abs(out["credit"]) > 10.0
        assert out["site"] == pytest.approx(-out["bill"] + out["credit"], rel=1e-9)


def test_a_learned_agent_billed_outside_its_subtree_is_warned_and_one_over_its_meter_is_not():
    with pytest.warns(UserWarning, match=r"agents\[0\]\.policy: the learned agent 'bat' \(billed by 'pcc'\): the "
                                         r"energy its devices draw or deliver is billed by a meter outside its subtree"):
        MultiAgentPowerGridEnv.from_config(_config(LONE))
    shared = [{"id": "mg", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
               "children": ["bat", "pcc"]}, {**LONE[0], "policy": "rule"}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MultiAgentPowerGridEnv.from_config(_config(shared))


def test_a_store_and_its_meter_under_one_learned_grid_agent_keep_its_return():
    """The grid agent over both holds bill, wear and credit as before: −Σbill − Σwear + credit, by hand; of its
    devices' own costs the meter's now holds the credit, the store's only its wear."""
    agents = [{"id": "mg", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
               "children": ["ess", "pcc"]},
              {"id": "ess", "type": "ESS", "bus": 5, "params": {"degradation_cost": 5.0}}]
    env = MultiAgentPowerGridEnv.from_config(_config(agents))
    for p_mw in (-0.5, 0.5):
        action = {"mg": np.full(env.action_space("mg").shape, p_mw, np.float32)}
        out = _play(env, action)
        assert abs(out["credit"]) > 10.0 and out["wear"] > 0
        assert out["mg"] == pytest.approx(-out["bill"] - out["wear"] + out["credit"], rel=1e-9)
        env.reset(seed=2)
        own = {"ess": 0.0, "pcc": 0.0}
        while env.agents:
            env.step(action)
            for aid in own:
                own[aid] += env.agent_costs()[aid][0]
        assert own["ess"] == pytest.approx(out["wear"], rel=1e-9)
        assert own["pcc"] == pytest.approx(out["bill"] - out["credit"], rel=1e-9)


def test_nested_meters_credit_the_innermost():
    """A meter on the feeder's first line (0 → 1) bills every bus but the slack's; the ext_grid meter bills all 33:
    the battery at bus 5 is behind both, and the line's (fewer buses) pays for its energy. Both bill it, the outer
    one without the credit (r40b: +45.02 $ to the ext_grid meter's agent for 1 MWh charged, unwarned): a warning."""
    feeder = {"id": "feeder", "type": "GridConnection", "bus": 1, "params": {"element": "line"}}
    with pytest.warns(UserWarning, match=r"reward\.storage_value: mean_price: the stores 'bat' \(billed by 'feeder' "
                                         r"inside 'pcc'\) are behind nested meters: each meter bills the energy"):
        env = MultiAgentPowerGridEnv.from_config(_config([*LONE, feeder]))
    assert env.scenario.store_payers == {"bat": "feeder"}

"""A learned agent whose reward counts a store's credit observes the store price: what it pays per MWh held at the end.

``ctx.store_price`` ($/MWh, the episode's mean price under ``reward.storage_value: mean_price``) is set at reset and
credits every MWh a store behind a billing meter holds at the episode's end, to the agents over that meter
(Scenario.store_payers); the ESS rule trades against it. Before
o40 no observation carried it (/work/notes/lead/s39/note.md, *Left unfixed*): a terminal reward the learner could
not see. It follows the agent's own features (a device agent's bus voltage, a grid agent's power and zone voltages).
"""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import COMMON_FEATURES, MultiAgentPowerGridEnv

pytest.importorskip("powergrid_devices", reason="the batteries and meters come with powergrid-devices")
pytest.importorskip("powergrid_datasets", reason="the CAISO prices come with powergrid-datasets")

#: Where the store price is: after the common features and a grid agent's four features.
AT = {"mg": COMMON_FEATURES + 4}


def _config(observation: str, storage_value: str = "mean_price") -> dict:
    """A learned battery, a learned grid agent setting a second battery's power (setpoint) over the billing meter at
    the slack, a learned PV (no store) on case33bw; the lone battery's energy is billed to the grid agent, whose
    reward also holds both stores' credit; 8 steps of 15 min at the CAISO 2023 day-ahead prices of a
    random day per episode (shipped offline in powergrid-datasets)."""
    return {
        "name": "store_price_obs",
        "network": {"type": "case33bw"},
        "time": {"step_minutes": 15, "steps_per_episode": 8},
        "spaces": {"observation": observation},
        "reward": {"storage_value": storage_value},
        "datasets": {"price": {"provider": "caiso_2023", "node": "0096WD_7_N001"}},
        "agents": [
            {"id": "bat", "type": "ESS", "bus": 5, "policy": "learned"},
            {"id": "mg", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
             "children": ["ess2", "pcc"]},
            {"id": "ess2", "type": "ESS", "bus": 17},
            {"id": "pv", "type": "PV", "bus": 24, "policy": "learned"},
            {"id": "pcc", "type": "GridConnection", "bus": 0},
        ],
    }


def _seen(env: MultiAgentPowerGridEnv, obs: dict, raw: bool) -> dict[str, float]:
    """The store price each credited agent observes, in $/MWh."""
    scale = (lambda x: x) if raw else (lambda x: 100.0 * x + 50.0)
    return {aid: scale(float(obs[aid][at])) for aid, at in AT.items()}


@pytest.mark.parametrize("observation", ["raw", "normalized"])
def test_a_learned_agent_over_a_store_observes_the_store_price_all_episode(observation):
    """Raw ($/MWh) and normalized ((p − 50)/100, as the price) at reset and at every step, to float32 precision."""
    env = MultiAgentPowerGridEnv.from_config(_config(observation))
    obs, _ = env.reset(seed=0)
    price = env.ctx.store_price
    assert price == pytest.approx(float(np.mean(env.ctx.profiles["price"][:env.n_steps])), rel=1e-12) and price > 0
    seen = [_seen(env, obs, observation == "raw")]
    while env.agents:
        obs, *_ = env.step({a: env.rule_action(a) for a in env.agents})
        seen.append(_seen(env, obs, observation == "raw"))
    assert len(seen) == 9
    for step in seen:
        assert step == pytest.approx({"mg": price}, rel=1e-6)
    for aid, at in AT.items():
        space = env.observation_space(aid)
        assert (space.low[at], space.high[at]) == (space.low[0], space.high[0])  # the price's bounds


def test_the_store_price_follows_the_episodes_prices_between_resets():
    """Each reset's observation carries that episode's mean price (seeds that draw different price days)."""
    env = MultiAgentPowerGridEnv.from_config(_config("raw"))
    seen = []
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        mean = float(np.mean(env.ctx.profiles["price"][:env.n_steps]))
        assert _seen(env, obs, raw=True) == pytest.approx({"mg": mean}, rel=1e-6)
        seen.append(mean)
    assert len(set(seen)) == 3


def test_only_agents_credited_for_a_store_get_the_feature_and_nothing_else_moves():
    """Under ``storage_value: none`` no store is valued: no agent has the feature. With it, the grid agent's
    observation is the same features with the store price inserted; the battery's (its energy and credit are the
    meter's, outside its subtree) and the PV's are unchanged."""
    valued = MultiAgentPowerGridEnv.from_config(_config("raw"))
    plain = MultiAgentPowerGridEnv.from_config(_config("raw", "none"))
    for aid in ("bat", "mg", "pv"):
        grown = int(valued.observation_space(aid).shape[0]) - int(plain.observation_space(aid).shape[0])
        assert grown == (aid in AT)
    actions = {"bat": valued.action_space("bat").high * 0.5, "mg": np.zeros(valued.action_space("mg").shape, np.float32),
               "pv": valued.action_space("pv").high}
    a, _ = valued.reset(seed=1)
    b, _ = plain.reset(seed=1)
    while True:
        for aid in ("bat", "mg", "pv"):
            got = np.delete(a[aid], AT[aid]) if aid in AT else a[aid]
            np.testing.assert_array_equal(got, b[aid])
        if not valued.agents:
            break
        a, *_ = valued.step(actions)
        b, *_ = plain.step(actions)

"""The pack's example scenarios: PettingZoo API, observations inside their spaces, rule policies.

The scenarios coordinate the devices with the ``setpoint`` and ``price_signal``
protocols, so these tests need powergrid-protocols installed.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from pettingzoo.test import parallel_api_test

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ConfigError

pytest.importorskip("powergrid_protocols", reason="the example scenarios use the setpoint/price_signal protocols")

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EXAMPLES = ("ev_depot", "building_hvac", "hydrogen_microgrid")


@pytest.mark.parametrize("name", EXAMPLES)
def test_parallel_api(name: str) -> None:
    parallel_api_test(MultiAgentPowerGridEnv.from_config(CONFIGS / f"{name}.yaml"), num_cycles=96)


@pytest.mark.parametrize("name", EXAMPLES)
def test_random_episode_stays_in_spaces(name: str) -> None:
    env = MultiAgentPowerGridEnv.from_config(CONFIGS / f"{name}.yaml")
    observations, _ = env.reset(seed=1)
    for agent in env.possible_agents:
        env.action_space(agent).seed(1)
    steps = 0
    while env.agents:
        actions = {a: env.action_space(a).sample() for a in env.agents}
        observations, rewards, _, _, infos = env.step(actions)
        for agent, obs in observations.items():
            assert env.observation_space(agent).contains(obs), (agent, obs)
            assert np.isfinite(rewards[agent])
            assert infos[agent]["converged"] and infos[agent]["safety"] >= 0 and infos[agent]["projection"] >= 0
        steps += 1
    assert steps == 96


def _with_own_policies(name: str, policies: dict[str, str]) -> MultiAgentPowerGridEnv:
    """The example with its GridAgent broadcasting the price and the devices on their own policies."""
    data = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    data = copy.deepcopy(data)
    for agent in data["agents"]:
        if agent.get("kind") == "grid":
            agent["protocol"] = {"type": "price_signal"}
        elif agent["id"] in policies:
            agent["policy"] = policies[agent["id"]]
    return MultiAgentPowerGridEnv.from_config(data)


@pytest.mark.parametrize(("name", "policies"), [
    ("building_hvac", {"hvac": "thermostat", "roof_pv": "mppt", "battery": "price_arbitrage"}),
    ("ev_depot", {"depot_pv": "mppt", "depot_ess": "price_arbitrage", "chargers": "rule"}),
    ("hydrogen_microgrid", {"wind": "mppt", "pv": "mppt", "battery": "price_arbitrage"}),
])
def test_rule_policies_run_a_day(name: str, policies: dict[str, str]) -> None:
    env = _with_own_policies(name, policies)
    env.reset(seed=2)
    safety: dict[str, float] = {}
    while env.agents:
        env.step({a: env.action_space(a).sample() for a in env.agents})  # the parent's price signal
        for agent, (cost, unsafe) in env.agent_costs().items():
            assert np.isfinite(cost)
            safety[agent] = safety.get(agent, 0.0) + unsafe
    if name == "building_hvac":
        assert safety["hvac"] == 0.0 and safety["hot_water"] == 0.0  # thermostats hold their bands


def test_a_policy_for_the_wrong_device_names_the_agent() -> None:
    with pytest.raises(ConfigError, match=r"agents\[\d+\]\.policy.*'battery'"):
        _with_own_policies("building_hvac", {"battery": "thermostat"})


def test_a_wrong_policy_is_refused_also_under_a_setpoint_parent() -> None:
    """A setpoint GridAgent's children never ask their own policy, but a policy that cannot drive the device is
    still a config error at build, with its YAML path."""
    data = yaml.safe_load((CONFIGS / "ieee34_3mg.yaml").read_text())
    next(a for a in data["agents"] if a["id"] == "mg1_ess")["policy"] = "mppt"
    with pytest.raises(ConfigError, match=r"agents\[1\]\.policy.*'mppt' drives PV and Wind.*'mg1_ess'"):
        MultiAgentPowerGridEnv.from_config(data)

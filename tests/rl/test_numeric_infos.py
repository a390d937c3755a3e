"""NumericInfos: the env's infos as numbers, so that TorchRL's standard PettingZooWrapper takes the env (r43 F2: it
failed with ``TypeError: new(): invalid data type 'str'`` on the text and nested entries) and keeps the cost signal."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import COMMON_INFO, MultiAgentPowerGridEnv
from powergrid.rl import NumericInfos
from powergrid.rl.numeric_infos import KEYS
from tests.conftest import CONFIGS

from .scenarios import multi_rate
from .test_common_infos import scenario as common_infos_scenario


def test_the_infos_keep_the_keys_as_numbers_and_drop_the_rest():
    config = common_infos_scenario(steps=6, period=2)  # multi-rate, and a rule meter's records in infos["__common__"]
    wrapped, raw = NumericInfos(MultiAgentPowerGridEnv.from_config(config)), MultiAgentPowerGridEnv.from_config(config)
    ticks = [(wrapped.reset(seed=1)[1], raw.reset(seed=1)[1])]
    while raw.agents:
        actions = {a: np.full(raw.action_space(a).shape, 0.5 - 0.2 * raw.tick, np.float32)
                   for a in raw.agents if raw.is_acting(a)}
        ticks.append((wrapped.step(actions)[4], raw.step(actions)[4]))
    assert any(COMMON_INFO in info for _, info in ticks)
    assert any(not info["b"]["acting"] for _, info in ticks)  # 'b' waits at every other tick
    for numeric, info in ticks:
        assert list(numeric) == raw.possible_agents
        for agent, entries in numeric.items():
            assert list(entries) == list(KEYS)
            for key, value in entries.items():
                assert type(value) is (bool if key in ("converged", "acting") else np.float32)
                assert value == np.float32(info[agent][key])


def test_an_info_without_a_key_is_a_key_error_naming_agent_and_key():
    env = NumericInfos(MultiAgentPowerGridEnv.from_config(multi_rate()), keys=("cost", "price"))
    with pytest.raises(KeyError, match=r"NumericInfos: agent 'slow'\'s info has no 'price' \(expected keys \['cost', "
                                       r"'price'\]; found \['acting', .*\]\)"):
        env.reset(seed=0)


def test_torchrl_takes_the_env_and_its_rollouts_carry_the_reward_terms():
    pytest.importorskip("torchrl")
    from torchrl.envs import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    raw = MultiAgentPowerGridEnv.from_config(CONFIGS / "ieee34_3mg.yaml")
    env = PettingZooWrapper(NumericInfos(raw), use_mask=False, categorical_actions=False, done_on_any=False)
    check_env_specs(env, seed=0)
    data = env.rollout(30)
    rw = raw.config.reward
    for group in env.group_map:  # one agent per group (their spaces differ)
        step = data["next", group]
        assert set(step["info"].keys()) == set(KEYS)
        info = {k: step["info", k].double().numpy().reshape(-1) for k in KEYS}
        reward = step["reward"].double().numpy().reshape(-1)
        assert info["converged"].all() and info["acting"].all() and np.all(info["cost"] != 0.0)
        terms = rw.cost_weight * info["cost"] + rw.safety_per_step(raw.dt_h) * info["safety"] + info["penalty"]
        np.testing.assert_allclose(reward, -terms, rtol=1e-6, atol=1e-6 * np.abs(terms).max())  # float32 values

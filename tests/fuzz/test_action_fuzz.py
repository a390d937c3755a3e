"""Hostile actions: for every shipped config, seeded hypothesis action dicts through ``env.step``.

An action dict may hold wrong shapes and dtypes (complex, text, objects, ragged lists), NaN, ±inf and
huge values, unknown agent ids, ids of agents that are not learned, or miss agents. ``step`` must
either raise :class:`~powergrid.errors.ActionError` (naming the agent) or run; when it runs, no
observation or reward is NaN or infinite, no info number is NaN, and a non-finite action shows as a
projection > 0 (an absurd finite one, 1e308, may report an infinite projection).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ActionError
from tests.fuzz.conftest import CONFIGS, MUTANTS, SEED, watchdog

STEPS_PER_CONFIG = max(MUTANTS // 10, 20)
WEIRD = [np.nan, np.inf, -np.inf, 1e308, -1e308, 0.0, 1e-300]


@st.composite
def action_for(draw: st.DrawFn, space: Any, wrong: bool) -> Any:
    """An action for ``space``: valid or with NaN/inf/huge entries, or (``wrong``) of a wrong shape or type."""
    shape = space.shape or (1,)
    kind = draw(st.sampled_from(["size", "complex", "text", "object", "ragged"] if wrong else
                                ["sample", "weird", "weird", "list", "int"]))
    if kind == "sample":
        return space.sample()
    if kind == "weird":
        return np.array(draw(st.lists(st.sampled_from(WEIRD), min_size=int(np.prod(shape)),
                                      max_size=int(np.prod(shape)))), np.float64).reshape(shape)
    if kind == "size":
        return np.zeros(draw(st.sampled_from([0, 1, 2, 99])) + int(np.prod(shape)) % 2)
    if kind == "complex":
        return np.full(shape, 1 + 1j)
    if kind == "text":
        return ["a"] * int(np.prod(shape))
    if kind == "object":
        return draw(st.sampled_from([object(), None, {"a": 1}, "x"]))
    if kind == "ragged":
        return [[1.0], [1.0, 2.0]]
    if kind == "list":
        return [float(v) for v in np.zeros(int(np.prod(shape)))]
    return np.zeros(shape, np.int64)


def _reported(info: Mapping[str, Any]) -> float:
    """The projection an agent's infos report: its own ``projection`` and any protocol's (nested) ``projection``."""
    total = 0.0
    for key, value in info.items():
        if key == "projection":
            total += sum(_numbers(value)) if isinstance(value, (Mapping, list, tuple)) else float(value)
        elif isinstance(value, Mapping):
            total += _reported(value)
    return total


def _numbers(value: Any) -> list[float]:
    """Every number inside an infos value (nested dicts and lists)."""
    if isinstance(value, Mapping):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _numbers(v)]
    if isinstance(value, (float, np.floating)):
        return [float(value)]
    return []


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_actions_give_documented_errors_and_no_nan(config, tally):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = MultiAgentPowerGridEnv.from_config(config)
    env.reset(seed=0)
    learned = list(env.possible_agents)
    others = [a for a in env.scenario.agents if a not in learned]
    outcomes = {"ran": 0, "ActionError": 0}
    own_size = {a: int(np.prod(env.scenario.agents[a].own_action_space.shape or (1,))) for a in learned}

    @seed(SEED)
    @settings(max_examples=STEPS_PER_CONFIG, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def one_step(data: st.DataObject) -> None:
        if not env.agents:
            env.reset(seed=0)
        actions: dict[str, Any] = {}
        wrong = data.draw(st.sampled_from([None, None, None, *env.agents]))  # one agent sends a malformed action
        for agent in env.agents:
            if data.draw(st.integers(0, 9)) or agent == wrong:  # sometimes an agent sends nothing
                actions[agent] = data.draw(action_for(env.action_space(agent), agent == wrong))
        extra = data.draw(st.sampled_from(["none"] * 8 + ["unknown", "not learned"]))
        if extra == "unknown":
            actions["no_such_agent"] = 0.0
        elif extra == "not learned" and others:
            actions[data.draw(st.sampled_from(others))] = 0.0
        sent_non_finite = {a for a, v in actions.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"
                           and a in own_size and not np.isfinite(v.reshape(-1)[: own_size[a]]).all()}
        try:
            with watchdog(f"{config.name}: one step"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                observations, rewards, _, _, infos = env.step(actions)
        except ActionError as exc:
            assert str(exc) and "\n" not in str(exc)
            named = [a for a in actions if f"'{a}'" in str(exc)]
            assert named, f"the error names no agent of the action dict: {exc}"
            outcomes["ActionError"] += 1
            env.reset(seed=0)
            return
        outcomes["ran"] += 1
        for agent, obs in observations.items():
            assert np.isfinite(obs).all(), f"{agent}: NaN or inf in the observation"
        for agent, reward in rewards.items():
            assert math.isfinite(reward), f"{agent}: reward {reward}"
        for agent, info in infos.items():
            assert not any(math.isnan(x) for x in _numbers(info)), f"{agent}: NaN in infos {info}"
        for agent in sent_non_finite & set(infos):
            if env.scenario.agents[agent].is_due(env.tick - 1) and env.scenario.agents[agent].devices():
                assert _reported(infos[agent]) > 0, f"{agent}: a non-finite action was not reported"

    one_step()
    tally[f"actions {config.stem}: ran"] += outcomes["ran"]
    tally[f"actions {config.stem}: ActionError"] += outcomes["ActionError"]

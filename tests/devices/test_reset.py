"""A reset forgets the previous episode: a device that ran an episode (on its own or bound to its kernel) and is reset
with a seed equals a new device reset with that seed, and a used env's ``reset(seed)`` observes what a new env's does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import gymnasium
import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from tests.devices.helpers import DEVICES, at, context, make
from tests.devices.test_contract import CASES
from tests.devices.test_kernels import GROUPS, STEPS, _actions, _attach_rows, _contexts, _device_values, _flows, _kernel_values

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _state(x: Any, seen: set[int] | None = None) -> Any:
    """Everything ``x`` holds, as comparable values: the attributes of the pack's objects (a cycle as a marker),
    arrays and generators by value."""
    seen = set() if seen is None else seen
    if isinstance(x, np.random.Generator):
        return x.bit_generator.state
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (list, tuple)):
        return [_state(v, seen) for v in x]
    if isinstance(x, dict):
        return {k: _state(v, seen) for k, v in x.items()}
    if type(x).__module__.startswith("powergrid") and (attrs.has(type(x)) or hasattr(x, "__dict__")):
        if id(x) in seen:
            return "<seen>"
        seen.add(id(x))
        values = {f.name: getattr(x, f.name) for f in attrs.fields(type(x))} if attrs.has(type(x)) else vars(x)
        return {k: _state(v, seen) for k, v in values.items()}
    return x


def _sample(space: gymnasium.spaces.Space, rng: np.random.Generator) -> Any:
    if isinstance(space, gymnasium.spaces.Discrete):
        return int(rng.integers(space.start, space.start + space.n))
    return rng.uniform(space.low, space.high).astype(np.float32)


@pytest.mark.parametrize("name", DEVICES)
def test_a_used_device_reset_with_a_seed_equals_a_new_one(name: str) -> None:
    """After 60 steps, ``reset(rng(7))`` leaves no value of the episode (PV/Wind kept their available power, heated
    stores their heat per kW): same attributes, observation and state as a new device, and the same next steps."""
    raw = CASES[name][0]
    used, new = make(name, seed=1, **raw), make(name, seed=7, **raw)
    ctx, rng = context(), np.random.default_rng(0)
    for t in range(60):
        used.step(_sample(used.action_space, rng), at(ctx, t))
    used.reset(np.random.default_rng(7))
    for t in range(4):
        assert _state(used) == _state(new), t
        np.testing.assert_array_equal(used.observe(), new.observe())
        action = _sample(new.action_space, rng)
        used.step(action, at(ctx, 40 + t))
        new.step(action, ctx)


@pytest.mark.parametrize("kind,raws", GROUPS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(GROUPS)])
def test_a_batched_device_reset_with_a_seed_equals_a_new_one(kind: str, raws: list[dict[str, Any]]) -> None:
    """A device bound to a kernel that stepped an episode, reset with a seed: its kernel row and its observation are
    a new device's (the reset writes the kernel's arrays; nothing of the episode stays there)."""
    devices = [make(kind, seed=i, **raw) for i, raw in enumerate(raws)]
    _attach_rows(devices)
    kernel = type(devices[0]).Kernel(devices)
    kernel.load()
    ctx, _ = _contexts()
    rng = np.random.default_rng(1)
    for t in range(STEPS):
        kernel.step(_actions(rng, kernel.box.low, kernel.box.high) if hasattr(kernel, "box") else
                    np.zeros((len(devices), 0)), rng.uniform(0.0, 90.0, len(devices)), at(ctx, t))
        if kernel.settles:
            kernel.settle(_flows(rng), ctx)
    for row, d in enumerate(devices):
        d.reset(np.random.default_rng(10 + row))
    kernel.load()
    for row, raw in enumerate(raws):
        new = make(kind, seed=10 + row, **raw)
        assert _kernel_values(kernel, row) == _device_values(kernel, new), row
        np.testing.assert_array_equal(kernel.observe()[row], new.observe())


@pytest.mark.filterwarnings("ignore")
def test_a_used_env_reset_with_a_seed_observes_what_a_new_env_does() -> None:
    """ieee34_3mg: 40 random steps (into the day: the PV produce), then ``reset(seed=5)``: the first observations and
    the devices' states are a new env's (the PV observed the last episode's available power, 0.888 against 0)."""
    path = CONFIGS / "ieee34_3mg.yaml"
    used, new = MultiAgentPowerGridEnv.from_config(path), MultiAgentPowerGridEnv.from_config(path)
    used.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(40):
        used.step({a: _sample(used.action_space(a), rng) for a in used.agents})
    obs, _ = used.reset(seed=5)
    expected, _ = new.reset(seed=5)
    for agent, values in expected.items():
        np.testing.assert_allclose(obs[agent], values, atol=1e-7)  # the power flow's warm start differs (1e-9 pu)
    for name, agent in new.scenario.agents.items():
        if getattr(agent, "device", None) is not None:
            assert used.scenario.agents[name].device.state_dict() == agent.device.state_dict(), name

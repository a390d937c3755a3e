"""A plugin author's mistakes seen only once a scenario is built or stepped (review f33, /work/notes/f33/report.md):
an observe() of the wrong size, an observe() without an observation_space, a directive action of the wrong shape.
Plugin classes are defined here (no pack)."""

from __future__ import annotations

import numpy as np
import pytest

import powergrid
from powergrid.devices import Device, box
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import PluginError
from powergrid.protocols import Directive, VerticalProtocol


@pytest.fixture
def local(monkeypatch):
    """Register plugins for this test only."""
    monkeypatch.setattr(powergrid.plugins._LOCAL, "records", list(powergrid.plugins._LOCAL.records))
    powergrid.plugins._clear_cache()
    yield
    powergrid.plugins._clear_cache()


def observer(name: str, space: bool, values: list[float]) -> None:
    """Register a device ``name`` whose observe() returns ``values`` (a 2-entry observation_space when ``space``)."""

    @powergrid.register_device(name)
    class Observer(Device):
        def __init__(self, params, dt_h):
            super().__init__(params, dt_h)
            self.action_space = box(0.0, 0.01)
            if space:
                self.observation_space = box([0.0, 0.0], [1.0, 1.0])

        def step(self, action, ctx):
            self.p_mw = -0.005

        def observe(self):
            return np.array(values, np.float32)


def scenario(device: str, protocol: str = "none", policy: str = "learned") -> dict:
    return {"name": "author", "network": {"type": "case33bw"}, "time": {"step_minutes": 15, "steps_per_episode": 2},
            "agents": [{"id": "g", "kind": "grid", "protocol": {"type": protocol}, "children": ["d"]},
                       {"id": "d", "type": device, "bus": 5, "policy": policy}]}


def test_an_observe_of_one_value_for_two_entries_is_an_error_at_reset(local):
    # f33 D1: [0.7] was broadcast into both entries of the learned agent's observation, silently
    observer("ShortObs", True, [0.7])
    env = MultiAgentPowerGridEnv.from_config(scenario("ShortObs"))
    with pytest.raises(ValueError, match=r"^agent 'd': Observer\.observe\(\) returned shape \(1,\), expected 2 "
                                         r"value\(s\) \(its observation_space has shape \(2,\)\)$"):
        env.reset(seed=0)


def test_an_observe_of_the_right_size_is_observed(local):
    observer("RightObs", True, [0.7, 0.3])
    env = MultiAgentPowerGridEnv.from_config(scenario("RightObs"))
    obs, _ = env.reset(seed=0)
    assert obs["d"][-2:].tolist() == pytest.approx([0.7, 0.3])


def test_an_observe_without_an_observation_space_is_an_error_at_build(local):
    # f33 D2: the device's two values were dropped (an observation of 6 entries instead of 8), silently
    observer("NoSpace", False, [0.7, 0.3])
    with pytest.raises(PluginError, match=r"^agent 'd' \(device 'NoSpace' from local:.*test_plugin_author_runtime\.py\): "
                                          r"Observer overrides observe\(\) but its observation_space is empty"):
        MultiAgentPowerGridEnv.from_config(scenario("NoSpace", policy="rule"))


def protocol(name: str, action: np.ndarray | None, price: float | None = None) -> None:
    """Register a vertical protocol ``name`` handing every child ``Directive(action, price)``."""

    @powergrid.register_protocol(name)
    class Handing(VerticalProtocol):
        def directives(self, a, ctx):
            return [Directive(action=action, price=price) for _ in self.parent.children]


@pytest.mark.parametrize("size", [3, 0])
def test_a_directive_action_of_the_wrong_shape_names_protocol_parent_child_and_both_shapes(local, size):
    # f33 D3: 3 values for a 1-entry child: the child got [0, 0, 0] (or, clipped, its step was blamed for a reshape)
    observer("OneMW", True, [0.5, 0.5])
    protocol("wrong_shape", np.zeros(size, np.float32))
    env = MultiAgentPowerGridEnv.from_config(scenario("OneMW", "wrong_shape", policy="rule"))
    env.reset(seed=0)
    with pytest.raises(PluginError, match=rf"^agent 'g' \(protocol 'wrong_shape' from local:.*\): Handing\.directives\(\) "
                                          rf"at ctx\.tick 0 gave child 'd' an action of shape \({size},\), expected shape "
                                          rf"\(1,\) \(its action space Box"):
        env.step({})


def test_directives_of_the_right_shape_or_price_only_run(local):
    observer("OneMW2", True, [0.5, 0.5])
    protocol("right_shape", np.array([0.004], np.float32))
    protocol("price_only", None, price=42.0)
    for name in ("right_shape", "price_only"):
        env = MultiAgentPowerGridEnv.from_config(scenario("OneMW2", name, policy="rule"))
        env.reset(seed=0)
        env.step({})
        d = env.scenario.agents["d"]
        if name == "right_shape":
            assert np.asarray(d.pending).tolist() == pytest.approx([0.004])
        else:
            assert d.price == 42.0

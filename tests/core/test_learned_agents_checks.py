"""What a learned agent is told at build and in ``infos``: a learned agent with nothing to act on is refused (rv2 D8),
and the top-level ``projection`` counts what its protocols projected, not only its devices (r32 item 6). Plugin
devices and protocols defined here: no device or protocol pack needed."""

from __future__ import annotations

import re

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ConfigError

from .test_plugin_mistakes import local_plugin

PLUGINS = """
    from powergrid.protocols import Directive, HorizontalProtocol, VerticalProtocol

    @powergrid.register_device("ReadOnlyMeter")
    class ReadOnlyMeter(Device):
        \"\"\"Measures only: no action (like a read-only HIL map).\"\"\"
        def __init__(self, params, dt_h):
            super().__init__(params, dt_h)
            self.action_space = box([], [])

        def step(self, action, ctx):
            self.p_mw = 0.0

    @powergrid.register_device("SetpointUnit")
    class SetpointUnit(Device):
        \"\"\"A setpoint in [0, 1] MW, as asked.\"\"\"
        def __init__(self, params, dt_h):
            super().__init__(params, dt_h)
            self.action_space = box(0.0, 1.0)

        def step(self, action, ctx):
            self.p_mw = float(action[0])

        def rule_action(self, ctx):
            return np.zeros(1, np.float32)

    @powergrid.register_protocol("clipped_tariff")
    class Tariff(VerticalProtocol):
        \"\"\"The parent sends a price in [0, 100] $/MWh; the clipped distance is its projection.\"\"\"
        def __init__(self, params, parent):
            super().__init__(params, parent)
            self.projection = 0.0

        def action_space(self):
            return box(0.0, 100.0)

        def directives(self, action, ctx):
            requested = float(np.asarray(action).reshape(-1)[0])
            price = min(max(requested, 0.0), 100.0)
            self.projection = abs(price - requested)
            return [Directive(price=price) for _ in self.parent.children]

        def info(self):
            return {"projection": self.projection}

    @powergrid.register_protocol("extra_pool")
    class Pool(HorizontalProtocol):
        \"\"\"An extra action [q] in [-1, 1] per participant; reports a projection of 0.5 for participant u.\"\"\"
        projection = {}

        def action_space(self, agent):
            return box(-1.0, 1.0)

        def coordinate(self, actions, ctx):
            self.projection = {a.id: 0.5 for a in self.participants if a.id == "u"}

        def info(self):
            return {"projection": dict(self.projection)}
"""


@pytest.fixture(scope="module", autouse=True)
def plugins(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        local_plugin(tmp_path_factory.mktemp("learned"), "learned_checks", PLUGINS, mp)


def _config(*agents: dict, **extra) -> dict:
    return {"name": "learned", "network": {"type": "case33bw"}, "time": {"physics": "15min", "episode": "1h"},
            "spaces": {"action": "physical"}, "agents": list(agents), **extra}


def _refusal(path, agent: str, found: str) -> str:
    return re.escape(f"{path}:4 agents[0].policy: agent '{agent}' is learned but has nothing to act on: {found}, so its "
                     "action space Box(0,) is empty; expected a learned agent with at least one action entry (a device or "
                     "protocol action, or a horizontal protocol's extra action); remove 'policy: learned' (its rule then "
                     "runs it)")


def test_a_learned_device_agent_with_nothing_to_act_on_is_refused_at_its_policy(tmp_path):
    # a learned read-only ModbusDevice was exposed as Box(0,) (rv2 D8, /work/notes/rv2/ro_pz.py)
    path = tmp_path / "learned.yaml"
    path.write_text("name: learned\nnetwork: {type: case33bw}\nagents:\n  - {id: meter, type: ReadOnlyMeter, bus: 5, policy: learned}\n")
    with pytest.raises(ConfigError, match=f"^{_refusal(path, 'meter', 'its device ReadOnlyMeter takes no action')}$"):
        MultiAgentPowerGridEnv.from_config(str(path))


def test_a_learned_grid_agent_with_nothing_to_act_on_is_warned_of_at_its_policy(tmp_path):
    # a learned grid agent over meters only (rv2 D8: setpoint over a read-only map; here protocol none). Warned, not
    # refused: it still observes and is scored, and the core tests' shared scenario (tests/core/scenarios.py) uses one
    path = tmp_path / "learned.yaml"
    path.write_text("name: learned\nnetwork: {type: case33bw}\nagents:\n"
                    "  - {id: site, kind: grid, policy: learned, children: [meter]}\n  - {id: meter, type: ReadOnlyMeter, bus: 5}\n")
    found = "its protocol NoProtocol takes no action over its children ('meter')"
    with pytest.warns(UserWarning, match=f"^{_refusal(path, 'site', found)}$"):
        env = MultiAgentPowerGridEnv.from_config(str(path))
    assert env.possible_agents == ["site"]


def test_the_same_agents_with_their_rules_build_and_run():
    env = MultiAgentPowerGridEnv.from_config(_config({"id": "site", "kind": "grid", "children": ["meter"]},
                                                     {"id": "meter", "type": "ReadOnlyMeter", "bus": 5}))
    env.reset(seed=0)
    env.step({})
    assert env.possible_agents == [] and not env.failure


def test_a_vertical_protocols_projection_is_in_the_top_level_projection():
    # r32 item 6 (/work/notes/r32/repro/d6_protocol_projection_not_in_infos.py): a price_signal parent asking for a
    # price outside [price_min, price_max] had projection 0; the distance was only in infos[agent]["PriceSignal"]
    env = MultiAgentPowerGridEnv.from_config(_config(
        {"id": "op", "kind": "grid", "policy": "learned", "protocol": {"type": "clipped_tariff"}, "children": ["u"]},
        {"id": "u", "type": "SetpointUnit", "bus": 5}))
    env.reset(seed=0)
    infos = env.step({"op": np.array([130.0], np.float32)})[4]
    assert infos["op"]["Tariff"] == {"projection": 30.0}
    assert infos["op"]["projection"] == 30.0
    assert env.step({"op": np.array([40.0], np.float32)})[4]["op"]["projection"] == 0.0


def test_a_protocols_projection_counts_at_physics_ticks_only():
    # period 5 min under a 15-min physics step: ticks 1 and 2 of each step run no physics, project nothing (as devices)
    env = MultiAgentPowerGridEnv.from_config(_config(
        {"id": "op", "kind": "grid", "policy": "learned", "period": "5min", "protocol": {"type": "clipped_tariff"},
         "children": ["u"]}, {"id": "u", "type": "SetpointUnit", "bus": 5}))
    env.reset(seed=0)
    got = [env.step({"op": np.array([-20.0], np.float32)})[4]["op"] for _ in range(4)]
    assert [i["projection"] for i in got] == [20.0, 0.0, 0.0, 20.0]
    assert all(i["Tariff"] == {"projection": 20.0} for i in got)


def test_a_horizontal_protocols_projection_and_an_extra_action_out_of_bounds_count_for_their_agent():
    # a learned participant's extra action outside its bounds was clipped by the env and the distance dropped:
    # projection 0 everywhere (/work/notes/b33/p2p_extra.py on configs/p2p_3mg.yaml: 5.0 and NaN gave 0)
    env = MultiAgentPowerGridEnv.from_config(_config(
        {"id": "u", "type": "SetpointUnit", "bus": 5, "policy": "learned"},
        {"id": "w", "type": "SetpointUnit", "bus": 6, "policy": "learned"},
        horizontal=[{"type": "extra_pool", "participants": ["u", "w"]}]))
    env.reset(seed=0)
    infos = env.step({"u": np.array([0.5, 3.0], np.float32), "w": np.array([0.5, np.nan], np.float32)})[4]
    assert infos["u"]["Pool"] == {"projection": {"u": 0.5}}
    assert infos["u"]["projection"] == pytest.approx(0.5 + 2.0)  # the protocol's 0.5, the extra 3.0 → 1.0
    assert infos["w"]["projection"] == pytest.approx(2.0)  # NaN: the full range
    # held until the agent acts again (multi-rate holds it, as a device's action is held and projected again)
    infos = env.step({"u": np.array([0.5, 0.0], np.float32), "w": np.array([0.5, 0.0], np.float32)})[4]
    assert (infos["u"]["projection"], infos["w"]["projection"]) == (0.5, 0.0)


def test_a_device_output_of_none_is_named_none_not_nan(tmp_path, monkeypatch):
    # rv1 D5 (/work/notes/rv1/p_nanp.py): q_mvar = None was reported as "set q_mvar = nan"
    local_plugin(tmp_path / "p", "none_q", """
        @powergrid.register_device("NoneReactive")
        class NoneReactive(Device):
            def step(self, action, ctx):
                self.p_mw, self.q_mvar = 0.01, None
    """, monkeypatch)
    env = MultiAgentPowerGridEnv.from_config(_config({"id": "x", "type": "NoneReactive", "bus": 5}))
    env.reset(seed=0)
    with pytest.raises(Exception, match=re.escape("NoneReactive.step() at ctx.tick 0 set q_mvar = None; expected a number "
                                                  "(a Python or numpy float, e.g. 0.0)")):
        env.step({})


def test_the_id_of_the_envs_own_infos_entry_is_refused_as_an_agent_id():
    """An agent named '__common__' would collide with ``infos["__common__"]`` (4a33912): one ConfigError at its id."""
    data = {"network": {"type": "case33bw"}, "agents": [{"id": "__common__", "type": "X", "bus": 1}]}
    with pytest.raises(ConfigError, match=r"agents\[0\]\.id.*'__common__' is reserved for the env's own infos entry"):
        MultiAgentPowerGridEnv.from_config(data)

"""A device's per-step records (``Device.info()``, e.g. a HIL device's communication faults) reach the user: in the
infos of the learned agent at or above it, else in the env's entry ``infos["__common__"]``, and in the summary of
``powergrid run`` (hold-out reviews g32 and h32). Plugin devices defined here: no device pack needed."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.cli import main
from powergrid.env import MultiAgentPowerGridEnv

from .test_plugin_mistakes import local_plugin

COMMON_INFO = "__common__"  # the env's own infos entry (powergrid.env.COMMON_INFO)

DEVICES = """
    from powergrid.protocols import VerticalProtocol

    @powergrid.register_device("FlakyLink")
    class FlakyLink(Device):
        \"\"\"0.01 MW; its link fails at odd ticks: one ``comm`` record, counted in ``comm_failures``.\"\"\"
        def __init__(self, params, dt_h):
            super().__init__(params, dt_h)
            self.action_space = box(0.0, 1.0)
            self.records, self.comm_failures = [], 0

        def reset(self, rng):
            super().reset(rng)
            self.records, self.comm_failures = [], 0

        def step(self, action, ctx):
            self.p_mw = 0.01
            self.records = [{"op": "read", "what": "p", "kind": "timeout", "tick": ctx.tick}] if ctx.tick % 2 else []
            self.comm_failures += bool(self.records)

        def rule_action(self, ctx):
            return np.zeros(1, np.float32)

        def info(self):
            return {"comm": list(self.records)}

        def state_dict(self):
            return {"p_mw": self.p_mw, "comm_failures": float(self.comm_failures)}

    @powergrid.register_protocol("hands_off_parent")
    class HandsOff(VerticalProtocol):
        \"\"\"An action [0, 1] that tells the children nothing (they decide).\"\"\"
        def action_space(self):
            return box(0.0, 1.0)
"""


@pytest.fixture(scope="module", autouse=True)
def flaky(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        local_plugin(tmp_path_factory.mktemp("reports"), "flaky_devices", DEVICES, mp)


def _config(*agents: dict) -> dict:
    return {"name": "reports", "network": {"type": "case33bw"}, "time": {"step_minutes": 15, "steps_per_episode": 4},
            "agents": list(agents)}


def _infos(env: MultiAgentPowerGridEnv) -> list[dict]:
    _, infos = env.reset(seed=0)
    out = [infos]
    while not env.ended:
        out.append(env.step({a: np.zeros(1, np.float32) for a in env.agents})[4])
    return out


def test_a_rule_driven_device_beside_the_learned_agents_reports_its_faults_in_the_envs_entry():
    # g32 (/work/notes/g32/t_ro.py): a rule-driven meter at the root had no infos, its comm faults were reported nowhere
    env = MultiAgentPowerGridEnv.from_config(_config({"id": "b", "type": "FlakyLink", "bus": 5, "policy": "learned"},
                                                     {"id": "meter", "type": "FlakyLink", "bus": 6}))
    infos = _infos(env)
    assert [COMMON_INFO in i for i in infos] == [False, False, True, False, True]  # reset, ticks 0..3: only with faults
    assert infos[2][COMMON_INFO] == {"comm": {"meter": [{"op": "read", "what": "p", "kind": "timeout", "tick": 1}]}}
    # the learned device's own records stay in its own infos, not in the env's entry
    assert [len(i["b"]["comm"]) for i in infos] == [0, 0, 1, 0, 1]
    assert set(infos[2]) == {"b", COMMON_INFO}


def test_a_device_below_a_learned_parent_reports_in_the_parents_infos_only():
    env = MultiAgentPowerGridEnv.from_config(_config(
        {"id": "site", "kind": "grid", "policy": "learned", "protocol": {"type": "hands_off_parent"}, "children": ["b", "meter"]},
        {"id": "b", "type": "FlakyLink", "bus": 5, "policy": "learned"}, {"id": "meter", "type": "FlakyLink", "bus": 6}))
    infos = _infos(env)
    assert all(COMMON_INFO not in i for i in infos)
    assert [len(i["site"]["comm"]) for i in infos] == [0, 0, 2, 0, 2]


def test_without_learned_agents_the_faults_are_in_the_envs_entry():
    env = MultiAgentPowerGridEnv.from_config(_config({"id": "meter", "type": "FlakyLink", "bus": 6}))
    infos = _infos(env)
    assert [sorted(i.get(COMMON_INFO, {}).get("comm", {})) for i in infos] == [[], [], ["meter"], [], ["meter"]]


def test_run_names_the_steps_with_communication_faults_per_agent(tmp_path, capsys):
    # h32: the run summary did not name comm faults
    config = tmp_path / "flaky.yaml"
    config.write_text("name: flaky\nnetwork: {type: case33bw}\ntime: {physics: 15min, episode: 1h}\nagents:\n"
                      "  - {id: b, type: FlakyLink, bus: 5, policy: learned}\n  - {id: meter, type: FlakyLink, bus: 6}\n")
    assert main(["run", str(config), "--episodes", "2", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "communication faults (physics steps with one, of 8): b 4, meter 4\n" in out


def test_run_says_nothing_of_communication_faults_when_there_are_none(tmp_path, capsys):
    config = tmp_path / "steady.yaml"
    config.write_text("name: steady\nnetwork: {type: case33bw}\ntime: {physics: 15min, episode: 15min}\nagents:\n"
                      "  - {id: meter, type: FlakyLink, bus: 6}\n")
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 0
    assert "communication faults" not in capsys.readouterr().out

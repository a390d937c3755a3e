"""The env's own infos entry ``infos["__common__"]`` (records of devices with no learned agent at or above them, e.g. a
rule-driven meter's communication faults) reaches the RL libraries: RLlib (its ``__common__`` key, kept on the episode
by ``keep_common_infos``), SB3's ``VecEnv`` slots and the single-agent gymnasium view, at the step the core env reports
it (or, for a multi-rate agent, merged over the ticks its step ran). A plugin device defined here: no device pack."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

import powergrid
from powergrid.devices import Device, box
from powergrid.env import COMMON_INFO, MultiAgentPowerGridEnv
from powergrid.rl.gym import SingleAgentView


@powergrid.register_device("DroppingLinkMeter")
class DroppingLinkMeter(Device):
    """0.01 MW; its link drops the read of every odd tick: one ``comm`` record (as a HIL device reports a timeout)."""

    def __init__(self, params, dt_h):
        super().__init__(params, dt_h)
        self.action_space = box(0.0, 1.0)
        self.records = []

    def reset(self, rng):
        super().reset(rng)
        self.records = []

    def step(self, action, ctx):
        self.p_mw = 0.01
        self.records = [{"op": "read", "what": "p", "kind": "timeout", "tick": ctx.tick}] if ctx.tick % 2 else []

    def rule_action(self, ctx):
        return np.zeros(1, np.float32)

    def info(self):
        return {"comm": list(self.records)}


def scenario(steps: int = 4, period: int = 1) -> dict:
    """Two learned devices ``b``, ``c`` (acting every ``period`` ticks) and a rule-driven meter ``meter`` whose link
    drops the reads of odd ticks; only the meter's records go to ``infos["__common__"]``."""
    learned = {"type": "DroppingLinkMeter", "policy": "learned", "period": period}
    return {"name": "common_infos", "network": {"type": "case33bw"},
            "time": {"step_minutes": 15, "steps_per_episode": steps},
            "agents": [{"id": "b", "bus": 5, **learned}, {"id": "c", "bus": 7, **learned},
                       {"id": "meter", "type": "DroppingLinkMeter", "bus": 6}]}


def meter(*ticks: int) -> dict:
    """The ``__common__`` entry holding the meter's records of ``ticks``."""
    return {"comm": {"meter": [{"op": "read", "what": "p", "kind": "timeout", "tick": t} for t in ticks]}}


def core_common(config: dict) -> list:
    """The core env's ``infos.get("__common__")`` at reset and at each step of one episode (every agent acting 0)."""
    env = MultiAgentPowerGridEnv.from_config(config)
    _, infos = env.reset(seed=0)
    out = [infos.get(COMMON_INFO)]
    while env.agents:
        out.append(env.step({a: np.zeros(1, np.float32) for a in env.agents})[4].get(COMMON_INFO))
    return out


def test_the_core_env_reports_the_dropped_reads_and_passes_pettingzoos_api_test():
    assert core_common(scenario()) == [None, None, meter(1), None, meter(3)]
    # PettingZoo's test passes; it warns "Agent was given info but was dead last turn" at a step with the entry
    parallel_api_test(MultiAgentPowerGridEnv.from_config(scenario()), num_cycles=20)


def test_rllib_step_carries_the_common_entry_at_the_core_envs_step():
    pytest.importorskip("ray.rllib")
    from ray.rllib.utils.pre_checks.env import check_multiagent_environments

    from powergrid.rl.rllib import RLlibPowerGridEnv

    env = RLlibPowerGridEnv({"scenario": scenario()})
    check_multiagent_environments(env)  # RLlib's own check, with infos["__common__"] at some steps
    _, infos = env.reset(seed=0)
    seen = [infos.get(COMMON_INFO)]
    for _ in range(4):
        obs, _, _, _, infos = env.step({a: np.zeros(1, np.float32) for a in ("b", "c")})
        assert set(infos) - set(obs) <= {COMMON_INFO}  # RLlib's contract: agents' infos plus '__common__'
        seen.append(infos.get(COMMON_INFO))
        assert env.common_info == (infos.get(COMMON_INFO) or {})
    assert seen == core_common(scenario())


def test_rllib_merges_the_records_of_the_ticks_a_step_holds():
    pytest.importorskip("ray.rllib")
    from powergrid.rl.rllib import RLlibPowerGridEnv

    env = RLlibPowerGridEnv({"scenario": scenario(steps=6, period=3)})  # acting at ticks 0 and 3: steps of 3 ticks
    env.reset(seed=0)
    seen = [env.step({a: np.zeros(1, np.float32) for a in ("b", "c")})[4].get(COMMON_INFO) for _ in range(2)]
    assert seen == [meter(1), meter(3, 5)]


@pytest.mark.parametrize("runner", ["MultiAgentEnvRunner", "VectorEnvRunner"])
def test_rllibs_env_runner_keeps_the_common_entry_on_the_episode(runner):
    pytest.importorskip("ray.rllib")
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

    from powergrid.rl.rllib import RLlibPowerGridEnv, keep_common_infos, module_per_agent
    from powergrid.rl.rllib_vector import VectorEnvRunner

    config = (PPOConfig()
              .environment(RLlibPowerGridEnv, env_config={"scenario": scenario()})
              .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
              .rl_module(model_config={"fcnet_hiddens": [8]})
              .multi_agent(policies={"b", "c"}, policy_mapping_fn=module_per_agent)
              .callbacks(on_episode_step=keep_common_infos))
    cls = {"MultiAgentEnvRunner": MultiAgentEnvRunner, "VectorEnvRunner": VectorEnvRunner}[runner]
    env_runner = cls(config=config)
    try:
        episodes = env_runner.sample(num_episodes=2, random_actions=True)
    finally:
        env_runner.stop()
    assert len(episodes) == 2
    for episode in episodes:  # (env step, entry): the core env's steps 2 and 4
        assert episode.custom_data[COMMON_INFO] == [(2, meter(1)), (4, meter(3))]


def test_sb3_vecenv_puts_a_copys_common_entry_in_each_of_its_slots():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.vec_env import VecMonitor

    from powergrid.rl.sb3 import PowerGridVecEnv

    expected = core_common(scenario())
    venv = VecMonitor(PowerGridVecEnv(scenario(), 2))  # slots: copy 0 (b, c), copy 1 (b, c), as SuperSuit lays them out
    venv.reset()
    assert all(COMMON_INFO not in info for info in venv.reset_infos)
    for step in range(1, 6):  # the copies finish at step 4 and restart
        _, _, dones, infos = venv.step(np.zeros((4, 1), np.float32))
        want = expected[(step - 1) % 4 + 1]
        assert [info.get(COMMON_INFO) for info in infos] == [want] * 4
        if want is not None:
            assert infos[0][COMMON_INFO] is infos[1][COMMON_INFO]  # one dict per copy: count it once
            assert infos[1][COMMON_INFO] is not infos[2][COMMON_INFO]
        assert dones.all() == (step == 4)
        if step == 4:
            assert "episode" in infos[0] and "terminal_observation" in infos[0]  # SB3's keys beside ours
    venv.close()


def test_sb3_vecenv_final_step_keeps_the_common_entry_with_the_terminal_observation():
    pytest.importorskip("stable_baselines3")
    from powergrid.rl.sb3 import PowerGridVecEnv

    venv = PowerGridVecEnv(scenario(steps=2), 1)
    venv.reset()
    venv.step(np.zeros((2, 1), np.float32))
    _, _, dones, infos = venv.step(np.zeros((2, 1), np.float32))
    assert dones.all()
    for info in infos:
        assert info[COMMON_INFO] == meter(1) and "terminal_observation" in info and info["TimeLimit.truncated"]
    assert all(COMMON_INFO not in info for info in venv.reset_infos)


def test_single_agent_view_info_carries_the_common_entry():
    view = SingleAgentView(scenario(), "b")
    _, info = view.reset(seed=0)
    seen = [info.get(COMMON_INFO)]
    for _ in range(4):
        seen.append(view.step(np.zeros(1, np.float32))[4].get(COMMON_INFO))
    assert seen == core_common(scenario())


def test_single_agent_view_merges_the_records_of_the_ticks_a_step_runs():
    # b acts at ticks 0 and 3 (period 3); its steps run ticks 0-2 and 3-5
    view = SingleAgentView(scenario(steps=6, period=3), "b")
    view.reset(seed=0)
    steps = [view.step(np.zeros(1, np.float32)) for _ in range(2)]
    assert [info.get(COMMON_INFO) for *_, info in steps] == [meter(1), meter(3, 5)]
    assert [info["ticks"] for *_, info in steps] == [3, 3]
    assert steps[-1][3]  # truncated: the episode's end


def test_single_agent_view_passes_sb3s_env_checker():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_checker import check_env

    check_env(SingleAgentView(scenario(), "b"), warn=False)

"""A step made unsound by a device's non-finite cost ends the episode like a failed flow: the stores are settled
once, and the failed step is paid nothing."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.solvers.base import PowerFlowResult

from .test_plugin_mistakes import local_plugin

DEVICES = """
    @powergrid.register_device("Tank")
    class Tank(Device):
        \"\"\"A lossless store of 30 MWh at the reset; the action is its output in [-1, 1] MW, 1 $/MWh of wear.\"\"\"
        def __init__(self, params, dt_h):
            super().__init__(params, dt_h)
            self.action_space = box(-1.0, 1.0)
            self.observation_space = box(0.0, 100.0)
            self.mwh = 30.0  # stored_mwh is asked once the device is attached, before any reset

        def reset(self, rng):
            super().reset(rng)
            self.mwh = 30.0

        def step(self, action, ctx):
            self.p_mw = min(float(action[0]), self.mwh / self.dt_h)
            self.mwh -= self.p_mw * self.dt_h
            self.cost = abs(self.p_mw) * self.dt_h

        def rule_action(self, ctx):
            return np.ones(1, np.float32)

        def stored_mwh(self):
            return self.mwh

        def observe_values(self):
            return [self.mwh]

    @powergrid.register_device("Meter")
    class Meter(Device):
        \"\"\"Bills the grid energy at its own bus (declared only): a store's energy there is then worth the mean
        price at the end, credited to the meter's agents.\"\"\"
        bills_energy = True

        def attach(self, net, bus):
            self.bus = bus

        def billed_buses(self, net):
            return np.array([self.bus])

        def step(self, action, ctx):
            pass

    @powergrid.register_device("Faulty")
    class Faulty(Device):
        \"\"\"A plugin whose cost, settled on the flow, is NaN at tick ``nan_at`` (a NaN set by ``step`` is a PluginError,
        test_plugin_bugs).\"\"\"
        nan_at = -1

        def __init__(self, params, dt_h):
            super().__init__(params, dt_h)
            self.action_space = box(0.0, 1.0)

        def step(self, action, ctx):
            self.p_mw = 0.01
            self.cost = 0.0

        def settle(self, flow, ctx):
            self.cost = float("nan") if ctx.tick == self.nan_at else 0.0
"""


@pytest.fixture(scope="module")
def devices(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        local_plugin(tmp_path_factory.mktemp("unsound"), "unsound_devices", DEVICES, mp)


def _episode(tank_mw: float, nan_at: int = -1, fail_at: int = -1) -> tuple[MultiAgentPowerGridEnv, list, float]:
    """24 one-hour steps of a learned Tank under a learned grid agent with the meter billing its bus (so that agent's
    reward holds the Tank's credit), a learned grid agent over a rule-driven Tank (1 MW out) and its meter, and a
    learned Faulty; its cost is NaN at ``nan_at``, or the flow fails at ``fail_at``. Returns the env, every step's
    (rewards, infos), and the MWh the learned Tank delivered."""
    config = {"name": "unsound", "network": {"type": "case33bw"}, "spaces": {"action": "physical"},
              "time": {"step_minutes": 60, "steps_per_episode": 24},
              "reward": {"storage_value": "mean_price", "divergence_penalty": 10.0},
              "agents": [{"id": "site", "kind": "grid", "policy": "learned", "children": ["tank", "meter"]},
                         {"id": "tank", "type": "Tank", "bus": 5, "policy": "learned"},
                         {"id": "meter", "type": "Meter", "bus": 5},
                         {"id": "mg", "kind": "grid", "policy": "learned", "children": ["t2", "meter2"]},
                         {"id": "t2", "type": "Tank", "bus": 12, "policy": "rule"},
                         {"id": "meter2", "type": "Meter", "bus": 12},
                         {"id": "f", "type": "Faulty", "bus": 9, "policy": "learned"}]}
    env = MultiAgentPowerGridEnv.from_config(config)
    env.reset(seed=0)
    env.scenario.agents["f"].device.nan_at = nan_at
    solve, steps = env._solve, []
    env._solve = lambda tick: PowerFlowResult.failed(*env.tap_control.solver.shape) if tick == fail_at else solve(tick)
    while env.agents:
        _, rewards, _, _, infos = env.step({"tank": np.array([tank_mw]), "site": np.zeros(0), "mg": np.zeros(0),
                                            "f": np.zeros(1)})
        steps.append((rewards, infos))
    return env, steps, 30.0 - env.scenario.agents["tank"].device.mwh


@pytest.mark.parametrize("at", [10, 23], ids=["ends_early", "last_step"])
def test_a_nan_cost_that_ends_the_episode_settles_the_stores_once_like_a_failed_flow(devices, at):
    """The NaN ended the episode without the storage term (/work/notes/rc31/nonfinite_escape.py): the drained Tank
    kept 11 MWh × the mean price. At the last step it is settled there already: once, not twice."""
    env, by_nan, taken = _episode(1.0, nan_at=at)
    _, by_flow, _ = _episode(1.0, fail_at=at)
    assert len(by_nan) == len(by_flow) == at + 1
    assert by_nan[-1][1]["tank"]["failure"].startswith("non-finite cost or safety of ")
    assert by_flow[-1][1]["tank"]["failure"].startswith("power flow diverged; largest injections: ")
    price = float(np.mean(env.ctx.profiles["price"]))
    t2_taken = 30.0 - env.scenario.agents["t2"].device.mwh
    # hand-computed: the last step's 1 MWh of wear plus every MWh taken at the mean price (the meters' agents')
    assert by_nan[-1][1]["site"]["cost"] == pytest.approx(1.0 + taken * price, rel=1e-12)
    assert by_nan[-1][1]["mg"]["cost"] == pytest.approx(1.0 + t2_taken * price, rel=1e-12)
    assert by_nan[-1][1]["tank"]["cost"] == 1.0  # its own row: the wear, the credit is its meter's
    assert taken == at + 1 and taken * price > 10 * 10.0  # more than the penalty of 10 $ for each hour lost
    for agent in ("site", "tank", "mg"):
        (r_nan, i_nan), (r_flow, i_flow) = by_nan[-1], by_flow[-1]
        assert r_nan[agent] == pytest.approx(r_flow[agent], rel=1e-12)
        assert i_nan[agent]["cost"] == pytest.approx(i_flow[agent]["cost"], rel=1e-12)
        assert i_nan[agent]["penalty"] == pytest.approx(i_flow[agent]["penalty"], rel=1e-12)
        assert r_nan[agent] == pytest.approx(-i_nan[agent]["cost"] - i_nan[agent]["penalty"], rel=1e-12)
    assert by_nan[-1][1]["f"]["cost"] == 0.0  # the NaN itself is no cost and no credit: the floor and the penalty


def test_a_store_credited_at_a_nan_step_is_not_paid(devices):
    """The charging Tank's credit (energy stored at the mean price, its meter's agent's) is capped by the failed
    step's floor, the worst sound step (1 $ of wear), as at a failed flow: the step is never paid."""
    _, steps, taken = _episode(-1.0, nan_at=10)
    rewards, infos = steps[-1]
    assert taken == -11.0 and infos["site"]["cost"] < 0  # a credit
    penalty = 10.0 * 14  # divergence_penalty (10 $/h) for each of the 14 one-hour steps lost, the failed one included
    assert rewards["site"] == -1.0 - penalty


@pytest.mark.parametrize("learned", [False, True], ids=["no_learned_agent", "beside_a_learned_one"])
def test_a_nan_cost_of_a_device_that_no_learned_agent_is_above_ends_the_episode(devices, learned):
    """r40 F3: only the learned agents' rewards were tested, so a rule-driven device's NaN cost played on to the
    last tick ('0 non-converged' in `powergrid run`, nan in its table and CSV with converged True)."""
    agents = [{"id": "f", "type": "Faulty", "bus": 9}, {"id": "meter", "type": "Meter", "bus": 0}]
    if learned:
        agents.append({"id": "tank", "type": "Tank", "bus": 5, "policy": "learned"})
    env = MultiAgentPowerGridEnv.from_config({"name": "unlearned", "network": {"type": "case33bw"},
                                              "time": {"step_minutes": 60, "steps_per_episode": 24}, "agents": agents})
    env.reset(seed=0)
    env.scenario.agents["f"].device.nan_at = 5
    failures = []
    while not env.ended:
        infos = env.step({"tank": np.zeros(1, np.float32)} if learned else {})[4]
        failures.append(env.failure)
        costs = env.agent_costs()
        assert all(np.isfinite(c) and np.isfinite(s) for c, s in costs.values()), costs  # no NaN reaches an output
    assert failures == [""] * 5 + ["non-finite cost or safety of 'f'"]
    if learned:
        assert infos["tank"]["failure"] == "non-finite cost or safety of 'f'" and infos["tank"]["penalty"] > 0


def test_a_finite_cost_whose_reward_overflows_is_a_failure():
    """r40b (/work/notes/r40b/repro_overflow.py): after 0fa1e47 only the cost/safety array was tested, so a finite
    cost of 5e307 $ × cost_weight 10 gave a reward of -inf on a sound step (failure '', the worst loss inf)."""
    pytest.importorskip("powergrid_devices", reason="the battery and meter come with powergrid-devices")
    pytest.importorskip("powergrid_protocols", reason="the setpoint protocol comes with powergrid-protocols")
    env = MultiAgentPowerGridEnv.from_config({
        "name": "overflow", "network": {"type": "case33bw"}, "spaces": {"action": "physical"},
        "time": {"step_minutes": 60, "steps_per_episode": 4}, "reward": {"cost_weight": 10.0},
        "agents": [{"id": "mg", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
                    "children": ["ess", "pcc"]},
                   {"id": "ess", "type": "ESS", "bus": 5, "params": {"degradation_cost": 1e308}},
                   {"id": "pcc", "type": "GridConnection", "bus": 0}]})
    env.reset(seed=0)
    _, rewards, terminated, _, infos = env.step({"mg": np.full(env.action_space("mg").shape, 0.5, np.float32)})
    assert env.failure == "non-finite cost or safety of 'mg', 'ess'" and terminated["mg"]
    assert np.isfinite(env._worst_loss) and np.isfinite(rewards["mg"])
    # the overflowing cost is no cost, as a NaN is not: the reward is the penalty alone (4 steps lost)
    assert infos["mg"]["cost"] == 0.0 and rewards["mg"] == -infos["mg"]["penalty"] < 0

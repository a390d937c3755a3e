"""A failed power flow is an event of the episode, never a gain; islanded networks are config errors."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest

from powergrid import PluginRecord, hookimpl
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ConfigError
from powergrid.networks import TEMPLATES
from powergrid.plugins import make_registry

from .scenarios import load_local, two_feeders


def _case33_with_open_tie():
    """case33bw with the line 23-24 switched out: buses 24 … 26 (the 0-based indices) lose their supply."""
    net = TEMPLATES["case33bw"]()
    net.line.loc[net.line.from_bus == 23, "in_service"] = False
    return net


class _Networks:
    @staticmethod
    @hookimpl
    def powergrid_register_networks():
        return [PluginRecord("case33_open_tie", _case33_with_open_tie, "case33bw with an islanded tail"),
                PluginRecord("case33_no_slack", _case33_no_slack, "case33bw without its ext_grid"),
                PluginRecord("case33_x50", _case33_x50, "case33bw with every load x50 (no flow converges)"),
                PluginRecord("case33_oos_bus", _case33_oos_bus, "case33bw with its bus 17 out of service")]


def _case33_oos_bus():
    """case33bw with the end of its main feeder, bus 17 (0-based), out of service with its line and load; buses
    13 … 17 form zone 'tail'."""
    net = TEMPLATES["case33bw"]()
    net.bus["zone"] = ["tail" if 13 <= b <= 17 else "rest" for b in net.bus.index]
    net.bus.loc[17, "in_service"] = False
    net.line.loc[(net.line.from_bus == 17) | (net.line.to_bus == 17), "in_service"] = False
    net.load.loc[net.load.bus == 17, "in_service"] = False
    return net


def _case33_x50():
    net = TEMPLATES["case33bw"]()
    net.load[["p_mw", "q_mvar"]] *= 50.0
    return net


def _case33_no_slack():
    net = TEMPLATES["case33bw"]()
    net.ext_grid["in_service"] = False
    return net


@pytest.fixture(scope="module")
def registry():
    load_local()
    return make_registry(_Networks, include_local=True)


def _scenario(on_divergence: str = "terminate", steps: int = 8) -> dict:
    """two_feeders plus a learned agent 'huge' whose action 2.0 draws 120 MW at bus 32 (no flow converges)."""
    scenario = two_feeders(reward={"on_divergence": on_divergence, "divergence_penalty": 200.0},  # 50 per 15-min step
                           time={"step_minutes": 15, "steps_per_episode": steps})
    scenario["agents"].append({"id": "huge", "type": "ConstantPower", "bus": 32, "policy": "learned",
                               "params": {"p_mw": -60.0}})
    return scenario


def _actions(huge: float) -> dict:
    return {"a": np.ones(1, np.float32), "b": np.ones(1, np.float32), "mg": np.zeros(0, np.float32),
            "huge": np.array([huge], np.float32)}


def test_divergence_terminates_with_the_penalty_for_every_tick_left(registry):
    env = MultiAgentPowerGridEnv.from_config(_scenario(), registry=registry)
    env.reset(seed=0)
    sound = [env.step(_actions(0.0)) for _ in range(3)]
    losses = [-r for step in sound for r in step[1].values()]
    good_vm = env.last_result.vm_pu.copy()
    obs, rewards, terms, truncs, infos = env.step(_actions(2.0))  # tick 3 of 8: 5 ticks are lost
    assert infos["huge"]["converged"] is False
    assert infos["huge"]["failure"].startswith("power flow diverged; largest injections: 'huge' (device 'ConstantPower' "
                                               "from local:")  # its -120 MW first (r44b F1)
    assert " -120 MW at bus 32, " in infos["huge"]["failure"]
    assert all(terms.values()) and not any(truncs.values()) and env.agents == []
    penalty = max(50.0, max(losses)) * 5  # P = max(divergence_penalty, worst loss so far) per tick left
    for agent, reward in rewards.items():  # the failed tick scores at most the worst sound tick, then the penalty
        cost, safety = env.agent_costs()[agent]
        assert np.isfinite(cost) and np.isfinite(safety)
        sound_reward = -cost - 10.0 * safety
        assert reward == pytest.approx(min(sound_reward, -max(losses)) - penalty)
        # infos' penalty is all that is charged beyond cost and safety: P and the floor's shortfall
        assert infos[agent]["penalty"] == pytest.approx(penalty + sound_reward - min(sound_reward, -max(losses)))
        assert reward == pytest.approx(sound_reward - infos[agent]["penalty"])
    assert env.agent_costs()["huge"][0] < 0  # 'huge' would have earned on that tick: it is not paid for it
    np.testing.assert_array_equal(env.last_result.vm_pu, good_vm)  # settled on the last sound flow
    assert np.isfinite(env.state()).all() and all(np.isfinite(o).all() for o in obs.values())


def test_a_failed_episode_never_returns_more_than_a_sound_one(registry):
    def episode(fail_at: int | None) -> dict[str, float]:
        env = MultiAgentPowerGridEnv.from_config(_scenario(), registry=registry)
        env.reset(seed=1)
        total = dict.fromkeys(env.possible_agents, 0.0)
        t = 0
        while env.agents:
            _, rewards, _, _, _ = env.step(_actions(2.0 if t == fail_at else 0.0))
            for agent, r in rewards.items():
                total[agent] += r
            t += 1
        return total

    sound = episode(None)
    for fail_at in (0, 4, 7):
        failed = episode(fail_at)
        assert all(failed[a] < sound[a] for a in sound), (fail_at, failed, sound)


def test_the_penalty_depends_on_the_episode_only(registry):
    """reset(seed) repeats an episode's rewards: the worst loss of an earlier episode does not raise the penalty."""
    scenario = _scenario()
    scenario["reward"]["divergence_penalty"] = 0.4  # 0.1 per 15-min step: below an idle grid agent's zone violations
    idle = {"a": np.zeros(1, np.float32), "b": np.zeros(1, np.float32), "mg": np.zeros(0, np.float32),
            "huge": np.zeros(1, np.float32)}

    def failing_episode(env: MultiAgentPowerGridEnv) -> dict[str, float]:
        env.reset(seed=0)
        _, rewards, terms, _, infos = env.step(_actions(2.0))  # fails at tick 0 of 8
        assert all(terms.values()) and infos["a"]["penalty"] == pytest.approx(0.1 * 8)
        return rewards

    fresh = failing_episode(MultiAgentPowerGridEnv.from_config(scenario, registry=registry))
    used = MultiAgentPowerGridEnv.from_config(scenario, registry=registry)
    used.reset(seed=0)
    worst = max(-min(used.step(idle)[1].values()) for _ in range(8))
    assert worst > 0.1  # this sound episode lost more per tick than the divergence penalty
    assert failing_episode(used) == pytest.approx(fresh, rel=1e-9)  # (the flows start from the last voltages)


@pytest.mark.parametrize("solver", ["fast", "pandapower"])
def test_an_out_of_service_bus_is_no_failure_and_counts_in_no_zone(registry, solver):
    """pandapower and the fast solver give an out-of-service bus NaN: the flow is sound (was: 'power flow gave
    non-finite values' at every step, the episode terminated at tick 0); the bus is at 0 pu, its line carries nothing,
    and a zone holding it counts the violations of its other buses only."""
    scenario = two_feeders(network="case33_oos_bus", spaces={"action": "physical", "observation": "raw"},
                           reward={"v_min_pu": 0.99})  # (13 … 16 sag below 0.99 pu)
    scenario["agents"][2]["zone"] = "tail"  # 'mg': buses 13 … 17
    env = MultiAgentPowerGridEnv.from_config(scenario, registry=registry, solver=solver)
    _, infos = env.reset(seed=0)
    assert infos["mg"]["converged"] is True
    actions = {"a": np.ones(1, np.float32), "b": np.ones(1, np.float32), "mg": np.zeros(0, np.float32)}
    for tick in range(8):
        obs, _, terms, truncs, infos = env.step(actions)
        assert infos["mg"]["converged"] is True and not any(terms.values()) and all(truncs.values()) == (tick == 7)
        vm = env.last_result.vm_pu
        assert vm[17] == 0.0 and np.isfinite(vm).all() and env.state()[17] == 0.0
        on = [13, 14, 15, 16]
        violation = np.maximum(vm[on] - 1.05, 0).sum() + np.maximum(0.99 - vm[on], 0).sum()
        assert violation > 0 and env.agent_costs()["mg"][1] == pytest.approx(violation, abs=1e-12)
        assert obs["mg"][6] == pytest.approx(vm[on].min()) and obs["mg"][8] == pytest.approx(vm[on].max())
    net = _case33_oos_bus()  # the same flow in pandapower: the devices' injections, the last tick's load multipliers
    net.load[["p_mw", "q_mvar"]] = net.load[["p_mw", "q_mvar"]].mul(env.load_multipliers[env.tick - 1], axis=0)
    for d in env.scenario.device_agents:
        pp.create_sgen(net, int(net.bus.index[d.bus]), p_mw=d.device.p_mw, q_mvar=d.device.q_mvar)
    pp.runpp(net, numba=False)
    np.testing.assert_allclose(vm[np.r_[0:17, 18:33]], net.res_bus.vm_pu.drop(17).to_numpy(), atol=1e-6)


def test_the_grid_agent_import_cost_of_a_failed_step_is_not_zero(registry):
    """The PCC-like cost of a failed step comes from the last sound flow (the slack still imports)."""
    scenario = _scenario()
    env = MultiAgentPowerGridEnv.from_config(scenario, registry=registry)
    env.reset(seed=0)
    env.step(_actions(0.0))
    before = env.last_result.ext_grid_p_mw.copy()
    env.step(_actions(2.0))
    assert before[0] > 0 and np.array_equal(env.last_result.ext_grid_p_mw, before)


def test_penalize_mode_goes_on(registry):
    env = MultiAgentPowerGridEnv.from_config(_scenario("penalize"), registry=registry)
    env.reset(seed=0)
    _, r0, _, _, _ = env.step(_actions(0.0))
    _, rewards, terms, truncs, infos = env.step(_actions(2.0))
    assert not any(terms.values()) and not any(truncs.values()) and env.agents
    worst = -min(r0.values())
    assert all(r <= -worst - 50.0 for r in rewards.values())
    for agent, reward in rewards.items():  # one tick's P, and the floor's shortfall, all in infos' penalty
        cost, safety = env.agent_costs()[agent]
        sound_reward = -cost - 10.0 * safety
        assert infos[agent]["penalty"] == pytest.approx(max(50.0, worst) + sound_reward - min(sound_reward, -worst))
        assert reward == pytest.approx(sound_reward - infos[agent]["penalty"])
    _, _, _, _, infos = env.step(_actions(0.0))
    assert infos["huge"]["converged"] is True and infos["huge"]["failure"] == ""


def test_reset_with_a_failing_flow_gives_finite_observations_and_state(registry):
    env = MultiAgentPowerGridEnv.from_config(two_feeders(network="case33_x50"), registry=registry)
    obs, infos = env.reset(seed=0)
    assert infos["a"]["converged"] is False and infos["a"]["failure"] == "power flow failed at reset"
    assert np.isfinite(env.state()).all() and all(np.isfinite(o).all() for o in obs.values())
    np.testing.assert_array_equal(env.state(), 0.0)  # no sound flow yet: the nominal 1 pu, (1 − 1)/0.05 = 0
    _, rewards, terms, _, infos = env.step({"a": np.ones(1, np.float32), "b": np.ones(1, np.float32),
                                            "mg": np.zeros(0, np.float32)})
    assert all(terms.values()) and all(r <= -1000.0 * 8 for r in rewards.values())  # default penalty, 8 ticks


@pytest.mark.parametrize(("network", "expected"), [
    ("case33_open_tie", "buses that no slack energises"),
    ("case33_no_slack", "has no in-service slack"),
])
def test_islanded_buses_and_missing_slack_are_config_errors(registry, network, expected):
    scenario = two_feeders(network=network)
    with pytest.raises(ConfigError, match=expected) as err:
        MultiAgentPowerGridEnv.from_config(scenario, registry=registry)
    assert err.value.path == "network"


def test_islanded_error_names_the_buses(registry):
    net = _case33_with_open_tie()
    import pandapower.topology as top
    islanded = sorted(top.unsupplied_buses(net))
    assert islanded  # the fixture really islands buses
    with pytest.raises(ConfigError) as err:
        MultiAgentPowerGridEnv.from_config(two_feeders(network="case33_open_tie"), registry=registry)
    for bus in islanded[:3]:
        assert str(net.bus.name.get(bus, bus)) in str(err.value)
    pp.runpp(_case33_with_open_tie())  # pandapower itself leaves those buses unsolved (NaN), hence the check

"""Time in durations: the derived tick, multi-rate counts, offsets, vertical links, events, observation modes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test
from pettingzoo.test.seed_test import check_environment_deterministic_parallel

from powergrid import env as env_module
from powergrid import hookimpl
from powergrid.clock import format_duration, parse_duration, tick_seconds
from powergrid.config import EnvConfig
from powergrid.devices import box
from powergrid.env import AGE_SCALE, MultiAgentPowerGridEnv
from powergrid.errors import ConfigError
from powergrid.plugins import PluginRecord, make_registry
from powergrid.profiles import daily_value
from powergrid.protocols import Directive, VerticalProtocol
from powergrid.rl.gym import SingleAgentView

from .scenarios import load_local, two_feeders


class Relay(VerticalProtocol):
    """The parent's one action (a scale, 0–2) sent to every child as its action, and as a price of 100 × scale $/MWh."""

    def action_space(self):
        return box(0.0, 2.0)

    def directives(self, action, ctx):
        a = float(np.asarray(action, np.float64).reshape(-1)[0])
        return [Directive(action=np.array([a]), price=100.0 * a) for _ in self.parent.children]

    def rule_action(self, ctx):
        return np.ones(1, np.float32)


class PriceRelay(Relay):
    """The parent's scale sent to every child as a price only (100 × scale $/MWh): a learned child observes it."""

    price_directives = True

    def directives(self, action, ctx):
        return [Directive(price=d.price) for d in super().directives(action, ctx)]


class RelayPlugin:
    @hookimpl
    def powergrid_register_protocols(self):
        return [PluginRecord("relay", Relay, "test: the parent's action to every child"),
                PluginRecord("price_relay", PriceRelay, "test: the parent's action to every child as a price")]


@pytest.fixture(scope="module")
def registry():
    load_local()
    return make_registry(RelayPlugin(), include_local=True)


def device(agent_id: str, bus: int, **extra) -> dict:
    return {"id": agent_id, "type": "ConstantPower", "bus": bus, "params": {"p_mw": 0.1}, **extra}


def hierarchy(episode: str = "1d", link: dict | None = None, up: dict | None = None, **extra) -> dict:
    """ISO (1 h) → microgrid (15 min) → two device agents (5 min) over 1-minute physics on case33bw, plus a
    learned root device agent every 5 minutes and one every 15 minutes with a 5-minute offset."""
    mg: dict = {"id": "mg", "kind": "grid", "policy": "learned", "period": "15min", "protocol": "relay",
                "children": ["d1", "d2"]}
    if link is not None:
        mg["link"] = link
    if up is not None:
        mg["link"] = {**mg.get("link", {}), "up": up}
    return {
        "name": "time_hierarchy",
        "network": {"type": "case33bw"},
        "time": {"physics": "1min", "episode": episode},
        "spaces": {"action": "physical", "observation": "raw"},
        "agents": [
            {"id": "iso", "kind": "system", "policy": "learned", "period": "1h", "protocol": "relay", "children": ["mg"]},
            mg,
            device("d1", 5, period="5min"),
            device("d2", 17, period="5min"),
            device("fast", 24, policy="learned", period="5min"),
            device("late", 30, policy="learned", period="15min", offset="5min"),
        ],
        **extra,
    }


def build(registry, scenario: dict) -> MultiAgentPowerGridEnv:
    return MultiAgentPowerGridEnv.from_config(scenario, registry=registry)


def run(env: MultiAgentPowerGridEnv, seed: int = 0, actions=None) -> list[tuple]:
    """One episode; returns (tick, rewards, infos) per step. ``actions(env)`` gives the actions (default: samples)."""
    env.reset(seed=seed)
    for a in env.possible_agents:
        env.action_space(a).seed(seed)
    steps = []
    while env.agents:
        t = env.tick
        chosen = actions(env) if actions else {a: env.action_space(a).sample() for a in env.agents}
        _, rewards, _, _, infos = env.step(chosen)
        steps.append((t, rewards, infos))
    return steps


# ---------------------------------------------------------------------------- durations and config


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("15min", 900), ("1h", 3600), ("1.5h", 5400), ("1d", 86400),
                                           (" 2 min ", 120), ("0.5min", 30)])
def test_durations_in_whole_seconds(text, seconds):
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("bad", ["15", "15 minutes", "0.5s", "-1h", "0s", "1e3s", "h", "", 15, None, "99999d"])
def test_bad_durations_are_refused(bad):
    with pytest.raises(ValueError, match="a duration such as 30s, 15min, 1h or 1d"):
        parse_duration(bad)


def test_the_tick_is_the_gcd_of_the_physics_step_and_every_duration():
    assert tick_seconds([60, 3600, 900, 300, 0]) == 60
    assert tick_seconds([60, 90]) == 30
    config = EnvConfig.from_dict(hierarchy(link={"delay": "30s"}))
    assert config.tick_s == 30


SCENARIO = """\
name: bad_time
network: {type: case33bw}
time: {physics: 1min, episode: 1d}
agents:
  - {id: a, type: ConstantPower, bus: 5, period: 5min}
"""


@pytest.mark.parametrize("edit, message", [
    (("physics: 1min", "physics: 1 minute"),
     "scenario.yaml:3 time.physics: expected a duration such as 30s, 15min, 1h or 1d (whole seconds), > 0, got '1 minute'"),
    (("episode: 1d", "episode: 90s"), "scenario.yaml:3 time.episode: expected a whole number of physics steps (60 s), "
                                      "got '90s' (90 s)"),
    (("physics: 1min", "physics: 1min, step_minutes: 1"),
     "scenario.yaml:3 time.step_minutes: give 'physics' or 'step_minutes', not both"),
    (("period: 5min", "period: 5 min later"), "scenario.yaml:5 agents[0].period: expected a duration such as 30s"),
    (("period: 5min", "period: 0"), "scenario.yaml:5 agents[0].period: expected a duration such as 5min or 1h, or an "
                                    "integer from 1 to 1,000,000 (physics steps), got 0"),
    (("period: 5min", "period: 5min, offset: -1min"), "scenario.yaml:5 agents[0].offset: expected a duration"),
    (("period: 5min", "period: 5min, link: {delay: 1min}"), "scenario.yaml:5 agents[0].link: a link joins an agent "
                                                             "to its parent; this agent has none"),
    (("period: 5min", "period: 5min, events: {}"), "scenario.yaml:5 agents[0].events: expected at least one condition"),
    (("period: 5min", "period: 5min, events: {message: true}"),
     "scenario.yaml:5 agents[0].events.message: messages come from a parent; this agent has none"),
    (("period: 5min", "period: 5min, events: {price_above: high}"),
     "scenario.yaml:5 agents[0].events.price_above: expected a number ($/MWh), got 'high'"),
    (("period: 5min", "period: 5min, observation: everything"),
     "scenario.yaml:5 agents[0].observation: expected one of local, global, got 'everything'"),
])
def test_bad_time_keys_name_file_line_and_path(tmp_path, edit, message):
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO.replace(*edit))
    with pytest.raises(ConfigError) as err:
        EnvConfig.from_yaml(path)
    assert str(err.value).startswith(str(tmp_path / message))


def test_older_time_keys_are_equivalents():
    old = EnvConfig.from_dict({"network": "case33bw", "time": {"step_minutes": 15, "steps_per_episode": 96},
                               "agents": [{"id": "a", "type": "X", "bus": 1, "period": 4, "offset": 1}]})
    new = EnvConfig.from_dict({"network": "case33bw", "time": {"physics": "15min", "episode": "1d"},
                               "agents": [{"id": "a", "type": "X", "bus": 1, "period": "1h", "offset": "15min"}]})
    assert old.time == new.time and old.agents[0].period_s == new.agents[0].period_s == 3600
    assert old.agents[0].offset_s == new.agents[0].offset_s == 900
    assert (new.time.step_minutes, new.time.steps_per_episode, new.time.dt_h) == (15.0, 96, 0.25)


@pytest.mark.parametrize("datasets", [{}, {"price": {"provider": "daily_shape"}}])
def test_the_built_in_daily_shapes_start_at_the_clocks_start_hour(registry, datasets):
    scenario = two_feeders(time={"physics": "1h", "episode": "1d", "start_hour": 18}, datasets=datasets)
    env = MultiAgentPowerGridEnv.from_config(scenario, registry=registry)
    env.reset(seed=0)
    hours = (18.0 + np.arange(24)) % 24.0
    assert env.ctx.hour == 18.0
    for role in ("load", "price"):  # at midnight the load is 0.60 pu, at 18 h 0.96 pu
        np.testing.assert_array_equal(env.ctx.profiles[role][:24], daily_value(role, hours))


# ---------------------------------------------------------------------------- multi-rate


def test_a_day_of_minute_physics_counts_24_96_288_and_1440(registry):
    env = build(registry, hierarchy())
    first_late = []
    env.reset(seed=0)
    while env.agents:
        before = env.action_count("late")
        env.step({a: env.action_space(a).sample() for a in env.agents})
        if env.action_count("late") > before and not first_late:
            first_late.append((env.tick - 1) * env.tick_s)
    counts = {a: env.action_count(a) for a in env.scenario.agents}
    assert env.physics_steps == 1440 and env.max_ticks == 1440
    assert counts == {"iso": 24, "mg": 96, "d1": 288, "d2": 288, "fast": 288, "late": 96}  # minutes 5, 20, …, 1430
    assert first_late == [300]  # the first action is at minute 5


def test_the_acting_flag_and_time_to_next_tell_the_truth(registry):
    env = build(registry, hierarchy(episode="2h"))
    _, infos = env.reset(seed=1)
    for _ in range(env.max_ticks):
        before = {a: env.action_count(a) for a in env.possible_agents}
        _, _, _, _, new_infos = env.step({a: env.action_space(a).sample() for a in env.agents})
        for a in env.possible_agents:
            acted = env.action_count(a) > before[a]
            assert infos[a]["acting"] == acted
            assert (infos[a]["ticks_to_next"] == 0) == acted
            assert infos[a]["next_action_s"] == infos[a]["ticks_to_next"] * 60
        assert all(i["time_s"] == env.tick * 60 and i["timestamp"] is None for i in new_infos.values())
        infos = new_infos
    assert infos["late"]["time_s"] == 7200


def test_periods_finer_than_the_physics_make_ticks_without_physics(registry):
    scenario = {"network": {"type": "case33bw"}, "time": {"physics": "1min", "episode": "1h"},
                "agents": [device("a", 5, policy="learned", period="90s")]}
    env = build(registry, scenario)
    steps = run(env)
    assert env.tick_s == 30 and env.max_ticks == 120 and env.physics_steps == 60
    assert env.action_count("a") == 40
    assert all((r["a"] == 0.0) == (t % 2 == 1) for t, r, _ in steps)  # no physics at odd ticks: nothing to pay


def test_a_tick_without_physics_projects_nothing(registry):
    """Its cost and safety are 0, and so is its projection (was: the last physics tick's, which the adapters' sums
    counted once per tick)."""
    scenario = {"network": {"type": "case33bw"}, "time": {"physics": "1min", "episode": "10min"},
                "spaces": {"action": "physical"}, "agents": [device("a", 5, policy="learned", period="30s")]}
    env = build(registry, scenario)
    env.reset(seed=0)
    projections = [env.step({"a": np.array([3.0], np.float32)})[4]["a"]["projection"] for _ in range(4)]
    assert projections == [1.0, 0.0, 1.0, 0.0]  # 3 asked of [0, 2] at the physics ticks 0 and 2


def test_pettingzoo_api_and_seeds_on_a_multi_rate_lossy_scenario(registry):
    scenario = hierarchy(episode="3h", link={"delay": "2min", "loss": 0.3}, up={"delay": "3min", "loss": 0.2})
    parallel_api_test(build(registry, scenario), num_cycles=50)
    # parallel_seed_test's own check: it takes num_cycles on every pettingzoo (parallel_seed_test only from 1.24.2)
    check_environment_deterministic_parallel(build(registry, scenario), build(registry, scenario), 50)


def test_same_seed_same_trajectory_with_lossy_links(registry):
    scenario = hierarchy(episode="4h", link={"delay": "2min", "loss": 0.4}, up={"delay": "1min", "loss": 0.4})
    first, second = (run(build(registry, scenario), seed=7) for _ in range(2))
    other = run(build(registry, scenario), seed=8)
    assert [(t, r, i["mg"].get("directive_age_s")) for t, r, i in first] == \
        [(t, r, i["mg"].get("directive_age_s")) for t, r, i in second]
    assert [r for _, r, _ in first] != [r for _, r, _ in other]


def test_rewards_delivered_sum_to_the_per_tick_rewards_in_the_single_agent_view(registry):
    view = SingleAgentView(build(registry, hierarchy(episode="3h")), "mg")
    per_tick = []
    step = view.env.step

    def recording(actions):
        out = step(actions)
        per_tick.append(out[1]["mg"])
        return out

    view.env.step = recording
    view.reset(seed=3)
    delivered, ticks, done = [], [], False
    while not done:
        _, reward, terminated, truncated, info = view.step(view.action_space.sample())
        delivered.append(reward)
        ticks.append(info["ticks"])
        done = terminated or truncated
    assert len(per_tick) == 180 and ticks == [15] * 12
    assert sum(delivered) == pytest.approx(sum(per_tick), rel=1e-12)


# ---------------------------------------------------------------------------- vertical links


def relay_chain(link: dict, episode: str = "1h") -> dict:
    """A learned ISO (every 10 min) relays its action to a rule-driven microgrid (every minute) over ``link``,
    which relays it to its device (every minute): the device's scale is the directive the microgrid holds."""
    return {
        "network": {"type": "case33bw"},
        "time": {"physics": "1min", "episode": episode},
        "spaces": {"action": "physical", "observation": "raw"},
        "agents": [
            {"id": "iso", "kind": "system", "policy": "learned", "period": "10min", "protocol": "relay", "children": ["mg"]},
            {"id": "mg", "kind": "grid", "period": "1min", "protocol": "relay", "children": ["d"], "link": link},
            device("d", 5, period="1min"),
        ],
    }


def iso_actions(env: MultiAgentPowerGridEnv) -> dict:
    return {"iso": np.array([directive_at(env.tick)], np.float32)}


def directive_at(tick: int) -> np.float32:
    """The iso's action at ``tick``: a different directive at every action."""
    return np.float32(0.1 + 0.001 * tick)


@pytest.mark.parametrize(("link", "delay"), [({"delay": "3min"}, 3), ({"loss": 1e-4}, 0)])
def test_a_directive_sent_at_t_arrives_at_t_plus_the_delay_never_earlier(registry, link, delay):
    # without a delay (a lossy link) the directive in force was the one sent a tick earlier: the end-of-step poll had
    # moved the channel's clock past the tick before the parent sent at it (r41b F1b)
    env = build(registry, relay_chain(link))
    env.reset(seed=0)
    scales = []
    while env.agents:
        env.step(iso_actions(env))
        scales.append(env.scenario.agents["d"].device.scale)
    for t, scale in enumerate(scales):
        sent = (t - delay) // 10 * 10  # the iso's last action tick whose directive has arrived by t
        expected = 1.0 if t < delay else directive_at(sent)  # before any: the microgrid's own rule
        assert scale == pytest.approx(expected), t


def test_a_lost_directive_leaves_the_last_one_received_and_its_age_grows(registry):
    scenario = relay_chain({"delay": "2min", "loss": 0.5}, episode="6h")
    scenario["agents"][1]["policy"] = "learned"  # a learned microgrid still applies the directives it receives
    env = build(registry, scenario)
    _, infos = env.reset(seed=4)
    stale = 0
    while env.agents:
        t, age = env.tick, infos["mg"]["directive_age_s"]
        _, _, _, _, infos = env.step({**iso_actions(env), "mg": np.zeros(1, np.float32)})
        scale = env.scenario.agents["d"].device.scale
        if scale == 0.0:  # the microgrid's own (zero) action: nothing has arrived yet, the age counts from the start
            assert age == t * 60
        else:  # the directive it holds, sent ``age`` seconds ago (every directive differs)
            assert scale == pytest.approx(directive_at(t - age // 60)), t
        stale += age >= 600 + 120
    assert stale > 0  # some were lost: the one held is a period older, and still applied


def test_loss_one_keeps_the_own_rule_and_reports_the_age_since_the_start(registry):
    env = build(registry, relay_chain({"loss": 1.0}))
    env.reset(seed=0)
    while env.agents:
        env.step(iso_actions(env))
        assert env.scenario.agents["d"].device.scale == 1.0  # no directive ever arrived: its own rule
    assert env.action_count("mg") == 60


def lossy_pair(extra: bool) -> dict:
    """A learned microgrid mg1 with its device d1 over a 2-minute link losing half the messages both ways; with
    ``extra``, an unrelated pair mg2 → d2 with its own lossy link listed first (its links come first in the env)."""
    pairs = [("mg2", "d2", 17, {"delay": "1min", "loss": 0.5})] if extra else []
    pairs.append(("mg1", "d1", 5, {"delay": "2min", "loss": 0.5}))
    agents = []
    for mg, dev, bus, link in pairs:
        agents += [{"id": mg, "kind": "grid", "policy": "learned", "protocol": "relay", "children": [dev]},
                   device(dev, bus, link=link)]
    return {"network": {"type": "case33bw"}, "time": {"physics": "1min", "episode": "1h"},
            "spaces": {"action": "physical", "observation": "raw"}, "agents": agents}


def delivered(env: MultiAgentPowerGridEnv, seed: int, ticks: int = 40) -> tuple[list[int], list[int]]:
    """The send tick of the last message d1's down and up links delivered, at each of ``ticks`` ticks."""
    env.reset(seed=seed)
    down, up = env._down_links["d1"], env._up_links["d1"]
    sent: tuple[list[int], list[int]] = ([], [])
    for _ in range(ticks):
        env.step({a: np.ones(1, np.float32) for a in env.agents})
        sent[0].append(down.sent_tick)
        sent[1].append(up.sent_tick)
    return sent


def test_a_links_losses_depend_on_the_seed_and_its_ends_not_on_other_links(registry):
    # r46f F1: the seeds were handed out by the link's place among all links, so adding mg2's pair changed which of
    # mg1's messages were lost
    alone, beside = build(registry, lossy_pair(False)), build(registry, lossy_pair(True))
    pattern = delivered(alone, 3)
    assert len(set(pattern[0])) < 40 and len(set(pattern[1])) < 40  # some were lost both ways (each a send per tick)
    assert delivered(beside, 3) == pattern
    assert delivered(alone, 3) == pattern  # reset(seed) again: the same losses
    assert delivered(alone, 4) != pattern


def test_directive_age_is_an_observation_feature_and_in_infos(registry):
    scenario = relay_chain({"delay": "2min", "loss": 0.5}, episode="6h")
    scenario["agents"][1]["policy"] = "learned"
    env = build(registry, scenario)
    env.reset(seed=4)
    seen = []
    while env.agents:
        obs, _, _, _, infos = env.step({**iso_actions(env), "mg": np.zeros(1, np.float32)})
        age = infos["mg"]["directive_age_s"]
        assert obs["mg"][-1] == pytest.approx(age)  # raw spaces: the last feature, in seconds
        assert age >= min(env.time_s, 120)  # never younger than the delay (since the start before the first)
        seen.append(age)
    assert max(seen) >= 600 + 120  # a lost directive: the one before it is a period older


def test_measurement_ages_seen_by_the_parent_match_the_channel(registry):
    scenario = hierarchy(episode="1h", up={"delay": "2min"})
    env = build(registry, scenario)
    env.reset(seed=0)
    powers = []
    while env.agents:
        obs, _, _, _, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
        powers.append(sum(env.scenario.agents[d].device.p_mw for d in ("d1", "d2")))
        age = infos["iso"]["measurement_age_s"]["mg"]
        assert age == min(env.time_s, 120)
        received_p, vmin, vmean, vmax, seen_age = obs["iso"][-5:]
        assert seen_age == age
        if env.time_s >= 180:  # the measurement taken at the end of the step two minutes ago
            assert received_p == pytest.approx(powers[-3], rel=1e-6) and vmin <= vmean <= vmax


def test_age_features_are_scaled_by_an_hour_when_normalized(registry):
    scenario = relay_chain({"delay": "2min"})
    scenario["agents"][1]["policy"] = "learned"
    scenario["spaces"] = {"action": "physical", "observation": "normalized"}
    env = build(registry, scenario)
    env.reset(seed=0)
    for _ in range(5):
        obs, _, _, _, infos = env.step({**iso_actions(env), "mg": np.zeros(1, np.float32)})
    assert obs["mg"][-1] == pytest.approx(infos["mg"]["directive_age_s"] / AGE_SCALE)


# ---------------------------------------------------------------------------- events and observation modes


def event_scenario(events: dict, **reward) -> dict:
    return {
        "network": {"type": "case33bw"},
        "time": {"physics": "1min", "episode": "1h"},
        "reward": reward,
        "agents": [device("e", 5, policy="learned", period="1h", events=events)],
    }


def acting_ticks(env: MultiAgentPowerGridEnv, agent: str) -> list[int]:
    env.reset(seed=0)
    ticks = []
    while env.agents:
        t, before = env.tick, env.action_count(agent)
        env.step({a: env.action_space(a).sample() for a in env.agents})
        if env.action_count(agent) > before:
            ticks.append(t)
    return ticks


def test_a_voltage_event_acts_no_sooner_than_the_minimum_interval(registry):
    outside = build(registry, event_scenario({"voltage": True, "min_interval": "5min"}, v_min_pu=1.5, v_max_pu=2.0))
    inside = build(registry, event_scenario({"voltage": True, "min_interval": "5min"}, v_min_pu=0.5, v_max_pu=1.5))
    assert acting_ticks(outside, "e") == list(range(0, 60, 5))  # always out of band: every 5 minutes
    assert acting_ticks(inside, "e") == [0]  # never: its period only


def test_no_event_at_a_reset_whatever_the_last_episode_ended_with(registry):
    """An agent acting on events at the tick after a condition held acts at tick 0 by its period only: the voltage
    event is not judged on the previous episode's last flow (the second reset(seed=0) acted at tick 0)."""
    scenario = event_scenario({"voltage": True}, v_min_pu=1.5, v_max_pu=2.0)  # always out of band
    scenario["agents"][0]["offset"] = "30min"
    env = build(registry, scenario)
    firsts = []
    for _ in range(2):
        _, infos = env.reset(seed=0)
        firsts.append((infos["e"]["acting"], env.acting_agents()))
        while env.agents:
            env.step({"e": env.action_space("e").sample()})
    assert firsts == [(False, []), (False, [])]


def test_a_price_event_follows_the_price_it_saw(registry):
    env = build(registry, event_scenario({"price_above": 60.0}))
    env.reset(seed=0)
    prices, acted = [], []
    while env.agents:
        before = env.action_count("e")
        prices.append(env.ctx.price)
        env.step({"e": env.action_space("e").sample()})
        acted.append(env.action_count("e") > before)
    expected = [t == 0 or prices[t - 1] > 60.0 for t in range(60)]
    assert acted == expected and 0 < sum(expected) < 60


@pytest.mark.parametrize(("link", "ticks"), [
    ({"delay": "3min"}, [0, 3, 13, 23, 33, 43, 53]),  # at the tick of arrival
    ({"loss": 1e-4}, [0, 1, 11, 21, 31, 41, 51]),  # no delay: arrived as its schedule was set, so the tick after
])
def test_a_message_event_acts_when_a_directive_arrives(registry, link, ticks):
    scenario = relay_chain(link)
    scenario["agents"][1].update(period="1d", events={"message": True})
    env = build(registry, scenario)
    assert acting_ticks(env, "mg") == ticks


def priced_chain(events: dict) -> dict:
    """relay_chain over a 3-min link with prices only (100 × the iso's action, $/MWh); mg is learned and acts on
    ``events`` only."""
    scenario = relay_chain({"delay": "3min"})
    scenario["agents"][0]["protocol"] = "price_relay"
    scenario["agents"][1].update(policy="learned", period="1d", offset="1d", events=events)
    return scenario


def test_an_agent_woken_by_a_message_observes_that_message_s_price_with_its_age(registry):
    # the age was the new message's at its arrival tick, the price feature still the message's before: updated only
    # when the agent decided, after acting on the observation (r41b F1: hierarchical_3level's mg1, 2-min link)
    env = build(registry, priced_chain({"message": True}))
    obs, infos = env.reset(seed=0)
    woken = []
    while env.agents:
        t = env.tick
        if infos["mg"]["acting"]:
            woken.append(t)
            signal, age = obs["mg"][-2:]  # the signal, then the directive's age (raw observations, s)
            assert age == infos["mg"]["directive_age_s"] == 180.0, t
            assert signal == pytest.approx(100.0 * directive_at(t - 3)), t  # the price sent at t − delay
        obs, _, _, _, infos = env.step({**iso_actions(env), "mg": env.action_space("mg").sample()})
    assert woken == [3, 13, 23, 33, 43, 53]


def test_price_above_fires_at_the_tick_a_delayed_price_arrives(registry):
    # the iso sends 100 × (0.1 + 0.001·t) $/MWh at t = 0, 10, …: 11 $/MWh (> 10.5) leaves at 10, arrives at 13, and
    # the agent acts then, as a message event would; it acted at 14 when the price was seen only as it decided
    env = build(registry, priced_chain({"price_above": 10.5, "min_interval": "10min"}))
    env.reset(seed=0)
    acted = []
    while env.agents:
        t, before = env.tick, env.action_count("mg")
        env.step({**iso_actions(env), "mg": env.action_space("mg").sample()})
        acted += [t] if env.action_count("mg") > before else []
    assert acted == [1, 13, 23, 33, 43, 53]  # at 1: the market price, seen before any directive arrived, is above


def test_global_observation_appends_the_state(registry):
    scenario = hierarchy(episode="1h")
    scenario["agents"][1]["observation"] = "global"
    local = build(registry, hierarchy(episode="1h"))
    env = build(registry, scenario)
    n_bus = env.state_space.shape[0]
    assert env.observation_space("mg").shape[0] == local.observation_space("mg").shape[0] + n_bus
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step({a: env.action_space(a).sample() for a in env.agents})
        np.testing.assert_allclose(obs["mg"][-n_bus:], env.state(), rtol=1e-6)


class Zone(dt.tzinfo):
    """A time zone that is not a fixed ``datetime.timezone`` (like a zoneinfo one): UTC+2."""

    def utcoffset(self, when):
        return dt.timedelta(hours=2)

    def dst(self, when):
        return dt.timedelta(0)

    def tzname(self, when):
        return "Z2"


@pytest.mark.parametrize("t0", [dt.datetime(2023, 10, 3, 7, 0, tzinfo=dt.timezone.utc),
                                dt.datetime(2023, 12, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
                                dt.datetime(2024, 2, 28, 23, 0, 5),
                                dt.datetime(2023, 3, 12, 0, 0, tzinfo=Zone()),  # per step
                                dt.datetime(2023, 1, 1, 0, 0, 0, 250)])  # microseconds: per step
def test_infos_timestamp_is_the_data_time_in_iso_8601(registry, monkeypatch, t0):
    """``infos[...]["timestamp"]`` is ``(start + time_s).isoformat()`` at every tick, whether the episode's strings
    were made at reset (naive or fixed-offset starts) or are made per step (other time zones, microseconds)."""
    monkeypatch.setattr(env_module, "_episode_t0", lambda providers: t0)
    env = build(registry, hierarchy(episode="3h"))
    _, infos = env.reset(seed=1)
    assert (env._stamps is None) == (t0.microsecond > 0 or isinstance(t0.tzinfo, Zone))
    for _ in range(env.max_ticks):
        want = (t0 + dt.timedelta(seconds=env.time_s)).isoformat()
        assert all(i["timestamp"] == want for i in infos.values())
        _, _, _, _, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
    assert all(i["timestamp"] == (t0 + dt.timedelta(hours=3)).isoformat() for i in infos.values())

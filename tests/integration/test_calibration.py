"""Every shipped scenario is a sound experiment: in band at idle, actions move safety, failure never pays.

Reference policies come from :mod:`powergrid.evaluate` (zero = idle devices: physical zeros through
``env.action_from_physical``, not the normalised action 0; constant:F, rule, random).
"""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powergrid.config import EnvConfig
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.evaluate import policy_named, run_episode, seed_action_spaces, summarize

from ..conftest import CONFIGS

ALL_CONFIGS = sorted(CONFIGS.glob("**/*.yaml"))
SEEDS = range(4)  # four episodes: four different days of each config's data


def _env(config) -> MultiAgentPowerGridEnv:
    return MultiAgentPowerGridEnv.from_config(config)


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: p.stem)
def test_idle_devices_keep_the_network_inside_the_band(config):
    """The reward's band (0.95–1.05 pu by default: a ±5 % planning band, not ANSI C84.1's range A at medium voltage,
    docs/networks.md) on ≥ 98 % of bus-ticks with every learned agent idle (evaluate's ``zero``: physical zeros)."""
    env = _env(config)
    runs = [run_episode(env, "zero", seed) for seed in SEEDS]
    inside = sum(r.bus_ticks_in_band for r in runs) / sum(r.bus_ticks for r in runs)
    assert all(r.failures == 0 for r in runs)
    assert inside >= 0.98, f"{config.stem}: {inside:.3f} of bus-ticks in band (min {min(r.v_min_pu for r in runs):.3f}, " \
                           f"max {max(r.v_max_pu for r in runs):.3f} pu)"


def _learned_safety(env, policy: str) -> float:
    return sum(sum(run_episode(env, policy, seed).safety.values()) for seed in SEEDS)


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: p.stem)
def test_actions_move_the_safety_term(config):
    """Between the safest and the least safe of the constant actions and random actions the learned agents' episode
    safety differs by ≥ 30 %. (Random actions count since task 3's limit became one its battery can hold, da4f2f0:
    its constant actions then span only the feeder's voltages and lines, 3.06 to 3.97 over four days, while random
    actions reach 9.5 a day.)"""
    env = _env(config)
    if not env.possible_agents:
        pytest.skip("no learned agent")
    policies = (*(f"constant:{f}" for f in (0.0, 0.25, 0.5, 0.75, 1.0)), "random")
    safety = {policy: _learned_safety(env, policy) for policy in policies}
    worst, best = max(safety.values()), min(safety.values())
    assert worst > 0 and (worst - best) / worst >= 0.3, safety


def _check_finite(value, where: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_finite(v, f"{where}[{i}]")
    elif isinstance(value, (float, np.floating, np.ndarray)):
        assert np.isfinite(np.asarray(value, np.float64)).all(), f"{where}: {value}"


_ENVS: dict = {}


def _cached(config) -> MultiAgentPowerGridEnv:
    if config not in _ENVS:
        _ENVS[config] = _env(config)
    return _ENVS[config]


def _extreme(space, data) -> object:
    """An action: uniform inside the space, at a bound, far outside it, or NaN/inf."""
    if isinstance(space, gymnasium.spaces.Discrete):
        return data.draw(st.integers(space.start, space.start + space.n - 1))
    kind = data.draw(st.sampled_from(["inside", "low", "high", "far", "nan", "inf"]))
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if kind == "inside":
        u = np.array(data.draw(st.lists(st.floats(0, 1), min_size=low.size, max_size=low.size)))
        return (low + u * (high - low)).astype(np.float32)
    value = {"low": low, "high": high, "far": high + 1e6, "nan": np.full_like(low, math.nan),
             "inf": np.full_like(low, math.inf)}[kind]
    return np.asarray(value, np.float32)


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: p.stem)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_nan_or_inf_reaches_any_output(config, data):
    env = _cached(config)
    obs, infos = env.reset(seed=data.draw(st.integers(0, 2**16)))
    _check_finite((obs, infos), "reset")
    for _ in range(data.draw(st.integers(1, 12))):
        if not env.agents:
            break
        actions = {a: _extreme(env.action_space(a), data) for a in env.agents}
        out = env.step(actions)
        _check_finite(out, "step")
        _check_finite(env.state(), "state")


def test_on_ieee34_3mg_the_rule_beats_random_and_safety_is_a_minor_term():
    """The flagship: rule better than random by > 2 standard errors (paired by day); safety ≤ 30 % of its reward."""
    env = _env(CONFIGS / "ieee34_3mg.yaml")
    seeds = range(6)
    rule, rand = summarize(env, "rule", seeds), summarize(env, "random", seeds)
    mean, se = rule.paired_difference(rand)
    assert mean > 2 * se > 0, (mean, se)
    assert rule.safety_share <= 0.3 and rule.failures == 0


def test_on_ieee34_3mg_constant_actions_move_the_safety_term_by_dollars_that_matter():
    """The flagship's PCC limits (import 2.0 MW, export 0.1 MW) make safety a material term: over four days the
    worst constant action's safety in $ (safety·safety_weight·Δt_h) exceeds the best one's by ≥ 10 % of the rule's |return|, while
    the rule's own stays ≤ 6 % of it (measured on these days: every device at its upper bound 3214 $, the others
    0–2 $, rule 18.5 $ of 13613 $, i.e. 23.6 % and 0.14 %; over 16 days 18.9 % and 0.93 %; the rule paid 330 $ of
    13960 $ before its setpoints kept the PCC limits, cd1fc6e). Without limits the spread was 2 $ (0.02 %): the
    relative check above passed on a term no agent would notice."""
    env = _env(CONFIGS / "ieee34_3mg.yaml")
    weight = env.config.reward.safety_per_step(env.dt_h)  # $ per MW beyond and 15-min tick
    dollars = {f: weight * _learned_safety(env, f"constant:{f}") for f in (0.0, 0.5, 1.0)}
    rule = [run_episode(env, "rule", seed) for seed in SEEDS]
    rule_return = abs(sum(sum(r.returns.values()) for r in rule))
    rule_safety = weight * sum(sum(r.safety.values()) for r in rule)
    assert max(dollars.values()) - min(dollars.values()) >= 0.1 * rule_return, (dollars, rule_return)
    assert rule_safety <= 0.06 * rule_return, (rule_safety, rule_return)


# ieee34_3mg: the feeder between the substation (800, held at 1.05 pu) and Reg1: unregulated, so reverse flow
# from the microgrids lifts it above the band
TRUNK = ("802", "806", "808", "810", "812", "814")
TRUNK_DAYS = (0, 1)
MICROGRIDS = ("mg1", "mg2", "mg3")


def _trunk_env(data: dict) -> tuple[MultiAgentPowerGridEnv, np.ndarray]:
    env = MultiAgentPowerGridEnv.from_config(data)
    trunk = np.flatnonzero(env.net.bus.name.isin(TRUNK).to_numpy() & (env.net.bus.zone == "feeder").to_numpy())
    assert trunk.size == len(TRUNK)
    return env, trunk


@pytest.fixture(scope="module")
def trunk_at_the_export_limits() -> float:
    """The trunk's highest voltage (pu) on TRUNK_DAYS with every microgrid exporting its PCC export limit less 1 kW
    whatever its load: what the limits let a policy reach without PCC safety (the trunk rises with the microgrids'
    export, which the limits cap; their devices set no reactive power). The gensets' p_max is raised to 3 MW so that
    they always can, the batteries idle, the PV at its maximum. Each day is replayed, each pass setting each genset
    from its PCC's flow on the pass before (the day's loads repeat with its seed); the fourth meets the target."""
    data = yaml.safe_load((CONFIGS / "ieee34_3mg.yaml").read_text())
    data["spaces"] = {"action": "physical"}  # each microgrid: battery MW, genset MW, PV fraction
    for agent in data["agents"]:
        if agent["id"].endswith("_dg"):
            agent["params"]["p_max_mw"] = 3.0
    env, trunk = _trunk_env(data)
    pcc = [int(np.flatnonzero(env.net.trafo.name == f"{m}.pcc")[0]) for m in MICROGRIDS]
    target = np.array([env.scenario.agents[f"{m}_pcc"].device.params.export_limit_mw for m in MICROGRIDS]) - 0.001
    highest = 0.0
    for seed in TRUNK_DAYS:
        genset = np.zeros((env.n_steps, len(MICROGRIDS)))
        for _ in range(4):
            env.reset(seed=seed)
            imported, trunk_v = np.zeros_like(genset), np.zeros(len(genset))
            for t, mw in enumerate(genset):
                env.step({m: np.array([0.0, g, 1.0], np.float32) for m, g in zip(MICROGRIDS, mw)})
                imported[t], trunk_v[t] = env.last_result.trafo_p_hv_mw[pcc], env.last_result.vm_pu[trunk].max()
            genset = np.clip(genset + imported + target, 0.0, 3.0)
        np.testing.assert_allclose(-imported, np.broadcast_to(target, imported.shape), atol=1e-5)
        highest = max(highest, float(trunk_v.max()))
    return highest


@pytest.mark.parametrize("policy", ["rule", "random", "constant:0.75", "constant:1", "bang-bang"])
def test_on_ieee34_3mg_no_policy_lifts_the_trunk_above_what_the_pcc_limits_allow(policy, trunk_at_the_export_limits):
    """On every tick where no microgrid pays PCC safety the trunk stays at or below its highest voltage with every
    microgrid exporting its limit (0.1 MW each: 1.0517 pu, on day 0 at 05:15, as over 16 days; the reference
    policies reach 1.0509 pu, the rule's batteries discharging at 05:00 since 2c6f9d9), and exporting beyond the
    limits lifts it above that (every microgrid at its upper bound: up to 1.0533 pu; before the limits, for free)."""
    env, trunk = _trunk_env(yaml.safe_load((CONFIGS / "ieee34_3mg.yaml").read_text()))
    bound = trunk_at_the_export_limits
    assert 1.05 < bound < 1.0533  # above the substation's 1.05 pu (reverse flow), below the unlimited exports' rise
    pccs = [f"{m}_pcc" for m in MICROGRIDS]
    act = _bang_bang if policy == "bang-bang" else policy_named(policy)
    lifted_and_paid = 0
    for seed in TRUNK_DAYS:
        env.reset(seed=seed)
        seed_action_spaces(env, seed)
        while not env.ended:
            env.step(act(env))
            v = env.last_result.vm_pu[trunk].max()
            paid = sum(env.agent_costs()[p][1] for p in pccs)
            assert paid > 0 or v <= bound, (seed, env.tick, v, bound)
            lifted_and_paid += v > bound
    if policy == "constant:1":
        assert lifted_and_paid > 0  # the limits are what holds the trunk: the check above is not vacuous


def _scaled(config, factor: float) -> MultiAgentPowerGridEnv:
    data = yaml.safe_load(config.read_text())
    data.setdefault("loads", {})["scale"] = {"*": factor}
    return MultiAgentPowerGridEnv.from_config(data)


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: p.stem)
def test_overloading_the_network_never_pays(config):
    """Loads × 10, × 100, × 1000 give every learned agent an episode return strictly below the × 1 return."""
    base = _env(config)
    if not base.possible_agents:
        pytest.skip("no learned agent")
    normal = run_episode(base, "rule", 0).returns
    for factor in (10.0, 100.0, 1000.0):
        heavy = run_episode(_scaled(config, factor), "rule", 0).returns
        assert all(heavy[a] < normal[a] for a in normal), (factor, heavy, normal)


def _has_v2g(config) -> bool:
    agents = yaml.safe_load(config.read_text()).get("agents", [])
    return any(a.get("type") == "EVCharger" and a.get("params", {}).get("v2g") for a in agents)


def _children_actions(drain: bool):
    """Every learned agent's devices on their rules, except that with ``drain`` each EV port discharges at full
    rate (the bottom of its range); actions sent in the configured convention."""

    def act(env) -> dict:
        out = {}
        for a in env.agents:
            parts = []
            agent = env.scenario.agents[a]
            for d in agent.children or [agent]:  # a grid agent's children, or a learned device agent itself
                v2g = drain and type(d.device).__name__ == "EVCharger"
                parts.append(d.device.action_space.low if v2g else d.device.rule_action(env.ctx))
            out[a] = env.action_from_physical(a, np.concatenate([np.ravel(p) for p in parts]))
        return out

    return act


@pytest.mark.parametrize("config", [c for c in ALL_CONFIGS if _has_v2g(c)], ids=lambda p: p.stem)
def test_draining_the_evs_by_v2g_scores_clearly_below_charging_them(config):
    """On each test day, every V2G port discharging at full rate returns at least 10 % less than charging each EV to
    its target (the charger's rule), the other devices on their rules: the energy an EV misses must cost more than
    the V2G export and the charging it saves. ev_depot with the missing energy as safety·100 $/MWh: draining beat
    charging on seed 1 (−481.4 vs −546.5) and lost by 1 % on seed 0 (−263.9 vs −260.9); at 1200 $/MWh −2048.6 vs
    −547.5 and −1945.3 vs −260.9."""
    env = _env(config)
    for seed in SEEDS:
        charge = sum(run_episode(env, _children_actions(False), seed).returns.values())
        drain = sum(run_episode(env, _children_actions(True), seed).returns.values())
        assert drain < charge - 0.1 * abs(charge), (seed, drain, charge)


def _bang_bang(env) -> dict:
    """Every action at its low bound on even ticks and its high bound on odd ones."""
    return policy_named(f"constant:{env.tick % 2}")(env)


def _batteries_drained(env) -> dict:
    """Every device on its rule, except that each battery discharges at its full feasible power from the start."""
    out = {}
    for a in env.agents:
        parts = []
        for d in env.scenario.agents[a].children:
            action = np.ravel(d.device.rule_action(env.ctx)).astype(np.float64)
            if type(d.device).__name__ == "ESS":
                action[0] = d.device.feasible_range()[1]
            parts.append(action)
        out[a] = env.action_from_physical(a, np.concatenate(parts))
    return out


def test_on_ieee34_3mg_no_degenerate_policy_scores_at_or_above_the_rule():
    """Idle, every action at one bound or at mid-range, bang-bang between the bounds and batteries drained from the
    start each return less than the rule on every one of four days (measured with the PCC limits, 4-seed means: rule
    −3490, drained −3740, idle −4014, low bound −4037, mid −4590, high bound −6162, bang-bang −7148; the closest day:
    drained −2052 vs −1874). The drained batteries end where the rule's do (at soc_min): no terminal value separates
    them."""
    env = _env(CONFIGS / "ieee34_3mg.yaml")
    degenerate = {"zero": "zero", "low": "constant:0", "mid": "constant:0.5", "high": "constant:1",
                  "bang-bang": _bang_bang, "drained": _batteries_drained}
    for seed in SEEDS:
        rule = sum(run_episode(env, "rule", seed).returns.values())
        for name, policy in degenerate.items():
            gamed = sum(run_episode(env, policy, seed).returns.values())
            assert gamed < rule, (seed, name, gamed, rule)


def test_the_system_agent_answers_for_every_bus_line_and_transformer():
    """A system agent without a zone watches the whole network: its safety is its devices' plus every energized
    bus's distance outside the band (pu) plus every line's and transformer's overload (per unit), by hand from the
    flow (no transformer is over its rating here: tests/core/test_trafo_safety.py checks one that is). Before, it
    watched only its devices' buses: the IEEE 34 backbone was in nobody's safety (every action at its upper bound
    kept 285 backbone bus-ticks out of band over 4 days at zero charge)."""
    env = _env(CONFIGS / "ieee34_3mg_iso.yaml")
    iso = next(a for a in env.scenario.roots if a.id == "iso")
    rw = env.config.reward
    env.reset(seed=0)
    act = policy_named("constant:1")
    violated = 0
    while not env.ended:
        env.step(act(env))
        r = env.last_result
        on = env.net.bus.in_service.to_numpy(bool)
        vm = r.vm_pu[on]
        band = np.maximum(vm - rw.v_max_pu, 0.0).sum() + np.maximum(rw.v_min_pu - vm, 0.0).sum()
        lines = np.maximum(np.nan_to_num(r.line_loading_percent) / rw.max_loading_percent - 1.0, 0.0).sum()
        trafos = np.maximum(np.nan_to_num(r.trafo_loading_percent) / rw.max_loading_percent - 1.0, 0.0).sum()
        costs = env.agent_costs()
        devices = sum(costs[d.id][1] for d in iso.devices())
        assert costs["iso"][1] == pytest.approx(devices + band + lines + trafos, abs=1e-9)
        violated += band > 0
    assert violated > 0  # the upper bound does push buses out of band: the check above is not vacuous


ADMM_3MG = CONFIGS / "admm_3mg.yaml"


def _community_day(data: dict, seed: int) -> tuple[float, float, float, list[int]]:
    """One day of admm_3mg's three microgrids as their community meter bills them: their devices' costs plus the net
    flow Σm at the price (importing) or 0.8·price (exporting) ($); their safety, with the MWh beyond the community's
    import limit counted once (ADMM's settlement shares it among them; without ADMM nobody is billed it); that MWh;
    and ADMM's iterations per solve. mg1 offers its units at cost under ADMM (its action at mid-range, PV uncurtailed)
    and follows its rule without."""
    from powergrid_protocols.common import meter_of

    limit = yaml.safe_load(ADMM_3MG.read_text())["horizontal"][0]["params"].get("import_limit_mw", math.inf)
    env = MultiAgentPowerGridEnv.from_config(data)
    admm = bool(env.scenario.horizontal)
    members = [env.scenario.agents[m] for m in ("mg1", "mg2", "mg3")]
    meters = [meter_of(m) for m in members]
    env.reset(seed=seed)
    cost = safety = over = 0.0
    iterations = []
    while not env.ended:
        price = env.ctx.price
        _, _, _, _, infos = env.step({"mg1": np.array([0.0, 0.0, 1.0], np.float32) if admm else env.rule_action("mg1")})
        costs = env.agent_costs()
        g = sum(m.flow(env.last_result) for m in meters)
        cost += sum(costs[d.id][0] for m in members for d in m.devices() if d.id.endswith(("_ess", "_dg", "_pv")))
        cost += (price if g >= 0 else min(0.8 * price, price)) * g
        over += max(g - limit, 0.0)
        safety += sum(costs[m.id][1] for m in members)
        if admm:
            iterations.append(infos["mg1"]["ADMMDispatch"]["iterations"])
    return cost, safety + (0.0 if admm else over), over, iterations


def test_on_admm_3mg_admm_shares_the_community_limit_and_beats_no_coordination():
    """admm_3mg's microgrids share one community meter (import ≤ 2.0 MW, 100 $/MWh beyond it in ADMM's plan; safety
    in the reward): ADMM coordinates them (≈ 166 iterations per solve; it converged in 2 when each traded through its
    own meter, nothing to coordinate) and the community's cost + 100·safety is ≥ 5 % below the same microgrids each
    on its own rule (measured over these four days at 6344d1f: 13,363 vs 14,621 $, −8.6 %; over 8 days −10.5 %): ADMM
    runs the DGs and batteries to hold the shared limit (1.09 vs 7.88 MWh/day beyond it over 8 days) for 277 $/day
    more."""
    with_admm = [_community_day(yaml.safe_load(ADMM_3MG.read_text()), seed) for seed in SEEDS]
    data = yaml.safe_load(ADMM_3MG.read_text())
    del data["horizontal"]
    alone = [_community_day(data, seed) for seed in SEEDS]
    config = EnvConfig.from_yaml(ADMM_3MG)
    weight = config.reward.safety_per_step(config.time.dt_h)  # $ per MW beyond and 1-h tick
    iterations = [i for *_, its in with_admm for i in its]
    assert np.mean(iterations) > 10, np.mean(iterations)
    total = {name: sum(c + weight * s for c, s, _, _ in runs) for name, runs in (("admm", with_admm), ("alone", alone))}
    assert total["admm"] <= 0.95 * total["alone"], total
    assert sum(o for *_, o, _ in with_admm) <= 0.5 * sum(o for *_, o, _ in alone)


def _battery_held(agent_id: str, battery_id: str, mw: float | None):
    """Every device on its rule, except that the battery's setpoint is ``mw`` (MW; projected to its feasible range by its
    step); None: the rule unchanged."""
    def act(env) -> dict:
        actions = {a: env.rule_action(a) for a in env.agents}
        if mw is not None:
            parent = env.scenario.agents[agent_id]
            where = parent.protocol.action_slices()[parent.children.index(env.scenario.agents[battery_id])]
            physical = np.asarray(env.physical_rule(agent_id), np.float64).copy()
            physical[where.start] = mw
            actions[agent_id] = env.action_from_physical(agent_id, physical)
        return actions
    return act


@pytest.mark.parametrize(("config", "agent_id", "battery_id"), [("ev_depot", "depot", "depot_ess")])
def test_the_battery_rule_beats_an_idle_battery_and_one_held_at_a_bound_on_every_day(config, agent_id, battery_id):
    """The ESS rule trades against the day's end value of a stored MWh (ESS.rule_action), so on every one of 8 days it
    scores above the same day with the battery idle, charging at full power or discharging at full power (the rest on
    their rules). Measured (10 days): ahead of idle by 51.1 ± 12.2 $/day, of the battery held discharging by
    20.5 ± 3.7, held charging by 49.1 ± 13.0, on 10 of 10 days each. The running-mean rule before fell behind the
    battery held discharging by 6.5 ± 3.3 $/day (on 8 of 10 days) and behind idle on 4."""
    env = _env(CONFIGS / f"{config}.yaml")
    p_max = env.scenario.agents[battery_id].device.params.p_max_mw
    for seed in range(8):
        rule = sum(run_episode(env, _battery_held(agent_id, battery_id, None), seed).returns.values())
        for mw in (0.0, p_max, -p_max):
            other = sum(run_episode(env, _battery_held(agent_id, battery_id, mw), seed).returns.values())
            assert rule > other, (seed, mw, rule, other)

"""Array kernels equal the per-object ``step``/``settle``/``observe`` to 1e-12, over random and extreme actions."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest

from powergrid.devices import Device, Kernel
from powergrid.solvers.base import PowerFlowResult
from tests.devices.helpers import at, context, device_class, make

STEPS = 60

#: (type, list of raw params): each list is one kernel group (one action layout), parameters varied within it
GROUPS: list[tuple[str, list[dict[str, Any]]]] = [
    ("ESS", [{"p_max_mw": 0.5, "capacity_mwh": 2.0, "soc_init_spread": 0.3},
             {"p_max_mw": 0.2, "capacity_mwh": 0.3, "soc_min": 0.2, "soc_max": 0.8, "soc_init": 0.5,
              "self_discharge": 0.05, "degradation_cost": 12.0, "eta_charge": 0.9, "eta_discharge": 0.85},
             {"p_max_mw": 1.0, "capacity_mwh": 0.5, "soc_init": 0.12, "soc_min": 0.1, "self_discharge": 0.2}]),
    ("ESS", [{"p_max_mw": 0.5, "s_max_mva": 0.6, "soc_init_spread": 0.3},
             {"p_max_mw": 0.3, "s_max_mva": 0.3, "capacity_mwh": 0.4, "degradation_cost": 3.0}]),
    ("DG", [{"p_max_mw": 0.6, "cost_a": 10.0, "cost_b": 55.0, "cost_c": 4.0},
            {"p_min_mw": 0.1, "p_max_mw": 0.8, "ramp_up_mw_per_h": 0.4, "ramp_down_mw_per_h": 0.6, "init_spread": 1.0},
            {"p_max_mw": 0.6, "cost_curve": "piecewise", "pwl_mw": [0.0, 0.3, 0.6], "pwl_cost_per_h": [5.0, 20.0, 50.0]}]),
    ("DG", [{"commitment": True, "p_min_mw": 0.1, "p_max_mw": 0.6, "startup_cost": 20.0, "min_up_h": 0.5,
             "min_down_h": 0.75, "ramp_down_mw_per_h": 0.8, "init_spread": 1.0, "pf_min": 0.9},
            {"commitment": True, "on_init": False, "p_max_mw": 1.0, "pf_min": 0.8, "cost_curve": "piecewise",
             "pwl_mw": [0.0, 1.0], "pwl_cost_per_h": [0.0, 60.0]},
            {"commitment": True, "p_min_mw": 0.2, "p_max_mw": 0.5, "pf_min": 0.95, "ramp_up_mw_per_h": 0.3}]),
    ("DG", [{"commitment": True, "p_max_mw": 0.6, "min_up_h": 0.25, "init_spread": 0.5},
            {"commitment": True, "on_init": False, "p_min_mw": 0.2, "p_max_mw": 0.9, "min_down_h": 0.5}]),
    ("PV", [{"p_max_mw": 0.1}, {"p_max_mw": 0.3, "model": "irradiance", "gamma_per_c": -0.005, "noct_c": 48.0},
            {"p_max_mw": 0.05, "model": "irradiance"}]),
    ("PV", [{"p_max_mw": 0.1, "s_max_mva": 0.12}, {"p_max_mw": 0.2, "s_max_mva": 0.2, "model": "irradiance"}]),
    ("Wind", [{"p_rated_mw": 1.0}, {"p_rated_mw": 0.5, "speed_profile": "speed"},
              {"p_rated_mw": 2.0, "speed_profile": "speed", "v_cut_in": 4.0, "v_rated": 10.0, "v_cut_out": 20.0}]),
    ("Wind", [{"p_rated_mw": 1.0, "s_max_mva": 1.1}, {"p_rated_mw": 0.4, "s_max_mva": 0.5, "speed_profile": "speed"}]),
    ("GridConnection", [{"element": "ext_grid"}, {"element": "trafo", "sell_ratio": 0.7, "import_limit_mw": 0.3,
                                                  "export_limit_mw": 0.2, "demand_charge": 15.0},
                        {"element": "line", "demand_charge": 5.0}, {"element": "trafo", "sell_ratio": 0.0}]),
]


def _contexts() -> tuple[Any, Any]:
    """Two identical contexts with a wind-speed profile and noisy, sometimes negative, profiles."""
    rng = np.random.default_rng(3)
    out = []
    for _ in range(2):
        ctx = context(STEPS)
        ctx.profiles["speed"] = np.random.default_rng(5).uniform(0.0, 30.0, STEPS)
        ctx.profiles["solar"] = ctx.profiles["solar"] + np.random.default_rng(6).uniform(-0.1, 0.3, STEPS)
        out.append(ctx)
    del rng
    return out[0], out[1]


def _actions(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Random rows: mostly inside the bounds, some far outside, some NaN/±inf, some on a bound."""
    width = high - low
    a = rng.uniform(low - 0.5 * width, high + 0.5 * width)
    pick = rng.uniform(size=a.shape)
    a[pick < 0.08] = np.nan
    a[(pick >= 0.08) & (pick < 0.12)] = np.inf
    a[(pick >= 0.12) & (pick < 0.16)] = -np.inf
    a[(pick >= 0.16) & (pick < 0.22)] = 1e12
    on_bound = (pick >= 0.22) & (pick < 0.3)
    a[on_bound] = np.where(rng.uniform(size=a.shape) < 0.5, low, high)[on_bound]
    return a


def _flows(rng: np.random.Generator) -> PowerFlowResult:
    def values() -> np.ndarray:
        v = rng.uniform(-2.0, 2.0, 4)
        if rng.uniform() < 0.15:
            v[rng.integers(4)] = np.nan
        return v

    z = np.zeros(4)
    return PowerFlowResult(True, np.ones(4), z, z, values(), z, values(), z, values())


def _attach_rows(devices: list[Device]) -> None:
    for i, d in enumerate(devices):
        if hasattr(d, "row"):
            d.row = i % 4


@pytest.mark.parametrize("kind,raws", GROUPS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(GROUPS)])
def test_kernel_equals_the_per_object_path(kind: str, raws: list[dict[str, Any]]) -> None:
    raws = raws * 3  # several devices per parameter set
    solo = [make(kind, seed=i, **raw) for i, raw in enumerate(raws)]
    batch = [make(kind, seed=i, **raw) for i, raw in enumerate(raws)]
    _attach_rows(solo)
    _attach_rows(batch)
    cls = type(solo[0]).Kernel
    assert cls is not None and len({cls.layout(d) for d in batch}) == 1
    kernel: Kernel = cls(batch)
    kernel.load()
    ctx_solo, ctx_batch = _contexts()
    rng = np.random.default_rng(11)
    spaces = [d.action_space for d in solo]
    low = np.array([s.low for s in spaces], np.float64)
    high = np.array([s.high for s in spaces], np.float64)
    for t in range(STEPS):
        at(ctx_solo, t)
        at(ctx_batch, t)
        actions = _actions(rng, low, high)
        prices = rng.uniform(-20.0, 200.0, len(solo))
        prices[rng.uniform(size=len(solo)) < 0.1] = np.nan
        for d, a, price in zip(solo, actions, prices.tolist()):
            ctx_solo.price = price
            d.step(a, ctx_solo)
        kernel.step(actions, prices, ctx_batch)
        if kernel.settles:
            flows = _flows(rng)
            ctx_solo.price = ctx_batch.price = float(rng.uniform(-60.0, 150.0))  # both export tariffs
            for d in solo:
                d.settle(flows, ctx_solo)
            kernel.settle(flows, ctx_batch)
        for name in ("p_mw", "q_mvar", "cost", "safety", "projection"):
            expected = np.array([getattr(d, name) for d in solo])
            np.testing.assert_allclose(getattr(kernel, name), expected, rtol=1e-12, atol=1e-12, err_msg=f"{name} at {t}")
            np.testing.assert_allclose([getattr(d, name) for d in batch], expected, rtol=1e-12, atol=1e-12)
        ctx_solo.price = ctx_batch.price = float(rng.uniform(0.0, 150.0))
        for a, b in zip(solo, batch):
            sa, sb = a.state_dict(), b.state_dict()
            assert sa.keys() == sb.keys()
            np.testing.assert_allclose(list(sb.values()), list(sa.values()), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(b.observe(), a.observe(), rtol=1e-6, atol=0)
            np.testing.assert_array_equal(b.rule_action(ctx_batch), a.rule_action(ctx_solo))
        observed = kernel.observe()
        assert observed.dtype == np.float32
        np.testing.assert_array_equal(observed.reshape(len(solo), -1), np.array([d.observe() for d in solo]).reshape(len(solo), -1))


def test_the_pack_offers_kernels_for_the_benchmarked_types() -> None:
    for kind in ("ESS", "DG", "PV", "Wind", "GridConnection"):
        assert type(make(kind)).Kernel is not None, kind


def _mixed_scenario(action: str) -> dict[str, Any]:
    """Nine learned setpoint GridAgents on IEEE 34 + 3 × IEEE 13 over every kernel type (PV and Wind with Q,
    DG with commitment), one parent with an offset (its rule first), children acting every 30 min under
    15-min parents (they hold) and one every 5 min, two rule-based devices at the root, a trafo PCC per microgrid."""
    from powergrid.networks import TEMPLATES

    net = TEMPLATES["ieee34_3mg"]()
    buses = [str(n) for i, n in zip(net.bus.index, net.bus.name) if int(i) not in set(net.ext_grid.bus)]
    pick = iter(buses[int(i)] for i in np.linspace(0, len(buses) - 1, 60).round())
    agents: list[dict[str, Any]] = []
    for g in range(9):
        kids = [{"id": f"g{g}_ess", "type": "ESS", "params": {"p_max_mw": 0.05, "capacity_mwh": 0.2, "s_max_mva": 0.06,
                                                              "soc_init_spread": 0.3, "self_discharge": 0.02}},
                {"id": f"g{g}_dg", "type": "DG", "params": {"p_max_mw": 0.06, "p_min_mw": 0.01, "commitment": True,
                                                            "min_up_h": 0.5, "startup_cost": 3.0, "init_spread": 1.0},
                 **({"period": "30min"} if g % 3 == 0 else {})},
                {"id": f"g{g}_pv", "type": "PV", "params": {"p_max_mw": 0.02, "s_max_mva": 0.025},
                 **({"period": "5min"} if g == 7 else {})},
                {"id": f"g{g}_wind", "type": "Wind", "params": {"p_rated_mw": 0.03}},
                {"id": f"g{g}_pcc", "type": "GridConnection", "params": {"element": "trafo", "name": f"mg{g % 3 + 1}.pcc",
                                                                         "demand_charge": 2.0, "import_limit_mw": 0.4}}]
        for k in kids:
            k["bus"] = next(pick)
        kids[-1]["bus"] = f"mg{g % 3 + 1}.650"  # a meter's bus is one of its element's (the trafo's LV bus)
        agents += kids
        agents.append({"id": f"g{g}", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
                       "children": [k["id"] for k in kids], **({"offset": "15min", "period": "30min"} if g == 4 else {})})
    agents += [{"id": "rule_ess", "type": "ESS", "bus": next(pick), "params": {"p_max_mw": 0.05}},
               {"id": "learned_pv", "type": "PV", "bus": next(pick), "policy": "learned", "params": {"p_max_mw": 0.02}}]
    return {"name": "kernels_mixed", "network": {"type": "ieee34_3mg"}, "spaces": {"action": action},
            "time": {"physics": "15min", "episode": "6h"}, "agents": agents}


def _sent_as(k: int, actions: dict[str, Any]) -> dict[str, Any]:
    """The float32 ``actions`` of step ``k`` in another form a policy may send, by step: all float64 (with digits
    float32 lacks), one float64 among float32, one a list, one a strided view, one left out, all as they are, all
    long double."""
    kind, first = k % 7, "g1"
    if kind in (0, 6):
        form = (lambda x: x.astype(np.float64) * (1.0 + 1e-9)) if kind == 0 else (lambda x: x.astype(np.longdouble) / 3)
        return {a: None if x is None else form(x) for a, x in actions.items()}
    if actions[first] is None or kind == 5:
        return actions
    x = actions[first]
    sent = [x.astype(np.float64), x.tolist(), np.repeat(x, 2)[::2], None][kind - 1]
    return {a: y for a, y in {**actions, first: sent}.items() if y is not None}


def _trajectory(config: Any, kernels: bool, monkeypatch: pytest.MonkeyPatch, steps: int = 70,
                fast: bool | None = None, forms: bool = False) -> list[Any]:
    """Observations, rewards, infos and device states over ``steps`` random steps; ``kernels``: batch every
    kernel type and route setpoints as index maps (``fast``, default: ``kernels``), else object by object;
    ``forms``: the actions in the forms of :func:`_sent_as`."""
    import powergrid.batching as batching
    from powergrid.env import MultiAgentPowerGridEnv

    fast = kernels if fast is None else fast
    monkeypatch.setattr(batching, "KERNEL_MIN_DEVICES", 1 if kernels else 10**9)
    monkeypatch.setattr(batching, "FAST_SETPOINTS", fast)
    env = MultiAgentPowerGridEnv.from_config(config)
    assert bool(env._groups.batches) == kernels and bool(env._fast) == fast
    rng = np.random.default_rng(4)
    out: list[Any] = [env.reset(seed=2)]
    for k in range(steps):
        actions = {}
        for a in env.agents:
            space = env.action_space(a)
            width = space.high - space.low
            act = rng.uniform(space.low - 0.3 * width, space.high + 0.3 * width).astype(np.float32)
            if k % 5 == 2 and act.size:
                act[rng.integers(act.size)] = [np.nan, np.inf, -np.inf][k % 3]
            actions[a] = None if (k + len(a)) % 8 == 0 else act
        out.append(env.step(_sent_as(k, actions) if forms else actions))
        out.append({d.id: d.device.state_dict() for d in env.scenario.device_agents})
        if not env.agents:
            out.append(env.reset())
    return out


def _assert_same(a: Any, b: Any, where: str = "", exact: bool = False) -> None:
    """``a`` and ``b`` (nested dicts, lists, tuples, arrays, numbers) equal; floats to 1e-12 unless ``exact``."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}/{k}", exact)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]", exact)
    elif isinstance(a, np.ndarray) and exact:
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), where
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)  # observations are float32 of equal float64s
    elif isinstance(a, float) and not exact:
        assert b == pytest.approx(a, rel=1e-12, abs=1e-12), where
    elif isinstance(a, float):
        assert np.float64(b).tobytes() == np.float64(a).tobytes(), where
    else:
        assert a == b, where


@pytest.mark.parametrize("action", ["normalized", "physical"])
def test_env_with_kernels_and_fast_setpoints_equals_the_per_object_env(action: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    config = _mixed_scenario(action)
    _assert_same(_trajectory(config, False, monkeypatch), _trajectory(config, True, monkeypatch))


def test_env_whose_only_kernel_observes_nothing_equals_the_per_object_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Twelve PCC meters (a kernel whose devices observe nothing) under one learned GridAgent, with no solo device:
    the env observes no device value at all and still steps, observing the agent's own features, as the per-object
    env does."""
    from powergrid.networks import TEMPLATES

    net = TEMPLATES["ieee34_3mg"]()
    meters = [{"id": f"pcc{i}", "type": "GridConnection", "bus": str(net.bus.name.iat[int(net.line.from_bus.iat[i])]),
               "params": {"element": "line", "name": str(net.line.name.iat[i]), "demand_charge": 2.0}}
              for i in range(12)]
    config = {"name": "meters_only", "network": {"type": "ieee34_3mg"}, "time": {"physics": "15min", "episode": "6h"},
              "agents": [*meters, {"id": "g", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
                                   "children": [m["id"] for m in meters]}]}
    from powergrid.env import MultiAgentPowerGridEnv

    groups = MultiAgentPowerGridEnv.from_config(config)._groups
    assert len(groups.batches) == 1 and not groups.solo and not groups._columns and not groups._values
    batched = _trajectory(config, True, monkeypatch, steps=30)
    _assert_same(_trajectory(config, False, monkeypatch, steps=30), batched)
    first_obs = batched[0][0]["g"]
    assert first_obs.size > 0 and np.isfinite(first_obs).all()


@pytest.mark.parametrize("action", ["normalized", "physical"])
def test_fast_setpoints_read_every_form_of_action_like_the_tree_walk(action: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """float64 arrays, mixed dtypes, lists, strided views and left-out agents (not only float32 arrays, whose
    bytes are joined) give the tree walk's trajectory, bit for bit."""
    config = _mixed_scenario(action)
    _assert_same(_trajectory(config, False, monkeypatch, forms=True),
                 _trajectory(config, False, monkeypatch, fast=True, forms=True), exact=True)


def test_fast_setpoints_add_no_key_to_a_defaultdict_of_actions() -> None:
    """A mapping whose lookup adds keys (a defaultdict) is read without adding the parent it leaves out."""
    from collections import defaultdict

    from powergrid.env import MultiAgentPowerGridEnv

    config = _mixed_scenario("normalized")
    config["agents"] = [a for a in config["agents"] if a["id"] != "learned_pv"]  # only fast parents learn
    env = MultiAgentPowerGridEnv.from_config(config)
    env.reset(seed=0)
    assert not env._slow_action_maps  # so the actions reach the fast setpoints as sent, not as a copy
    left_out = env._fast.ids[0]  # a parent whose setpoints go the fast way
    sent: defaultdict[str, Any] = defaultdict(lambda: None, {a: env.action_space(a).sample()
                                                            for a in env.possible_agents if a != left_out})
    env.step(sent)
    assert left_out not in sent


def test_fast_setpoints_to_per_object_devices_equal_the_tree_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Setpoints routed as index maps to devices stepped object by object (each takes a view of the parents'
    actions; children that hold, parents before their first action) give the tree walk's trajectory."""
    config = _mixed_scenario("normalized")
    _assert_same(_trajectory(config, False, monkeypatch), _trajectory(config, False, monkeypatch, fast=True))


def test_kernel_columns_observed_in_one_pass_equal_each_devices_observe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The raw columns of every kernel (``Kernel.observe_values``), clipped at once with the env's other values and
    scattered, give each batched device's own ``observe()``: also for NaN, infinite and out-of-bounds states written
    through the devices (a kernel observed by no one, ``rule_ess``'s, is not called)."""
    import powergrid.batching as batching
    from powergrid.env import MultiAgentPowerGridEnv

    monkeypatch.setattr(batching, "KERNEL_MIN_DEVICES", 1)
    env = MultiAgentPowerGridEnv.from_config(_mixed_scenario("physical"))
    groups = env._groups
    observed = {b.kernel for b in groups.batches if b.agents[0].id != "rule_ess" and b.agents[0].device.observation_space.shape[0]}
    assert {columns.__self__ for columns in groups._columns} == observed and len(observed) == 5 and not groups._values
    env.reset(seed=3)
    devices = {d.id: d.device for d in env.scenario.device_agents}
    for k in range(4):
        env.step({a: env.action_space(a).sample() for a in env.agents})
        devices["g1_ess"].soc = [np.nan, 1.7, -0.4, 0.5][k]
        devices["g2_dg"].p_mw = [np.inf, -np.inf, np.nan, 3.0][k]
        devices["g5_wind"].available = [np.nan, 4.0, -1.0, 0.2][k]
        buf = np.full(len(env._obs_buf), np.nan)
        groups.observe(buf)
        for observe, where in [part for parts in env._obs_parts for part in parts]:
            np.testing.assert_array_equal(buf[where], observe())
        # finite again before the next step, which raises on a device's non-finite p_mw or q_mvar (a plugin's bug)
        devices["g1_ess"].soc, devices["g2_dg"].p_mw, devices["g5_wind"].available = 0.5, 0.0, 0.2


def test_solo_devices_observed_in_one_pass_equal_their_own_observe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The raw values of the solo devices (``Device.observe_values``), gathered and clipped at once by the env, are
    each device's own ``observe()``: also for NaN and out-of-bounds states and a device observed twice."""
    import powergrid.batching as batching
    from powergrid.env import MultiAgentPowerGridEnv

    monkeypatch.setattr(batching, "KERNEL_MIN_DEVICES", 10**9)
    env = MultiAgentPowerGridEnv.from_config(_mixed_scenario("physical"))
    groups = env._groups
    assert len(groups._values) == sum(type(d.device).observe_values is not Device.observe_values
                                      for d in env.scenario.device_agents if d.id != "rule_ess") > 20
    env.reset(seed=3)
    devices = {d.id: d.device for d in env.scenario.device_agents}
    size = int(np.prod(devices["g3_pv"].observation_space.shape))
    twice, first = next((observe, where) for parts in env._obs_parts for observe, where in parts
                        if getattr(observe, "__self__", None) is devices["g3_pv"])
    for k in range(4):
        env.step({a: env.action_space(a).sample() for a in env.agents})
        devices["g1_ess"].soc = [np.nan, 1.7, -0.4, 0.5][k]
        devices["g2_dg"].p_mw = [np.inf, -np.inf, np.nan, 3.0][k]
        buf = np.full(len(env._obs_buf) + size + 1, np.nan)
        extra = slice(len(env._obs_buf), len(env._obs_buf) + size)
        # a device observed in two places: its place in the env's buffer and one more slice at the end
        more = batching.DeviceGroups(env.scenario.device_agents, [(twice, [first, extra])], reactive=False)
        groups.observe(buf)
        more.observe(buf)
        for observe, where in [*[part for parts in env._obs_parts for part in parts], (twice, extra)]:
            np.testing.assert_array_equal(buf[where], observe())
        assert np.isnan(buf[-1])


def _bound_group() -> tuple[Any, list[Device]]:
    """A loaded ESS kernel over three batteries with a reactive action."""
    devices = [make("ESS", seed=i, p_max_mw=0.5, s_max_mva=0.6, soc_init_spread=0.3) for i in range(3)]
    kernel = type(devices[0]).Kernel(devices)
    kernel.load()
    return kernel, devices


def _kernel_values(kernel: Any, row: int) -> dict[str, Any]:
    return {name: getattr(kernel, array)[row].item() for name, (array, _) in kernel.state.items()}


def _device_values(kernel: Any, device: Device) -> dict[str, Any]:
    return {name: getattr(device, name) for name in kernel.state}


def test_batched_devices_read_and_write_their_kernels_state() -> None:
    """A loaded kernel's devices give its values (Python numbers, same bits) after steps, take writes into its
    arrays (a reset, a user), and keep their type's name; the kernel writes nothing back."""
    kernel, devices = _bound_group()
    ctx = context(8)
    rng = np.random.default_rng(2)
    for t in range(5):
        kernel.step(rng.uniform(-0.8, 0.8, (3, 2)), rng.uniform(0.0, 90.0, 3), at(ctx, t))
    for row, d in enumerate(devices):
        assert _device_values(kernel, d) == _kernel_values(kernel, row)
        assert type(d.soc) is float
        assert type(d).__name__ == "ESS" and isinstance(d, device_class("ESS")) and type(d).Kernel is type(kernel)
    np.testing.assert_array_equal(kernel.observe()[1], devices[1].observe())
    devices[1].soc = 0.25
    assert kernel.soc[1] == 0.25
    np.testing.assert_array_equal(kernel.observe()[1], devices[1].observe())
    devices[2].reset(np.random.default_rng(9))
    fresh = make("ESS", seed=9, p_max_mw=0.5, s_max_mva=0.6, soc_init_spread=0.3)
    assert _kernel_values(kernel, 2) == _device_values(kernel, fresh)
    arrays = {array: getattr(kernel, array) for array, _ in kernel.state.values()}
    kernel.load()  # already bound: the arrays are the state
    assert all(getattr(kernel, array) is a for array, a in arrays.items())


def test_batched_devices_pickle_and_copy_as_plain_objects_and_rebind_with_their_kernel() -> None:
    """A bound device pickles and copies as a plain device with its values; an unpickled or deep-copied kernel binds
    its own copies of the devices (the original stays bound to the original)."""
    kernel, devices = _bound_group()
    kernel.step(np.full((3, 2), 0.3), np.full(3, 20.0), context(4))
    plain_class = device_class("ESS")
    for clone in (pickle.loads(pickle.dumps(devices[1])), copy.copy(devices[1]), copy.deepcopy(devices[1])):
        assert type(clone) is plain_class
        assert _device_values(kernel, clone) == _kernel_values(kernel, 1)
        clone.soc = 0.7
        assert kernel.soc[1] != 0.7
    for other in (pickle.loads(pickle.dumps(kernel)), copy.deepcopy(kernel)):
        assert all(a is not b for a, b in zip(other.devices, devices))
        for row, d in enumerate(other.devices):
            assert _device_values(other, d) == _kernel_values(kernel, row)
        other.devices[0].soc = 0.33
        assert other.soc[0] == 0.33 and kernel.soc[0] != 0.33
        other.step(np.full((3, 2), -0.2), np.full(3, 5.0), context(4))
        assert devices[2].soc == kernel.soc[2] != other.soc[2] == other.devices[2].soc


@pytest.mark.parametrize("kernels", [True, False])
def test_env_pickled_or_copied_mid_episode_continues_bit_for_bit(kernels: bool,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An env pickled or deep-copied mid-episode, after its regulators moved (patching the solver's admittances in
    place), gives the original's observations, rewards, infos, device states, voltages and tap positions bit for bit
    over 220 further steps with tap moves and resets (seeded and not); an unpickled env's batched devices read its own
    kernels."""
    import powergrid.batching as batching
    from powergrid.env import MultiAgentPowerGridEnv

    monkeypatch.setattr(batching, "KERNEL_MIN_DEVICES", 1 if kernels else 10**9)
    env = MultiAgentPowerGridEnv.from_config(_mixed_scenario("normalized"))
    assert bool(env._groups.batches) == kernels
    env.reset(seed=4)
    rng = np.random.default_rng(8)
    rows = list(env.tap_control.rows)

    def actions() -> dict[str, np.ndarray]:
        return {a: rng.uniform(-1.2, 1.2, env.action_space(a).shape).astype(np.float32) for a in env.agents}

    def taps(e: MultiAgentPowerGridEnv) -> list[int]:
        return e.solver.net.trafo.tap_pos.to_numpy()[rows].tolist()

    for _ in range(7):
        env.step(actions())
    assert env.solver._taps  # the clones start from admittances patched in place (at least by the reset's taps)
    clones = [pickle.loads(pickle.dumps(env)), copy.deepcopy(env)]
    envs, moves = [env, *clones], 0
    for k in range(220):
        before = taps(env)
        if k == 60 or not env.agents:
            outs = [e.reset(seed=1 if k == 60 else None) for e in envs]
        else:
            sent = actions()
            outs = [e.step(sent) for e in envs]
        moves += taps(env) != before
        for e, out in zip(clones, outs[1:]):
            _assert_same(outs[0], out, str(k), exact=True)
            _assert_same({d.id: d.device.state_dict() for d in env.scenario.device_agents},
                         {d.id: d.device.state_dict() for d in e.scenario.device_agents}, str(k), exact=True)
            np.testing.assert_array_equal(env.last_result.vm_pu, e.last_result.vm_pu, err_msg=str(k))
            assert taps(e) == taps(env), k
    assert moves >= 10
    clone = clones[0]
    for b in clone._groups.batches:
        kernel = b.kernel
        for row, d in enumerate(kernel.devices):
            assert vars(d)["_bound"] == (kernel, row) and _device_values(kernel, d) == _kernel_values(kernel, row)



class _LockedESS(device_class("ESS")):  # type: ignore[misc]
    """A third-party battery with an unpicklable attribute its ``__getstate__`` drops and a slot."""

    __slots__ = ("tag",)

    def __init__(self, params: Any, dt_h: float) -> None:
        import threading

        super().__init__(params, dt_h)
        self.lock, self.tag = threading.Lock(), "kept"

    def __getstate__(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {**vars(self), "lock": None}, {"tag": self.tag}


def test_bound_subclasses_pickle_and_copy_with_their_own_getstate_and_slots() -> None:
    """A batched subclass keeps its own pickling once bound: its ``__getstate__`` (dropping a lock) and its slots
    travel through pickle, copy and deepcopy of the device and of its kernel, with the kernel's values."""
    from powergrid.params import build_params

    ess = device_class("ESS")
    devices = [_LockedESS(build_params(ess.Params, {"p_max_mw": 0.5, "soc_init_spread": 0.3}), 0.25) for _ in range(3)]
    for i, d in enumerate(devices):
        d.reset(np.random.default_rng(i))
    kernel = ess.Kernel(devices)
    kernel.load()
    kernel.step(np.full((3, 1), 0.3), np.full(3, 20.0), context(4))
    for clone in (pickle.loads(pickle.dumps(devices[1])), copy.copy(devices[1]), copy.deepcopy(devices[1])):
        assert type(clone) is _LockedESS and clone.tag == "kept" and clone.lock is None
        assert _device_values(kernel, clone) == _kernel_values(kernel, 1)
    for other in (pickle.loads(pickle.dumps(kernel)), copy.deepcopy(kernel)):
        for row, d in enumerate(other.devices):
            assert d.tag == "kept" and d.lock is None and _device_values(other, d) == _kernel_values(kernel, row)

"""Non-finite inputs: every protocol projects NaN/inf actions by one rule and reports them the same way,
and ignores non-finite measurements."""

from __future__ import annotations

import copy
from numbers import Number

import attrs
import numpy as np
import pytest

import powergrid
from powergrid.devices import Device, box
from powergrid.env import MultiAgentPowerGridEnv
from powergrid_protocols.common import injection_mw, project_pending
from tests.protocols import example_config, example_env

NAMES = ["p2p_3mg", "consensus_3mg", "admm_3mg", "lmp_market", "volt_var", "droop"]


def _env(name):
    """The example ``name`` (physical actions, raw observations) reset (seed 1), and its horizontal protocol."""
    env = example_env(name)
    env.reset(seed=1)
    return env, env.scenario.horizontal[0]


def _numbers(value):
    """Every number inside a (nested) info value."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, Number) and not isinstance(value, bool):
        yield float(value)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_actions_are_projected_and_reported(name, bad):
    env, proto = _env(name)
    devices = [d for a in proto.participants for d in a.devices() if d.device.action_space.shape[0]]
    for d in devices:  # every setpoint the protocol reads is non-finite
        d.pending = np.full(d.device.action_space.shape, bad, np.float32)
    mg1 = env.scenario.agents["mg1"]
    space = proto.action_space(mg1)
    proto.coordinate({"mg1": np.full(space.shape, bad, np.float32)}, env.ctx)
    info = proto.info()
    # one rule: a non-finite entry becomes the device's default_action entry (a protocol's extra action: the midpoint
    # of its bounds, core's clip_action) and counts its full range
    for d in devices:
        box = d.device.action_space
        assert np.isfinite(np.asarray(d.pending, np.float64)).all()
        assert info["projection"][d.id] == pytest.approx(float(np.sum(box.high - box.low)), rel=1e-6)
    if space.shape[0]:
        assert info["projection"]["mg1"] == pytest.approx(float(np.sum(space.high - space.low)), rel=1e-6)
    for d in devices:
        assert d.reactive.q_mvar is None or np.isfinite(d.reactive.q_mvar)
    assert all(np.isfinite(x) for x in _numbers(info))
    assert np.isfinite(proto.observe(mg1)).all()


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_measurements_are_ignored(name):
    env, proto = _env(name)
    action = {a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents}
    env.step(action)
    bad = attrs.evolve(env.last_result, vm_pu=np.full_like(env.last_result.vm_pu, np.nan),
                       trafo_p_hv_mw=np.full_like(env.last_result.trafo_p_hv_mw, np.nan),
                       trafo_loading_percent=np.full_like(env.last_result.trafo_loading_percent, np.nan),
                       ext_grid_p_mw=np.full_like(env.last_result.ext_grid_p_mw, np.nan))
    settled = proto.settle(bad, env.ctx)  # converged, but every voltage and flow NaN
    assert all(np.isfinite(c) and np.isfinite(s) for c, s in settled.values())
    for d in (d for a in proto.participants for d in a.devices()):
        d.pending = None
    proto.coordinate({}, env.ctx)
    assert all(np.isfinite(x) for x in _numbers(proto.info()))
    assert np.isfinite(proto.observe(env.scenario.agents["mg1"])).all()
    for d in (d for a in proto.participants for d in a.devices()):
        assert d.pending is None or np.isfinite(np.asarray(d.pending, np.float64)).all()
        assert d.reactive.q_mvar is None or np.isfinite(d.reactive.q_mvar)


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_actions_through_the_env_give_finite_outputs(name):
    env, _ = _env(name)
    for _ in range(3):
        actions = {a: np.full(env.action_space(a).shape, np.nan, np.float32) for a in env.agents}
        obs, rewards, _, _, infos = env.step(actions)
        assert all(np.isfinite(o).all() for o in obs.values())
        assert all(np.isfinite(r) for r in rewards.values())
        assert all(np.isfinite(x) for x in _numbers(infos))
        if not env.agents:
            break


DG_FLOOR = {"p_max_mw": 0.6, "p_min_mw": 0.15, "cost_a": 10.0, "cost_b": 85.0}  # default 0.15 MW, midpoint 0.375 MW


@pytest.mark.parametrize("name", ["p2p_3mg", "consensus_3mg"])
def test_a_nan_setpoint_under_a_horizontal_protocol_is_what_the_device_reads_it_as_directly(name):
    """mg1 sends NaN every hour up to midday; each tick its battery, DG and PV apply what the same device, in the
    same state, applies when stepped directly with a NaN action: its default (battery 0 MW, DG its p_min_mw 0.15 MW,
    PV its available power), not the midpoint of its bounds (was 0.375 MW and half the PV's power), the protocol
    still counting each NaN entry as its full range."""
    env = example_env(name, mg1_dg={"params": DG_FLOOR})
    env.reset(seed=0)
    ids = ("mg1_ess", "mg1_dg", "mg1_pv")
    nan = np.full(env.action_space("mg1").shape, np.nan, np.float32)
    for _ in range(13):
        direct = {i: copy.deepcopy(env.scenario.agents[i].device) for i in ids}  # the state before the step
        ctx = copy.deepcopy(env.ctx)
        _, _, _, _, infos = env.step({"mg1": nan})
        for i, device in direct.items():
            device.step(np.full(device.action_space.shape, np.nan), ctx)
            got = env.scenario.agents[i].device
            assert (got.p_mw, got.state_dict()) == (device.p_mw, device.state_dict()), i
    devices = {i: env.scenario.agents[i].device for i in ids}
    assert devices["mg1_dg"].p_mw == 0.15 and devices["mg1_ess"].p_mw == 0.0
    assert devices["mg1_pv"].p_mw > 0.2  # of 0.3 MW rated at midday: all it has (half of it was ≤ 0.15 MW)
    projected = infos["mg1"][type(env.scenario.horizontal[0]).__name__]["projection"]
    for i in ids:  # every NaN entry counts its full range
        box = devices[i].action_space
        assert projected[i] == pytest.approx(float(np.sum(box.high - box.low)), rel=1e-6)


@powergrid.register_device("NonfiniteFloorGen")
class FloorGen(Device):
    """A plugin's 0.1–0.5 MW generator without a default_action of its own (the core's: 0 clipped, 0.1 MW); its step
    applies the setpoint it gets (a finite one: every participant's NaN is replaced before it steps)."""

    def __init__(self, params, dt_h):
        super().__init__(params, dt_h)
        self.action_space = box(0.1, 0.5)

    def step(self, action, ctx):
        self.p_mw = float(np.asarray(action, np.float64).reshape(-1)[0])


@powergrid.register_device("NonfiniteBadDefault")
class BadDefault(FloorGen):
    """Its default_action has two entries for a one-entry action."""

    @property
    def default_action(self):
        return np.zeros(2)


def _with_gen(kind):
    data = example_config("p2p_3mg")
    data.pop("datasets")
    data["spaces"] = {"action": "physical", "observation": "raw"}
    data["agents"].append({"id": "mg1_gen", "type": kind, "bus": "mg1.680"})
    next(a for a in data["agents"] if a["id"] == "mg1")["children"].append("mg1_gen")
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=0)
    return env


def test_a_plugin_device_gets_the_core_default_action_under_a_horizontal_protocol():
    env = _with_gen("NonfiniteFloorGen")
    _, _, _, _, infos = env.step({"mg1": np.full(env.action_space("mg1").shape, np.nan, np.float32)})
    assert env.scenario.agents["mg1_gen"].device.p_mw == pytest.approx(0.1)  # was 0.3, the midpoint of 0.1–0.5 MW
    assert infos["mg1"]["P2PTrading"]["projection"]["mg1_gen"] == pytest.approx(0.4)


def test_a_default_action_of_the_wrong_size_is_an_error_naming_the_class():
    env = _with_gen("NonfiniteBadDefault")
    proto = env.scenario.horizontal[0]
    agent = env.scenario.agents["mg1_gen"]
    agent.pending = np.array([np.nan], np.float32)
    with pytest.raises(ValueError, match=r"BadDefault.default_action has 2 entries, expected 1"):
        project_pending(proto.participants, {})


@powergrid.register_device("NonfiniteRangedGen")
class RangedGen(FloorGen):
    """FloorGen with a feasible_range (as ESS and DG have): injection_mw reads its setpoint instead of stepping a copy."""

    def feasible_range(self, action=None):
        return 0.1, 0.5


def test_injection_mw_reads_a_plugin_devices_missing_or_nan_setpoint_as_its_default_action():
    env = _with_gen("NonfiniteRangedGen")
    agent = env.scenario.agents["mg1_gen"]
    for action in (None, [np.nan], [np.inf]):  # was NaN MW, for None too
        assert injection_mw(agent, action, env.ctx) == pytest.approx(0.1), action
    assert injection_mw(agent, [0.3], env.ctx) == 0.3

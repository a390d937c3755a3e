"""Non-finite inputs: every protocol projects NaN/inf actions by one rule and reports them the same way,
and ignores non-finite measurements."""

from __future__ import annotations

from numbers import Number

import attrs
import numpy as np
import pytest

from tests.protocols import example_env

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
    # one rule (core's clip_action): a non-finite entry becomes the midpoint of its bounds and counts its full range
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

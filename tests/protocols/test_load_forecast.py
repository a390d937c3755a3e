"""The load forecast protocols share (:class:`powergrid.loads.LoadGroup`): the network loads behind a meter and their
MW and change by tick from the episode's load schedule (``ctx.load_multipliers``). configs/admm_3mg.yaml, reset seed 3."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.loads import LoadGroup

from .test_admm_billing import CONFIG


def _zone_loads(net, zone: str) -> np.ndarray:
    """Rows of ``net.load`` in service at a bus of ``zone``."""
    zones = net.bus.zone.astype(str).to_numpy()[net.bus.index.get_indexer(net.load.bus)]
    return np.flatnonzero((zones == zone) & net.load.in_service.to_numpy(bool))


def test_the_loads_behind_a_pcc_are_its_zones_and_change_by_their_multipliers():
    """mg1's meter (its trafo mg1.pcc) serves its zone's loads, 1.0 MW at multiplier 1; at each tick their MW is
    Σ P_i·m_i(t) and their change from the last tick Σ P_i·(m_i(t) − m_i(t−1)) (0 at the first tick: no last one)."""
    env = MultiAgentPowerGridEnv.from_config(CONFIG)
    env.reset(seed=3)
    net, meter = env.net, env.scenario.agents["mg1_pcc"].device
    loads = LoadGroup.at(net, meter.billed_buses(net))
    np.testing.assert_array_equal(loads.rows, _zone_loads(net, "mg1"))
    np.testing.assert_allclose(loads.mw, (net.load.p_mw * net.load.scaling).to_numpy(float)[loads.rows])
    assert loads.mw.sum() == pytest.approx(1.0)
    m = env.ctx.load_multipliers
    assert loads.mw_at(env.ctx) == pytest.approx(m[0, loads.rows] @ loads.mw) and loads.change_mw(env.ctx) == 0.0
    changes = []
    while env.ctx.tick < 23:
        env.step({"mg1": np.array([0.0, 0.0, 1.0], np.float32)})
        t = env.ctx.tick
        by_hand = sum(net.load.p_mw.iat[i] * net.load.scaling.iat[i] * (m[t, i] - m[t - 1, i]) for i in loads.rows)
        assert loads.change_mw(env.ctx) == pytest.approx(by_hand, abs=1e-12)
        assert loads.mw_at(env.ctx) == pytest.approx(by_hand + loads.mw @ m[t - 1, loads.rows], abs=1e-12)
        changes.append(by_hand)
    assert max(np.abs(changes)) > 0.1  # the loads do move over the day: the checks above are not vacuous


def test_a_load_out_of_service_or_at_a_bus_out_of_service_is_not_in_the_group():
    """The flow serves neither: they are left out."""
    env = MultiAgentPowerGridEnv.from_config(CONFIG)
    net, meter = env.net, env.scenario.agents["mg1_pcc"].device
    rows = _zone_loads(net, "mg1")
    net.load.loc[net.load.index[rows[0]], "in_service"] = False
    net.bus.loc[net.load.bus.iat[rows[1]], "in_service"] = False
    kept = [r for r in rows[1:] if net.load.bus.iat[r] != net.load.bus.iat[rows[1]]]
    assert 0 < len(kept) < len(rows) - 1
    np.testing.assert_array_equal(LoadGroup.at(net, meter.billed_buses(net)).rows, kept)

"""A grid agent's safety counts the overload of the transformers sent from its zone (the transformer's HV bus in the
zone, as a line counts from its from_bus), at the reward's max_loading_percent: before, no transformer was in any
agent's safety (building_hvac's 0.5 MVA Trafo R0-R1 reached 118 % unpaid; r41)."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv

from .scenarios import load_local

LOAD_MW = 0.6  # behind the 0.5 MVA Trafo R0-R1: at least 120 % of its rating at 1 pu


def _feeder() -> dict:
    """CIGRE LV with every network load at 0: a 0.6 MW load at Bus R1 is all Trafo R0-R1 (Bus R0 → Bus R1) carries.
    'up' watches Bus R0 (the transformer's HV side), 'down' Bus R1 (its LV side)."""
    return {
        "name": "trafo_safety",
        "network": {"type": "cigre_lv"},
        "time": {"step_minutes": 60, "steps_per_episode": 3},
        "loads": {"scale": {"*": 0.0}, "jitter": 0.0},
        "spaces": {"action": "physical"},
        "agents": [
            {"id": "up", "kind": "grid", "policy": "learned", "children": ["a"]},
            {"id": "a", "type": "ConstantPower", "bus": "Bus R0", "policy": "learned", "params": {"p_mw": 0.0}},
            {"id": "down", "kind": "grid", "policy": "learned", "children": ["b"]},
            {"id": "b", "type": "ConstantPower", "bus": "Bus R1", "policy": "learned", "params": {"p_mw": -LOAD_MW}},
        ],
    }


@pytest.mark.filterwarnings("ignore:.*learned but has nothing to act on:UserWarning")
def test_a_transformer_over_its_rating_is_in_the_safety_of_the_zone_holding_its_hv_bus():
    """Each tick: 'up' pays Trafo R0-R1's loading above 100 % (per unit of rating) besides its bus's band; 'down'
    only its bus's band and the lines leaving Bus R1, by hand from the flow (was 0 for 'up')."""
    load_local()
    env = MultiAgentPowerGridEnv.from_config(_feeder())
    net, rw = env.net, env.config.reward
    r0, r1 = (int(np.flatnonzero(net.bus.name == f"Bus {b}")[0]) for b in ("R0", "R1"))
    trafo = int(np.flatnonzero(net.trafo.name == "Trafo R0-R1")[0])
    lines_r1 = np.flatnonzero(net.line.from_bus.to_numpy() == net.bus.index[r1])
    assert lines_r1.size and not (net.line.from_bus.to_numpy() == net.bus.index[r0]).any()
    env.reset(seed=0)
    while env.agents:
        _, _, _, _, infos = env.step({"a": np.ones(1, np.float32), "b": np.ones(1, np.float32),
                                      "up": np.zeros(0, np.float32), "down": np.zeros(0, np.float32)})
        r = env.last_result
        loading = r.trafo_loading_percent[trafo]
        assert loading >= 100.0 * LOAD_MW / 0.5  # the 0.6 MW and the transformer's losses at 1 pu on its HV side
        band = np.maximum(r.vm_pu - rw.v_max_pu, 0.0) + np.maximum(rw.v_min_pu - r.vm_pu, 0.0)
        lines = np.maximum(r.line_loading_percent[lines_r1] / rw.max_loading_percent - 1.0, 0.0).sum()
        assert infos["up"]["safety"] == pytest.approx(band[r0] + loading / rw.max_loading_percent - 1.0, abs=1e-12)
        assert infos["down"]["safety"] == pytest.approx(band[r1] + lines, abs=1e-12)

"""Scenario mappings for the RL adapter tests (devices and protocols from the packs)."""

from __future__ import annotations

from tests.conftest import CONFIGS

MICROGRID = str(CONFIGS / "cigre_mv_microgrid.yaml")  # absolute: Ray workers build the env themselves


def multi_rate(steps: int = 10) -> dict:
    """Two learned microgrids on the CIGRE MV feeder: ``slow`` acts every 4 ticks, ``fast`` every tick.

    ``steps`` is not a multiple of 4, so the slow agent's last rewards arrive only at the episode end.
    """
    return {
        "name": "rl_multi_rate",
        "network": {"type": "cigre_mv"},
        "time": {"step_minutes": 15, "steps_per_episode": steps},
        "reward": {"cost_weight": 1.0, "safety_weight": 400.0, "storage_value": "none"},  # no PCC bills the stores
        "agents": [
            {"id": "slow", "kind": "grid", "policy": "learned", "period": 4, "protocol": {"type": "setpoint"},
             "children": ["slow_ess", "slow_dg"]},
            {"id": "slow_ess", "type": "ESS", "bus": "Bus 5", "params": {"p_max_mw": 0.5, "capacity_mwh": 2.0}},
            {"id": "slow_dg", "type": "DG", "bus": "Bus 5", "params": {"p_max_mw": 0.6, "cost_a": 10.0, "cost_b": 60.0}},
            {"id": "fast", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
             "children": ["fast_ess", "fast_dg", "fast_pv"]},
            {"id": "fast_ess", "type": "ESS", "bus": "Bus 10", "params": {"p_max_mw": 0.3, "capacity_mwh": 1.0}},
            {"id": "fast_dg", "type": "DG", "bus": "Bus 10", "params": {"p_max_mw": 0.4, "cost_a": 12.0, "cost_b": 55.0}},
            {"id": "fast_pv", "type": "PV", "bus": "Bus 10", "params": {"p_max_mw": 0.2}},
        ],
    }


def tap_changers() -> dict:
    """cigre_mv's two tap changers as learned OLTC agents: ``Discrete(19, start=-9)`` actions (tap positions)."""
    oltc = {"tap_min": -9, "tap_max": 9, "tap_step_percent": 1.5}  # the feeder's own tap changers
    return {
        "name": "rl_tap_changers", "network": {"type": "cigre_mv"},
        "time": {"step_minutes": 15, "steps_per_episode": 8},
        "agents": [{"id": "t1", "type": "OLTC", "bus": "Bus 1", "policy": "learned", "params": oltc},
                   {"id": "t12", "type": "OLTC", "bus": "Bus 12", "policy": "learned", "params": oltc}],
    }

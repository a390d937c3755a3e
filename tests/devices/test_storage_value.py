"""The end-of-episode value of stored energy (``reward.storage_value``): a battery drained by the end earns nothing."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv


def _battery(storage_value: str, ess: dict, steps: int = 8) -> dict:
    return {
        "name": "storage_value",
        "network": {"type": "case33bw"},
        "time": {"step_minutes": 15, "steps_per_episode": steps},
        "spaces": {"action": "physical"},
        "reward": {"storage_value": storage_value},
        "agents": [{"id": "bat", "type": "ESS", "bus": 5, "policy": "learned", "params": ess}],
    }


def _episode(storage_value: str, ess: dict, p_mw: float) -> tuple[list[float], MultiAgentPowerGridEnv]:
    env = MultiAgentPowerGridEnv.from_config(_battery(storage_value, ess))
    env.reset(seed=3)
    costs = []
    while env.agents:
        *_, infos = env.step({"bat": np.array([p_mw])})
        costs.append(infos["bat"]["cost"])
    return costs, env


@pytest.mark.parametrize("p_mw", [0.5, -0.5])
def test_the_last_step_pays_back_the_energy_taken_at_the_episodes_mean_price(p_mw):
    """Discharging at 0.5 MW for 2 h empties the battery to soc_min: (0.5 − 0.1)·2 MWh·η_d = 0.76 MWh delivered;
    charging fills it to soc_max, (0.9 − 0.5)·2·η_d = 0.76 MWh more to deliver. The last step's cost changes by
    ∓0.76 MWh × the episode's mean price; every other step is unchanged."""
    ess = {"degradation_cost": 5.0}
    valued, env = _episode("mean_price", ess, p_mw)
    plain, _ = _episode("none", ess, p_mw)
    mean_price = float(np.mean(env.ctx.profiles["price"]))
    delivered = 0.4 * 2.0 * 0.95 * np.sign(p_mw)  # MWh of E·η_d the episode took out of the store
    assert valued[:-1] == plain[:-1]
    assert valued[-1] - plain[-1] == pytest.approx(delivered * mean_price, rel=1e-12)
    assert sum(plain) > 0  # the degradation cost of the steps that moved energy


def test_an_idle_battery_is_charged_nothing_at_the_end():
    valued, _ = _episode("mean_price", {}, 0.0)
    assert valued == [0.0] * 8

"""A failed flow never fills a store for free (hold-out review r47a F1).

A failed step is settled on the last sound flow, so its meter bills none of the step's import, while the devices' step
has run: a battery charging at it gains stored energy. Under ``on_divergence: penalize`` the episode goes on and its end
credited that energy at the store price (``storage_value: mean_price``): charging 200 MW for one diverging tick paid
(+2,464 $ against idle on the oversized-battery flagship, seed 12). The failed step now bills the stores' change over it
at the store price to whoever the credit pays, below the floor; under ``terminate`` the episode's stores are settled at
the failed step, under the floor, as before.
"""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv

pytest.importorskip("powergrid_devices", reason="the battery and the meter come with powergrid-devices")

STEPS, FAIL_AT = 8, 3


def _config(on_divergence: str) -> dict:
    """case33bw (3.7 MW of load), 8 steps of 15 min at the CAISO 2023 day-ahead prices (shipped offline); a learned grid
    agent over a 200 MW / 800 MWh battery at bus 5 and the meter at the slack's ext_grid: charging at full power makes
    the flow diverge. A 100 $ penalty per failed 15-min step, so that the credit of 45 MWh outweighs it; no safety term."""
    return {
        "name": "failed_flow_store",
        "network": {"type": "case33bw"},
        "time": {"step_minutes": 15, "steps_per_episode": STEPS},
        "spaces": {"action": "physical"},
        "reward": {"safety_weight": 0.0, "divergence_penalty": 400.0, "on_divergence": on_divergence},
        "datasets": {"price": {"provider": "caiso_2023", "node": "0096WD_7_N001"}},
        "agents": [{"id": "mg", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
                    "children": ["ess", "pcc"]},
                   {"id": "ess", "type": "ESS", "bus": 5, "params": {"p_max_mw": 200.0, "capacity_mwh": 800.0}},
                   {"id": "pcc", "type": "GridConnection", "bus": 0}],
    }


def _play(env: MultiAgentPowerGridEnv, charge_mw: float, seed: int) -> tuple[float, list[bool], float]:
    """mg's return when its battery idles but at tick FAIL_AT, where it charges ``charge_mw`` (< 0: discharges); which
    steps converged; the battery's change of deliverable energy (MWh)."""
    env.reset(seed=seed)
    ess = env.scenario.agents["ess"].device
    stored0, total, converged = ess.stored_mwh(), 0.0, []
    shape = env.action_space("mg").shape
    while env.agents:
        p_mw = -charge_mw if env.tick == FAIL_AT else 0.0
        _, rewards, _, _, infos = env.step({"mg": np.full(shape, p_mw, np.float32)})
        total += rewards["mg"]
        converged.append(infos["mg"]["converged"])
        # the reward is what infos report (no safety term): a failed step's bill is in its cost, the rest in its penalty
        assert rewards["mg"] == pytest.approx(-infos["mg"]["cost"] - infos["mg"]["penalty"], abs=1e-6)
    return total, converged, ess.stored_mwh() - stored0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_penalize_a_diverging_charge_never_returns_more_than_idling(seed):
    env = MultiAgentPowerGridEnv.from_config(_config("penalize"))
    idle, converged, _ = _play(env, 0.0, seed)
    assert all(converged)
    store_price = env.ctx.store_price
    returns = {}
    for charge_mw in (100.0, 200.0, -200.0):
        returns[charge_mw], converged, gained = _play(env, charge_mw, seed)
        assert converged == [t != FAIL_AT for t in range(STEPS)]  # the episode went on after the failed step
        assert abs(gained) * store_price > 1000.0  # what the credit is worth: 22.6 and 45.1 MWh stored, 50 MWh taken
        # before the fix charging returned +924 … +2,538 $ (100 MW) and +1,956 … +5,189 $ (200 MW) above idle
        assert returns[charge_mw] < idle
    # the store's energy is billed at the price its credit pays: the amount charged no longer moves the return
    assert returns[200.0] == pytest.approx(returns[100.0], abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_terminate_a_diverging_charge_ends_the_episode_at_the_floor_whatever_it_stored(seed):
    env = MultiAgentPowerGridEnv.from_config(_config("terminate"))
    idle, _, _ = _play(env, 0.0, seed)
    returns = {}
    for charge_mw in (100.0, 200.0):
        returns[charge_mw], converged, _ = _play(env, charge_mw, seed)
        assert converged == [True] * FAIL_AT + [False]
        assert returns[charge_mw] < idle
    assert returns[200.0] == pytest.approx(returns[100.0], abs=1e-6)

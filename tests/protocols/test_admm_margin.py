"""The community's shared limit under forecast misses: ADMM plans each member's demand from its last reading, so the
metered import misses the plan by the demand's change over the tick; the plan prices the limit at its expected cost
over the episode's misses so far (configs/admm_3mg.yaml, ``GridTie.errors_mw``)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from powergrid.env import MultiAgentPowerGridEnv
from powergrid_protocols.admm import Area, GridTie, admm_dispatch, centralized_dispatch, dispatch_with_grid, tariff_units

from .test_admm_billing import CONFIG
from .test_admm_community import DG


def test_n_thresholds_each_add_their_share_of_the_over_price():
    """Import ≤ 1.0 MW at 100 $/MWh, export ≤ 0.5 MW at 80, a soft limit at 0.6 MW missed by −0.2 or +0.2 MW
    (thresholds 0.8 and 0.4 MW import, 0.3 and 0.7 MW export), 300 $/MWh beyond it: each adds 150 $/MWh."""
    units = tariff_units(100.0, 80.0, 1.0, 0.5, soft_import_mw=[0.8, 0.4], soft_export_mw=[0.3, 0.7], over_price=300.0)
    assert [(u.b, u.p_min, u.p_max) for u in units] == [
        (100.0, 0.0, 0.4),
        (250.0, 0.0, pytest.approx(0.4)),
        (400.0, 0.0, pytest.approx(0.2)),
        (80.0, -0.3, 0.0),
        (-70.0, pytest.approx(-0.2), 0.0),
    ]
    # one threshold: the single soft limit, unchanged
    assert tariff_units(100.0, 80.0, 1.0, 0.5, soft_import_mw=[0.6], over_price=300.0) == tariff_units(
        100.0, 80.0, 1.0, 0.5, soft_import_mw=0.6, over_price=300.0
    )


@pytest.mark.parametrize("solve", [admm_dispatch, centralized_dispatch])
def test_a_plan_keeps_a_margin_for_the_misses_it_has_seen(solve):
    """0.5 MW of demand, a DG 10·p² + 45·p on [0, 0.6] MW, the grid at 30 $/MWh, import ≤ 0.2 MW and 100 $/MWh beyond.
    With no misses seen the plan imports to the limit (the DG at 0.3 MW), and a load step of +0.1 MW puts 0.1 MW
    beyond it. Having seen misses of 0 and +0.1 MW, import from 0.1 to 0.2 MW costs 30 + 100/2 = 80 $/MWh in
    expectation, above the DG's marginal 20·p + 45 ≤ 57: the DG takes 0.4 MW (53 $/MWh) and the plan imports 0.1 MW,
    a margin of the miss seen."""
    options = {"tol": 1e-7} if solve is admm_dispatch else {}
    blind = dispatch_with_grid([Area((DG,), 0.5)], GridTie(30.0, 24.0, 100.0, 0.2, over_price=100.0), solve=solve, **options)
    seen = dispatch_with_grid(
        [Area((DG,), 0.5)], GridTie(30.0, 24.0, 100.0, 0.2, over_price=100.0, errors_mw=(0.0, 0.1)), solve=solve, **options
    )
    assert blind.converged and seen.converged
    assert blind.p[0][0] == pytest.approx(0.3, abs=1e-4) and blind.p[-1][0] == pytest.approx(0.2, abs=1e-4)
    assert seen.p[0][0] == pytest.approx(0.4, abs=1e-4) and seen.p[-1][0] == pytest.approx(0.1, abs=1e-4)
    assert seen.cost == pytest.approx(1.6 + 18.0 + 3.0, abs=1e-3)  # DG 10·0.16 + 45·0.4, 0.1 MW at 30 $/MWh


def _objective(seed: int) -> tuple[float, list[bool]]:
    """admm_3mg's community over one day, mg1 offering at cost (PV uncurtailed): what the reward scores, the members'
    cost + safety_weight·safety ($; their bills add up to the community's), and whether each solve converged."""
    data = yaml.safe_load(CONFIG.read_text())
    weight = data["reward"]["safety_weight"]
    env = MultiAgentPowerGridEnv.from_config(data)
    admm = env.scenario.horizontal[0]
    env.reset(seed=seed)
    objective, converged = 0.0, []
    while not env.ended:
        env.step({"mg1": np.array([0.0, 0.0, 1.0], np.float32)})
        costs = env.agent_costs()
        objective += sum(costs[m][0] + weight * costs[m][1] for m in ("mg1", "mg2", "mg3"))
        converged.append(admm.result.converged)
    return objective, converged


def test_on_admm_3mgs_worst_days_the_margin_lowers_what_the_reward_scores():
    """Seeds 2 and 6: the two days of 0–7 with the most MWh beyond the shared limit when the plan took each member's
    last reading for its demand and priced the limit at 100 $/MWh without the misses (018c875: 3.99 and 3.72 MWh,
    cost + 100·safety 4,118.7 and 5,322.9 $). With the misses priced at the reward's own 100 $/MWh the plan keeps a
    margin where it costs less than the expected excess: measured 4,050.2 and 5,251.9 $ (seed 2 with more MWh beyond,
    4.42, and less fuel). Each bound lies halfway between the two, so the test fails without the margin. Not a gain on
    every day: over seeds 0–15 the day's mean is 3,250 $ with the margin, 3,245 without it (without it 61–99 $ lower on seeds
    10, 11 and 14). Every solve converged (one on seed 6 cycled under ρ balancing until ρ stayed fixed in the
    second half of max_iter)."""
    (day2, conv2), (day6, conv6) = _objective(2), _objective(6)
    assert all(conv2) and all(conv6)
    assert day2 <= 4085.0 and day6 <= 5287.0, (day2, day6)

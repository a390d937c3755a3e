"""The flagship ieee34_3mg leaves learning room: the perfect-foresight oracle's AC day beats the rule by a margin.

Measured over the 16 days of docs/networks.md (reset seeds 0-15): rule 3,150 ± 417 $/day, oracle 3,009 ± 408, the
gap 141 ± 21 $/day (4.5 % of the rule's; 90 % of it the batteries' timing), the oracle ahead on 16 of 16 days.
Seeds 12 and 13 are the days of the largest gaps: 293 $ (5.1 %) and 264 $ (8.5 %); since the rules' causal load
forecast (52da850) 308 $ (5.3 %) and 190 $ (6.3 %); 334 $ (5.7 %) on seed 12 since the oracle's free passes go on
while its best plan's AC day is 1 % above its LP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from powergrid.bench.oracle import solve_day
from powergrid.bench.play import play
from powergrid.env import MultiAgentPowerGridEnv

for _pack in ("powergrid_devices", "powergrid_protocols", "powergrid_datasets"):  # the config's devices and data
    pytest.importorskip(_pack)

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ieee34_3mg.yaml"


@pytest.fixture(scope="module")
def env():
    if not CONFIG.is_file():
        pytest.skip(f"{CONFIG} not found (the test runs from a checkout of the repository)")
    return MultiAgentPowerGridEnv.from_config(CONFIG)


@pytest.mark.parametrize("seed", [12, 13])  # the rule's day: 5,825.3 and 3,036.4 $, the oracle's 5,491.0 and 2,846.1
def test_the_oracle_beats_the_rule_on_the_flagship(env, seed):
    """15-min ticks, three GridAgents, trafo PCCs with limits, SOC drawn at reset, regulators under control: the LP
    holds what the AC flow does to within 1 % (0.09 % on seed 12, 0.07 % on seed 13), and the oracle's AC day is ≥ 4 %
    below the rule's: a calibration that took the batteries' room away would fail here. On seed 12 the sequential LP
    starts from a rule day that crosses the PCC limits (since 52da850); its second pass's plan ends 1.4 % above its LP
    (0.865 of PCC safety in the AC replay) and the passes after it need the radius at 1/32 to beat it: the free run,
    which stopped after six passes until the oracle went on while its best plan was that far off, failed here."""
    rule = play(env, "rule", seed).objective
    plan = solve_day(env, seed)
    assert abs(plan.ac_objective - plan.objective) < 0.01 * plan.ac_objective
    assert rule - plan.ac_objective >= 0.04 * rule

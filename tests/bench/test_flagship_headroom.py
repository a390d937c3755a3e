"""The flagship ieee34_3mg leaves learning room: the perfect-foresight oracle's AC day beats the rule by a margin.

Measured over the 16 days of docs/networks.md (reset seeds 0-15, at 7ba7026, m44a): rule 3,140.8 $/day, the oracle
126.6 $/day below it (4.03 % of the rule's), ahead on 16 of 16 days (0.4-18.4 % a day). The test plays a fixed mix of
five of those days, over the seasons and over small and large gaps (seed: local day, rule $, gap $ and % of the rule's):
1: 2023-01-02, 6,425.2, 140.3 (2.2 %); 4: 2023-09-11, 2,527.1, 11.2 (0.4 %); 5: 2023-05-04, 1,952.7, 150.4 (7.7 %);
9: 2023-07-01, 3,710.3, 183.3 (4.9 %); 12: 2023-01-29, 5,825.3, 334.3 (5.7 %, the largest gap of the 16). Over the mix
the gap is 4.01 % of the rule's (819.5 of 20,440.6 $), as over the 16 days. Until m44a the test asked ≥ 4 % on each of
seeds 12 and 13, the two days of the largest gaps then.
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
MIX = (1, 4, 5, 9, 12)  # reset seeds: the fixed mix of days (module docstring)


@pytest.fixture(scope="module")
def days():
    """Per seed of ``MIX``: (the rule's objective, the oracle's plan), $ of the day."""
    if not CONFIG.is_file():
        pytest.skip(f"{CONFIG} not found (the test runs from a checkout of the repository)")
    env = MultiAgentPowerGridEnv.from_config(CONFIG)
    return {seed: (play(env, "rule", seed).objective, solve_day(env, seed)) for seed in MIX}


def test_the_oracle_holds_its_plan_and_beats_the_rule_on_every_day(days):
    """15-min ticks, three GridAgents, trafo PCCs with limits, SOC drawn at reset, regulators under control: the LP
    holds what the AC flow does to within 1 % on each day (at most 0.09 %, on seed 12), and the oracle's AC day is
    below the rule's on each. On seed 12 the sequential LP starts from a rule day that crosses the PCC limits (since
    52da850); its second pass's plan ends 1.4 % above its LP (0.865 of PCC safety in the AC replay) and the passes after
    it need the radius at 1/32 to beat it: the free run, which stopped after six passes until the oracle went on while
    its best plan was that far off, failed here."""
    for seed, (rule, plan) in days.items():
        assert abs(plan.ac_objective - plan.objective) < 0.01 * plan.ac_objective, (seed, plan.ac_objective, plan.objective)
        assert plan.ac_objective < rule, (seed, rule, plan.ac_objective)


def test_the_oracle_beats_the_rule_by_2_percent_over_the_mix(days):
    """The mean gap over the mix is ≥ 2 % of the rule's mean day: 4.01 % at 7ba7026. A calibration that took the
    batteries' room away fails: with every battery at 0.05 MW / 0.2 MWh (a tenth of each) the gap over the mix is
    0.66 % of the rule's (138.6 of 21,066.4 $; the gensets' timing and the rule's safety are what is left)."""
    rule = sum(r for r, _ in days.values())
    gap = sum(r - plan.ac_objective for r, plan in days.values())
    assert gap >= 0.02 * rule, f"gap {gap:.1f} $ over {len(days)} days, {100 * gap / rule:.2f} % of the rule's {rule:.1f} $"

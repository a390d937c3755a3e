"""ADMM's residual balancing of ρ stops at half of ``max_iter`` (on a stepped tariff it cycles, with ρ fixed ADMM
converges) and within ``RHO_SPAN`` of its start (on an infeasible coupling it grew without bound)."""

from __future__ import annotations

import math

import pytest

from powergrid_protocols.admm import Area, GridTie, Unit, centralized_dispatch, dispatch_with_grid
from powergrid_protocols.admm.dispatch import RHO_SPAN


def test_rho_fixed_in_second_half_converges_on_a_stepped_tariff():
    """Three 0.5 MW loads (no units) buy 1.5 MW from a grid whose import costs 60 $/MWh up to 1 MW (``peak_mw``),
    160 from 1 to 2 MW (``demand_price`` 100) and 260 beyond 2 MW (``over_price`` 100): the optimum imports 1.5 MW at
    160 $/MWh, 60 + 0.5·160 = 140 $/h.

    Only the grid moves, and its cost is linear by pieces: its local step puts the import at an end of the 160 step
    (1.0 or 2.0 MW) unless the price is within about ρ·1 MW of 160 $/MWh. At an end the import stops (dual residual 0,
    primal √4·0.125 = 0.25 MW) and balancing doubles ρ; the next steps swing the import across the whole 1 MW step
    (dual residual ρ·ΔX ≫ primal) and balancing halves ρ. Balanced every iteration, this repeats every 12 iterations
    (ρ 1.5625, 3.125, 6.25, 6.25, 3.125, 1.5625, ... $/MW²h; price 159.1-160.9 $/MWh; import 1.0 ↔ 2.0 MW) and never
    converges (measured up to 20,000 iterations). With ρ fixed from iteration 200 it is plain ADMM on a convex problem
    and converges at iteration 275. Without the 260 step (nothing bounds the swing from above) balancing alone
    converges, in 384 iterations."""
    loads = [Area((), demand_mw=0.5) for _ in range(3)]
    tie = GridTie(60.0, 0.0, 5.0, import_limit_mw=2.0, over_price=100.0, peak_mw=1.0, demand_price=100.0)
    ref = dispatch_with_grid(loads, tie, solve=centralized_dispatch)
    assert ref.price == pytest.approx(160.0) and ref.cost == pytest.approx(140.0)

    r = dispatch_with_grid(loads, tie, max_iter=400)  # default tol 1e-5 MW, ρ starting at 50 $/MW²h

    assert r.converged and r.iterations <= 400
    assert r.x == pytest.approx(ref.x, abs=1e-4)  # MW
    assert r.price == pytest.approx(ref.price, abs=0.01)  # $/MWh
    assert r.cost == pytest.approx(ref.cost, abs=0.01)  # $/h


def test_rho_stays_finite_on_an_infeasible_coupling():
    """Two areas each 11 MW short of their demand (12 MW against a 1 MW unit, 13 against 2) and a grid that sells at
    most 20 MW: 2 MW can never be balanced, so the primal residual stays at 2/√3 = 1.155 MW and never falls. Residual
    balancing doubled ρ at every iteration up to half of ``max_iter``; ρ and the price ``−ρ·u`` overflowed to inf
    (1e149 $/MW²h after 1,000 iterations). Now ρ stops at ``RHO_SPAN`` times its start and the unconverged result stays
    finite."""
    areas = [Area((Unit(0.0, 12.0, 0.0, 1.0),), 12.0), Area((Unit(0.0, 39.0, 0.0, 2.0),), 13.0)]
    tie = GridTie(49.0, 43.0, 20.0)

    r = dispatch_with_grid(areas, tie, max_iter=5000)  # ρ starts at 50 $/MW²h

    assert not r.converged
    assert r.primal_residual == pytest.approx(2.0 / math.sqrt(3.0))  # MW
    assert r.rho == pytest.approx(50.0 * RHO_SPAN)
    assert math.isfinite(r.price) and math.isfinite(r.u)

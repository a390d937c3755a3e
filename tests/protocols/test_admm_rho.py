"""ADMM's residual balancing of ρ stops at half of ``max_iter``: on a stepped tariff it cycles, with ρ fixed ADMM converges."""

from __future__ import annotations

import pytest

from powergrid_protocols.admm import Area, GridTie, centralized_dispatch, dispatch_with_grid


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

"""ADMM economic dispatch equals the centralized optimum of an independent QP solve (SLSQP)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from powergrid_protocols.admm import Area, Unit, admm_dispatch, centralized_dispatch


def reference_qp(areas, demand=0.0):
    """Device-level QP: min Σ a p² + b p, boxes, x_i = Σp − d_i in bounds, Σ x_i = demand (SLSQP)."""
    units = [(i, u) for i, a in enumerate(areas) for u in a.units]
    a = np.array([u.a for _, u in units])
    b = np.array([u.b for _, u in units])
    owner = np.array([i for i, _ in units])
    d = np.array([ar.demand_mw for ar in areas])

    def x_of(p):
        return np.bincount(owner, weights=p, minlength=len(areas)) - d

    cons = [{"type": "eq", "fun": lambda p: np.array([x_of(p).sum() - demand]), "jac": lambda p: np.ones((1, len(p)))}]
    for i, ar in enumerate(areas):
        row = (owner == i).astype(float)
        if ar.x_max < 1e8:
            cons.append({"type": "ineq", "fun": lambda p, i=i, ar=ar: np.array([ar.x_max - x_of(p)[i]]),
                         "jac": lambda p, row=row: -row[None, :]})
        if ar.x_min > -1e8:
            cons.append({"type": "ineq", "fun": lambda p, i=i, ar=ar: np.array([x_of(p)[i] - ar.x_min]),
                         "jac": lambda p, row=row: row[None, :]})
    bounds = [(u.p_min, u.p_max) for _, u in units]
    x0 = np.array([(lo + hi) / 2 for lo, hi in bounds])
    res = minimize(lambda p: float(a @ p**2 + b @ p), x0, jac=lambda p: 2 * a * p + b, bounds=bounds,
                   constraints=cons, method="SLSQP", options={"ftol": 1e-12, "maxiter": 1000})
    assert res.success, res.message
    return res.fun, res.x, x_of(res.x)


CASES = {
    # three microgrids (DG + battery as a cheap quadratic unit) trading with each other: Σ x = 0
    "exchange": ([Area((Unit(10, 45, 0, 0.6), Unit(2, 0, -0.5, 0.5)), 0.9),
                  Area((Unit(20, 60, 0, 0.6),), 0.4),
                  Area((Unit(8, 40, 0, 1.0),), 0.3)], 0.0),
    # meeting a total demand of 1.5 MW besides local demands, with an upstream grid at 70 $/MWh (linear)
    "demand": ([Area((Unit(10, 45, 0, 0.6),), 0.2),
                Area((Unit(20, 60, 0, 0.6), Unit(1, 5, -0.3, 0.3)), 0.4),
                Area((Unit(0, 70, -5, 5),), 0.0)], 1.5),
    # the cheap microgrid's PCC limit (0.25 MW export) binds
    "binding_limit": ([Area((Unit(5, 30, 0, 1.0),), 0.1, -0.25, 0.25),
                       Area((Unit(20, 60, 0, 0.6),), 0.5),
                       Area((Unit(15, 55, 0, 0.8),), 0.4)], 0.0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_admm_matches_the_centralized_optimum(name):
    areas, demand = CASES[name]
    ref_cost, ref_p, ref_x = reference_qp(areas, demand)
    admm = admm_dispatch(areas, demand, tol=1e-6)
    assert admm.converged and admm.iterations > 1 and admm.messages == 2 * len(areas) * admm.iterations
    assert admm.cost == pytest.approx(ref_cost, rel=5e-3, abs=1e-3)
    np.testing.assert_allclose(admm.x, ref_x, atol=5e-3)
    np.testing.assert_allclose(np.concatenate(admm.p), ref_p, atol=5e-3)
    assert abs(admm.x.sum() - demand) < 1e-4
    central = centralized_dispatch(areas, demand)
    assert central.cost == pytest.approx(ref_cost, rel=5e-3, abs=1e-3)
    if name == "binding_limit":
        assert admm.x[0] == pytest.approx(0.25, abs=1e-4)  # the limit binds
    else:
        # without a binding limit the coupling price is every interior unit's marginal cost
        assert admm.price == pytest.approx(central.price, rel=1e-2)

"""GridConnection: buy at the price, sell at a discount, limits as safety."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid.solvers.base import PowerFlowResult
from tests.devices.helpers import context, make


def _exchange(p_mw: float) -> PowerFlowResult:
    r = PowerFlowResult.failed(1, 0, 0, 1)
    r.converged, r.ext_grid_p_mw = True, np.array([p_mw])
    return r


@pytest.mark.parametrize(("import_mw", "cost", "safety"), [(1.0, 50.0 * 1.0 * 0.25, 0.0),
                                                          (-1.0, -0.8 * 50.0 * 0.25, 0.0),
                                                          (2.0, 50.0 * 2.0 * 0.25, 0.5),
                                                          (-1.5, -0.8 * 50.0 * 1.5 * 0.25, 0.5)])
def test_cost_and_limits(import_mw: float, cost: float, safety: float) -> None:
    pcc = make("GridConnection", sell_ratio=0.8, import_limit_mw=1.5, export_limit_mw=1.0)
    ctx = context(price=50.0)
    pcc.step(None, ctx)
    pcc.settle(_exchange(import_mw), ctx)
    assert pcc.cost == pytest.approx(cost) and pcc.safety == pytest.approx(safety)


def test_diverged_flow_settles_nothing() -> None:
    pcc = make("GridConnection")
    pcc.step(None, context())
    pcc.settle(PowerFlowResult.failed(1, 0, 0, 1), context())
    assert pcc.cost == 0.0 and pcc.safety == 0.0

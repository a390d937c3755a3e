"""GridConnection: buy at the price, sell at a discount, limits as safety."""

from __future__ import annotations

from typing import Any

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


def test_a_line_fed_from_its_to_side_bills_the_import_into_its_from_side() -> None:
    """CIGRE MV's Line 7-8 runs from Bus 7, a radial end (one bus, a load), to Bus 8: the import into Bus 7 is
    −p_from_mw (before: +p_from_mw, the load's 0.0245 MW import billed as an export revenue). Per-object and kernel
    settle alike; a line whose to side is the end (Line 4-5) keeps p_from_mw."""
    from powergrid.networks import cigre_mv
    from powergrid.params import build_params
    from tests.devices.helpers import device_class

    net = cigre_mv()

    def on_line(name: str) -> Any:
        cls = device_class("GridConnection")
        d = cls(build_params(cls.Params, {"element": "line", "name": name, "sell_ratio": 0.5}), 0.25)
        d.reset(np.random.default_rng(0))
        d.attach(net, 0)
        return d

    end, feeder = on_line("Line 7-8"), on_line("Line 4-5")
    assert (end.sign, feeder.sign) == (-1.0, 1.0)
    flows = PowerFlowResult.failed(len(net.bus), len(net.line), len(net.trafo), len(net.ext_grid))
    flows.converged = True
    flows.line_p_from_mw = np.zeros(len(net.line))
    flows.line_p_from_mw[[end.row, feeder.row]] = -0.3  # out of Bus 7 into the line: Bus 7 imports 0.3 MW
    ctx = context(price=50.0)
    twins = [on_line("Line 7-8"), on_line("Line 4-5")]
    kernel = type(end).Kernel(twins)
    kernel.load()
    for d in (end, feeder):
        d.step(None, ctx)
        d.settle(flows, ctx)
    kernel.step(np.zeros((2, 0)), np.full(2, 50.0), ctx)
    kernel.settle(flows, ctx)
    assert end.import_mw == pytest.approx(0.3) and end.cost == pytest.approx(50.0 * 0.3 * 0.25)
    assert feeder.import_mw == pytest.approx(-0.3) and feeder.cost == pytest.approx(-0.5 * 50.0 * 0.3 * 0.25)
    np.testing.assert_array_equal(kernel.cost, [end.cost, feeder.cost])

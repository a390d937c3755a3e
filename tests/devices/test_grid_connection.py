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


@pytest.mark.parametrize(("price", "import_mw", "cost"), [(-50.0, 1.0, -50.0 * 0.25), (-50.0, -1.0, 50.0 * 0.25),
                                                        (50.0, -1.0, -0.8 * 50.0 * 0.25), (0.0, -1.0, 0.0)])
def test_an_export_is_never_paid_less_than_an_import_at_the_same_price(price: float, import_mw: float,
                                                                       cost: float) -> None:
    """Export at ``min(sell_ratio·price, price)``: at a negative price the full price (was 0.8·price, −8 $ less)."""
    pcc = make("GridConnection", sell_ratio=0.8)
    ctx = context(price=price)
    pcc.step(None, ctx)
    pcc.settle(_exchange(import_mw), ctx)
    assert pcc.cost == pytest.approx(cost)


def test_cycling_a_battery_at_a_negative_price_earns_only_its_net_import() -> None:
    """H5s29's reproducer: an ESS charging 0.5 MW for 2 h then discharging 0.5 MW for 2 h, 24 h at a constant
    −50 $/MWh behind a sell_ratio 0.8 PCC. The PCC sees zero net energy (the losses come out of the SOC), so the bill
    is 0, as with sell_ratio 1; with the export at 0.8·price it was −60 $ (12 h × 0.5 MWh × 10 $/MWh) for nothing."""
    bills = {}
    for ratio in (0.8, 1.0):
        pcc = make("GridConnection", sell_ratio=ratio, dt_h=1.0)
        ess = make("ESS", dt_h=1.0, p_max_mw=0.5, capacity_mwh=2.0, soc_min=0.0, soc_max=1.0, soc_init=0.5)
        ctx = context(n=24, dt_h=1.0, price=-50.0)
        bill = net_import = 0.0
        for t in range(24):
            ess.step(np.array([-0.5 if t % 4 < 2 else 0.5]), ctx)
            pcc.step(None, ctx)
            pcc.settle(_exchange(-ess.p_mw), ctx)
            bill += pcc.cost
            net_import += -ess.p_mw * 1.0
        assert ess.soc < 0.5  # the round trip's losses drained the battery
        bills[ratio] = (bill, net_import)
    assert bills[0.8][1] == pytest.approx(0.0, abs=1e-12)
    assert bills[0.8][0] == pytest.approx(-50.0 * bills[0.8][1], abs=1e-9) == bills[1.0][0]


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
        d.attach(net, int(name.split()[1].split("-")[0]))  # its from bus (CIGRE MV: Bus k is row k)
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


@pytest.mark.parametrize("slack", ["ext_grid", "gen"])
def test_the_radial_end_of_a_line_is_found_from_any_slack(slack: str) -> None:
    """A line from a radial end (Bus 1, exporting) to the slack's bus: the sign flips whether the slack is an
    ext_grid or a slack generator (before: a slack generator was not a source, and the export billed as import)."""
    import pandapower as pp

    from powergrid_devices.grid_connection import from_side_is_the_end

    net = pp.create_empty_network()
    b0, b1, b2 = (pp.create_bus(net, 20.0) for _ in range(3))
    if slack == "ext_grid":
        pp.create_ext_grid(net, b0)
    else:
        pp.create_gen(net, b0, p_mw=0.0, vm_pu=1.0, slack=True)
    pp.create_line(net, b1, b0, 1.0, "NA2XS2Y 1x185 RM/25 12/20 kV")
    pp.create_line(net, b1, b2, 1.0, "NA2XS2Y 1x185 RM/25 12/20 kV")
    assert from_side_is_the_end(net, 0) and not from_side_is_the_end(net, 1)


SITE = """name: site
network: {type: cigre_mv}
agents:
  - {id: mg, kind: grid, protocol: {type: setpoint}, policy: learned, children: [ess, pv, pcc]}
  - {id: ess, type: ESS, bus: Bus 5, params: {p_max_mw: 0.5, capacity_mwh: 2.0}}
  - {id: pv, type: PV, bus: Bus 5, params: {p_max_mw: 0.4}}
  - {id: pcc, type: GridConnection, bus: PCC_BUS, params: {element: ELEMENT}}
"""


@pytest.mark.parametrize(("element", "good", "bad", "metered"), [
    ("line, name: Line 4-5", "Bus 4", "Bus 7", "line 'Line 4-5' ('Bus 4', 'Bus 5')"),
    ("trafo, name: Trafo 0-1", "Bus 1", "Bus 12", "trafo 'Trafo 0-1' ('Bus 0', 'Bus 1')"),
    ("ext_grid", "Bus 0", "Bus 1", "ext_grid (row 0) ('Bus 0')")])
def test_the_bus_of_a_grid_connection_is_one_of_its_elements(element: str, good: str, bad: str, metered: str) -> None:
    """r46a F3: the bus only places the meter in its grid agent's zone (the element is metered wherever it is); a bus
    off the element validated and moved the zone (Line 4-5 metered at Bus 7: mg's zone {5, 7}, not {4, 5})."""
    from powergrid.config import EnvConfig
    from powergrid.env import MultiAgentPowerGridEnv
    from powergrid.errors import ConfigError

    def env(bus: str) -> MultiAgentPowerGridEnv:
        text = SITE.replace("PCC_BUS", bus).replace("ELEMENT", element)
        return MultiAgentPowerGridEnv(EnvConfig.from_text(text, file="site.yaml"))

    zone = sorted(int(b) for b in env(good).scenario.agents["mg"].zone)
    assert zone == sorted({5, int(good.split()[1])})
    with pytest.raises(ConfigError) as caught:
        env(bad)
    assert str(caught.value) == (f"site.yaml:7 agents[3].bus: expected the bus to be one of the buses of the metered "
                                 f"{metered}, got {bad!r}")


def test_a_grid_connection_bus_off_its_element_is_reported_at_its_bus_line() -> None:
    """r46d F4: the error named ``agents[i].params`` at the line of its first key, not the wrong field."""
    from powergrid.config import EnvConfig
    from powergrid.env import MultiAgentPowerGridEnv
    from powergrid.errors import ConfigError

    text = SITE.split("  - {id: pcc")[0] + "  - id: pcc\n    type: GridConnection\n    bus: Bus 7\n    params:\n" \
        "      element: line\n      name: Line 4-5\n"
    with pytest.raises(ConfigError) as caught:
        MultiAgentPowerGridEnv(EnvConfig.from_text(text, file="site.yaml"))
    assert text.splitlines()[8] == "    bus: Bus 7"
    assert (caught.value.line, caught.value.path) == (9, "agents[3].bus")
    assert str(caught.value).startswith("site.yaml:9 agents[3].bus: expected the bus to be one of the buses of the metered line")

"""Point of common coupling: import and export at a price."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from powergrid.devices import Device, Kernel, StepContext, export_price
from powergrid.errors import BusError
from powergrid.params import UNLIMITED, choice, quantity, text
from powergrid.slacks import slack_buses
from powergrid.solvers.base import PowerFlowResult


@attrs.frozen
class GridConnectionParams:
    element: str = choice(("ext_grid", "trafo", "line"), "ext_grid", doc="where the exchange is measured")
    name: str = text("", doc="element name; empty: the first element of that table")
    sell_ratio: float = quantity("1", 1.0, ge=0, le=1,
                                 doc="export price as a fraction of the buy price (at a negative price: the full price)")
    import_limit_mw: float = quantity("MW", UNLIMITED, ge=0)
    export_limit_mw: float = quantity("MW", UNLIMITED, ge=0)
    demand_charge: float = quantity("$/MW", 0.0, ge=0, doc="per MW of the episode's peak import (charged as the peak rises)")


#: The :class:`PowerFlowResult` field (MW into the microgrid) that measures the exchange at each kind of element.
FLOW_FIELDS = {"ext_grid": "ext_grid_p_mw", "trafo": "trafo_p_hv_mw", "line": "line_p_from_mw"}


def cut_off(net: Any, element: str, row: int) -> set[int]:
    """The in-service buses (net.bus labels) that lose every slack (ext_grid or slack generator,
    :func:`powergrid.slacks.slack_buses`) when ``element`` (``"line"`` or ``"trafo"``) at position ``row`` is opened,
    respecting switches."""
    import networkx as nx
    import pandapower.topology as top

    graph = top.create_nxgraph(net, multi=True)
    key = (element, net[element].index[row])
    graph.remove_edges_from([e for e in graph.edges(keys=True) if e[2] == key])
    sources = set(slack_buses(net))
    return {b for part in nx.connected_components(graph) if not sources & part for b in part}


def from_side_is_the_end(net: Any, row: int) -> bool:
    """Whether line ``row`` (position) feeds a radial end on its *from* side: without the line its from bus is cut
    off from every slack and its to bus is not. The import into that end is then ``−p_from_mw``."""
    start, end = int(net.line.from_bus.iat[row]), int(net.line.to_bus.iat[row])
    cut = cut_off(net, "line", row)
    return start in cut and end not in cut and end in net.bus.index[net.bus.in_service.astype(bool)]


def exchange_cost(rate: Any, import_mw: Any, dt: Any, demand_charge: Any, new_peak_mw: Any) -> Any:
    """``rate·import·dt + demand_charge·(import above the peak so far)`` in $ (floats or arrays)."""
    return rate * import_mw * dt + demand_charge * new_peak_mw


class GridConnectionKernel(Kernel):
    """Every grid connection settled on arrays (the accounting of :class:`GridConnection`)."""

    settles = True
    state = {**Kernel.state, "import_mw": ("import_mw", np.float64), "peak_mw": ("peak_mw", np.float64)}

    def __init__(self, devices: list[Any]) -> None:
        super().__init__(devices)
        self.sell_ratio, self.demand_charge = self.param("sell_ratio"), self.param("demand_charge")
        self.import_limit, self.export_limit = self.param("import_limit_mw"), self.param("export_limit_mw")
        self.elements = [(element, np.array([i for i, d in enumerate(devices) if d.params.element == element], np.int64),
                          np.array([d.row for d in devices if d.params.element == element], np.int64))
                         for element in ("ext_grid", "trafo", "line")]
        self.sign = np.array([d.sign for d in devices], np.float64)
        self.flipped = bool((self.sign < 0).any())

    def step(self, actions: np.ndarray, prices: np.ndarray, ctx: StepContext) -> None:
        n = len(self.devices)
        self.cost, self.safety, self.projection = np.zeros(n), np.zeros(n), np.zeros(n)

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> None:
        value = np.empty(len(self.devices))
        for element, where, rows in self.elements:
            if where.size:
                value[where] = getattr(result, FLOW_FIELDS[element])[rows]
        if self.flipped:
            value *= self.sign
        ok = ~np.isnan(value)  # NaN: the power flow did not converge; nothing is settled
        rate = np.where(value >= 0, ctx.price, export_price(ctx.price, self.sell_ratio))
        cost = exchange_cost(rate, value, self.dt, self.demand_charge, np.maximum(value - self.peak_mw, 0.0))
        self.cost = np.where(ok, cost, self.cost)
        self.import_mw = np.where(ok, value, self.import_mw)
        self.peak_mw = np.where(ok, np.maximum(self.peak_mw, value), self.peak_mw)
        safety = np.maximum(value - self.import_limit, 0.0) + np.maximum(-value - self.export_limit, 0.0)
        self.safety = np.where(ok, safety, self.safety)


class GridConnection(Device):
    """Exchange with the upstream grid, measured by the power flow.

    ``import = P`` into the microgrid at the element (ext_grid: its injection;
    trafo: ``p_hv_mw``; line: ``p_from_mw``, or ``−p_from_mw`` for a line whose from side is the radial end it
    feeds), in MW. Cost over ``dt`` hours:
    ``price·import·dt`` when importing, ``min(sell_ratio·price, price)·import·dt`` (a
    revenue; at a negative price the full price) when exporting, with ``price`` in $/MWh; plus a demand charge
    ``demand_charge·max(import − peak, 0)`` $ whenever the import exceeds the episode's
    peak so far (``peak`` starts at 0), so an episode pays ``demand_charge·max(peak import, 0)``.
    Safety: MW beyond the import or export limit. Injects nothing itself; takes no action. Its ``bus`` is one of the
    element's buses (checked when attached: the bus joins its grid agent's zone).
    """

    Params = GridConnectionParams
    Kernel = GridConnectionKernel
    bills_energy = True

    def __init__(self, params: GridConnectionParams, dt_h: float) -> None:
        super().__init__(params, dt_h)
        self.row = 0
        self.sign = 1.0  # −1: a line feeding the radial end on its from side (the import is −p_from_mw)
        self.import_mw = 0.0
        self.peak_mw = 0.0

    def reset(self, rng: Any) -> None:
        super().reset(rng)
        self.import_mw = self.peak_mw = 0.0

    def attach(self, net: Any, bus: int) -> None:
        table = net[self.params.element]
        if len(table) == 0:
            raise ValueError(f"the network has no {self.params.element}")
        if self.params.name:
            names = [str(n) for n in table.name]
            if self.params.name not in names:
                raise ValueError(f"no {self.params.element} named {self.params.name!r} (have: {', '.join(names)})")
            self.row = names.index(self.params.name)
        ends = {"ext_grid": ("bus",), "trafo": ("hv_bus", "lv_bus"), "line": ("from_bus", "to_bus")}[self.params.element]
        own = [int(table[end].iat[self.row]) for end in ends]  # net.bus labels; ``bus`` is a row of net.bus
        if int(net.bus.index[bus]) not in own:  # the device's bus joins its grid agent's zone: off the meter, it moves it
            name = table.name.iat[self.row] if "name" in table else None
            label = repr(name) if isinstance(name, str) and name else f"(row {self.row})"
            have = ", ".join(repr(str(net.bus.name.at[b])) for b in own)
            raise BusError(f"expected the bus to be one of the buses of the metered {self.params.element} {label} ({have}), "
                           f"got {str(net.bus.name.iat[bus])!r}")
        if self.params.element == "line":
            self.sign = -1.0 if from_side_is_the_end(net, self.row) else 1.0

    def billed_buses(self, net: Any) -> np.ndarray:
        """The buses its element meters: an ext_grid, every bus its slack feeds; a trafo or line, the buses cut off
        from every slack when it is opened (none in a mesh that feeds them around it)."""
        import pandapower.topology as top

        if self.params.element == "ext_grid":
            behind = top.connected_component(top.create_nxgraph(net), int(net.ext_grid.bus.iat[self.row]))
        else:
            behind = cut_off(net, self.params.element, self.row)
        return np.flatnonzero(net.bus.index.isin(list(behind)))

    def step(self, action: object, ctx: StepContext) -> None:
        self.cost = self.safety = self.projection = 0.0

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> None:
        p = self.params
        value = getattr(result, FLOW_FIELDS[p.element]).item(self.row)
        if value != value:  # NaN: the power flow did not converge; nothing is settled
            return
        if self.sign < 0:
            value = -value
        self.import_mw = value
        price = ctx.price
        sell = p.sell_ratio * price  # export_price as a conditional (same floats, faster)
        rate = price if value >= 0 else (sell if sell < price else price)
        # max(·, 0) and max(peak, value) as conditionals (same floats, faster)
        rise, peak = value - self.peak_mw, self.peak_mw
        self.cost = exchange_cost(rate, value, self.dt_h, p.demand_charge, 0.0 if rise < 0.0 else rise)
        self.peak_mw = value if value > peak else peak
        over, under = value - p.import_limit_mw, -value - p.export_limit_mw
        self.safety = (0.0 if over < 0.0 else over) + (0.0 if under < 0.0 else under)

    def state_dict(self) -> dict[str, float]:
        return {"import_mw": self.import_mw, "peak_mw": self.peak_mw}

"""Distributed economic dispatch by exchange ADMM: the algorithm (pure functions) and its
environment adapter :class:`ADMMDispatch`.

Problem (areas ``i = 1..N``, each a GridAgent with generating units ``g``)::

    minimise   Σ_i Σ_{g∈i} (a_g p_g² + b_g p_g)            [$/h]
    subject to p_g ∈ [p_min_g, p_max_g]
               x_i = Σ_{g∈i} p_g − d_i ∈ [x_min_i, x_max_i]   (net export of area i, MW;
                                                           the bounds model its PCC/line limit)
               Σ_i x_i = D                                  (coupling: D = 0 for pure exchange,
                                                           or a demand met by the areas)

Algorithm: exchange/sharing ADMM (Boyd et al. 2011, §7.3.2) with scaled dual ``u``::

    x_i ← argmin f_i(x_i) + ρ/2 (x_i − x_i^k + x̄^k − D/N + u^k)²      (each area, in parallel)
    u   ← u + x̄ − D/N                                                  (the coordinator)

``f_i(x)`` is area i's cheapest dispatch exporting x. The local problem is solved
exactly by bisection on the area's marginal cost λ (units follow
``p_g = clip((λ − b_g)/(2 a_g))``; linear units fill the residual at λ = b_g).
The price of energy (the dual of the coupling) is ``−ρ·u`` $/MWh.
Stopping: primal residual ``√N·|x̄ − D/N|`` and dual residual
``ρ·‖Δ(x − x̄)‖`` both ≤ ``tol`` MW; ρ adapts by residual balancing (×2 / ÷2
when one residual is 10× the other, from the second iteration, at those whose every ``x_i`` arrived). Messages: each
iteration every area sends ``x_i`` to the coordinator and receives ``(x̄, u)`` back: ``2N`` messages.

:func:`centralized_dispatch` solves the same problem in one place (bisection on
the system price with each area's response clipped to its exchange bounds); it
is the reference of the benchmark. Tests compare both with an independent QP.

The upstream grid (:class:`GridTie`) sells at ``buy`` and buys at ``sell ≤ buy`` $/MWh, one
net exchange ``g`` (MW into the areas): cost ``buy·g`` for ``g ≥ 0``, ``sell·g`` for ``g < 0``.
That cost is convex and the grid is one more area with an import and an export unit (buying
and selling at once never pays, and the two are netted). A tie with ``sell > buy`` is refused:
its cost is concave, and one area holding both units would buy and sell at once and earn
``(sell − buy)·G`` out of nothing (:class:`ADMMDispatch`'s tie, ``sell = min(ratio·price, price)``,
never is). A tie may carry soft limits (each MWh beyond ``import_limit_mw`` / ``export_limit_mw`` costs
``over_price`` more) and a demand charge (import above ``peak_mw`` ``demand_price`` more): a meter's tariff as linear
units (:func:`tariff_units`), still convex.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from powergrid import scaling
from powergrid.devices import StepContext, export_price
from powergrid.params import flag, integer, quantity
from powergrid.protocols import HorizontalProtocol
from powergrid.scaling import Feature
from powergrid.solvers.base import PowerFlowResult
from powergrid_protocols.channel import Channel, Message
from powergrid_protocols.common import (
    DISPATCHABLE,
    ChannelFields,
    build_channel,
    clock_after,
    devices_of,
    finite_or,
    kind,
    meter_of,
    mw_range,
    project_pending,
    set_pending_mw,
)

INF = 1e9


@attrs.frozen
class Unit:
    """A generating unit (or storage used as one): cost ``a·p² + b·p`` $/h on ``[p_min, p_max]`` MW."""

    a: float
    b: float
    p_min: float
    p_max: float


@attrs.frozen
class Area:
    """A participant: its units, its local demand (MW) and the bounds of its net export (MW)."""

    units: tuple[Unit, ...]
    demand_mw: float = 0.0
    x_min: float = -INF
    x_max: float = INF


@attrs.frozen
class Dispatch:
    """A solve's result: unit outputs, net exports, the price (the coupling's dual), cost and convergence."""

    p: tuple[np.ndarray, ...]  # per area, per unit (MW)
    x: np.ndarray  # net export per area (MW)
    price: float  # $/MWh
    cost: float  # $/h
    iterations: int = 0
    converged: bool = True
    messages: int = 0
    primal_residual: float = 0.0
    u: float = 0.0  # final scaled dual (for a warm start)
    rho: float = 0.0  # final penalty (for a warm start)


def unit_cost(units: Sequence[Unit], p: np.ndarray) -> float:
    """Σ ``a·p² + b·p`` of ``units`` at outputs ``p`` MW ($/h)."""
    return float(sum(u.a * q * q + u.b * q for u, q in zip(units, p)))


def _sums(units: Sequence[Unit], lam: float) -> tuple[float, float]:
    """Σ p(λ) from the left and from the right (they differ where λ is a linear unit's price)."""
    left = right = 0.0
    for u in units:
        if u.a > 0:
            q = min(max((lam - u.b) / (2.0 * u.a), u.p_min), u.p_max)
            left += q
            right += q
        elif lam < u.b:
            left += u.p_min
            right += u.p_min
        elif lam > u.b:
            left += u.p_max
            right += u.p_max
        else:
            left += u.p_min
            right += u.p_max
    return left, right


def _solve(units: Sequence[Unit], alpha: float, target: float) -> float:
    """The λ with ``α·λ + S(λ) = target`` (α ≥ 0; S piecewise linear, increasing, with jumps), exactly."""
    points = sorted({u.b + 2 * u.a * u.p_min for u in units if u.a > 0}
                    | {u.b + 2 * u.a * u.p_max for u in units if u.a > 0} | {u.b for u in units if u.a == 0})
    s_min = sum(u.p_min for u in units)
    s_max = sum(u.p_max for u in units)
    prev_lam, prev_val = None, None
    for lam in points:
        left, right = _sums(units, lam)
        f_left, f_right = alpha * lam + left, alpha * lam + right
        if f_right >= target:
            if f_left <= target:
                return lam
            if prev_lam is None:  # below the first point S is constant (s_min)
                return (target - s_min) / alpha if alpha > 0 else lam
            # F is linear and continuous between the previous point (right value) and this one (left value)
            return prev_lam + (target - prev_val) * (lam - prev_lam) / (f_left - prev_val)
        prev_lam, prev_val = lam, f_right
    if alpha > 0:
        return (target - s_max) / alpha
    return points[-1] if points else 0.0


def _response(units: Sequence[Unit], lam: float) -> np.ndarray:
    """Each unit's output where its marginal cost equals ``lam`` (linear units: p_min below b, p_max above)."""
    out = np.empty(len(units))
    for k, u in enumerate(units):
        if u.a > 0:
            q = (lam - u.b) / (2.0 * u.a)
        else:
            q = u.p_max if lam > u.b else u.p_min
        out[k] = min(max(q, u.p_min), u.p_max)
    return out


def _fill(units: Sequence[Unit], lam: float, total: float, tol: float = 1e-9) -> np.ndarray:
    """Dispatch at marginal cost ``lam``; linear units priced at ``lam`` take the residual to reach ``total``."""
    p = _response(units, lam)
    marginal = [k for k, u in enumerate(units) if u.a == 0 and abs(u.b - lam) <= tol * max(1.0, abs(lam))]
    if marginal:
        for k in marginal:
            p[k] = units[k].p_min
        residual = total - p.sum()
        for k in marginal:
            take = min(max(residual, 0.0), units[k].p_max - units[k].p_min)
            p[k] += take
            residual -= take
    return p


def _bracket(units: Sequence[Unit]) -> tuple[float, float]:
    """Prices ($/MWh) below and above every unit's marginal cost on its range."""
    lo = min([u.b + 2 * u.a * u.p_min for u in units], default=0.0) - 1.0
    hi = max([u.b + 2 * u.a * u.p_max for u in units], default=0.0) + 1.0
    return lo, hi


def dispatch_total(units: Sequence[Unit], total: float) -> tuple[np.ndarray, float]:
    """Cheapest dispatch of ``units`` producing ``total`` MW (clipped to their range) and its marginal cost λ."""
    pmin = sum(u.p_min for u in units)
    pmax = sum(u.p_max for u in units)
    total = min(max(total, pmin), pmax)
    lam = _solve(units, 0.0, total)
    return _fill(units, lam, total), lam


def local_step(area: Area, v: float, rho: float) -> np.ndarray:
    """``argmin_p Σ c_g(p_g) + ρ/2 (Σp − d − v)²`` with the area's exchange bounds: unit outputs (MW).

    Optimality: every unit at marginal cost λ with ``λ/ρ + Σp(λ) = d + v``, solved exactly on the
    piecewise-linear ``Σp(λ)``; if the resulting export leaves ``[x_min, x_max]``, the (convex, 1-D)
    optimum is at the bound, dispatched at least cost.
    """
    units, d = area.units, area.demand_mw
    if not units:
        return np.zeros(0)
    lam = _solve(units, 1.0 / rho, d + v)
    return _within_bounds(area, _fill(units, lam, d + v - lam / rho))


def _within_bounds(area: Area, p: np.ndarray) -> np.ndarray:
    """``p`` (MW), or when its export leaves ``[x_min, x_max]`` the least-cost dispatch at the nearer bound."""
    x = p.sum() - area.demand_mw
    if x < area.x_min - 1e-12 or x > area.x_max + 1e-12:
        p, _ = dispatch_total(area.units, area.demand_mw + min(max(x, area.x_min), area.x_max))
    return p


def admm_dispatch(areas: Sequence[Area], demand_mw: float = 0.0, *, rho: float = 50.0, tol: float = 1e-5,
                  max_iter: int = 5000, adaptive: bool = True, channel: Channel | None = None,
                  start_tick: int = 0, u0: float = 0.0) -> Dispatch:
    """Exchange ADMM (see the module docstring). With a ``channel``, each area's ``x_i`` travels to the
    coordinator through it in synchronous rounds: an iteration sends at one channel tick and the coordinator
    waits the channel's delay for the answers (``delay + 1`` ticks per iteration, from ``start_tick``); a lost
    ``x_i`` is replaced by the last one received, and the solve stops only once every area's ``x_i`` of this
    solve has arrived. ``u0`` and ``rho`` warm-start from a previous solve (its ``u`` and ``rho``)."""
    n = len(areas)
    target = demand_mw / n
    p = [np.array([min(max(0.0, u.p_min), u.p_max) for u in a.units]) for a in areas]
    x = np.array([pi.sum() - a.demand_mw for pi, a in zip(p, areas)])
    heard = x.copy()
    unheard = np.full(n, channel is not None)  # areas whose x_i of this solve has not arrived yet
    u = float(u0)
    messages = 0
    r = s = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        xbar = heard.mean()
        prev_dev = heard - xbar
        v = heard - xbar + target - u
        p = [local_step(a, float(vi), rho) for a, vi in zip(areas, v)]
        x = np.array([pi.sum() - a.demand_mw for pi, a in zip(p, areas)])
        current = n  # the x_i of this iteration the coordinator has
        if channel is None:
            heard = x.copy()
        else:  # a synchronous round: sent at `tick`, the coordinator waits the channel's delay for them
            tick = start_tick + (it - 1) * (channel.delay + 1)
            for i in range(n):
                channel.send(Message(str(i), "coordinator", float(x[i])), tick)
            current = 0
            for m in channel.receive(tick + channel.delay):
                heard[int(m.sender)] = m.payload
                unheard[int(m.sender)] = False
                current += m.sent_tick == tick
        messages += 2 * n
        xbar = heard.mean()
        u += xbar - target
        r = np.sqrt(n) * abs(xbar - target)
        s = rho * float(np.linalg.norm((heard - xbar) - prev_dev))
        if r <= tol and s <= tol and not unheard.any():
            break
        # residuals of late x_i are no guide to ρ, nor the first iteration's (its change is from the starting point, not
        # an iterate: an area held at a bound moves there at once): balance on current ones from the second iteration
        if adaptive and current == n and it > 1:
            if r > 10 * s:
                rho *= 2.0
                u /= 2.0
            elif s > 10 * r:
                rho /= 2.0
                u *= 2.0
    converged = bool(r <= tol and s <= tol and not unheard.any())
    cost = sum(unit_cost(a.units, pi) for a, pi in zip(areas, p))
    return Dispatch(tuple(p), x, float(-rho * u), float(cost), it, converged, messages, float(r), float(u), float(rho))


def area_response(area: Area, lam: float) -> np.ndarray:
    """Area's cheapest dispatch when energy trades at ``lam`` $/MWh, within its exchange bounds."""
    return _within_bounds(area, _response(area.units, lam))


def centralized_dispatch(areas: Sequence[Area], demand_mw: float = 0.0) -> Dispatch:
    """The same optimum in one place: bisection on the system price λ for Σ x_i(λ) = D."""
    units = [u for a in areas for u in a.units]
    lo, hi = _bracket(units)
    lo, hi = lo - 1e4, hi + 1e4

    def total(lam: float) -> float:
        return sum(area_response(a, lam).sum() - a.demand_mw for a in areas)

    for _ in range(300):
        mid = 0.5 * (lo + hi)
        if total(mid) < demand_mw:
            lo = mid
        else:
            hi = mid
    lam = 0.5 * (lo + hi)
    # at λ*, areas that are not at their exchange bounds share the residual through linear units
    p = [area_response(a, lam) for a in areas]
    x = np.array([pi.sum() - a.demand_mw for pi, a in zip(p, areas)])
    residual = demand_mw - x.sum()
    if abs(residual) > 1e-9:
        # λ* sits on the price of linear units (a jump of Σx): they take the residual, within their area's bounds
        for i, a in enumerate(areas):
            if not any(u.a == 0 and abs(u.b - lam) <= 1e-6 * max(1.0, abs(lam)) for u in a.units):
                continue
            want = min(max(x[i] + residual, a.x_min), a.x_max)
            p[i] = _fill(a.units, lam, a.demand_mw + want, tol=1e-6)
            new_x = p[i].sum() - a.demand_mw
            residual -= new_x - x[i]
            x[i] = new_x
    cost = sum(unit_cost(a.units, pi) for a, pi in zip(areas, p))
    return Dispatch(tuple(p), x, float(lam), float(cost), 1, abs(residual) < 1e-6, 0, float(abs(residual)))


def curve_units(mw: Sequence[float], cost_per_h: Sequence[float], lo: float, hi: float) -> list[Unit]:
    """Linear units for a piecewise-linear fuel curve (breakpoints MW, $/h) on ``[lo, hi]`` MW: one per piece of its
    lower convex hull (exact for a convex curve), the first on ``[lo, x₁]``, the others on ``[0, width]``, so their
    outputs add up to the unit's MW."""
    xs = [lo] + [x for x in mw if lo < x < hi] + ([hi] if hi > lo else [])
    ys = np.interp(xs, mw, cost_per_h)
    hull: list[int] = []
    for i in range(len(xs)):
        while len(hull) >= 2 and ((ys[hull[-1]] - ys[hull[-2]]) * (xs[i] - xs[hull[-2]])
                                  >= (ys[i] - ys[hull[-2]]) * (xs[hull[-1]] - xs[hull[-2]])):
            hull.pop()
        hull.append(i)
    units = [Unit(0.0, float((ys[b] - ys[a]) / (xs[b] - xs[a])), xs[a] if k == 0 else 0.0,
                  xs[b] if k == 0 else xs[b] - xs[a]) for k, (a, b) in enumerate(zip(hull, hull[1:]))]
    return units or [Unit(0.0, 0.0, lo, hi)]


def ess_units(lo: float, hi: float, value: float, eta_charge: float, eta_discharge: float,
              wear: float = 0.0, cycle_cost: float = 0.0) -> list[Unit]:
    """A store as an arbitrage unit on its feasible range ``[lo, hi]`` MW (discharge ``p > 0``), each stored MWh worth
    ``value`` $/MWh: discharging 1 MWh takes ``1/η_d`` MWh from it, charging 1 MWh stores ``η_c`` MWh. Its energy cost
    is ``max(η_c·value·p, value·p/η_d)`` $/h: a charge unit on ``[lo, 0]`` bidding the lower of ``η_c·value`` and
    ``value/η_d`` less ``cycle_cost``, a discharge unit on ``[0, hi]`` offering the higher plus ``cycle_cost`` $/MWh
    (``cycle_cost``: $/MWh of throughput, the ESS's ``degradation_cost``), each with ``wear·p²`` $/h.

    For ``value ≥ 0`` that is the stored energy's change exactly (bid ``η_c·value``, offer ``value/η_d``). Below 0
    the exact cost is concave (bid above offer: charging and discharging at once would be paid to lose stored energy
    in the round trip, which one device cannot do); the max is the convex cost just above it: the store charges
    only when paid more than ``|value|/η_d`` and discharges only above ``η_c·value`` $/MWh, so each MWh it moves
    gains at least as much as priced."""
    if not np.isfinite(value):
        raise ValueError(f"ess_units: a stored MWh worth {value} $/MWh; expected a finite value")
    charge, discharge = sorted((eta_charge * value, value / eta_discharge))
    return [Unit(wear, charge - cycle_cost, min(lo, 0.0), min(hi, 0.0)),
            Unit(wear, discharge + cycle_cost, max(lo, 0.0), max(hi, 0.0))]


def tariff_units(buy: float, sell: float, import_mw: float, export_mw: float, *, soft_import_mw: float = INF,
                 soft_export_mw: float = INF, over_price: float = 0.0, peak_mw: float = INF,
                 demand_price: float = 0.0) -> list[Unit]:
    """A meter's tariff as linear units (``p`` MW into the area): import on ``[0, import_mw]`` at ``buy``, export on
    ``[−export_mw, 0]`` paid ``sell`` $/MWh; import above ``peak_mw`` costs ``demand_price`` more (a demand charge over
    the tick: ``demand_charge/dt_h``), import or export beyond ``soft_import_mw`` / ``soft_export_mw`` ``over_price``
    more (a soft limit). Pieces after a unit's first lie on ``[0, width]`` so their outputs add up."""
    priced = [c for c, extra in ((max(peak_mw, 0.0), demand_price), (soft_import_mw, over_price)) if extra]
    cuts = sorted({0.0, import_mw} | {c for c in priced if 0.0 < c < import_mw})
    units = [Unit(0.0, buy + demand_price * (a >= peak_mw) + over_price * (a >= soft_import_mw), 0.0, b - a)
             for a, b in zip(cuts, cuts[1:])]
    if soft_export_mw < export_mw and over_price:
        units += [Unit(0.0, sell, -soft_export_mw, 0.0), Unit(0.0, sell - over_price, soft_export_mw - export_mw, 0.0)]
    else:
        units.append(Unit(0.0, sell, -export_mw, 0.0))
    return units


def tariff_cost(units: Sequence[Unit], g: float) -> float:
    """$/h of a net exchange ``g`` MW (> 0 import) through :func:`tariff_units`: the cheapest import pieces first,
    the best-paid export pieces first."""
    cost, left = 0.0, abs(g)
    pieces = sorted((u for u in units if u.p_max > 0), key=lambda u: u.b) if g > 0 else \
        sorted((u for u in units if u.p_min < 0), key=lambda u: -u.b)
    for u in pieces:
        take = min(left, u.p_max - u.p_min)
        cost += u.b * take
        left -= take
    return cost if g > 0 else -cost


@attrs.frozen
class GridTie:
    """The upstream grid: sells up to ``limit_mw`` at ``buy`` and buys up to ``limit_mw`` at ``sell ≤ buy`` ($/MWh);
    beyond ``import_limit_mw`` / ``export_limit_mw`` each MWh costs ``over_price`` more, and import above ``peak_mw``
    ``demand_price`` more (:func:`tariff_units`)."""

    buy: float
    sell: float
    limit_mw: float
    import_limit_mw: float = INF
    export_limit_mw: float = INF
    over_price: float = 0.0
    peak_mw: float = INF
    demand_price: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.sell > self.buy:
            raise ValueError(f"GridTie: sell {self.sell} $/MWh above buy {self.buy} $/MWh would pay for buying and "
                             "selling at once (a concave cost); bill an export at min(sell, buy)")

    def area(self) -> Area:
        """The grid as an area with import and export units."""
        g = self.limit_mw
        return Area(tuple(tariff_units(self.buy, self.sell, g, g, soft_import_mw=self.import_limit_mw,
                                       soft_export_mw=self.export_limit_mw, over_price=self.over_price,
                                       peak_mw=self.peak_mw, demand_price=self.demand_price)))


def dispatch_with_grid(areas: Sequence[Area], grid: GridTie, solve: Callable[..., Dispatch] = admm_dispatch,
                       **options: Any) -> Dispatch:
    """Dispatch ``areas`` exchanging with ``grid`` (Σ x = 0 with the grid as the last area), one net grid exchange.

    ``solve`` is :func:`admm_dispatch` (``options`` passed on) or :func:`centralized_dispatch`. The grid's import
    and export are netted (``p`` of the last area: import, export) and billed by its tariff (:func:`tariff_cost`).
    """
    tie = grid.area()
    r = solve([*areas, tie], 0.0, **options)
    g = float(r.p[-1].sum())
    p = (*r.p[:-1], np.array([max(g, 0.0), min(g, 0.0)]))
    cost = r.cost - unit_cost(tie.units, r.p[-1]) + tariff_cost(tie.units, g)
    return attrs.evolve(r, p=p, cost=float(cost))


@attrs.frozen
class ADMMParams(ChannelFields):
    rho: float = quantity("$/MW²h", 50.0, gt=0, doc="initial ADMM penalty")
    tol: float = quantity("MW", 1e-4, gt=0, doc="primal and dual residual tolerance")
    max_iter: int = integer(2000, ge=1, doc="iterations per tick before the solve counts as unconverged")
    grid: bool = flag(True, doc="include the upstream grid for the participants without a GridConnection (buy at the "
                                "price, sell at min(sell_ratio·price, price)); the others trade through their meter")
    grid_limit_mw: float = quantity("MW", 100.0, gt=0, doc="the upstream grid's import and export limit")
    sell_ratio: float = quantity("1", 0.8, ge=0, le=1, doc="the grid buys at sell_ratio·price (at most the price) from "
                                                          "a participant without a GridConnection, or the community")
    ess_cost_a: float = quantity("$/MW²h", 2.0, ge=0, doc="quadratic wear cost of an ESS in the dispatch")
    offer_shift: float = quantity("$/MWh", 25.0, ge=0,
                                  doc="a learned participant's setpoint for a DG or ESS (−1…1 of its range) lowers that "
                                      "unit's offer by offer_shift·setpoint")
    warm_start: bool = flag(True, doc="start each tick's solve from the last converged dual u and penalty ρ")
    community: bool = flag(False, doc="the participants' meters are netted as one community meter (collective "
                                      "self-consumption): they trade with each other within their own meters' limits, "
                                      "the community's net exchange is billed as a GridConnection (the price, "
                                      "min(sell_ratio·price, price), the limits and demand charge below), and each "
                                      "member settles its own metered flow at the clearing price (settle)")
    import_limit_mw: float = quantity("MW", 1e9, ge=0, doc="the community's import limit (community: true)")
    export_limit_mw: float = quantity("MW", 1e9, ge=0, doc="the community's export limit (community: true)")
    demand_charge: float = quantity("$/MW", 0.0, ge=0, doc="per MW of the community's peak import (community: true)")
    limit_price: float = quantity("$/MWh", 1000.0, ge=0,
                                  doc="what each MWh beyond the community's limits costs in the plan (a soft limit: "
                                      "the plan stays feasible when the units cannot hold it)")


def _billed(agent: Any, net: Any) -> bool:
    """Whether a GridConnection of ``agent``'s hierarchy (below its root) meters one of its devices' buses."""
    root = agent
    while root.parent is not None:
        root = root.parent
    buses = {d.bus for d in agent.devices()}
    return any(buses & {int(b) for b in d.device.billed_buses(net)} for d in root.devices() if kind(d) == "GridConnection")


class ADMMDispatch(HorizontalProtocol):
    """Distributed economic dispatch of the participants' DGs and ESSs by exchange ADMM each tick.

    Area i (a GridAgent): units = its DGs (``cost_a·p² + cost_b·p``, or their piecewise-linear curve) and ESSs
    (:func:`ess_units`: ``ess_cost_a·p²`` wear and the stored energy's value as the environment counts it at the
    end, ``reward.storage_value``: each MWh it can deliver worth ``V = ctx.store_price``, the episode's mean price,
    0 under ``none`` and 0 for a store behind no billing meter (:attr:`valued_stores`); so a discharge offer of
    ``V`` and a charge bid of ``η_c·η_d·V`` $/MWh, the two swapped when ``V < 0``, its ``degradation_cost`` on each).
    A learned participant's (``policy: learned``) offers are lowered by ``offer_shift·s`` $/MWh, ``s`` ∈ [−1, 1] its
    device's setpoint from its action (scaled to the device's action range: 1 asks for its most output, −1 for its
    least); a rule participant offers its units at cost (its rule's setpoints are replaced, not bid).
    Demand = its net load estimated from the last tick (PCC import + its units' injections, i.e. persistence: the
    loads less PV, wind and the other devices). A participant with a GridConnection buys and sells through it as
    it is billed (:meth:`areas`: import at the price, export at ``min(sell_ratio·price, price)``, within its
    limits), so an exchange between two microgrids costs the importer the price and pays the exporter its export
    price, as their meters bill it, and never beats trading with the grid. A participant without one that no
    GridConnection of its hierarchy bills (:meth:`attach`) gets its energy free: it plans it at 0 $/MWh, as the
    reward counts it. Another one (billed above it) exchanges ``x_i`` with the others and, with ``grid``, the upstream
    grid, one more area selling at the price and buying at
    ``min(sell_ratio·price, price)`` (:meth:`grid_tie`) with one net exchange at any price sign
    (:func:`dispatch_with_grid`). A meter's ``demand_charge`` is in its tariff: import above the episode's peak so far
    costs ``demand_charge/dt_h`` $/MWh more (:func:`tariff_units`; per tick, without foresight).

    With ``community`` the participants' meters are netted as one community meter (collective self-consumption): each
    participant exchanges ``x_i`` (its PCC export) with the others within its own meter's limits, and the community's
    net exchange with the grid is billed as one GridConnection: import at the price, export at
    ``min(sell_ratio·price, price)``, beyond ``import_limit_mw`` / ``export_limit_mw`` ``limit_price`` $/MWh more in
    the plan (safety in the reward), ``demand_charge`` on its peak import. Settlement (:meth:`settle`): every member's
    metered flow ``m_i`` (MW) is billed at the plan's clearing price λ (the market price after an unconverged solve);
    the grid's bill less ``λ·Σm`` (0 when the community imports at λ = price or exports at λ = its export price; the
    scarcity rent ``(λ − price)·Σm`` refunded when it imports at its limit) is shared by the members on the side the
    community trades (importers when ``Σm ≥ 0``, else exporters) in proportion to their flows, the demand charge and
    the MW beyond the import limit in proportion to their imports, those beyond the export limit to their exports, so
    the members' bills add up to the community's. Each member's reward is its own share: its devices' costs and its
    bill; a member exporting at the limit is paid λ, the value of its energy to the community.

    Coupling Σ x = 0. The dispatch is applied as the units' setpoints (``result.p``: MW per device, then a grid area's
    import and export; ``result.x``: each participant's PCC export, MW). Observation and info: each participant's price
    ($/MWh, the marginal price of its energy in the plan: its meter's price or export price when it imports or exports,
    its units' marginal cost in between, a participant without a meter or a community member the clearing price) and
    PCC export (MW); the info adds iterations, messages, ``grid_mw`` (MW the participants draw from the upstream grid),
    ``cost_per_h``: the plan's cost at the units' true offers, without the learned shifts ($/h: fuel, ESS wear and
    stored energy at its value, meter bills), and with ``community`` ``community_mw`` (the community's metered net
    import at the last settlement, MW).

    Through a channel each iteration is a synchronous round of ``channel_delay + 1`` channel ticks
    (:func:`admm_dispatch`). A solve that ends unconverged (``max_iter``; every ``x_i`` lost) is not a dispatch
    (Σx ≠ 0): it is not applied (the participants' own setpoints stand), the observation is the tick's market price
    and no exchange, the info says ``converged: False, applied: False`` with a ``message``, and the next tick warm
    starts from the last converged solve.
    """

    Params = ADMMParams

    def __init__(self, params: ADMMParams, participants: Sequence[Any]) -> None:
        super().__init__(params, participants)
        self.meters = {a.id: meter_of(a) for a in self.participants}
        unmetered = [a for a, m in self.meters.items() if m is None]
        if params.community and unmetered:
            raise ValueError(f"community: true bills each member's metered flow, but {', '.join(unmetered)} has no "
                             "GridConnection; expected one below every participant")
        # the upstream grid is an area for the community or the participants without a meter (the others trade
        # through their meter)
        self._tie = params.grid and (params.community or bool(unmetered))
        self._free: set[str] = set()  # participants no meter bills (attach): they plan their energy at 0 $/MWh
        areas = len(self.participants) + self._tie
        self.channel = build_channel(params, areas, f"the x_i of the {areas} areas, sent every iteration")
        self.dispatched = {a.id: devices_of(a, DISPATCHABLE) for a in self.participants}  # device agents per area
        self._perfect = params.channel == "ideal" and not (params.channel_delay or params.channel_loss
                                                           or params.channel_capacity)
        self._value_stores()
        self._reset_state()

    def attach(self, net: Any) -> None:
        """Values the participants' stores as the reward does (:attr:`valued_stores`, told by the builder) and finds the
        participants without a meter that no GridConnection of their hierarchy bills: their energy is free."""
        self._value_stores()
        self._free = {a.id for a in self.participants if self.meters[a.id] is None and not _billed(a, net)}
        self._tie = self.params.grid and (self.params.community or any(
            m is None and a not in self._free for a, m in self.meters.items()))

    def _value_stores(self) -> None:
        valued = self.valued_stores
        # per participant: (device agent, whether a DG, the share of ctx.store_price a MWh in its store is worth)
        self._units_of = {a.id: [(d, kind(d) == "DG", float(valued is None or d.id in valued))
                                 for d in self.dispatched[a.id]] for a in self.participants}

    def _reset_state(self) -> None:
        self.net_load = {a.id: 0.0 for a in self.participants}
        self.result: Dispatch | None = None
        self.projection: dict[str, float] = {}
        self._u, self._rho = 0.0, self.params.rho
        self._clock = 0
        self._price = 0.0  # the tick's market price ($/MWh), observed when the solve did not converge
        self._prices = np.zeros(len(self.participants))  # each participant's marginal price in the plan ($/MWh)
        self._dt_h = 1.0  # the tick (h), for the demand charges' price per MWh
        self._peak = {a.id: 0.0 for a in self.participants}  # each meter's peak import so far (MW), as it bills it
        self._community_peak = 0.0  # the community's peak net import so far (MW)
        self._clearing = 0.0  # the price the members settle their flows at ($/MWh): the plan's, else the market's
        self.community_mw = 0.0  # the community's metered net import at the last settlement (MW)

    def reset(self, rng: np.random.Generator) -> None:
        self.channel.reset(int(rng.integers(2**31)))
        self._reset_state()

    def observation_features(self, agent: Any) -> tuple[Feature, ...]:
        """``[price $/MWh, the agent's scheduled exchange MW]``."""
        return (scaling.PRICE, scaling.power(1.0))

    def grid_tie(self, price: float) -> GridTie:
        """The upstream grid at ``price`` $/MWh, billed like a GridConnection: it sells at the price and buys at
        ``min(sell_ratio·price, price)``."""
        p = self.params
        if not p.community:
            return GridTie(price, float(export_price(price, p.sell_ratio)), p.grid_limit_mw)
        return GridTie(price, float(export_price(price, p.sell_ratio)), p.grid_limit_mw, p.import_limit_mw,
                       p.export_limit_mw, p.limit_price, self._community_peak, p.demand_charge / self._dt_h)

    def areas(self, value: float, price: float) -> tuple[list[Area], list[list[Any]], list[np.ndarray]]:
        """The participants as ADMM areas at market ``price`` $/MWh, each MWh in a valued store (:attr:`valued_stores`)
        worth ``value`` $/MWh (in the others 0), the device agent behind each unit (a piecewise-cost DG has one unit per
        piece of its fuel curve, an ESS a charge and a discharge unit; None: the meter's import or export unit) and
        each unit's learned offer shift ($/MWh, taken off its ``b``).

        A metered participant's (GridConnection) PCC flow is its meter's: an import unit at ``price`` on
        ``[0, import_limit_mw]`` (above its peak so far ``demand_charge/dt_h`` more) and an export unit at
        ``min(sell_ratio·price, price)`` (its own ``sell_ratio``) on ``[−export_limit_mw, 0]``, billed as the meter
        bills them, and its exchange with the others is held at 0 MW: energy between two microgrids crosses both
        meters, the importer pays the price, the exporter is paid its export price. A community member
        (``community``) exchanges with the others within its meter's limits (``x_i`` ∈ ``[−import_limit_mw,
        export_limit_mw]``). A participant without a meter exchanges with the others (and the grid tie) unbounded, or,
        when nobody bills its energy, through a free meter (0 $/MWh both ways).
        """
        areas, owners, shifts = [], [], []
        for agent in self.participants:
            units, devs, shift = [], [], []
            for d, is_dg, worth in self._units_of[agent.id]:
                lo, hi = mw_range(d)
                prm = d.device.params
                if not is_dg:
                    # a stored MWh can deliver η_d MWh, each worth ``value`` (Device.stored_mwh, as the env values it)
                    pieces = ess_units(lo, hi, worth * value * prm.eta_discharge, prm.eta_charge, prm.eta_discharge,
                                       self.params.ess_cost_a, prm.degradation_cost)
                elif prm.cost_curve == "piecewise":  # the curve it is billed by, as linear pieces
                    pieces = curve_units(prm.pwl_mw, prm.pwl_cost_per_h, lo, hi)
                else:
                    pieces = [Unit(prm.cost_a, prm.cost_b, lo, hi)]
                s = self.params.offer_shift * self._setpoint(d) if agent.learned else 0.0
                if s:
                    pieces = [attrs.evolve(u, b=u.b - s) for u in pieces]
                units += pieces
                devs += [d] * len(pieces)
                shift += [s] * len(pieces)
            meter = self.meters[agent.id]
            x_min, x_max = -INF, INF
            if meter is not None and self.params.community:
                x_min, x_max = -meter.device.params.import_limit_mw, meter.device.params.export_limit_mw
            elif meter is not None or agent.id in self._free:
                if meter is None:  # nobody bills its energy: free, within the grid's limit
                    tariff = tariff_units(0.0, 0.0, self.params.grid_limit_mw, self.params.grid_limit_mw)
                else:
                    prm = meter.device.params
                    tariff = tariff_units(price, float(export_price(price, meter.sell_ratio)), prm.import_limit_mw,
                                          prm.export_limit_mw, peak_mw=self._peak[agent.id],
                                          demand_price=prm.demand_charge / self._dt_h)
                units += tariff
                devs += [None] * len(tariff)
                shift += [0.0] * len(tariff)
                x_min = x_max = 0.0
            areas.append(Area(tuple(units), self.net_load[agent.id], x_min, x_max))
            owners.append(devs)
            shifts.append(np.array(shift))
        return areas, owners, shifts

    @staticmethod
    def _setpoint(d: Any) -> float:
        """The device agent's pending MW setpoint scaled to ``[−1, 1]`` of its action range (0: none)."""
        if d.pending is None:
            return 0.0
        space = d.device.action_space
        lo, hi = float(space.low.reshape(-1)[0]), float(space.high.reshape(-1)[0])
        mw = float(np.asarray(d.pending, np.float64).reshape(-1)[0])
        return min(max(2.0 * (mw - lo) / (hi - lo) - 1.0, -1.0), 1.0) if hi > lo else 0.0

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        p = self.params
        self.projection = {}
        project_pending(self.participants, self.projection)
        self._dt_h = ctx.dt_h
        areas, owners, shifts = self.areas(ctx.store_price, float(ctx.price))  # stores valued as the reward values them
        u0, rho = (self._u, self._rho) if p.warm_start else (0.0, p.rho)
        options = {"rho": rho, "tol": p.tol, "max_iter": p.max_iter, "u0": u0,
                   "channel": None if self._perfect else self.channel, "start_tick": self._clock}
        if self._tie:
            r = dispatch_with_grid(areas, self.grid_tie(float(ctx.price)), **options)
        else:
            r = admm_dispatch(areas, 0.0, **options)
        self._clock = clock_after(self.channel, self._clock, r.iterations * (self.channel.delay + 1))
        schedules = []  # per participant {device agent: MW}: a device's units (pieces, charge/discharge) add up
        for devs, power in zip(owners, r.p):
            total: dict[Any, float] = {}
            for d, value in zip(devs, power):
                if d is not None:  # not the meter's units
                    total[d] = total.get(d, 0.0) + float(value)
            schedules.append(total)
        # the result's p per device (in device order), then a grid area's (import, export); x each participant's PCC
        # export (MW); its cost at the units' true offers, without the learned shifts
        export = np.array([sum(t.values()) - a.demand_mw for t, a in zip(schedules, areas)])
        cost = r.cost + sum(float(s @ q) for s, q in zip(shifts, r.p))
        self.result = attrs.evolve(r, p=(*(np.array(list(t.values())) for t in schedules), *r.p[len(owners):]),
                                   x=export, cost=cost)
        self._price = self._clearing = float(ctx.price)
        if not r.converged:  # Σx ≠ 0: not a dispatch; the participants keep their own setpoints, the warm start its
            return  # last converged (u, ρ)
        # each participant's marginal price: a metered one's own (its meter's tariff at the margin, or its units'
        # marginal cost between importing and exporting), the others' the coupling's clearing price
        self._prices = np.array([r.price if (self.meters[a.id] is None and a.id not in self._free) or p.community
                                 else dispatch_total(area.units, area.demand_mw)[1]
                                 for a, area in zip(self.participants, areas)])
        self._u, self._rho = r.u, r.rho
        self._clearing = r.price
        for total in schedules:
            for d, value in total.items():
                set_pending_mw(d, value)

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> dict[str, tuple[float, float]]:
        if not result.converged:
            return {}
        flows = {}
        for agent in self.participants:
            meter = self.meters[agent.id]
            flow = meter.flow(result) if meter is not None else 0.0
            # the residual demand the units and the exchange cover: PV, wind and device loads are in it, so
            # x = Σ units − d is the PCC export (Σ over every device would count them as demand)
            injected = sum(d.device.p_mw for d in self.dispatched[agent.id])
            self.net_load[agent.id] = float(finite_or(flow + injected, self.net_load[agent.id]))
            if np.isfinite(flow):
                flows[agent.id] = flow
                self._peak[agent.id] = max(self._peak[agent.id], flow)
        if not self.params.community or len(flows) < len(self.participants):  # a NaN flow: nothing is settled
            return {}
        return self._community_bills(flows, ctx)

    def _community_bills(self, flows: dict[str, float], ctx: StepContext) -> dict[str, tuple[float, float]]:
        """Each member's ``(cost $, safety)`` to add to what its own meter billed (see the class docstring): its flow
        at the clearing price, its share of the grid bill's difference from that, of the demand charge and of the MW
        beyond the community's limits, less its own meter's bill."""
        p, dt = self.params, ctx.dt_h
        g = sum(flows.values())
        rate = ctx.price if g >= 0 else float(export_price(ctx.price, p.sell_ratio))
        residual = (rate - self._clearing) * g * dt  # the grid's bill less the community's flow at the clearing price
        imports = {a: max(m, 0.0) for a, m in flows.items()}
        exports = {a: max(-m, 0.0) for a, m in flows.items()}
        rise = max(g - self._community_peak, 0.0)
        self._community_peak += rise
        over, under = max(g - p.import_limit_mw, 0.0), max(-g - p.export_limit_mw, 0.0)
        total_in, total_out = sum(imports.values()) or 1.0, sum(exports.values()) or 1.0
        out = {}
        for a, m in flows.items():
            share_in, share_out = imports[a] / total_in, exports[a] / total_out
            cost = (self._clearing * m * dt + residual * (share_in if g >= 0 else share_out)
                    + p.demand_charge * rise * share_in - self.meters[a].bill(m, ctx.price, dt))
            out[a] = (float(cost), float(over * share_in + under * share_out))
        self.community_mw = g
        return out

    def observe(self, agent: Any) -> np.ndarray:
        r = self.result
        if r is None:
            return np.zeros(2, np.float32)
        if not r.converged:  # no clearing price, no schedule: the market price and no exchange
            return np.array([self._price, 0.0], np.float32)
        i = self.participants.index(agent)
        return np.array([self._prices[i], r.x[i]], np.float32)

    def info(self) -> dict[str, Any]:
        r = self.result
        if r is None:
            return {"iterations": 0, "converged": False}
        if not r.converged:
            return {"iterations": r.iterations, "converged": False, "applied": False, "messages": r.messages,
                    "primal_residual": r.primal_residual, "projection": dict(self.projection),
                    "message": f"no convergence in {r.iterations} iterations (primal residual {r.primal_residual:.3g} "
                               f"MW, tol {self.params.tol:g}): the participants' own setpoints are applied"}
        ids = [a.id for a in self.participants]
        community = {"community_mw": self.community_mw} if self.params.community else {}
        return {**community, "iterations": r.iterations, "converged": True, "applied": True, "messages": r.messages,
                "price": dict(zip(ids, self._prices.tolist())), "cost_per_h": r.cost,
                "exchange_mw": dict(zip(ids, r.x.tolist())),
                "primal_residual": r.primal_residual, "grid_mw": float(-r.x.sum()), "projection": dict(self.projection)}


__all__ = ["ADMMDispatch", "ADMMParams", "Area", "Dispatch", "GridTie", "Unit", "admm_dispatch", "area_response",
           "centralized_dispatch", "curve_units", "dispatch_total", "dispatch_with_grid", "ess_units",
           "local_step", "tariff_cost", "tariff_units"]

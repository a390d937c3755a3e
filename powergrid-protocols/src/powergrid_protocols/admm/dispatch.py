"""Distributed economic dispatch by exchange ADMM: the algorithm (pure functions; its environment adapter is
:class:`~powergrid_protocols.admm.protocol.ADMMDispatch`).

Problem (areas ``i = 1..N``, each a GridAgent with generating units ``g``)::

    minimise   Σ_i Σ_{g∈i} (a_g p_g² + b_g p_g)            [$/h]
    subject to p_g ∈ [p_min_g, p_max_g]
               x_i = Σ_{g∈i} p_g − d_i ∈ [x_min_i, x_max_i]   (net export of area i, MW;
                                                           the bounds model its PCC/line limit;
                                                           an area whose units cannot reach a bound
                                                           is left at its units' nearest output)
               Σ_i x_i = D                                  (coupling: D = 0 for pure exchange,
                                                           or a demand met by the areas)

Algorithm: exchange/sharing ADMM (Boyd et al. 2011, §7.3.2) with scaled dual ``u``::

    x_i ← argmin f_i(x_i) + ρ/2 (x_i − x_i^k + x̄^k − D/N + u^k)²      (each area, in parallel)
    u   ← u + x̄ − D/N                                                  (the coordinator)

``f_i(x)`` is area i's cheapest dispatch exporting x. The local problem is solved
exactly by bisection on the area's marginal cost λ (units follow
``p_g = clip((λ − b_g)/(2 a_g))``; linear units fill the residual at λ = b_g).
The price of energy (the dual of the coupling) is ``−ρ·u`` $/MWh.
Stopping: primal residual ``√N·|x̄ − D/N|`` (MW) and dual residual ``ρ·‖Δ(x − x̄)‖``
($/MWh: ρ in $/MW²h) both ≤ ``tol``, one number for two units: the primal bound is ``tol`` MW, the dual one holds the
iteration's change of ``x − x̄`` to ``tol/ρ`` MW (at ρ 50 and tol 1e-4: 2e-6 MW); ρ adapts by residual balancing (×2 / ÷2
when one residual is 10× the other, from the second iteration to half of ``max_iter``, at those whose every ``x_i``
arrived, within :data:`RHO_SPAN` of the solve's starting ρ). Messages: each
iteration every area sends ``x_i`` to the coordinator and receives ``(x̄, u)`` back: ``2N`` messages.

:func:`centralized_dispatch` solves the same problem in one place (bisection on
the system price with each area's response clipped to its exchange bounds); it
is the reference of the benchmark. Tests compare both with an independent QP.

The upstream grid (:class:`GridTie`) sells at ``buy`` and buys at ``sell ≤ buy`` $/MWh, one
net exchange ``g`` (MW into the areas): cost ``buy·g`` for ``g ≥ 0``, ``sell·g`` for ``g < 0``.
That cost is convex and the grid is one more area with an import and an export unit (buying
and selling at once never pays, and the two are netted). A tie with ``sell > buy`` is refused:
its cost is concave, and one area holding both units would buy and sell at once and earn
``(sell − buy)·G`` out of nothing (the protocol's tie, ``sell = min(ratio·price, price)``,
never is). A tie may carry soft limits (each MWh beyond ``import_limit_mw`` / ``export_limit_mw`` costs
``over_price`` more) and a demand charge (import above ``peak_mw`` ``demand_price`` more): a meter's tariff as linear
units (:func:`tariff_units`), still convex.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from powergrid.params import UNLIMITED
from powergrid_protocols.channel import Channel, Message

#: Residual balancing keeps ρ within this factor of a solve's starting ρ (2^20 ≈ 1e6): on an infeasible coupling the
#: primal residual never falls and unbounded doubling overflowed ρ, and the price ``−ρ·u``, to inf.
RHO_SPAN = 2.0**20


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
    x_min: float = -UNLIMITED
    x_max: float = UNLIMITED


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
    rho_lo, rho_hi = rho / RHO_SPAN, rho * RHO_SPAN
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
        # an iterate: an area held at a bound moves there at once): balance on current ones from the second iteration;
        # ρ stays fixed in the second half of max_iter (balancing can cycle, e.g. over a stepped tariff; ADMM converges
        # once ρ stays fixed)
        if adaptive and current == n and 1 < it <= max_iter // 2:
            if r > 10 * s and rho < rho_hi:
                rho *= 2.0
                u /= 2.0
            elif s > 10 * r and rho > rho_lo:
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


def tariff_units(buy: float, sell: float, import_mw: float, export_mw: float, *, soft_import_mw: float = UNLIMITED,
                 soft_export_mw: float = UNLIMITED, over_price: float = 0.0, peak_mw: float = UNLIMITED,
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
    import_limit_mw: float = UNLIMITED
    export_limit_mw: float = UNLIMITED
    over_price: float = 0.0
    peak_mw: float = UNLIMITED
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


__all__ = ["Area", "Dispatch", "GridTie", "Unit", "admm_dispatch", "area_response", "centralized_dispatch", "curve_units",
           "dispatch_total", "dispatch_with_grid", "ess_units", "local_step", "tariff_cost", "tariff_units", "unit_cost"]

"""Centralized vs ADMM vs P2P dispatch of three microgrids over one day (hourly).

The day: the built-in daily load, solar and price shapes (``powergrid.profiles.daily_value``);
three microgrids with the DG costs of ``configs/*_3mg.yaml`` (a·p² + b·p $/h), a battery
held idle, 0.3 MW of PV each and net loads of 0.55, 0.87 and 0.54 MW at the load peak (the
CIGRE MV loads at buses 6, 10+11 and 14); the upstream grid sells at the price and buys at
0.8·price. The network (losses, limits) is left out: this compares the coordination
mechanisms on the same economic problem.

- centralized: one solver with every cost (``admm.centralized_dispatch``), 1 iteration, 0 messages.
- ADMM: exchange ADMM among the three microgrids and the grid (``admm.admm_dispatch``), warm-started
  hour to hour; messages = 2 per area per iteration.
- P2P: each microgrid first runs its DG where its marginal cost meets the grid price, then the
  rule orders of ``p2p_trading`` (sell headroom at marginal cost below the price / buy back own
  output at marginal cost) clear in a k = 0.5 double auction; messages = one order per microgrid
  plus one notice per trader. Residual imbalance is bought from / sold to the grid.

Run: ``python benchmarks/bench_coordination.py`` (prints a Markdown table).
"""

from __future__ import annotations

import time

import numpy as np

from powergrid.profiles import daily_value
from powergrid_protocols import admm, p2p

DGS = [(10.0, 45.0), (20.0, 60.0), (8.0, 40.0)]  # (a $/MW²h, b $/MWh), p in [0, 0.6] MW
PEAK_LOAD = [0.55, 0.87, 0.54]
PV_MW = 0.3
SELL = 0.8


def day() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h = np.arange(24, dtype=float)
    return daily_value("load", h), daily_value("solar", h), daily_value("price", h)


def areas_at(load: float, solar: float, price: float) -> list[admm.Area]:
    out = []
    for (a, b), peak in zip(DGS, PEAK_LOAD):
        out.append(admm.Area((admm.Unit(a, b, 0.0, 0.6),), peak * load / max(day()[0]) - PV_MW * solar))
    out.append(admm.Area((admm.Unit(0.0, price, 0.0, 100.0), admm.Unit(0.0, SELL * price, -100.0, 0.0)), 0.0))
    return out


def grid_bill(import_mw: float, price: float) -> float:
    return (price if import_mw >= 0 else SELL * price) * import_mw


def p2p_hour(areas: list[admm.Area], price: float) -> tuple[float, int, float]:
    """(total cost $/h, messages, traded MW) of the P2P mechanism for one hour."""
    p = []
    for (a, b) in DGS:  # local dispatch: MC = price
        p.append(min(max((price - b) / (2 * a), 0.0), 0.6))
    orders = []
    for i, ((a, b), q) in enumerate(zip(DGS, p)):
        mc = b + 2 * a * q
        if 0.6 - q > 1e-6 and mc < price:
            orders += p2p.orders_from_signed(f"mg{i}", mc, -min(0.6 - q, 0.5))
        elif q > 1e-6:
            orders += p2p.orders_from_signed(f"mg{i}", mc, min(q, 0.5))
    c = p2p.clear_double_auction(orders, k=0.5)
    cost = 0.0
    for i, ((a, b), area) in enumerate(zip(DGS, areas)):
        q = c.net_mw.get(f"mg{i}", 0.0)
        p[i] = min(max(p[i] - q, 0.0), 0.6)
        cost += a * p[i] ** 2 + b * p[i]
        cost += grid_bill(area.demand_mw - p[i] - q, price)  # the rest with the grid; p2p payments cancel
    messages = len(DGS) + sum(1 for v in c.net_mw.values() if v)
    return cost, messages, c.volume_mw


def main() -> list[tuple[str, float, int, int, float]]:
    load, solar, price = day()
    rows = []
    t = time.perf_counter()
    central = [admm.centralized_dispatch(areas_at(load[h], solar[h], price[h])) for h in range(24)]
    rows.append(("centralized", sum(d.cost for d in central), 24, 0, time.perf_counter() - t))
    t = time.perf_counter()
    u, rho, it, msg, cost = 0.0, 50.0, 0, 0, 0.0
    for h in range(24):
        d = admm.admm_dispatch(areas_at(load[h], solar[h], price[h]), rho=rho, u0=u, tol=1e-5)
        u, rho = d.u, d.rho
        it += d.iterations
        msg += d.messages
        cost += d.cost
    rows.append(("ADMM", cost, it, msg, time.perf_counter() - t))
    t = time.perf_counter()
    cost, msg = 0.0, 0
    for h in range(24):
        c, m, _ = p2p_hour(areas_at(load[h], solar[h], price[h]), price[h])
        cost += c
        msg += m
    rows.append(("P2P (k = 0.5 auction)", cost, 24, msg, time.perf_counter() - t))
    best = rows[0][1]
    print("| mechanism | total cost ($/day) | gap to centralized | iterations | messages | time (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, c, i, m, s in rows:
        print(f"| {name} | {c:.2f} | {100 * (c - best) / abs(best):+.3f} % | {i} | {m} | {s:.3f} |")
    return rows


if __name__ == "__main__":
    main()

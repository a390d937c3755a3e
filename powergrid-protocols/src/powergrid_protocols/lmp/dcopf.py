"""DC optimal power flow market and locational marginal prices (pure functions).

Network (:func:`dc_network`): buses joined by closed bus–bus switches are merged;
out-of-service elements (and buses, with the branches and switches at them) and lines behind an open line switch
are dropped; buses not
connected to the slack (the first in-service slack of :func:`powergrid.slacks.slack_buses`:
an ext_grid, else a slack generator) are left out. Branch reactances in per
unit on ``net.sn_mva``: lines ``x_ohm_per_km·length_km/parallel / (vn_kv²/S)``,
transformers ``√(vk%² − vkr%²)/100 · S/sn_mva/parallel`` (taps ignored). Ratings in MW:
lines ``√3·vn_kv·max_i_ka·parallel`` (unity power factor), transformers ``sn_mva·parallel``.
A branch's limits may differ by direction: ``limit_mw`` bounds the flow from its from bus (a transformer's hv side)
to its to bus, ``limit_back_mw`` the reverse flow (:meth:`DCNetwork.with_limits`; the ratings bound both).
A limit with a finite penalty (``penalty`` forward, ``penalty_back`` $/MWh) is soft: the market may exceed it by
``s`` MW at ``penalty·s`` $/h (reported as ``excess_mw``), up to ``room_mw`` / ``room_back_mw`` (a lowered limit's:
up to the rating it lowered, which stays hard).
Branch names (``names``, reported as ``congested``): the element's name, else ``"line <index>"``/``"trafo <index>"``.

PTDF: with the incidence matrix ``A`` (branch × bus) and ``Bf = diag(1/x)·A``,
``B = Aᵀ·diag(1/x)·A``; removing the slack row/column, ``PTDF = Bf·[0; B_r⁻¹]``
(MW of branch flow per MW injected at a bus and withdrawn at the slack).

Market (:func:`clear_market`): offers ``k`` (bus, price $/MWh, quantity MW, and MW it
would also buy at that price, ``b_k``: an external grid) and fixed demands ``d`` (MW per bus)::

    minimise   Σ_k c_k g_k + Σ_l (p_l·s⁺_l + p_back_l·s⁻_l)
    subject to Σ_k g_k = Σ_n d_n                           (λ)
               −F_back − s⁻ ≤ PTDF·(G·g − d) ≤ F + s⁺       (μ⁺, μ⁻)
               −b_k ≤ g_k ≤ q_k,   0 ≤ s ≤ room (only where that direction's penalty is finite)

solved with HiGHS (scipy ``linprog``). LMPs are the sensitivities of the
optimal cost to the demand at each bus::

    LMP_n = λ + Σ_l (μ⁺_l − μ⁻_l)·PTDF_{l,n}

(scipy's marginals: μ⁺ ≤ 0 for a binding upper limit; |μ| ≤ p on a soft limit). Without congestion every
LMP equals λ; a binding branch separates them. A branch's ``congestion_price`` −(μ⁺ − μ⁻) $/MWh is what one more MW
of capacity from its from bus to its to bus saves (< 0: its back limit binds); on a radial branch it is
LMP(to) − LMP(from). The network's constraint rows (finite limits, soft columns, penalties) are built once, with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
from scipy.optimize import linprog

from powergrid.slacks import slack_buses

#: inf for every branch: a hard limit (no penalty) that no soft room extends
_INF_PER_BRANCH = attrs.Factory(lambda self: np.full(len(self.x_pu), np.inf), takes_self=True)


@attrs.frozen
class DCNetwork:
    """A DC network: ``node_of[bus row]`` is the DC node of each pandapower bus row (−1: not modelled).

    ``limit_mw`` / ``limit_back_mw``: MW a branch carries from its from node to its to node / back (inf: no
    limit); ``penalty`` / ``penalty_back``: $/MWh of flow beyond each (inf: a hard limit), ``room_mw`` /
    ``room_back_mw``: MW a soft one may be exceeded by; ``elements``: each branch's pandapower
    ``(table, row position)`` (empty for :func:`make_network`)."""

    n_nodes: int
    slack: int
    from_node: np.ndarray
    to_node: np.ndarray
    x_pu: np.ndarray
    limit_mw: np.ndarray
    limit_back_mw: np.ndarray
    names: tuple[str, ...]
    node_of: np.ndarray
    ptdf: np.ndarray
    base_mva: float = 1.0
    elements: tuple[tuple[str, int], ...] = ()
    penalty: np.ndarray = attrs.field(default=_INF_PER_BRANCH)
    penalty_back: np.ndarray = attrs.field(default=_INF_PER_BRANCH)
    room_mw: np.ndarray = attrs.field(default=_INF_PER_BRANCH)
    room_back_mw: np.ndarray = attrs.field(default=_INF_PER_BRANCH)
    #: the LP's branch rows, built once: forward rows then back rows (the finite limits, MW), and one slack column
    #: per soft row (−1 in it) with its penalty ($/MWh), its bounds (MW) and its branch
    up: np.ndarray = attrs.field(init=False)
    dn: np.ndarray = attrs.field(init=False)
    row_limit: np.ndarray = attrs.field(init=False)
    relax: np.ndarray = attrs.field(init=False)
    relax_cost: np.ndarray = attrs.field(init=False)
    relax_bounds: list[tuple[float, float | None]] = attrs.field(init=False)
    relax_branch: np.ndarray = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        up, dn = np.isfinite(self.limit_mw), np.isfinite(self.limit_back_mw)
        pen = np.concatenate([self.penalty[up], self.penalty_back[dn]])
        soft = np.flatnonzero(np.isfinite(pen))
        relax = np.zeros((len(pen), soft.size))
        relax[soft, np.arange(soft.size)] = -1.0
        room = np.concatenate([self.room_mw[up], self.room_back_mw[dn]])[soft]
        rows = {"up": up, "dn": dn, "row_limit": np.concatenate([self.limit_mw[up], self.limit_back_mw[dn]]),
                "relax": relax, "relax_cost": pen[soft],
                "relax_bounds": [(0.0, float(r) if np.isfinite(r) else None) for r in room],
                "relax_branch": np.concatenate([np.flatnonzero(up), np.flatnonzero(dn)])[soft]}
        for name, value in rows.items():
            object.__setattr__(self, name, value)

    def with_limits(self, branch: int, forward_mw: float, back_mw: float, penalty: float = np.inf) -> DCNetwork:
        """The network with branch ``branch``'s limits lowered to ``forward_mw`` (from → to) and ``back_mw``
        (to → from), MW, each lowered one then exceeded at ``penalty`` $/MWh (inf: hard) up to the limit it lowered
        (a rating stays hard). A limit at or above the branch's present one leaves it as it was; if neither is
        lowered the branch is unchanged."""
        lower_fwd, lower_back = forward_mw < self.limit_mw[branch], back_mw < self.limit_back_mw[branch]
        if not (lower_fwd or lower_back):
            return self
        new = {}
        for lower, mw, limit, pen, room in ((lower_fwd, forward_mw, "limit_mw", "penalty", "room_mw"),
                                            (lower_back, back_mw, "limit_back_mw", "penalty_back", "room_back_mw")):
            lim, p, r = getattr(self, limit).copy(), getattr(self, pen).copy(), getattr(self, room).copy()
            if lower:  # the old limit, and the room beyond it if it was soft, stay the bound
                r[branch] = lim[branch] + (r[branch] if np.isfinite(p[branch]) else 0.0) - mw
                lim[branch], p[branch] = mw, penalty
            new.update({limit: lim, pen: p, room: r})
        return attrs.evolve(self, **new)


def ptdf_matrix(n_nodes: int, slack: int, from_node: np.ndarray, to_node: np.ndarray, x_pu: np.ndarray) -> np.ndarray:
    """Power transfer distribution factors (branch × node), slack column zero."""
    m = len(x_pu)
    a = np.zeros((m, n_nodes))
    a[np.arange(m), from_node] = 1.0
    a[np.arange(m), to_node] = -1.0
    bf = a / np.asarray(x_pu, float)[:, None]
    b = a.T @ bf
    keep = np.array([n for n in range(n_nodes) if n != slack], dtype=int)
    ptdf = np.zeros((m, n_nodes))
    if keep.size:
        ptdf[:, keep] = bf[:, keep] @ np.linalg.inv(b[np.ix_(keep, keep)])
    return ptdf


def make_network(n_nodes: int, branches: Sequence[tuple[float, ...]], slack: int = 0,
                 names: Sequence[str] | None = None) -> DCNetwork:
    """A DC network from ``(from, to, x_pu, limit_mw)`` branches, or ``(from, to, x_pu, limit_mw, limit_back_mw)``
    with a different limit for the flow from ``to`` to ``from`` (for tests and small studies)."""
    f = np.array([b[0] for b in branches], int)
    t = np.array([b[1] for b in branches], int)
    x = np.array([b[2] for b in branches], float)
    lim = np.array([b[3] for b in branches], float)
    back = np.array([b[4] if len(b) > 4 else b[3] for b in branches], float)
    names = tuple(names) if names is not None else tuple(f"{i}-{j}" for i, j in zip(f, t))
    return DCNetwork(n_nodes, slack, f, t, x, lim, back, names, np.arange(n_nodes), ptdf_matrix(n_nodes, slack, f, t, x))


def _branch_name(name: Any, table: str, index: Any) -> str:
    """A branch's name for reports: its own, else (None, NaN or empty, as in case33bw) ``"<table> <index>"``."""
    return name if isinstance(name, str) and name else f"{table} {index}"


def dc_network(net: Any, *, limit_scale: float = 1.0) -> DCNetwork:
    """The DC model of a pandapower net (see the module docstring); ValueError when no slack is in service."""
    slacks = slack_buses(net)
    if not slacks:
        raise ValueError("the DC market needs an in-service slack (ext_grid or slack generator); the net has none")
    n_bus = len(net.bus)
    pos = {int(b): p for p, b in enumerate(net.bus.index)}
    on = net.bus.in_service.to_numpy(bool)  # an out-of-service bus and the branches at it are out of the model
    parent = list(range(n_bus))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sw = net.switch if "switch" in net and len(net.switch) else None
    open_lines: set[int] = set()
    open_trafos: set[int] = set()
    if sw is not None:
        for row in sw.itertuples():
            if row.et == "b" and bool(row.closed) and on[pos[int(row.bus)]] and on[pos[int(row.element)]]:
                parent[find(pos[int(row.bus)])] = find(pos[int(row.element)])
            elif row.et == "l" and not bool(row.closed):
                open_lines.add(int(row.element))
            elif row.et == "t" and not bool(row.closed):
                open_trafos.add(int(row.element))
    s_base = float(getattr(net, "sn_mva", 1.0) or 1.0)
    branches: list[tuple[int, int, float, float, str, tuple[str, int]]] = []
    for idx, ln in net.line.iterrows():
        if not bool(ln.in_service) or int(idx) in open_lines:
            continue
        f, t = pos[int(ln.from_bus)], pos[int(ln.to_bus)]
        if not (on[f] and on[t]):
            continue
        vn = float(net.bus.vn_kv.iat[f])
        par = float(getattr(ln, "parallel", 1) or 1)
        x = float(ln.x_ohm_per_km) * float(ln.length_km) / par / (vn**2 / s_base)
        lim = np.sqrt(3.0) * vn * float(ln.max_i_ka) * par
        branches.append((f, t, x, lim, _branch_name(ln["name"], "line", idx), ("line", net.line.index.get_loc(idx))))
    for idx, tr in net.trafo.iterrows():
        if not bool(tr.in_service) or int(idx) in open_trafos:
            continue
        f, t = pos[int(tr.hv_bus)], pos[int(tr.lv_bus)]
        if not (on[f] and on[t]):
            continue
        vk, vkr = float(tr.vk_percent), float(tr.vkr_percent)
        par = float(getattr(tr, "parallel", 1) or 1)
        x = np.sqrt(max(vk**2 - vkr**2, 1e-12)) / 100.0 * s_base / float(tr.sn_mva) / par
        branches.append((f, t, x, float(tr.sn_mva) * par, _branch_name(tr["name"], "trafo", idx),
                         ("trafo", net.trafo.index.get_loc(idx))))
    groups = [find(i) for i in range(n_bus)]
    slack_bus = find(pos[slacks[0]])
    # keep the component of the slack
    adj: dict[int, set[int]] = {}
    for f, t, *_ in branches:
        a, b = groups[f], groups[t]
        if a != b:
            adj.setdefault(a, set()).add(b)
            adj.setdefault(b, set()).add(a)
    seen, stack = {slack_bus}, [slack_bus]
    while stack:
        g = stack.pop()
        for h in adj.get(g, ()):
            if h not in seen:
                seen.add(h)
                stack.append(h)
    ordered = sorted(seen)
    node = {g: k for k, g in enumerate(ordered)}
    node_of = np.array([node.get(groups[i], -1) for i in range(n_bus)], int)
    kept = [(node[groups[f]], node[groups[t]], x, lim, name, element) for f, t, x, lim, name, element in branches
            if groups[f] in node and groups[t] in node and groups[f] != groups[t]]
    fr = np.array([k[0] for k in kept], int)
    to = np.array([k[1] for k in kept], int)
    xs = np.array([k[2] for k in kept], float)
    lims = np.array([k[3] for k in kept], float) * limit_scale
    slack = node[slack_bus]
    return DCNetwork(len(ordered), slack, fr, to, xs, lims, lims.copy(), tuple(k[4] for k in kept), node_of,
                     ptdf_matrix(len(ordered), slack, fr, to, xs), s_base, tuple(k[5] for k in kept))


@attrs.frozen
class Offer:
    """A generator offer: ``quantity_mw`` at ``bus`` (a DC node) for ``price`` $/MWh; ``owner`` for settlement.

    ``buy_mw`` > 0: the offer also buys up to that many MW at the same price (an external grid at its slack takes
    what the buses export), i.e. ``−buy_mw ≤ g ≤ quantity_mw``."""

    node: int
    price: float
    quantity_mw: float
    owner: str = ""
    buy_mw: float = 0.0


@attrs.frozen
class MarketResult:
    dispatch_mw: np.ndarray  # per offer
    lmp: np.ndarray  # per DC node, $/MWh
    flow_mw: np.ndarray  # per branch
    system_lambda: float
    congested: np.ndarray  # per branch: binding limit
    cost: float
    success: bool
    congestion_price: np.ndarray  # per branch, $/MWh: saved by 1 MW more capacity from → to (< 0: back)
    excess_mw: np.ndarray  # per branch, MW cleared beyond its soft limit (either direction)
    message: str = ""


def clear_market(network: DCNetwork, offers: Sequence[Offer], demand_mw: np.ndarray, *, tol: float = 1e-6) -> MarketResult:
    """Clear the DC-OPF market (see the module docstring); ``demand_mw`` per DC node."""
    d = np.asarray(demand_mw, float)
    k = len(offers)
    if k == 0:
        raise ValueError("no offers")
    c = np.array([o.price for o in offers], float)
    q = np.array([max(o.quantity_mw, 0.0) for o in offers], float)
    low = np.array([-max(o.buy_mw, 0.0) for o in offers], float)
    g_map = np.zeros((network.n_nodes, k))
    g_map[[o.node for o in offers], np.arange(k)] = 1.0
    h = network.ptdf @ g_map  # branch × offer
    base = network.ptdf @ d
    up, dn, n_soft = network.up, network.dn, len(network.relax_cost)
    a_ub = np.vstack([h[up], -h[dn]])
    b_ub = network.row_limit + np.concatenate([base[up], -base[dn]])
    if n_soft:  # one slack (MW beyond the limit) per soft row, at its penalty
        a_ub = np.hstack([a_ub, network.relax])
        c = np.concatenate([c, network.relax_cost])
    bounds = list(zip(low, q)) + network.relax_bounds
    res = linprog(c, A_ub=a_ub if a_ub.size else None, b_ub=b_ub if a_ub.size else None,
                  A_eq=np.hstack([np.ones((1, k)), np.zeros((1, n_soft))]), b_eq=[d.sum()], bounds=bounds,
                  method="highs")
    m = len(network.x_pu)
    if res.status != 0:
        nan = np.full(network.n_nodes, np.nan)
        return MarketResult(np.zeros(k), nan, np.full(m, np.nan), float("nan"), np.zeros(m, bool), float("nan"),
                            False, np.full(m, np.nan), np.full(m, np.nan), str(res.message))
    g = res.x[:k]
    excess = np.zeros(m)
    np.add.at(excess, network.relax_branch, res.x[k:])  # each soft row's slack on its branch
    lam = float(res.eqlin.marginals[0])
    mu = np.zeros(m)
    if a_ub.size:
        n_up = int(up.sum())
        mu_up = np.zeros(m)
        mu_dn = np.zeros(m)
        mu_up[up] = res.ineqlin.marginals[:n_up]
        mu_dn[dn] = res.ineqlin.marginals[n_up:]
        mu = mu_up - mu_dn
    lmp = lam + network.ptdf.T @ mu
    flow = network.ptdf @ (g_map @ g - d)
    congested = np.abs(mu) > tol
    return MarketResult(g, lmp, flow, lam, congested, float(c[:k] @ g), True, -mu, excess, str(res.message))

"""The perfect-foresight oracle: the optimum of one test day as a linear program (HiGHS).

The oracle sees the whole day in advance (prices, loads, sun) and chooses every controllable
injection of every hour at once: battery charge ``c`` and discharge ``d`` (MW), generator output
(MW), PV curtailment (MW) and PV reactive power (Mvar), and P2P trades (MW). It minimises what
:mod:`powergrid.bench.play` scores: ``cost_weight·cost + safety_weight·Δt_h·safety`` of the root agents.

Relaxation (a multi-period, sensitivity-linearised AC OPF):

- **Network**: each hour the AC flow (the env's own solver) is solved at a base dispatch — the
  rule policy's day, then the best plan's so far (sequential LP with a trust region, see
  :func:`solve_day`) — with the regulator taps where the AC replay of that dispatch put them;
  bus voltages (pu), line loadings (%) and PCC imports (MW) are then taken as linear in the
  injections, ``y = y₀ + J·(x − x₀)``, with ``J`` from one-sided finite differences
  (0.01 MW / Mvar) of that flow. Losses, voltages and loadings are therefore first-order around
  the base flow, and the taps are held at the base's positions (a regulator that moves under the
  optimum's dispatch shows in its AC replay; the trust region then shrinks).
- **Regulators**: a regulator with line-drop compensation reads the reactive power the inverters
  send through it, so a dispatch can move taps the LP holds. When the best plan's AC replay is more than
  :data:`HOLD_GAP` above its LP as the passes stop gaining, they run again from the rule's day with each relay's
  voltage (V, linear like the rest) kept inside its band at the held taps, a quarter tap
  (:data:`MARGIN`) from its edges, and within half a tap of ``v_set`` at an hour the tap moved (where
  a move lands): the replay's regulators then stay where the LP holds them. The better AC day wins.
- **Safety** (pu over/under the band, per-unit overload of each line, MW beyond a PCC's import
  or export limit) enters through non-negative slack variables, exactly as the env charges it,
  on the root agents' zones.
- **Generator** fuel ``a·p² + b·p`` by 8 secant pieces (exact at the breakpoints, at most
  ``a·(p_max/16)²`` $/h above the curve between them). Commitment and ramp limits are not modelled
  (the bench configs use neither).
- **Battery**: charge and discharge are separate variables (their simultaneity is not excluded;
  efficiency and degradation make it unprofitable at non-negative prices); with
  ``reward.storage_value: mean_price`` the day's change of ``E·η_d`` is valued at the day's mean price, as the env does.
- **PV reactive power** within ``±sqrt(S² − P_av²)``: an inner approximation of the inverter disc.
- **Grid bill**: ``price·u − min(sell_ratio·price, price)·w`` with ``import = u − w`` (the
  GridConnection's tariff: the export price is never above the import price, so the bill is convex
  and buying and selling at once never pays). Demand charge: the peak import as one variable
  ``≥`` every hour's import.
- **P2P trades** ``δ`` (MW, > 0 buys) with ``Σδ = 0`` each hour, net-metered at the PCC; a trade is
  delivered by the participant's generator, which must cover it within its range.
- **Hierarchy**: every microgrid is dispatched directly, so for an ISO that can only steer
  microgrids through a price signal the oracle's cost is a lower bound.

:func:`solve_day` returns the LP's objective and the hourly physical actions; :func:`replay`
plays them in the env (actions through ``env.action_from_physical``), so the day is scored by the
AC flow: the difference between the two is the linearisation error, reported by the benchmark.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from powergrid.agents import GridAgent
from powergrid.devices import StepContext, export_price
from powergrid.params import UNLIMITED
from powergrid.solvers.base import Injections, PowerFlowResult

EPS = 0.01  # MW / Mvar of the finite-difference steps
DG_PIECES = 8
#: relative excess of the AC replay over the LP above which :func:`solve_day`'s passes go on, then run again holding the taps
HOLD_GAP = 0.01
#: distance of a held relay from its band's edges, in taps (linearisation error of the relay voltage)
MARGIN = 0.25


@attrs.frozen
class OraclePlan:
    """The LP's optimum of one day: its objective ($), status, each learned agent's physical action per hour,
    and the objective of those actions replayed in the AC flow ($)."""

    objective: float
    status: str
    actions: list[dict[str, np.ndarray]]
    ac_objective: float = float("nan")


class _LP:
    """A growing LP: variables with bounds and costs; sparse rows ``lo ≤ A·x ≤ hi``."""

    def __init__(self) -> None:
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.c: list[float] = []
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.row_lo: list[float] = []
        self.row_hi: list[float] = []

    def var(self, lo: float, hi: float, cost: float = 0.0) -> int:
        self.lo.append(lo)
        self.hi.append(hi)
        self.c.append(cost)
        return len(self.c) - 1

    def row(self, terms: dict[int, float], lo: float, hi: float) -> None:
        r = len(self.row_lo)
        for col, val in terms.items():
            if val:
                self.rows.append(r)
                self.cols.append(col)
                self.vals.append(val)
        self.row_lo.append(lo)
        self.row_hi.append(hi)

    def solve(self) -> tuple[np.ndarray, float, str]:
        n = len(self.c)
        a = sp.csr_array((self.vals, (self.rows, self.cols)), shape=(len(self.row_lo), n))
        res = milp(np.array(self.c), constraints=LinearConstraint(a, self.row_lo, self.row_hi),
                   bounds=Bounds(self.lo, self.hi), options={"time_limit": 120.0})
        if res.x is None:
            raise RuntimeError(f"oracle LP failed: {res.message}")
        return res.x, float(res.fun), res.message


def _kind(device_agent: Any) -> str:
    return type(device_agent.device).__name__


def _flow_of(result: PowerFlowResult, element: str, row: int) -> float:
    flows = {"ext_grid": result.ext_grid_p_mw, "trafo": result.trafo_p_hv_mw, "line": result.line_p_from_mw}
    return float(flows[element][row])


def solve_day(env: Any, seed: int = 0, passes: int = 6, max_passes: int = 30, tol: float = 1e-3) -> OraclePlan:
    """The optimum of the day ``env`` plays after ``reset(seed)`` (see the module doc for the relaxation).

    ``env`` must be in the dispatch view (every grid agent learned, setpoint protocol).
    Sequential linear programming with a trust region: each pass linearises around the incumbent
    day (first the rule policy's), with the regulator taps where its AC replay put them hour by
    hour, and keeps every input within ``radius × its range`` of it. A plan whose AC replay beats
    the incumbent becomes the incumbent; otherwise the radius halves. At least ``passes`` passes;
    then more, up to ``max_passes``, while the last one lowered the AC objective by more than
    ``tol`` (relative) or the best plan's AC replay is more than :data:`HOLD_GAP` above its LP (the
    halving radius brings the linearisation back to the AC flow). When the best plan was that far off
    as the passes stopped gaining (regulators that may have moved under its dispatch), a second run
    from the rule's day also keeps every regulator's relay in band at the taps the LP holds (see
    :func:`_solve_once`), with the same rule for its passes. The better AC plan is returned.
    """
    from powergrid.bench.play import play

    rule = play(env, "rule", seed).objective
    base = _trajectory(env, "rule", seed)
    best, early = _passes(env, seed, base, rule, False, passes, max_passes, tol)
    if _off(early):
        held, _ = _passes(env, seed, base, rule, True, passes, max_passes, tol)
        if held.ac_objective < best.ac_objective:
            best = held
    return best


def _passes(env: Any, seed: int, base: tuple[np.ndarray, np.ndarray], incumbent: float, hold_taps: bool,
            passes: int, max_passes: int, tol: float) -> tuple[OraclePlan, OraclePlan]:
    """The sequential LP of :func:`solve_day` from ``base`` (its AC objective ``incumbent``, $): the best plan, and
    the best when the passes stopped gaining (at ``passes`` or later)."""
    from powergrid.bench.play import play

    best: OraclePlan | None = None
    early: OraclePlan | None = None
    radius = 1.0
    done, more = 0, True
    while done < passes or (more and done < max_passes):
        plan = _solve_once(env, seed, *base, radius, hold_taps)
        ac = play(env, replay(plan), seed).objective
        done += 1
        if best is None or ac < best.ac_objective:
            best = attrs.evolve(plan, ac_objective=ac)
        gain = ac < incumbent - tol * abs(incumbent)
        if early is None and done >= passes and not gain:
            early = best
        # go on while the last pass gained, or while the best plan's LP misses its AC day (the radius then shrinks)
        more = gain or _off(best)
        if ac < incumbent:
            incumbent, base = ac, _trajectory(env, replay(plan), seed)
        else:
            radius /= 2.0
    assert best is not None
    return best, early or best


def _off(plan: OraclePlan) -> bool:
    """Whether the plan's AC replay is more than :data:`HOLD_GAP` above its LP."""
    return plan.ac_objective - plan.objective > HOLD_GAP * abs(plan.ac_objective)


def _trajectory(env: Any, policy: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every controllable injection (hours × inputs, MW/Mvar) and regulator tap (hours × regulators) of a day."""
    from powergrid.evaluate import policy_named

    act = policy_named(policy) if isinstance(policy, str) else policy
    inputs = _inputs(env)
    env.reset(seed=seed)
    x, taps = [], []
    while env.agents:
        env.step(act(env))
        x.append([d.device.p_mw if what == "p" else d.device.q_mvar for d, what in inputs])
        taps.append([reg.tap for reg in env.tap_control.regulators])
    return np.array(x, np.float64).reshape(len(x), len(inputs)), np.array(taps, np.int64).reshape(len(x), -1)


def _grids(env: Any) -> list[Any]:
    learned = [env.scenario.agents[a] for a in env.possible_agents]
    return [a for a in learned if isinstance(a, GridAgent) and type(a.protocol).__name__ == "Setpoint"]


def _inputs(env: Any) -> list[tuple[Any, str]]:
    """One column of J per controllable injection: (device agent, "p" | "q")."""
    ctrl = [d for g in _grids(env) for d in g.children if _kind(d) in ("ESS", "DG", "PV")]
    return [(d, "p") for d in ctrl] + [(d, "q") for d in ctrl if _kind(d) == "PV" and d.device.params.s_max_mva > 0]


def _solve_once(env: Any, seed: int, base_x: np.ndarray, taps: np.ndarray, radius: float,
                hold_taps: bool = False) -> OraclePlan:
    """One LP linearised around the injections ``base_x`` with the regulators at ``taps`` (both hours × …),
    each input within ``radius`` × its range of ``base_x``; with ``hold_taps`` every regulator's relay voltage
    within its band at ``taps`` (see the module doc)."""
    env.reset(seed=seed)
    scen, net, rw = env.scenario, env.net, env.config.reward
    T, dt = env.max_ticks, env.dt_h
    price = np.asarray(env.ctx.profiles["price"][:T], np.float64)
    store_price = float(np.mean(env.ctx.profiles["price"][:env.n_steps]))
    grids = _grids(env)
    ctrl = [d for g in grids for d in g.children if _kind(d) in ("ESS", "DG", "PV")]
    inputs = _inputs(env)
    bus_pos = {int(b): i for i, b in enumerate(net.bus.index)}
    line_from = np.array([bus_pos[int(b)] for b in net.line.from_bus], np.int64)
    zone_buses = sorted({int(b) for r in scen.roots if isinstance(r, GridAgent) for b in r.zone})
    zone_lines = np.flatnonzero(np.isin(line_from, zone_buses))
    meters = [(g, d) for g in grids for d in g.children if _kind(d) == "GridConnection"]
    base_load_p = net.load.p_mw.to_numpy(float)
    base_load_q = net.load.q_mvar.to_numpy(float)
    base_sgen_p = net.sgen.p_mw.to_numpy(float).copy()
    base_sgen_q = net.sgen.q_mvar.to_numpy(float).copy()
    ctx = StepContext(dt_h=dt, profiles=env.ctx.profiles)
    avail = np.zeros((T, len(ctrl)))
    for t in range(T):
        ctx.tick = t
        for j, d in enumerate(ctrl):
            if _kind(d) == "PV":
                avail[t, j] = d.device.available_now(ctx)  # P_av clipped to [0, rated], as the PV's step
    # every input's value = offset + (its LP expression); the offset of PV active power is P_av
    offset = np.zeros((T, len(inputs)))
    for i, (d, what) in enumerate(inputs):
        if what == "p" and _kind(d) == "PV":
            offset[:, i] = avail[:, ctrl.index(d)]
        elif what == "p" and _kind(d) == "DG":
            offset[:, i] = d.device.params.p_min_mw
    regulators = env.tap_control.regulators
    start_taps = [reg.tap for reg in regulators]  # as the reset settled them

    def respond(t: int, x: np.ndarray) -> np.ndarray:
        for reg, tap in zip(regulators, taps[t]):
            env.solver.set_trafo_tap(reg.row, int(tap))
        sp_, sq_ = base_sgen_p.copy(), base_sgen_q.copy()
        for (d, what), value in zip(inputs, x):
            (sp_ if what == "p" else sq_)[d.sgen_row] = value
        m = env.load_multipliers[t]
        r = env.solver.solve(Injections(base_load_p * m, base_load_q * m, sp_, sq_))
        if not r.converged:
            raise RuntimeError(f"oracle: the base flow of hour {t} did not converge")
        reading = env.tap_control.read(r)
        relays = [reg.relay_volts(*v) for reg, *v in zip(regulators, reading.vm_pu, reading.p_lv_mw, reading.q_lv_mvar)]
        return np.concatenate([r.vm_pu[zone_buses], r.line_loading_percent[zone_lines],
                               [_flow_of(r, d.device.params.element, d.device.row) for _, d in meters], relays])

    nb, nl = len(zone_buses), len(zone_lines)
    y0, jac = [], []
    for t in range(T):
        base = respond(t, base_x[t])
        cols = []
        for i in range(len(inputs)):
            x = base_x[t].copy()
            x[i] += EPS
            cols.append((respond(t, x) - base) / EPS)
        y0.append(base)
        jac.append(np.array(cols).T if cols else np.zeros((base.size, 0)))
    for reg in regulators:  # the taps back where the env's tap control has them
        env.solver.set_trafo_tap(reg.row, reg.tap)

    lp = _LP()
    cw, sw = rw.cost_weight, rw.safety_per_step(dt)  # sw: $ per unit of safety in one step
    p2p = [h for h in scen.horizontal if type(h).__name__ == "P2PTrading"]
    traders = {a.id for h in p2p for a in h.participants}
    q_trade = max((h.params.q_max_mw for h in p2p), default=0.0)
    # per hour, per input: {var: coefficient} giving the input's deviation from the base flow
    delta: list[list[dict[int, float]]] = [[{} for _ in inputs] for _ in range(T)]
    out_vars: dict[str, Any] = {}
    for j, d in enumerate(ctrl):
        dev, kind = d.device, _kind(d)
        prm = dev.params
        i_p = inputs.index((d, "p"))
        if kind == "ESS":
            cap = prm.capacity_mwh
            c = [lp.var(0.0, prm.p_max_mw, cw * prm.degradation_cost * dt) for _ in range(T)]
            dis = [lp.var(0.0, prm.p_max_mw, cw * prm.degradation_cost * dt) for _ in range(T)]
            e = [lp.var(prm.soc_min * cap, prm.soc_max * cap) for _ in range(T)]
            if rw.storage_value == "mean_price":  # the env's end-of-day value of the stored energy's change
                worth = cw * store_price * prm.eta_discharge  # $ per MWh of e
                lp.c[e[-1]] = -worth
                lp.var(1.0, 1.0, worth * dev.soc * cap)  # the constant: the day's start, as a fixed variable
            keep = (1.0 - prm.self_discharge) ** dt  # as the ESS: the fraction σ lost per hour compounds
            for t in range(T):
                prev = {e[t - 1]: keep} if t else {}
                rhs = dev.soc * cap * keep if t == 0 else 0.0
                lp.row({e[t]: 1.0, **{k: -v for k, v in prev.items()}, c[t]: -prm.eta_charge * dt,
                        dis[t]: dt / prm.eta_discharge}, rhs, rhs)
                delta[t][i_p] = {dis[t]: 1.0, c[t]: -1.0}
            out_vars[d.id] = ("ESS", c, dis)
        elif kind == "DG":
            if prm.commitment or prm.cost_curve != "quadratic" or min(prm.ramp_up_mw_per_h, prm.ramp_down_mw_per_h) < UNLIMITED:
                raise NotImplementedError(f"oracle: {d.id}: commitment, piecewise costs and ramp limits are not modelled")
            edges = np.linspace(prm.p_min_mw, prm.p_max_mw, DG_PIECES + 1)
            fuel = prm.cost_a * edges**2 + prm.cost_b * edges
            slopes = np.diff(fuel) / np.diff(edges)
            segs = [[lp.var(0.0, w, cw * s * dt) for w, s in zip(np.diff(edges), slopes)] for _ in range(T)]
            for t in range(T):
                delta[t][i_p] = dict.fromkeys(segs[t], 1.0)
            out_vars[d.id] = ("DG", segs, prm.p_min_mw)
        else:  # PV: curtailment g ∈ [0, P_av]; q within the inner disc
            g = [lp.var(0.0, avail[t, j]) for t in range(T)]
            for t in range(T):
                delta[t][i_p] = {g[t]: -1.0}
            qv = None
            if (d, "q") in inputs:
                i_q = inputs.index((d, "q"))
                lim = np.sqrt(np.maximum(prm.s_max_mva**2 - avail[:, j] ** 2, 0.0))
                qv = [lp.var(-lim[t], lim[t]) for t in range(T)]
                for t in range(T):
                    delta[t][i_q] = {qv[t]: 1.0}
            out_vars[d.id] = ("PV", g, qv)
    trades: dict[str, list[int]] = {}
    for a in grids:
        if a.id in traders:
            trades[a.id] = [lp.var(-q_trade, q_trade) for _ in range(T)]
            dgs = [d for d in a.children if _kind(d) == "DG"]
            for t in range(T):  # the generator delivers the trade: p_min ≤ p + δ ≤ p_max
                if dgs:
                    kind, segs, pmin = out_vars[dgs[0].id]
                    terms = {**dict.fromkeys(segs[t], 1.0), trades[a.id][t]: 1.0}
                    lp.row(terms, 0.0, dgs[0].device.params.p_max_mw - pmin)
                else:
                    lp.row({trades[a.id][t]: 1.0}, 0.0, 0.0)
    if trades:
        for t in range(T):
            lp.row({v[t]: 1.0 for v in trades.values()}, 0.0, 0.0)

    for i, (d, what) in enumerate(inputs):  # the trust region
        prm = d.device.params
        span = (2 * prm.p_max_mw if _kind(d) == "ESS" else prm.p_max_mw) if what == "p" else 2 * prm.s_max_mva
        for t in range(T):
            if delta[t][i]:
                lo, hi = base_x[t, i] - offset[t, i] - radius * span, base_x[t, i] - offset[t, i] + radius * span
                lp.row(delta[t][i], lo, hi)

    def linear(t: int, k: int) -> tuple[dict[int, float], float]:
        """Row ``k`` of the response at hour ``t`` as ``({var: coef}, constant)``."""
        terms: dict[int, float] = {}
        for i, dvars in enumerate(delta[t]):
            coef = jac[t][k, i]
            for v, s in dvars.items():
                terms[v] = terms.get(v, 0.0) + coef * s
        # y = y₀ + J·(offset + expression − base)
        return terms, float(y0[t][k] + jac[t][k] @ (offset[t] - base_x[t]))

    for t in range(T):
        for k in range(nb):  # voltage band slacks
            terms, const = linear(t, k)
            over, under = lp.var(0.0, np.inf, sw), lp.var(0.0, np.inf, sw)
            lp.row({**{v: -c for v, c in terms.items()}, over: 1.0}, const - rw.v_max_pu, np.inf)
            lp.row({**terms, under: 1.0}, rw.v_min_pu - const, np.inf)
        for k in range(nb, nb + nl):  # line overload slacks (loading / max − 1)
            terms, const = linear(t, k)
            over = lp.var(0.0, np.inf, sw)
            scale = 1.0 / rw.max_loading_percent
            lp.row({**{v: -c * scale for v, c in terms.items()}, over: 1.0}, const * scale - 1.0, np.inf)
    for m, (g, d) in enumerate(meters):
        prm = d.device.params
        peak = lp.var(0.0, np.inf, cw * prm.demand_charge) if prm.demand_charge else None
        for t in range(T):
            terms, const = linear(t, nb + nl + m)
            u = lp.var(0.0, np.inf, price[t] * dt * cw)  # convex bill: export price ≤ import price
            w = lp.var(0.0, np.inf, -export_price(price[t], prm.sell_ratio) * dt * cw)
            trade = {trades[g.id][t]: 1.0} if g.id in trades else {}
            # u − w = import − δ (net metering): u − w − J·x + δ = const
            lp.row({u: 1.0, w: -1.0, **{v: -c for v, c in terms.items()}, **trade}, const, const)
            if peak is not None:  # peak ≥ import
                lp.row({peak: 1.0, **{v: -c for v, c in terms.items()}}, const, np.inf)
            if prm.import_limit_mw < UNLIMITED:  # safety: MW above the import limit
                over = lp.var(0.0, np.inf, sw)
                lp.row({over: 1.0, **{v: -c for v, c in terms.items()}}, const - prm.import_limit_mw, np.inf)
            if prm.export_limit_mw < UNLIMITED:  # safety: MW above the export limit
                over = lp.var(0.0, np.inf, sw)
                lp.row({over: 1.0, **terms}, -const - prm.export_limit_mw, np.inf)
    if hold_taps:  # every relay in band at the held taps, so that the AC replay's regulators stay there
        nm = len(meters)
        for t in range(T):
            for k, reg in enumerate(regulators):
                terms, const = linear(t, nb + nl + nm + k)
                tap, before = int(taps[t][k]), int(taps[t - 1][k]) if t else start_taps[k]
                volts = reg.tap_step * reg.settings.v_set  # one tap's change of the relay voltage (V)
                half = reg.settings.bandwidth / 2  # an hour it moved: within half a tap of v_set, where a move lands
                if tap != before:
                    half = min(half, volts / 2)
                half -= MARGIN * volts
                lo, hi = reg.settings.v_set - half, reg.settings.v_set + half
                if not reg.tap_min <= tap + reg.raise_sign <= reg.tap_max:
                    lo = -np.inf  # at its limit: a low relay cannot raise the tap further
                if not reg.tap_min <= tap - reg.raise_sign <= reg.tap_max:
                    hi = np.inf
                y = float(y0[t][nb + nl + nm + k])  # the base itself stays feasible
                lp.row(terms, min(lo, y) - const, max(hi, y) - const)
    x, objective, status = lp.solve()
    return OraclePlan(objective, status, _actions(env, grids, out_vars, trades, avail, ctrl, x, T))


def _actions(env: Any, grids: list[Any], out_vars: dict[str, Any], trades: dict[str, list[int]], avail: np.ndarray,
             ctrl: list[Any], x: np.ndarray, T: int) -> list[dict[str, np.ndarray]]:
    """Each learned grid agent's physical action per hour: its children's setpoints (+ the P2P order)."""
    plan = []
    price_max = {a.id: h.params.price_max for h in env.scenario.horizontal if type(h).__name__ == "P2PTrading"
                 for a in h.participants}
    price_min = {a.id: h.params.price_min for h in env.scenario.horizontal if type(h).__name__ == "P2PTrading"
                 for a in h.participants}
    for t in range(T):
        hour: dict[str, np.ndarray] = {}
        for g in grids:
            delta = float(x[trades[g.id][t]]) if g.id in trades else 0.0
            parts: list[float] = []
            for d in g.children:
                kind = _kind(d)
                space = d.device.action_space
                if kind == "ESS":
                    _, c, dis = out_vars[d.id]
                    parts += [x[dis[t]] - x[c[t]]] + [0.0] * (space.shape[0] - 1)
                elif kind == "DG":
                    _, segs, pmin = out_vars[d.id]
                    parts += [pmin + sum(x[s] for s in segs[t]) + delta] + [0.0] * (space.shape[0] - 1)
                elif kind == "PV":
                    _, g_, qv = out_vars[d.id]
                    j = ctrl.index(d)
                    f = 1.0 - x[g_[t]] / avail[t, j] if avail[t, j] > 1e-9 else 1.0
                    parts += [min(max(f, 0.0), 1.0)] + ([x[qv[t]]] if qv is not None else [])
                else:
                    parts += [0.0] * int(np.prod(space.shape))
            if g.id in trades:
                parts += [price_max[g.id], delta] if delta > 0 else [price_min[g.id], delta]
            hour[g.id] = np.array(parts, np.float64)
        plan.append(hour)
    return plan


def replay(plan: OraclePlan) -> Any:
    """A policy for :func:`powergrid.bench.play.play` sending the plan's actions (the ISO: its rule)."""

    def act(env: Any) -> dict[str, Any]:
        hour = plan.actions[env.tick]
        return {a: env.action_from_physical(a, hour[a]) if a in hour else env.rule_action(a) for a in env.agents}

    return act

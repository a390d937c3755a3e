"""ADMM economic dispatch equals the centralized optimum of an independent QP solve (SLSQP)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

from powergrid.devices import export_price
from powergrid_protocols.admm import (
    Area,
    GridTie,
    Unit,
    admm_dispatch,
    centralized_dispatch,
    dispatch_total,
    dispatch_with_grid,
    ess_units,
)


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


# one microgrid: a DG with cost 10·p² + 45·p $/h on [0, 0.6] MW and 0.5 MW of demand, behind the upstream grid
MICROGRID = [Area((Unit(10, 45, 0, 0.6),), 0.5)]


@pytest.mark.parametrize("solve", [admm_dispatch, centralized_dispatch])
def test_at_a_negative_price_the_grid_exchange_is_one_net_flow(solve):
    # price −10 $/MWh: the grid pays 10 $/MWh to deliver and, billed like a GridConnection, charges the full
    # 10 $/MWh to take (sell = min(0.8·price, price)). The DG (marginal 45 $/MWh ≥ −10) stays off and the microgrid
    # imports its 0.5 MW: cost −10·0.5 = −5 $/h, import and export netted into one flow.
    r = dispatch_with_grid(MICROGRID, GridTie(buy=-10.0, sell=export_price(-10.0, 0.8), limit_mw=100.0), solve=solve)
    grid_import, grid_export = r.p[-1]
    assert grid_import == pytest.approx(0.5, abs=1e-4) and grid_export == 0.0  # never both at once
    assert r.p[0][0] == pytest.approx(0.0, abs=1e-4)
    assert r.cost == pytest.approx(-5.0, abs=1e-3)
    assert r.converged


def test_a_tie_that_buys_above_its_selling_price_is_refused():
    # sell −8 > buy −10 (0.8·price at a negative price): buying and selling 100 MW at once would earn
    # 100·(−10) + (−100)·(−8) = −200 $/h out of nothing; the tie is refused rather than dispatched
    with pytest.raises(ValueError, match=r"sell -8\.0 \$/MWh above buy -10\.0"):
        GridTie(buy=-10.0, sell=-8.0, limit_mw=100.0)
    assert GridTie(buy=-10.0, sell=-10.0, limit_mw=100.0).sell == -10.0  # equal prices: convex, accepted


@pytest.mark.parametrize("solve", [admm_dispatch, centralized_dispatch])
def test_at_a_positive_price_the_exchange_sits_at_the_kink(solve):
    # price 60 $/MWh, sell 0.8·60 = 48 $/MWh. Importing, the DG runs to marginal 60: p = (60 − 45)/20 = 0.75 → 0.6,
    # which exports 0.1 — a contradiction; exporting at 48, p = (48 − 45)/20 = 0.15 < 0.5 imports — also one.
    # So the exchange is 0 and the DG covers the 0.5 MW: marginal 45 + 20·0.5 = 55 ∈ [48, 60];
    # cost 10·0.25 + 45·0.5 = 25 $/h.
    r = dispatch_with_grid(MICROGRID, GridTie(buy=60.0, sell=48.0, limit_mw=100.0), solve=solve, **(
        {"tol": 1e-6} if solve is admm_dispatch else {}))
    assert r.p[0][0] == pytest.approx(0.5, abs=1e-4)
    assert abs(r.p[-1][0]) < 1e-4 and abs(r.p[-1][1]) < 1e-4
    assert r.cost == pytest.approx(25.0, abs=1e-3)


@pytest.mark.parametrize("price", [-30.0, -1.0, 0.0, 1.0, 30.0, 80.0])
def test_one_net_exchange_and_the_optimum_at_any_price_sign(price):
    # three microgrids (no exchange limits) and the grid: compare with a scan over the grid's net exchange g:
    # for each g the microgrids produce Σd − g at least cost (their merit order), plus the grid's bill
    areas = CASES["exchange"][0]
    tie = GridTie(price, export_price(price, 0.8), 5.0)
    r = dispatch_with_grid(areas, tie, tol=1e-6)
    assert min(abs(r.p[-1][0]), abs(r.p[-1][1])) == 0.0  # one net exchange
    units = [u for a in areas for u in a.units]
    demand = sum(a.demand_mw for a in areas)
    lo, hi = sum(u.p_min for u in units), sum(u.p_max for u in units)
    best = np.inf
    for g in np.linspace(demand - hi, demand - lo, 4001):
        p, _ = dispatch_total(units, demand - g)
        bill = tie.buy * g if g >= 0 else tie.sell * g
        best = min(best, sum(u.a * q * q + u.b * q for u, q in zip(units, p)) + bill)
    assert r.cost == pytest.approx(best, abs=2e-3)


def test_curve_units_follow_a_piecewise_fuel_curve():
    """Linear pieces of the curve (its lower convex hull) on the unit's range: dispatching P MW at least cost
    costs F(P) − F(lo) on a convex curve; the pieces' outputs add up to P."""
    from powergrid_protocols.admm import curve_units, dispatch_total, unit_cost

    mw, cost = [0.0, 0.2, 0.4, 0.6], [5.0, 13.0, 25.0, 45.0]  # 40, 60, 100 $/MWh
    units = curve_units(mw, cost, 0.1, 0.5)
    assert [u.b for u in units] == pytest.approx([40.0, 60.0, 100.0])
    for total in (0.1, 0.15, 0.3, 0.45, 0.5):
        p, _ = dispatch_total(units, total)
        assert p.sum() == pytest.approx(total)
        assert unit_cost(units, p) == pytest.approx(np.interp(total, mw, cost) - np.interp(0.1, mw, cost) + 40.0 * 0.1)
    assert [u.b for u in curve_units([0.0, 0.3, 0.6], [0.0, 30.0, 36.0], 0.0, 0.6)] == pytest.approx([60.0])  # hull


def test_admm_in_env_prices_a_piecewise_dg_by_its_curve():
    """A DG billed 250 $/MWh (piecewise curve) is never dispatched at CAISO prices; before, ADMM priced it by the
    default cost_a/cost_b (10 p² + 50 p) and ran it at 0.6 MW through the evening (150 $/h of fuel)."""
    from pathlib import Path

    import yaml

    from powergrid.env import MultiAgentPowerGridEnv
    from powergrid_protocols.common import dg_marginal

    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "admm_3mg.yaml").read_text())
    data["agents"][0]["policy"] = "rule"
    for agent in data["agents"]:
        if agent["id"] == "mg2_dg":
            agent["params"] = {"p_max_mw": 0.6, "cost_curve": "piecewise", "pwl_mw": [0.0, 0.6],
                               "pwl_cost_per_h": [0.0, 150.0]}
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=0)
    dg = env.scenario.agents["mg2_dg"]
    assert dg_marginal(dg, 0.3) == pytest.approx(250.0)
    for _ in range(24):
        env.step({})
        assert dg.device.p_mw == pytest.approx(0.0, abs=1e-9)
    assert 70.0 < max(env.ctx.profiles["price"]) < 250.0  # the default curve's 50 + 20·p would have run it


def test_a_channel_capacity_below_the_areas_is_a_config_error():
    """Each iteration every area sends its x_i: a capacity below the number of areas (admm_3mg as shipped, a community:
    3 microgrids and its meter; with mg3 unmetered: 3 microgrids and the grid; every microgrid trading through its own
    meter: 3, no grid area) grew the backlog every iteration, 2000 iterations unconverged per tick, prices 8e4–1e5
    $/MWh."""
    from pathlib import Path

    import yaml

    from powergrid.env import MultiAgentPowerGridEnv
    from powergrid.errors import ConfigError

    cases = (({"channel_capacity": 3}, "shipped", 4), ({"channel_capacity": 3}, "unmetered", 4),
             ({"channel": "lossy", "channel_capacity": 2}, "unmetered", 4), ({"channel_capacity": 2}, "metered", 3))
    for channel, case, areas in cases:
        data = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "admm_3mg.yaml").read_text())
        data["horizontal"][0]["params"].update(channel)
        if case != "shipped":
            data["horizontal"][0]["params"]["community"] = False
        if case == "unmetered":  # the grid is an area once a participant has no meter of its own
            without_meter(data, "mg3")
        with warnings.catch_warnings(), pytest.raises(
                ConfigError, match=rf"horizontal\[0\].*expected channel_capacity ≥ {areas} .*got {channel['channel_capacity']}"):
            warnings.simplefilter("ignore", UserWarning)  # mg3's store is behind no billing meter
            MultiAgentPowerGridEnv.from_config(data)


def without_meter(data: dict, mg: str) -> dict:
    """admm_3mg's ``data`` with microgrid ``mg``'s PCC meter removed (it then trades with the grid through ADMM's grid
    area), in place."""
    data["agents"] = [a for a in data["agents"] if a["id"] != f"{mg}_pcc"]
    next(a for a in data["agents"] if a["id"] == mg)["children"].remove(f"{mg}_pcc")
    return data


def test_a_channel_with_room_for_every_message_gives_the_unlimited_dispatch():
    """The drain after each solve moved the channel's clock onto the next solve's first tick: that iteration heard
    nothing and, with a capacity, every later one heard the previous iteration's x_i (admm_3mg, capacity 4 = its
    4 areas: 2000 iterations, unconverged, from the second tick on); a backlog also spilled into the next tick."""
    from pathlib import Path

    import yaml

    from powergrid.env import MultiAgentPowerGridEnv

    def run(**channel):
        data = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "admm_3mg.yaml").read_text())
        data["horizontal"][0]["params"].update(max_iter=400, **channel)
        env = MultiAgentPowerGridEnv.from_config(data)
        env.reset(seed=0)
        admm = env.scenario.horizontal[0]
        results = []
        for _ in range(3):
            env.step({})
            assert admm.channel.in_flight == 0  # nothing left for the next tick's solve
            results.append((admm.result.iterations, admm.result.price, admm.result.x.tolist()))
        return results

    free = run()
    assert all(iterations < 400 for iterations, _, _ in free)
    assert run(channel_capacity=4) == free
    assert run(channel="lossy", channel_capacity=4) == free


def test_through_a_delayed_channel_the_solve_waits_for_every_area():
    """Through a channel with a delay nothing arrives at the first iteration, so both residuals were 0 when the
    starting exchanges balance (every area at 0, as at admm_3mg's first tick): "converged" after 1 iteration with
    x = [0, −1.4] MW (Σx = −1.4). The coordinator now stops only on x_i it has heard in this solve."""
    from powergrid_protocols.channel import make_channel

    areas = [Area((Unit(10, 45, 0, 0.6),), 0.0), Area((Unit(0, 70, -5, 5),), 0.0)]  # a DG and a 70 $/MWh grid
    central = centralized_dispatch(areas)
    r = admm_dispatch(areas, channel=make_channel("lossy", delay=1, loss=0.0), tol=1e-6, adaptive=False)
    assert r.converged and r.iterations > 2
    np.testing.assert_allclose(r.x, central.x, atol=1e-5)
    short = admm_dispatch(areas, channel=make_channel("lossy", delay=3, loss=0.0), tol=1e-6, max_iter=3)
    assert not short.converged  # no x_i has arrived within 3 iterations


@pytest.mark.parametrize(("delay", "loss"), [(1, 0.0), (0, 0.05)])
def test_residual_balancing_uses_only_current_exchanges(delay, loss):
    """ρ was doubled or halved on residuals of late x_i: through a 1-tick channel a DG and a grid never converged
    (5000 iterations, x = [0.6, 4.48] MW; admm_3mg with delay 2 and 10 % loss reached prices of ±inf $/MWh). ρ now
    adapts only at iterations where every area's x_i of that iteration arrived."""
    from powergrid_protocols.channel import make_channel

    for areas, demand in ([[Area((Unit(10, 45, 0, 0.6),), 0.0), Area((Unit(0, 70, -5, 5),), 0.0)], 0.0],
                          CASES["exchange"], CASES["demand"]):
        central = centralized_dispatch(areas, demand)
        r = admm_dispatch(areas, demand, channel=make_channel("lossy", delay=delay, loss=loss), tol=1e-6)
        assert r.converged
        np.testing.assert_allclose(r.x, central.x, atol=2e-3)
        assert abs(r.x.sum() - demand) < 2e-3


@pytest.mark.parametrize(("delay", "loss"), [(2, 0.0), (2, 0.1), (3, 0.1)])
def test_through_a_two_tick_delay_each_iteration_waits_for_its_answers(delay, loss):
    """The coordinator moved the dual every channel tick on x_i sent `delay` ticks earlier: the same imbalance was
    integrated delay + 1 times (a delayed integrator), and at delay 2 no case converged at any ρ (the DG and grid:
    x = [0, −1.69] MW, Σx = −1.69 after 2000 iterations; admm_3mg with 10 % loss: 23 of 24 ticks unconverged). An
    iteration is now a synchronous round: sent, then answered after the delay (a lost x_i: the last one heard)."""
    from powergrid_protocols.channel import make_channel

    for areas, demand in ([[Area((Unit(10, 45, 0, 0.6),), 0.0), Area((Unit(0, 70, -5, 5),), 0.0)], 0.0],
                          CASES["exchange"], CASES["demand"]):
        central = centralized_dispatch(areas, demand)
        channel = make_channel("lossy", delay=delay, loss=loss)
        r = admm_dispatch(areas, demand, channel=channel, tol=1e-6, max_iter=2000, start_tick=5)
        assert r.converged
        np.testing.assert_allclose(r.x, central.x, atol=2e-3)
        assert channel.stats["sent"] == r.iterations * len(areas)


def test_an_unconverged_solve_is_reported_and_not_applied():
    """admm_3mg with max_iter 3: the unconverged exchanges (Σx ≠ 0) were applied as the DG and ESS setpoints, its dual
    (garbage) observed as the price and carried into the next tick's warm start, with only ``converged: False`` in the
    info. Now the participants' own setpoints stand, the price observed is the tick's market price, no exchange."""
    from pathlib import Path

    import yaml

    from powergrid.env import MultiAgentPowerGridEnv

    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "admm_3mg.yaml").read_text())
    data["horizontal"][0]["params"].update(max_iter=3)  # the community's members exchange with each other
    data["spaces"] = {"action": "physical"}
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=0)
    admm = env.scenario.horizontal[0]
    dg = env.scenario.agents["mg1_dg"]
    action = np.zeros(env.action_space("mg1").shape, np.float32)
    action[1] = 0.25  # mg1's own part: ESS p, DG p, PV f, …
    for _ in range(3):
        _, _, _, _, infos = env.step({"mg1": action})
        info = infos["mg1"]["ADMMDispatch"]
        assert not admm.result.converged and admm.result.primal_residual > 1e-3
        assert info["converged"] is False and info["applied"] is False and "no convergence in 3 iterations" in info["message"]
        assert "price" not in info
        assert dg.device.p_mw == pytest.approx(0.25)  # mg1's own setpoint
        np.testing.assert_allclose(admm.observe(env.scenario.agents["mg1"]), [admm._price, 0.0])
    assert admm._u == 0.0 and admm._rho == 50.0  # no warm start from an unconverged solve


def admm_3mg(**params):
    """configs/admm_3mg.yaml as data, with ADMM ``params`` updated."""
    from pathlib import Path

    import yaml

    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "admm_3mg.yaml").read_text())
    data["horizontal"][0]["params"].update(params)
    return data


@pytest.mark.parametrize("solve", [admm_dispatch, centralized_dispatch])
@pytest.mark.parametrize(("price", "demand", "battery_mw"), [
    (30.0, 0.0, -0.375),  # charges where its bid η_c·V = 45 meets the price: 2·20·c = 45 − 30
    (50.0, 0.0, 0.0),  # buying at 50 > 45 and selling at 40 < V/η_d = 55.56: idle
    (80.0, 0.0, (64.0 - 50.0 / 0.9) / 40.0),  # sells at 0.8·80 = 64 > 55.56: 0.2111 MW
    (80.0, 0.3, 0.3),  # displaces 0.3 MW of imports at 80; more would sell at 64: (64 − 55.56)/40 < 0.3, the kink
])
def test_a_battery_is_dispatched_by_the_value_of_its_stored_energy(solve, price, demand, battery_mw):
    """A battery (0.5 MW, η_c = η_d = 0.9, wear 20·p² $/h) whose stored MWh is worth V = 50 $/MWh, alone with the
    grid (hand-checked optimum). It was a unit offering its energy at 0 $/MWh: it discharged at every price and never
    charged (admm_3mg: every battery at soc_min by the end of every day, −1.20 MWh under every policy)."""
    battery = Area(tuple(ess_units(-0.5, 0.5, 50.0, 0.9, 0.9, wear=20.0)), demand)
    r = dispatch_with_grid([battery], GridTie(price, export_price(price, 0.8), 100.0), solve=solve, **(
        {"tol": 1e-7} if solve is admm_dispatch else {}))
    assert r.converged
    assert r.p[0].sum() == pytest.approx(battery_mw, abs=1e-4)
    assert min(r.p[0]) > -1e-9 or max(r.p[0]) < 1e-9  # never charging and discharging at once


def test_in_admm_3mg_batteries_charge_when_energy_is_cheaper_than_its_value():
    """Over a day the batteries charge at the midday price trough and return the energy in the evening."""
    from powergrid.env import MultiAgentPowerGridEnv

    env = MultiAgentPowerGridEnv.from_config(admm_3mg())
    env.reset(seed=0)
    ess = [env.scenario.agents[f"mg{k}_ess"].device for k in (1, 2, 3)]
    idle = np.zeros(env.action_space("mg1").shape, np.float32)  # mg1's battery setpoint 0: no offer shift
    charged = np.zeros(3)
    while not env.ended:
        env.step({"mg1": idle})
        price = float(env.ctx.profiles["price"][env.tick - 1])
        for k, e in enumerate(ess):
            if e.p_mw < -1e-6:
                charged[k] += -e.p_mw
                assert price < e.params.eta_charge * e.params.eta_discharge * env.ctx.store_price  # each bids η_c·η_d·V
    assert env.ctx.store_price == pytest.approx(np.mean(env.ctx.profiles["price"]))
    assert (charged > 0.2).all(), charged


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_every_action_dimension_of_an_admm_participant_moves_its_outcome(dim):
    """mg1's action is [ESS p, DG p, PV curtailment]; ADMM replaced the ESS and DG setpoints by its dispatch, so
    dims 0 and 1 had no effect (the rule and the rule with random ESS/DG dims: identical returns to 3 decimals).
    Now a setpoint shifts the unit's offer (offer_shift $/MWh per unit of the normalised action)."""
    from powergrid.env import MultiAgentPowerGridEnv

    env = MultiAgentPowerGridEnv.from_config(admm_3mg())

    def run(value):
        env.reset(seed=0)
        action = np.zeros(env.action_space("mg1").shape, np.float32)
        action[dim] = value
        total, power = 0.0, []
        while not env.ended:
            _, reward, *_ = env.step({"mg1": action})
            total += reward["mg1"]
            power.append([env.scenario.agents[f"mg1_{d}"].device.p_mw for d in ("ess", "dg", "pv")])
        return total, np.array(power)

    (low, p_low), (high, p_high) = run(-1.0), run(1.0)
    assert abs(high - low) > 1.0  # $ over the day
    assert np.abs(p_high[:, dim] - p_low[:, dim]).max() > 0.05  # MW: the device the dimension names moves


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_stored_mwh_worth_a_non_finite_value_is_refused(value):
    """NaN or ±inf made every bid NaN or ±inf."""
    with pytest.raises(ValueError, match=r"^ess_units: a stored MWh worth (nan|inf|-inf) \$/MWh; expected a finite value"):
        ess_units(-0.5, 0.5, value, 0.9, 0.9)


@pytest.mark.parametrize("solve", [admm_dispatch, centralized_dispatch])
@pytest.mark.parametrize(("price", "demand", "battery_mw", "cost"), [
    # cost $/h = bid or offer·p + 20·p² + price·(demand − p), the grid billing the net import at the price
    (-100.0, 0.0, -0.5, 25.0 + 5.0 - 50.0),  # paid 100 > 50 $/MWh to charge: (−100 + 50)/40 < −0.5, its full rate
    (-60.0, 0.0, -0.25, 12.5 + 1.25 - 15.0),  # charges where its bid (W/η_d = −50) meets the price: −50 + 40·p = −60
    (-45.0, 0.0, 0.0, 0.0),  # between bid −50 and offer −40.5: idle (the exact bid −40.5 and offer −50 would both run)
    (-30.0, 0.0, 0.2625, -10.63125 + 1.378125 + 7.875),  # discharges where its offer η_c·W = −40.5 + 40·p meets −30
    (-30.0, 0.2, 0.2625, -10.63125 + 1.378125 + 1.875),  # the same beside a DG (45 $/MWh, off) and 0.2 MW of demand
])
def test_a_battery_whose_stored_energy_is_worth_less_than_nothing(solve, price, demand, battery_mw, cost):
    """A stored MWh worth W = −45 $/MWh (η_c = η_d = 0.9, wear 20·p² $/h): its exact cost, charge bid η_c·W = −40.5 above
    discharge offer W/η_d = −50, is concave; ADMM floored the episode's mean price at 0 (CAISO days can average below
    0) and ess_units refused W < 0. Now the two swap: bid −50 ≤ offer −40.5, a convex problem; hand-checked optima
    with the grid at buy = sell = price, the same from ADMM and the centralized solve."""
    battery = ess_units(-0.5, 0.5, -45.0, 0.9, 0.9, wear=20.0)
    assert [u.b for u in battery] == pytest.approx([-50.0, -40.5])
    areas = [Area((*battery, Unit(10.0, 45.0, 0.0, 0.6)), demand)]
    tie = GridTie(price, export_price(price, 0.8), 100.0)
    r = dispatch_with_grid(areas, tie, solve=solve, **({"tol": 1e-7} if solve is admm_dispatch else {}))
    assert r.converged
    assert r.p[0][:2].sum() == pytest.approx(battery_mw, abs=1e-4)
    assert min(r.p[0][:2]) > -1e-9 or max(r.p[0][:2]) < 1e-9  # never charging and discharging at once
    assert r.p[0][2] == pytest.approx(0.0, abs=1e-6)  # the DG stays off
    assert r.cost == pytest.approx(cost, abs=1e-4)


def test_a_batterys_bid_never_exceeds_its_offer():
    """The charge bid ≤ the discharge offer (a convex unit) at any stored value, efficiencies and cycle cost."""
    for value in np.linspace(-200.0, 200.0, 41):
        for eta_c, eta_d in ((1.0, 1.0), (0.95, 0.95), (0.8, 0.99)):
            for cycle in (0.0, 5.0):
                charge, discharge = ess_units(-1.0, 1.0, value, eta_c, eta_d, 2.0, cycle)
                assert charge.b <= discharge.b
                lossless = min(eta_c * value, value / eta_d) - cycle == charge.b  # the lower of the two prices
                assert lossless and max(eta_c * value, value / eta_d) + cycle == discharge.b


def test_a_batterys_cycle_degradation_cost_is_in_its_offers():
    """The ESS's degradation_cost ($/MWh of throughput) is billed in the reward; ADMM left it out of the offers, so a
    battery cycled for margins below it, at a loss (mg1's battery at 1000 $/MWh still moved Σ|p| = 1.42 MW over the
    day's ticks on seed 0)."""
    from powergrid.env import MultiAgentPowerGridEnv

    data = admm_3mg()
    for agent in data["agents"]:
        if agent["id"] == "mg1_ess":
            agent["params"]["degradation_cost"] = 1000.0
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=0)
    battery, moved = env.scenario.agents["mg1_ess"].device, 0.0
    while not env.ended:
        env.step({"mg1": np.zeros(env.action_space("mg1").shape, np.float32)})
        moved += abs(battery.p_mw)
    assert moved < 1e-6
    units = ess_units(-0.5, 0.5, 50.0, 0.9, 0.9, wear=20.0, cycle_cost=20.0)  # the hand example, 20 $/MWh of wear
    assert [u.b for u in units] == pytest.approx([45.0 - 20.0, 50.0 / 0.9 + 20.0])


def test_a_rule_participant_offers_its_units_at_cost():
    """Only a learned participant's action shifts its offers (offer_shift·setpoint). mg2 and mg3 of admm_3mg follow
    their rule: its setpoints were read as bids too (mg2's DG offered 88.5 − 25·s), so the rule's own guess moved the
    dispatch it is replaced by (seed 1: mg2's DG 10.05 MWh over the day, 9.40 at cost; /work/notes/rc31/rule_shift.py).
    Hand values: DG offers b = cost_b (88.5, 81.5 $/MWh); ESS (η = 0.95, no degradation_cost, mean price V) a charge bid
    0.95²·V and a discharge offer V; mg1 at physical setpoints DG 0.6 MW (s = 1) and ESS 0 MW (s = 0): 85 − 25 = 60.
    The community members have no meter units (their meters are netted in the community's, the grid area)."""
    from powergrid.env import MultiAgentPowerGridEnv

    data = admm_3mg()
    data["spaces"] = {"action": "physical"}
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=1)
    admm = env.scenario.horizontal[0]
    offers = []
    areas = admm.areas
    admm.areas = lambda value, price, demand: offers.append((price, areas(value, price, demand)[0])) or areas(
        value, price, demand)  # each solve's
    action = np.zeros(env.action_space("mg1").shape, np.float32)
    action[1] = 0.6  # mg1's DG at its most output
    while not env.ended:
        env.step({"mg1": action})
    v = env.ctx.store_price
    assert v == pytest.approx(np.mean(env.ctx.profiles["price"]))
    assert len(offers) == 24
    for _, (mg1, mg2, mg3) in offers:  # units per area: ESS charge, ESS discharge, DG
        assert [u.b for u in mg1.units] == pytest.approx([0.95**2 * v, v, 60.0])
        assert [u.b for u in mg2.units] == pytest.approx([0.95**2 * v, v, 88.5])
        assert [u.b for u in mg3.units] == pytest.approx([0.95**2 * v, v, 81.5])
        assert [u.a for u in mg2.units] == pytest.approx([2.0, 2.0, 20.0])


def test_in_admm_3mg_a_day_of_negative_mean_price_values_stores_below_zero(tmp_path):
    """A day whose prices average V = −275/24 = −11.46 $/MWh (NYISO day-ahead file, hourly: 6 h at −10, 4 at 20, 6 at
    −80, 5 at 40, 3 at −5). The reward values each store's energy change at V; ADMM floored it at 0, so its batteries
    bid 0 to charge: at −10 $/MWh they charged, energy the reward then debits at 11.46 $/MWh. Now every solve
    converges on V itself: a battery (η = 0.95, wear 2·p² $/h) offers its energy at η²·V = −10.34 $/MWh, so at the
    first hour's −10 it discharges (−10 + 10.34)/(2·2) = 0.085 MW, and it charges only below its bid V (each
    microgrid trading through its own meter: as a community, its 0.1 MW export limit would hold the three to 0.033)."""
    from powergrid.env import MultiAgentPowerGridEnv

    header = '"Time Stamp","Name","PTID","LBMP ($/MWHr)","Marginal Cost Losses ($/MWHr)","Marginal Cost Congestion ($/MWHr)"'
    prices = [-10.0] * 6 + [20.0] * 4 + [-80.0] * 6 + [40.0] * 5 + [-5.0] * 3
    rows = [f'"07/01/2023 {h:02d}:00","CAPITL",61757,{v:.2f},0.00,0.00' for h, v in enumerate(prices)]
    (tmp_path / "20230701damlbmp_zone.csv").write_text("\n".join([header, *rows]) + "\n")
    data = admm_3mg(community=False)
    data["datasets"]["price"] = {"provider": "nyiso", "path": str(tmp_path), "zone": "CAPITL"}
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=0)
    np.testing.assert_allclose(env.ctx.profiles["price"], prices)
    ess = [env.scenario.agents[f"mg{k}_ess"].device for k in (1, 2, 3)]
    idle = np.zeros(env.action_space("mg1").shape, np.float32)  # mg1's setpoints at mid-range: no offer shift
    charged = np.zeros(3)
    while not env.ended:
        _, _, _, _, infos = env.step({"mg1": idle})
        assert infos["mg1"]["ADMMDispatch"]["converged"]
        if env.tick == 1:
            assert [e.p_mw for e in ess] == pytest.approx([(-10.0 + 0.95**2 * 275.0 / 24) / 4.0] * 3, abs=1e-4)
        for k, e in enumerate(ess):
            if e.p_mw < -1e-6:
                charged[k] -= e.p_mw
                assert prices[env.tick - 1] < env.ctx.store_price
    assert env.ctx.store_price == pytest.approx(-275.0 / 24)
    assert charged[1:].min() > 0.1, charged  # mg2's and mg3's batteries charge at −80 (mg1's, empty, is behind its bound import limit)


@pytest.mark.parametrize("storage_value", ["mean_price", "none"])
def test_admm_values_stores_as_the_reward_does(storage_value):
    """ADMM averaged the whole price profile and ignored ``reward.storage_value``; the reward values a store's energy
    at the mean of the episode's prices (0 under ``none``). A provider giving 48 hours for a 24-hour episode (the
    second day at 1,000 $/MWh; ``check_episode`` accepts a longer profile) moved ADMM's V by ~500 $/MWh, and under
    ``none`` ADMM still offered the batteries' energy at the mean price."""
    from powergrid.env import MultiAgentPowerGridEnv

    data = admm_3mg()
    data["reward"]["storage_value"] = storage_value
    env = MultiAgentPowerGridEnv.from_config(data)
    provider = env.scenario.providers["price"]
    day = provider.episode
    provider.episode = lambda n, minutes, rng: np.concatenate([day(n, minutes, rng), np.full(n, 1000.0)])
    env.reset(seed=0)
    prices = env.ctx.profiles["price"]
    assert len(prices) == 48
    v = float(np.mean(prices[:24])) if storage_value == "mean_price" else 0.0
    assert env.ctx.store_price == pytest.approx(v, abs=1e-12)
    admm = env.scenario.horizontal[0]
    values = []
    areas = admm.areas
    admm.areas = lambda value, price, demand: values.append(value) or areas(value, price, demand)
    idle = np.zeros(env.action_space("mg1").shape, np.float32)
    while not env.ended:
        env.step({"mg1": idle})
    assert values == pytest.approx([v] * 24, abs=1e-12)

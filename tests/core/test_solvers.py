"""FastSolver (both backends) against the pandapower reference solver."""

from __future__ import annotations

import copy
import functools
import pickle
import warnings

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest

from powergrid.networks import TEMPLATES
from powergrid.plugins import make_registry
from powergrid.solvers import newton
from powergrid.solvers.base import Injections, PowerFlowResult
from powergrid.solvers.fast import FastParams, FastSolver
from powergrid.solvers.pandapower_solver import PandapowerParams, PandapowerSolver

BACKENDS = [
    pytest.param("lightsim2grid", marks=pytest.mark.skipif(not newton.lightsim2grid_available(),
                                                           reason="lightsim2grid not importable")),
    "numpy",
]

# |fast - pandapower| bounds per result field
TOL = {"vm_pu": 1e-6, "va_degree": 1e-4, "line_loading_percent": 1e-4, "line_p_from_mw": 1e-6,
       "trafo_loading_percent": 1e-4, "trafo_p_hv_mw": 1e-6, "ext_grid_p_mw": 1e-6, "ext_grid_q_mvar": 1e-6,
       "trafo_p_lv_mw": 1e-6, "trafo_q_lv_mvar": 1e-6}
STEPS = 3


def assert_matches(fast: PowerFlowResult, ref: PowerFlowResult, what: str = "") -> None:
    assert fast.converged and ref.converged, what
    for field, tol in TOL.items():
        a, b = getattr(fast, field), getattr(ref, field)
        assert a.shape == b.shape, f"{what} {field}: shape {a.shape} vs {b.shape}"
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{what} {field}: NaN pattern differs"
        ok = ~np.isnan(a)
        assert np.array_equal(np.isinf(a[ok]), np.isinf(b[ok])), f"{what} {field}: inf pattern differs"
        fin = ok & ~np.isinf(a)
        err = np.max(np.abs(a[fin] - b[fin]), initial=0.0)
        assert err < tol, f"{what} {field}: max |fast - pandapower| = {err:.3g} ≥ {tol}"


def identical(a: PowerFlowResult, b: PowerFlowResult) -> bool:
    return a.converged == b.converged and all(
        np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True) for f in TOL)


def with_der(net, rng: np.random.Generator):
    """The template plus one (placeholder) sgen on every third in-service bus."""
    buses = net.bus.index[net.bus.in_service.to_numpy(bool)][1::3]
    for b in buses:
        pp.create_sgen(net, bus=b, p_mw=0.0, q_mvar=0.0, name=f"test_der_{b}")
    return net


def random_injections(net, rng: np.random.Generator, n_base_sgen: int) -> Injections:
    """Loads scaled by U(0.5, 1.2); existing sgens by U(0, 1); added sgens with random P/Q."""
    lp, lq = net.load.p_mw.to_numpy(float), net.load.q_mvar.to_numpy(float)
    sp_ = net.sgen.p_mw.to_numpy(float).copy()
    sq = net.sgen.q_mvar.to_numpy(float).copy()
    sp_[:n_base_sgen] *= rng.uniform(0, 1, n_base_sgen)
    sq[:n_base_sgen] *= rng.uniform(0, 1, n_base_sgen)
    n_new = len(sp_) - n_base_sgen
    if n_new:
        size = 0.3 * max(lp.sum(), 1e-3) / n_new  # together up to 30 % of the load
        sp_[n_base_sgen:] = rng.uniform(0, 1, n_new) * size
        sq[n_base_sgen:] = rng.uniform(-0.3, 0.3, n_new) * size
    return Injections(lp * rng.uniform(0.5, 1.2, lp.size), lq * rng.uniform(0.5, 1.2, lq.size), sp_, sq)


@functools.cache
def scenario(name: str):
    """(net, injections, pandapower results) of one template; skips what cannot be compared yet."""
    try:
        net = TEMPLATES[name]()
    except NotImplementedError:
        pytest.skip(f"network template {name!r} is not written yet (raises NotImplementedError)")
    rng = np.random.default_rng(1234)
    n_base_sgen = len(net.sgen)
    net = with_der(net, rng)
    injections = [random_injections(net, rng, n_base_sgen) for _ in range(STEPS)]
    ref = PandapowerSolver(copy.deepcopy(net))
    results = [ref.solve(inj) for inj in injections]
    if not all(r.converged for r in results):
        pytest.skip(f"pandapower.runpp itself does not converge on template {name!r}: nothing to compare with")
    return net, injections, results


def fast(net, backend: str, **kw) -> FastSolver:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no delegation / fallback warning expected here
        solver = FastSolver(copy.deepcopy(net), FastParams(backend=backend, **kw))
    assert solver.backend == backend
    return solver


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_matches_pandapower_on_templates(name, backend):
    net, injections, expected = scenario(name)
    solver = fast(net, backend)
    for k, (inj, ref) in enumerate(zip(injections, expected)):
        assert_matches(solver.solve(inj), ref, f"{name}/{backend} step {k}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_features_gen_trafo3w_shunt_xward_impedance_oos(backend):
    """A net with a PV generator, a 3-winding trafo, shunt, impedance, xwards, switches and dead buses."""
    net = pn.example_multivoltage()
    net.bus.loc[net.bus.index[-1], "in_service"] = False
    net.line.loc[net.line.index[2], "in_service"] = False
    pp.create_storage(net, bus=net.load.bus.iloc[0], p_mw=0.3, q_mvar=0.1, max_e_mwh=1.0)
    rng = np.random.default_rng(7)
    solver, ref = fast(net, backend), PandapowerSolver(copy.deepcopy(net))
    for k in range(2):
        inj = random_injections(net, rng, len(net.sgen))
        assert_matches(solver.solve(inj), ref.solve(inj), f"multivoltage step {k}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["cigre_mv", "ieee34"])
def test_divergence_then_recovery(backend, name):
    net, injections, expected = scenario(name)
    solver = fast(net, backend, max_iteration=15)
    inj = injections[0]
    absurd = Injections(inj.load_p_mw * 1000, inj.load_q_mvar * 1000, inj.sgen_p_mw, inj.sgen_q_mvar)
    res = solver.solve(absurd)
    assert not res.converged
    assert np.all(np.isnan(res.vm_pu)) and res.vm_pu.shape == expected[0].vm_pu.shape
    for k in range(2):  # starts again from the last converged voltages, not the diverged state
        assert_matches(solver.solve(injections[k]), expected[k], f"after divergence, step {k}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_diverged_solve_leaves_no_stale_state_behind(backend):
    """case33bw with 60 MW more at its far bus has no solution; the flows after it equal a fresh solver's and runpp's.
    lightsim2grid's grid kept its failed solve's linear-solver state: the base loads converged again, then 0.9 x
    them (which converges from scratch) failed, and an env replaying an episode with the same seed failed again."""
    net = TEMPLATES["case33bw"]()
    solver, ref = fast(net, backend), PandapowerSolver(copy.deepcopy(net))

    def injections(scale: float, extra_mw: float = 0.0) -> Injections:
        p = net.load.p_mw.to_numpy() * scale
        p[-1] += extra_mw
        return Injections(p, net.load.q_mvar.to_numpy() * scale, net.sgen.p_mw.to_numpy(), net.sgen.q_mvar.to_numpy())

    assert solver.solve(injections(1.0)).converged
    assert not solver.solve(injections(1.0, extra_mw=60.0)).converged
    for scale in (1.0, 0.9, 1.1, 0.9):
        assert_matches(solver.solve(injections(scale)), ref.solve(injections(scale)), f"after the failure, x{scale}")


def _ieee34_at_taps(reg1: int, reg2: int):
    """ieee34 with its regulators' taps at ``reg1``, ``reg2``, and its injections at a load scale."""
    net = TEMPLATES["ieee34"]()
    rows = [int(np.flatnonzero(net.trafo.name == n)[0]) for n in ("Reg1", "Reg2")]
    net.trafo.loc[net.trafo.index[rows], "tap_pos"] = [reg1, reg2]

    def injections(scale: float) -> Injections:
        return Injections(net.load.p_mw.to_numpy() * scale, net.load.q_mvar.to_numpy() * scale,
                          net.sgen.p_mw.to_numpy(), net.sgen.q_mvar.to_numpy())
    return net, rows, injections


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failed_flow_does_not_fail_the_next_ones_after_tap_moves(backend):
    """ieee34 compiled at regulator taps -14/-7 (its runpp converges at 0.50 pu), the taps then moved to -2/4: 0.4 x
    load converges, 1.27 x has no solution (runpp fails too), and 0.81 x and 0.5 x converge again, equal to runpp at
    those taps (0.843 and 0.960 pu at the far end). The next flow after a failure used to start from the compile's
    voltages, taken at taps 12 and 11 positions away, and failed at every load from then on."""
    net, rows, injections = _ieee34_at_taps(-14, -7)
    solver = fast(net, backend)
    ref_net = copy.deepcopy(net)
    ref_net.trafo.loc[ref_net.trafo.index[rows], "tap_pos"] = [-2, 4]
    ref = PandapowerSolver(ref_net)
    for row, tap in zip(rows, (-2, 4)):
        solver.set_trafo_tap(row, tap)
    assert_matches(solver.solve(injections(0.4)), ref.solve(injections(0.4)), "before")
    assert not solver.solve(injections(1.27)).converged and not ref.solve(injections(1.27)).converged
    for scale in (0.81, 0.5):
        assert_matches(solver.solve(injections(scale)), ref.solve(injections(scale)), f"after, x{scale}")


def test_pandapower_solver_keeps_its_warm_start_through_a_failed_flow():
    """At regulator taps 16/16 runpp's flat start fails on ieee34 at any load (the solver then retries from the last
    converged flow). After 1.8 x load (no solution) the flow at 1.0 x converges again from the last converged flow,
    equal to the fast solver's; the failed flow used to drop that warm start, and every later flow failed."""
    net, rows, injections = _ieee34_at_taps(7, 12)
    solver, check = PandapowerSolver(copy.deepcopy(net)), fast(net, "numpy")
    assert solver.solve(injections(1.0)).converged
    for row in rows:
        solver.set_trafo_tap(row, 16)
        check.set_trafo_tap(row, 16)
    flat = copy.deepcopy(solver.net)
    with pytest.raises(pp.powerflow.LoadflowNotConverged):
        pp.runpp(flat, numba=False)  # the flat start alone
    assert_matches(check.solve(injections(1.0)), solver.solve(injections(1.0)), "warm")
    assert not solver.solve(injections(1.8)).converged
    assert_matches(check.solve(injections(1.0)), solver.solve(injections(1.0)), "after a failed flow")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_shunt_switched_where_the_flat_start_fails_still_solves(backend):
    """ieee34 at regulator taps 16/16 (runpp's flat start fails there), the 844 capacitor switched off: the fast
    solver's recompile and the pandapower solver start from the last flow when the flat start fails, and both solve
    it, equal. Before, the recompile kept a flat start and the pandapower solver dropped its warm start on a topology
    change: both failed at every later flow."""
    net, rows, injections = _ieee34_at_taps(7, 12)
    solver, ref = fast(net, backend), PandapowerSolver(copy.deepcopy(net))
    for s in (solver, ref):
        s.solve(injections(1.0))
        for row in rows:
            s.set_trafo_tap(row, 16)
    assert_matches(solver.solve(injections(1.0)), ref.solve(injections(1.0)), "taps 16/16")
    for s in (solver, ref):
        s.set_shunt_step(0, 0)
    flat = copy.deepcopy(ref.net)
    with pytest.raises(pp.powerflow.LoadflowNotConverged):
        pp.runpp(flat, numba=False)  # the flat start alone
    for k in range(2):
        assert_matches(solver.solve(injections(1.0)), ref.solve(injections(1.0)), f"capacitor off, flow {k}")
    # a bus added to the net: the last voltages do not fit it, the recompile starts flat only (no ValueError)
    net = solver.net
    pp.create_line_from_parameters(net, net.bus.index[net.bus.name == "848"][0], pp.create_bus(net, 24.9), 0.1, 0.3,
                                   0.4, 10.0, 0.2)
    solver.topology_changed()
    assert solver.solve(injections(1.0)).vm_pu.shape == (len(net.bus),)


def test_pandapower_solver_pickled_or_copied_keeps_its_warm_start():
    """ieee34 at regulator taps 16/16, where runpp's flat start fails: a pickled or deep-copied pandapower solver
    solves from the original's warm start, as the original does (the copy used to fail: the warm start was not
    pickled)."""
    net, rows, injections = _ieee34_at_taps(7, 12)
    solver = PandapowerSolver(net)
    solver.solve(injections(1.0))
    for row in rows:
        solver.set_trafo_tap(row, 16)
    assert solver.solve(injections(1.0)).converged
    copies = [pickle.loads(pickle.dumps(solver)), copy.deepcopy(solver)]
    want = solver.solve(injections(1.0))
    for clone in copies:
        assert identical(clone.solve(injections(1.0)), want)


@pytest.mark.parametrize("algorithm", ["fdbx", "fdxb"])
def test_pandapower_solver_with_a_fast_decoupled_algorithm_reports_a_diverged_flow(algorithm):
    """ieee13 at 50 x load has no solution: with runpp's fast-decoupled algorithms the solver reports it (converged
    False) and solves the next flow, equal to the fast solver's. The retry from the last converged flow passed start
    voltages, which runpp takes for Newton-Raphson only: ValueError escaped solve()."""
    net = TEMPLATES["ieee13"]()
    p, q = net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy()
    sgen = (net.sgen.p_mw.to_numpy(), net.sgen.q_mvar.to_numpy())
    solver = PandapowerSolver(copy.deepcopy(net), PandapowerParams(algorithm=algorithm))
    base, absurd = Injections(p, q, *sgen), Injections(p * 50, q * 50, *sgen)
    assert solver.solve(base).converged
    assert not solver.solve(absurd).converged
    got = solver.solve(base)
    assert got.converged
    np.testing.assert_allclose(got.vm_pu, fast(net, "numpy").solve(base).vm_pu, atol=1e-5)


def test_pandapower_solver_solves_from_a_flat_start_where_runpps_own_start_fails():
    """ieee34 at 20 % load with PV on every third bus feeding back 4 x the load (the far end at 1.53 pu): runpp's own
    start (a DC flow) fails, a flat start converges. The reference solver's first flow (no warm start yet) reported a
    divergence where the fast solver and runpp from a flat start find the same solution."""
    net = TEMPLATES["ieee34"]()
    for b in net.bus.index[1::3]:
        pp.create_sgen(net, b, p_mw=0.0, q_mvar=0.0)
    p, q = net.load.p_mw.to_numpy() * 0.2, net.load.q_mvar.to_numpy() * 0.2
    pv = np.full(len(net.sgen), 4 * net.load.p_mw.sum() / len(net.sgen))
    injections = Injections(p, q, pv, np.zeros(len(pv)))
    direct = copy.deepcopy(net)
    direct.load["p_mw"], direct.load["q_mvar"], direct.sgen["p_mw"] = p, q, pv
    with pytest.raises(pp.powerflow.LoadflowNotConverged):  # (what the test is about: runpp's own start fails here)
        pp.runpp(direct, init="auto", max_iteration=30, tolerance_mva=1e-8, numba=False)
    got = PandapowerSolver(copy.deepcopy(net)).solve(injections)
    assert got.converged and np.nanmax(got.vm_pu) > 1.5
    assert_matches(fast(net, "numpy").solve(injections), got, "reverse flow, first flow")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("field", ["load_p_mw", "sgen_q_mvar"])
@pytest.mark.parametrize("name", ["cigre_lv", "case33bw"])
def test_nan_injection_fails_cleanly(backend, field, name):
    net, injections, expected = scenario(name)
    solver = fast(net, backend)
    bad = copy.deepcopy(injections[0])
    getattr(bad, field)[0] = np.nan
    assert not solver.solve(bad).converged
    assert_matches(solver.solve(injections[1]), expected[1], "after NaN")


@pytest.mark.parametrize("backend", BACKENDS)
def test_pickle_round_trip(backend):
    net, injections, _ = scenario("cigre_lv")
    solver = fast(net, backend)
    solver.solve(injections[0])
    clone = pickle.loads(pickle.dumps(solver))
    assert clone.backend == solver.backend
    for inj in injections[1:]:
        assert identical(clone.solve(inj), solver.solve(inj))


def tapped_net(name: str):
    """Template ``name``; cigre_mv with an on-load tap changer (±9 steps of 1.5 %) on its HV/MV transformers (the
    template has none)."""
    net = TEMPLATES[name]()
    if name == "cigre_mv":
        for col, value in {"tap_side": "hv", "tap_neutral": 0, "tap_min": -9, "tap_max": 9, "tap_step_percent": 1.5,
                           "tap_pos": 0, "tap_changer_type": "Ratio"}.items():
            net.trafo[col] = value
    return net


@pytest.mark.parametrize("backend", BACKENDS)
def test_tap_change_recompiles(backend):
    net = tapped_net("cigre_mv")
    inj = random_injections(net, np.random.default_rng(3), len(net.sgen))
    solver, ref = fast(net, backend), PandapowerSolver(copy.deepcopy(net))
    before = solver.solve(inj)
    assert_matches(before, ref.solve(inj), "before tap change")
    solver.set_trafo_tap(0, 5)
    ref.set_trafo_tap(0, 5)
    after = solver.solve(inj)
    assert_matches(after, ref.solve(inj), "after tap change")
    assert np.nanmax(np.abs(after.vm_pu - before.vm_pu)) > 1e-3  # the new Ybus is in use


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tap_moved_out_of_its_range_and_back_matches_pandapower(backend):
    """A move outside ``[tap_min, tap_max]`` recompiles; moves back inside patch from the net's new position (before:
    the patch table was built at the out-of-range position and indexed past its rows)."""
    net = tapped_net("cigre_mv")
    inj = random_injections(net, np.random.default_rng(1), len(net.sgen))
    solver, ref = fast(net, backend), PandapowerSolver(copy.deepcopy(net))
    for tap in (10, 9, 8, -10, -9, 0):
        solver.set_trafo_tap(0, tap)
        ref.set_trafo_tap(0, tap)
        assert_matches(solver.solve(inj), ref.solve(inj), f"tap {tap}")


@pytest.mark.skipif(not newton.lightsim2grid_available(), reason="lightsim2grid not importable")
@pytest.mark.parametrize("name", ["ieee34_3mg", "cigre_mv"])  # regulators; 30° transformers with tap changers
def test_lightsim2grid_grid_keeps_its_analysis_and_equals_the_bare_algorithm(name):
    """The lightsim2grid backend solves through an LSGrid built on the solver's own Ybus: KLU analyses the Jacobian
    once over many solves and tap moves, and the flows are those of lightsim2grid's bare NRSing algorithm (which
    resets and analyses again on every call) to 1e-9 pu, in as many iterations."""
    net = tapped_net(name)
    grid, bare = fast(copy.deepcopy(net), "lightsim2grid"), fast(copy.deepcopy(net), "lightsim2grid")
    assert grid._grid is not None and grid._ls is None
    bare._grid, bare._ls = None, newton.LS_CLASS()
    rows = np.flatnonzero(np.isfinite(net.trafo.tap_pos.to_numpy(float)))
    rng = np.random.default_rng(5)
    for step in range(8):
        inj = random_injections(net, rng, len(net.sgen))
        if step % 2:
            for row in rows:
                tap = int(net.trafo.tap_pos.iat[row]) + int(rng.integers(-3, 4))
                grid.set_trafo_tap(int(row), tap)
                bare.set_trafo_tap(int(row), tap)
        a, b = grid.solve(inj), bare.solve(inj)
        assert a.converged and b.converged and a.iterations == b.iterations
        assert np.abs(a.vm_pu - b.vm_pu).max() < 1e-9 and np.abs(a.va_degree - b.va_degree).max() < 1e-7
        if step % 2:  # a tap control's re-solve at the same bus powers
            assert np.array_equal(grid.resolve(inj).vm_pu, grid.solve(inj).vm_pu)
    stats = grid._grid.algo.get_linear_solver_stats()
    assert stats.nb_analyze == 1 and stats.nb_refactorize > 8


@pytest.mark.skipif(not newton.lightsim2grid_available(), reason="lightsim2grid not importable")
@pytest.mark.parametrize("name", ["ieee34_3mg", "ieee123", "cigre_mv"])
def test_a_tap_move_updates_only_its_pair_and_buses_to_the_values_of_a_fresh_grid(name):
    """After tap moves (one or several transformers between two solves) the LSGrid's line, transformer and shunt
    parameters, updated for the moved pairs and their buses only, are those of a grid built afresh on the same
    Ybus, bit for bit (cigre_mv: 150° transformers and a bus without a line)."""
    net = tapped_net(name)
    solver = fast(copy.deepcopy(net), "lightsim2grid")
    grid = solver._grid
    rows = np.flatnonzero(np.isfinite(net.trafo.tap_pos.to_numpy(float)))
    rng = np.random.default_rng(4)
    for step in range(6):
        for row in rows[: 1 + step % len(rows)]:
            solver.set_trafo_tap(int(row), int(net.trafo.tap_pos.iat[row]) + int(rng.integers(-4, 5)))
        assert solver.solve(random_injections(net, rng, len(net.sgen))).converged and not grid._touched
        fresh = newton.GridNewton(solver.Ybus, solver.ref, solver.pv, solver.pq, solver._V)
        for field in ("_r", "_x", "_h", "_r_tr", "_x_tr", "_theta", "_remainder"):
            assert np.array_equal(getattr(grid, field), getattr(fresh, field)), field
    assert grid is solver._grid and len(grid._scopes) == len(rows)


@pytest.mark.skipif(not newton.lightsim2grid_available(), reason="lightsim2grid not importable")
def test_several_slacks_use_the_bare_algorithm():
    """Two ext_grids: fixed-voltage slacks as in pandapower, which the LSGrid (one slack) does not model."""
    net = TEMPLATES["case33bw"]()
    pp.create_ext_grid(net, bus=net.bus.index[17], vm_pu=1.0)
    solver, ref = fast(copy.deepcopy(net), "lightsim2grid"), PandapowerSolver(copy.deepcopy(net))
    assert solver._grid is None and solver._ls is not None
    rng = np.random.default_rng(4)
    for k in range(2):
        inj = random_injections(net, rng, len(net.sgen))
        assert_matches(solver.solve(inj), ref.solve(inj), f"two slacks step {k}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_pv_generators(backend):
    """PV generators hold their set points (the LSGrid's generators with lightsim2grid), as in runpp."""
    net = TEMPLATES["case33bw"]()
    pp.create_gen(net, bus=17, p_mw=0.5, vm_pu=1.0)
    pp.create_gen(net, bus=30, p_mw=0.3, vm_pu=0.99)
    solver, ref = fast(copy.deepcopy(net), backend), PandapowerSolver(copy.deepcopy(net))
    assert len(solver.pv) == 2 and (backend == "numpy" or solver._grid is not None)
    rng = np.random.default_rng(2)
    for k in range(3):
        inj = random_injections(net, rng, len(net.sgen))
        assert_matches(solver.solve(inj), ref.solve(inj), f"PV step {k}")


@pytest.mark.parametrize("flags", [[None, True], [np.nan, 1.0], [None, None]])
def test_slack_generator_flags_of_a_table_with_gaps_read_without_a_warning(flags):
    """A gen table whose ``slack`` column holds None or NaN (a net read from a file or built by another tool): the
    slack generators are the rows that are True, and reading them warns nothing (``fillna(False)`` on the object
    column raised pandas' FutureWarning about downcasting, at every compile)."""
    from powergrid.slacks import slack_buses
    from powergrid.solvers.fast import unsupported_features

    net = pp.create_empty_network()
    buses = [pp.create_bus(net, 20.0) for _ in range(3)]
    pp.create_ext_grid(net, buses[0])
    for b in buses[1:]:
        pp.create_gen(net, b, p_mw=1.0, vm_pu=1.0)
    net.gen["slack"] = pd.Series(flags, index=net.gen.index, dtype=object if None in flags else float)
    slack = flags[1] is not None and bool(flags[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert slack_buses(net) == [buses[0]] + ([buses[2]] if slack else [])
        assert unsupported_features(net) == (["slack generators (gen.slack=True)"] if slack else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_net_whose_case_pandapower_cannot_build_fails_its_flows_like_the_reference(backend, monkeypatch):
    """case33bw with a line of zero impedance: runpp stops before its Newton-Raphson (FloatingPointError), leaving an
    internal case without the bus sets. The fast solver raised KeyError 'ref' at construction; it now warns with the
    cause, delegates to pandapower and reports every flow failed, as the pandapower solver does."""
    monkeypatch.setattr("powergrid.solvers.fast._WARNED", set())
    net = TEMPLATES["case33bw"]()
    net.line.loc[5, ["r_ohm_per_km", "x_ohm_per_km"]] = 0.0
    injections = Injections(net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy(), np.zeros(0), np.zeros(0))
    with pytest.warns(RuntimeWarning, match=r"could not build the base power-flow case \(FloatingPointError"):
        solver = FastSolver(copy.deepcopy(net), FastParams(backend=backend))
    assert solver.backend == "pandapower"
    assert not solver.solve(injections).converged and not PandapowerSolver(copy.deepcopy(net)).solve(injections).converged


def test_unsupported_feature_delegates_to_pandapower(monkeypatch):
    import powergrid.solvers.fast as fast_module

    monkeypatch.setattr(fast_module, "_WARNED", set())  # said once per process: earlier tests may have said it
    net = TEMPLATES["cigre_lv"]()
    net.load["const_z_p_percent"] = 40.0  # voltage-dependent loads are not in the fast path
    inj = random_injections(net, np.random.default_rng(5), len(net.sgen))
    with pytest.warns(RuntimeWarning, match="delegating"):
        solver = FastSolver(copy.deepcopy(net), FastParams(backend="numpy"))
    assert solver.backend == "pandapower"
    assert "voltage-dependent" in solver.unsupported[0]
    assert identical(solver.solve(inj), PandapowerSolver(copy.deepcopy(net)).solve(inj))


def test_registered_as_fast():
    assert make_registry().load("solver", "fast") is FastSolver


def test_numpy_fallback_when_lightsim2grid_missing(monkeypatch):
    import powergrid.solvers.fast as fast_module

    monkeypatch.setattr(newton, "LS_CLASS", None)
    monkeypatch.setattr(newton, "LS_IMPORT_ERROR", "ModuleNotFoundError: No module named 'lightsim2grid'")
    monkeypatch.setattr(fast_module, "_WARNED", set())
    net = TEMPLATES["cigre_mv"]()
    with pytest.warns(RuntimeWarning, match="falling back to the numpy"):
        solver = FastSolver(copy.deepcopy(net))
    assert solver.backend == "numpy"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # said once only
        FastSolver(copy.deepcopy(net))
    with pytest.raises(ImportError, match="lightsim2grid"):
        FastSolver(copy.deepcopy(net), FastParams(backend="lightsim2grid"))


def test_wrong_length_raises():
    net, injections, _ = scenario("cigre_lv")
    solver = fast(net, "numpy")
    inj = injections[0]
    with pytest.raises(ValueError):
        solver.solve(Injections(inj.load_p_mw[:-1], inj.load_q_mvar, inj.sgen_p_mw, inj.sgen_q_mvar))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["ieee13", "ieee34", "ieee123", "ieee34_3mg"])
def test_tap_moves_patch_ybus_and_match_runpp(name, backend, monkeypatch):
    """Regulator tap moves patch the admittance entries in place (no runpp recompile) and give
    pandapower's runpp results at the same taps (1e-6 pu), over sequences of moves on every regulator."""
    net = TEMPLATES[name]()
    rows = np.flatnonzero(np.isfinite(net.trafo.tap_pos.to_numpy(float)))
    assert rows.size
    solver, ref = fast(copy.deepcopy(net), backend), PandapowerSolver(copy.deepcopy(net))
    rng = np.random.default_rng(11)
    tap0 = net.trafo.tap_pos.to_numpy(float)[rows].astype(int)

    def no_runpp(*args, **kwargs):
        raise AssertionError("a tap move recompiled with runpp")

    for step in range(4):
        inj = Injections(*(a * rng.uniform(0.6, 1.1, a.size) for a in (net.load.p_mw.to_numpy(),
                                                                       net.load.q_mvar.to_numpy())),
                         net.sgen.p_mw.to_numpy(), net.sgen.q_mvar.to_numpy())
        taps = np.clip(tap0 + rng.integers(-4, 5, rows.size), -16, 16)
        with monkeypatch.context() as m:
            m.setattr("powergrid.solvers.fast.pp.runpp", no_runpp)
            for row, tap in zip(rows, taps):
                solver.set_trafo_tap(int(row), int(tap))
        for row, tap in zip(rows, taps):
            ref.set_trafo_tap(int(row), int(tap))
        assert_matches(solver.solve(inj), ref.solve(inj), f"{name} step {step} taps {taps}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tap_move_of_a_transformer_with_a_characteristic_table_matches_runpp(backend):
    """cigre_mv's Trafo 0-1 with its ratio and short-circuit voltage per tap step in net.trafo_characteristic_table
    (pandapower 3's tap_dependency_table): after in-place tap moves the fast solver equals runpp at the same tap. The
    table of positions was computed in one call of pandapower's branch model, which maps the characteristic table by
    transformer, so every position got one step's values: 0.13 pu off at tap -6."""
    import pandas as pd

    net = TEMPLATES["cigre_mv"]()
    steps = np.arange(-9, 10)
    vk, vkr = float(net.trafo.vk_percent.iat[0]), float(net.trafo.vkr_percent.iat[0])
    nan = np.nan
    net["trafo_characteristic_table"] = pd.DataFrame({
        "id_characteristic": 0, "step": steps, "voltage_ratio": 1.0 + 0.015 * steps, "angle_deg": 0.0,
        "vk_percent": vk * (1 + 0.03 * steps), "vkr_percent": vkr, "vk_hv_percent": nan, "vkr_hv_percent": nan,
        "vk_mv_percent": nan, "vkr_mv_percent": nan, "vk_lv_percent": nan, "vkr_lv_percent": nan})
    net.trafo["tap_dependency_table"] = [True, False]
    net.trafo["id_characteristic_table"] = pd.array([0, pd.NA], dtype="Int64")
    inj = Injections(net.load.p_mw.to_numpy() * 1.3, net.load.q_mvar.to_numpy() * 1.3, net.sgen.p_mw.to_numpy(),
                     net.sgen.q_mvar.to_numpy())
    solver = fast(net, backend)
    solver.solve(inj)
    for tap in (-6, 5):
        solver.set_trafo_tap(0, tap)
        ref = copy.deepcopy(net)
        ref.trafo.iat[0, ref.trafo.columns.get_loc("tap_pos")] = tap
        assert_matches(solver.solve(inj), PandapowerSolver(ref).solve(inj), f"tap {tap}")
    assert 0 in solver._taps  # moved in place, not recompiled


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tap_move_warm_starts_the_buses_the_transformer_feeds(backend):
    """After a regulator move the next solve starts from the last voltages with the buses downstream of the
    regulator (not the substation side) scaled by its no-load ratio change: fewer Newton–Raphson iterations
    than from the last voltages as they were, and the same flow."""
    net = TEMPLATES["ieee34"]()
    row = int(np.flatnonzero(net.trafo.name == "Reg1")[0])
    inj = Injections(net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy(), net.sgen.p_mw.to_numpy(),
                     net.sgen.q_mvar.to_numpy())
    warm, cold = fast(copy.deepcopy(net), backend), fast(copy.deepcopy(net), backend)
    for solver in (warm, cold):
        solver.solve(inj)
    last = warm._V.copy()
    for solver in (warm, cold):
        solver.set_trafo_tap(row, int(net.trafo.tap_pos.iat[row]) + 4)
    fed = warm._taps[row].fed
    assert fed is not None and 0 < fed.size < last.size and not np.isin(warm.ref, fed).any()
    scale = warm._V / last
    others = np.setdiff1d(np.arange(last.size), fed)
    assert np.array_equal(warm._V[others], last[others]) and np.allclose(scale[fed], scale[fed[0]]) and abs(scale[fed[0]] - 1) > 1e-3
    cold._V = last.copy()  # what the solve started from before the warm start
    moved_warm, moved_cold = warm.solve(inj), cold.solve(inj)
    assert moved_warm.iterations < moved_cold.iterations
    assert_matches(moved_warm, moved_cold, "warm vs cold start")


def test_tap_positions_reach_the_net_when_it_is_read_and_survive_pickling():
    """A tap move is kept in the solver; reading ``solver.net`` (or pickling the solver) writes it to the table."""
    net = TEMPLATES["ieee34"]()
    solver = FastSolver(net)
    row = int(np.flatnonzero(net.trafo.name == "Reg1")[0])
    inj = Injections(net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy(), net.sgen.p_mw.to_numpy(),
                     net.sgen.q_mvar.to_numpy())
    solver.set_trafo_tap(row, 3)
    solver.set_trafo_tap(row, -2)
    moved = solver.solve(inj)
    assert solver.net.trafo.tap_pos.iat[row] == -2
    solver.set_trafo_tap(row, 5)
    clone = pickle.loads(pickle.dumps(solver))  # recompiled from the pickled net: at tap 5
    assert clone.net.trafo.tap_pos.iat[row] == 5
    assert_matches(clone.solve(inj), solver.solve(inj), "pickled at tap 5")
    assert np.abs(moved.vm_pu - solver.solve(inj).vm_pu).max() > 1e-4  # the taps do change the flow


@pytest.mark.parametrize("name", ["ieee34", "cigre_mv"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_solver_pickled_or_copied_after_tap_moves_solves_bit_for_bit(backend, name):
    """Admittances patched in place by tap moves travel with a pickled or deep-copied solver: its next solves, after
    further moves (in range and out of it: a recompile), equal the original's bit for bit. On cigre_mv a copy whose
    lightsim2grid grid was built on the patched admittances differed by ≈1e-14 pu: a copy builds it as the original
    did, on its compile, then replays the tap moves."""
    net = TEMPLATES[name]()
    solver = fast(net, backend)
    rows = np.flatnonzero(net.trafo.tap_pos.notna()).tolist()
    assert len(rows) == 2
    rng = np.random.default_rng(3)
    base = [net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy(), net.sgen.p_mw.to_numpy(), net.sgen.q_mvar.to_numpy()]

    def injections() -> Injections:
        scale = rng.uniform(0.5, 1.3)
        return Injections(*(scale * x for x in base))

    for pos in (4, -3, 7, 2):
        for row in rows:
            solver.set_trafo_tap(row, pos)
        solver.solve(injections())
    once = pickle.loads(pickle.dumps(solver))
    clones = [once, copy.deepcopy(solver), pickle.loads(pickle.dumps(once)), copy.deepcopy(once)]  # and copies of a copy
    n = len(clones) + 1
    for k, pos in enumerate((2, 5, -1, 17, 3, 8)):  # 17: past tap_max, recompiled
        inj = injections()
        results = [s.solve(inj) for s in (solver, *clones)]
        for s in (solver, *clones):
            s.set_trafo_tap(rows[k % 2], pos)
        results += [s.resolve(inj) for s in (solver, *clones)]
        assert all(identical(results[0], r) for r in results[1:n]), k
        assert all(identical(results[n], r) for r in results[n + 1:]), k


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_copy_of_a_solver_that_delegates_keeps_its_delegates_warm_start(how):
    """ieee34 with a 1 % constant-impedance load (the fast path delegates to pandapower) at regulator taps 16/16,
    where runpp's flat start fails: the original converges from its warm start, and so does a copy."""
    net = TEMPLATES["ieee34"]()
    net.load["const_z_percent"] = 0.0
    net.load.loc[net.load.index[0], "const_z_percent"] = 1.0
    inj = Injections(net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy(), net.sgen.p_mw.to_numpy(),
                     net.sgen.q_mvar.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solver = FastSolver(net)
        assert solver._delegate is not None
        assert solver.solve(inj).converged
        for row in np.flatnonzero(net.trafo.name.isin(["Reg1", "Reg2"])):
            solver.set_trafo_tap(int(row), 16)
        clone = pickle.loads(pickle.dumps(solver)) if how == "pickle" else copy.deepcopy(solver)
        a, b = solver.solve(inj), clone.solve(inj)
    assert a.converged and b.converged
    assert np.array_equal(a.vm_pu, b.vm_pu)

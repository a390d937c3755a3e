"""BatchedSolver (Z-bus fixed point over many copies, or each copy's own Newton–Raphson with the rest in one pass)
against pandapower.runpp on every template and against each copy's own FastSolver."""

from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pandapower.networks as pn
import pytest

from powergrid.networks import TEMPLATES
from powergrid.solvers.base import Injections
from powergrid.solvers.batched import BatchedSolver
from powergrid.solvers.fast import FastParams, FastSolver
from powergrid.solvers.pandapower_solver import PandapowerSolver

from .test_solvers import assert_matches, random_injections, scenario

COPIES = 4


def copies(net, n: int = COPIES, backend: str = "numpy") -> list[FastSolver]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return [FastSolver(copy.deepcopy(net), FastParams(backend=backend)) for _ in range(n)]


def fixed_point(solvers: list[FastSolver], one_pass_from: int | None = None) -> BatchedSolver:
    """A batched solver that runs the fixed point however few the copies."""
    return BatchedSolver(solvers, fixed_point_from=1, one_pass_from=one_pass_from)


def one_pass(solvers: list[FastSolver]) -> BatchedSolver:
    """A batched solver of each copy's own Newton–Raphson with bus powers, readings and results in one pass however
    few the copies."""
    return BatchedSolver(solvers, fixed_point_from=len(solvers) + 1, one_pass_from=1)


def spy_newton(monkeypatch) -> list[int]:
    """Count the copies that fell back to their own Newton–Raphson."""
    calls: list[int] = []
    original = FastSolver._newton

    def newton(self, Sbus):
        calls.append(id(self))
        return original(self, Sbus)

    monkeypatch.setattr(FastSolver, "_newton", newton)
    return calls


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_matches_pandapower_on_templates(name, monkeypatch):
    net, injections, expected = scenario(name)
    batch = fixed_point(copies(net))
    newton = spy_newton(monkeypatch)
    # each copy its own injection sequence (copy c at step k solves draw (k + c) mod steps)
    n = len(injections)
    for k in range(n):
        got = batch.solve([injections[(k + c) % n] for c in range(COPIES)])
        for c, res in enumerate(got):
            assert_matches(res, expected[(k + c) % n], f"{name} step {k} copy {c}")
    assert newton == [], "every copy of a PQ-only template is solved by the fixed point"


def test_tap_moved_copies_batch_through_a_low_rank_update(monkeypatch):
    """Copies with different taps iterate together (Woodbury update of Z) and match runpp at their own taps."""
    net = TEMPLATES["ieee13"]()
    row = int(np.flatnonzero(net.trafo.tap_min.notna().to_numpy())[0])
    inj = random_injections(net, np.random.default_rng(2), len(net.sgen))
    solvers = copies(net, 3)
    batch = fixed_point(solvers)
    base_pos = int(net.trafo.tap_pos.iat[row])
    expected = {}
    for pos in (base_pos, base_pos + 2, base_pos - 3):
        ref = PandapowerSolver(copy.deepcopy(net))
        ref.set_trafo_tap(row, pos)
        expected[pos] = ref.solve(inj)
    solvers[1].set_trafo_tap(row, base_pos + 2)
    solvers[2].set_trafo_tap(row, base_pos - 3)
    newton = spy_newton(monkeypatch)
    got = batch.solve([inj] * 3)
    assert newton == [], "the moved copies are solved by the fixed point"
    for res, pos in zip(got, (base_pos, base_pos + 2, base_pos - 3)):
        assert_matches(res, expected[pos], f"copy at tap {pos}")
    assert np.nanmax(np.abs(got[1].vm_pu - got[0].vm_pu)) > 1e-3
    # a subset of the copies, and the moved copies back at the base tap
    for s in solvers[1:]:
        s.set_trafo_tap(row, base_pos)
    for res in batch.solve([inj] * 2, copies=[2, 1]):
        assert_matches(res, expected[base_pos], "back at the base tap")
    assert newton == []


def test_pv_buses_solve_by_newton(monkeypatch):
    net = pn.example_multivoltage()  # has a PV generator
    inj = random_injections(net, np.random.default_rng(7), len(net.sgen))
    solvers = copies(net, 2)
    batch = fixed_point(solvers)
    newton = spy_newton(monkeypatch)
    got = batch.solve([inj, inj])
    assert sorted(newton) == sorted(map(id, solvers))
    expected = PandapowerSolver(copy.deepcopy(net)).solve(inj)
    for res in got:
        assert_matches(res, expected, "multivoltage")


@pytest.mark.parametrize("make", [fixed_point, one_pass])
def test_bad_and_divergent_copies_fail_alone(make):
    net, injections, expected = scenario("case33bw")
    batch = make(copies(net, 3))
    inj = injections[0]
    nan = copy.deepcopy(inj)
    nan.load_p_mw[0] = np.nan
    absurd = Injections(inj.load_p_mw * 1000, inj.load_q_mvar * 1000, inj.sgen_p_mw, inj.sgen_q_mvar)
    got = batch.solve([nan, inj, absurd])
    assert not got[0].converged and not got[2].converged
    assert np.all(np.isnan(got[0].vm_pu)) and np.all(np.isnan(got[2].vm_pu))
    assert_matches(got[1], expected[0], "healthy copy")
    for res, exp in zip(batch.solve([injections[1]] * 3), [expected[1]] * 3):  # all recover
        assert_matches(res, exp, "after failure")


def test_wrong_count_is_an_error():
    net, injections, _ = scenario("cigre_lv")
    batch = BatchedSolver(copies(net, 2))
    with pytest.raises(ValueError, match="1 injections for 2 copies"):
        batch.solve(injections[:1])


@pytest.mark.parametrize("name", ["ieee13", "ieee34_3mg", "cigre_mv"])
def test_results_of_many_copies_equal_each_copys_own_results(name):
    """FastSolver.results_of (all copies in one pass, each with its own taps) gives the same floats as each copy's
    _results."""
    import attrs

    net = TEMPLATES[name]()
    solvers = copies(net, 3)
    rows = np.flatnonzero(net.trafo.tap_min.notna().to_numpy())
    for c, s in enumerate(solvers[1:], start=1):
        for row in rows:
            s.set_trafo_tap(int(row), int(net.trafo.tap_pos.iat[row]) + 2 * c - 3)
    inj = random_injections(net, np.random.default_rng(5), len(net.sgen))
    for s in solvers:
        s.solve(inj)
    assert all(solvers[0].same_layout(s) for s in solvers)
    V = np.stack([s._V for s in solvers])
    S = np.stack([s.S_const + s._scatter(inj.load_p_mw, inj.load_q_mvar, inj.sgen_p_mw, inj.sgen_q_mvar) for s in solvers])
    for m in (3, 1, 2):  # (fewer copies after more: a prefix of the cached block structure)
        for s, v, sb, got in zip(solvers, V, S, solvers[0].results_of(solvers[:m], V[:m], S[:m], 3)):
            want = s._results(v, sb, 3)
            for field in attrs.fields(type(want)):
                np.testing.assert_array_equal(getattr(got, field.name), getattr(want, field.name),
                                              err_msg=f"{name} {m} copies {field.name}")


@pytest.mark.parametrize(("make", "backend"), [(fixed_point, "numpy"), (one_pass, "auto"), (one_pass, "numpy")])
def test_flow_reflow_results_equal_each_copys_own_newton_under_tap_moves(monkeypatch, make, backend):
    """flow, tap moves, reflow of the moved copies, readings and results, as the vector env's regulator rounds run
    them, against twin copies each taking the same steps with its own Newton–Raphson (flow, set_trafo_tap, reflow,
    probe, result), over steps of per-copy injections and tap positions (both regulators of IEEE 34, up to 5
    positions either way: ±3 % on the feeder's far end): the fixed point within the solver tolerance, each copy's
    own Newton–Raphson with the rest in one pass the same floats."""
    net = TEMPLATES["ieee34"]()
    rows = [int(r) for r in np.flatnonzero(net.trafo.tap_min.notna().to_numpy())]
    buses = tuple(int(net.bus.index.get_loc(b)) for b in net.trafo.lv_bus.iloc[rows])
    solvers, twins = copies(net, COPIES, backend), copies(net, COPIES, backend)
    batch = make(solvers)
    exact = batch.fixed_point_from > COPIES
    rng = np.random.default_rng(11)
    newton = spy_newton(monkeypatch)
    for step in range(6):
        injs = [random_injections(net, rng, len(net.sgen)) for _ in range(COPIES)]
        assert all(batch.flow(injs))
        for twin, inj in zip(twins, injs):
            assert twin.flow(inj)
        moved = [c for c in range(COPIES) if (c + step) % 2]
        for c in moved:
            row = rows[(c + step) % len(rows)]
            pos = int(net.trafo.tap_pos.iat[row]) + int(rng.integers(-5, 6))
            for s in (solvers[c], twins[c]):
                s.set_trafo_tap(row, pos)
        assert all(batch.reflow([injs[c] for c in moved], moved))
        for c in moved:
            assert twins[c].reflow(injs[c])
        if exact:
            mine = {id(s) for s in solvers}
            assert sorted(i for i in newton if i in mine) == sorted(id(solvers[c]) for c in [*range(COPIES), *moved]), \
                "each copy's Newton–Raphson once per flow and per reflow"
            readings = batch.probe(list(range(COPIES)), buses, tuple(rows))
            for c, twin in enumerate(twins):
                assert [r[c].tolist() for r in readings] == list(twin.probe(buses, tuple(rows)))
        else:
            assert not {id(s) for s in solvers} & set(newton), "the batch's copies are solved by the fixed point"
        newton.clear()
        for c, (got, twin) in enumerate(zip(batch.results(), twins)):
            want = twin.result()
            for field in ("vm_pu", "va_degree", "line_p_from_mw", "trafo_p_hv_mw", "ext_grid_p_mw", "ext_grid_q_mvar",
                          "trafo_p_lv_mw", "trafo_q_lv_mvar", "line_loading_percent", "trafo_loading_percent"):
                tol = 0 if exact else 1e-6 if field == "vm_pu" else 1e-4
                np.testing.assert_allclose(getattr(got, field), getattr(want, field), atol=tol, rtol=0,
                                           err_msg=f"step {step} copy {c} {field}")
            assert got.iterations == want.iterations or not exact
        for c, (s, twin) in enumerate(zip(solvers, twins)):  # the complex voltages, within the solvers' tolerance
            np.testing.assert_allclose(s._V, twin._V, atol=1e-8, rtol=0, err_msg=f"step {step} copy {c} V")
    assert np.ptp([s.Ybus.data for s in solvers], axis=0).max() > 0, "the copies ended at different taps"


def test_pickled_and_copied_fixed_point_solves_like_the_original():
    """A fixed point pickled and deep-copied once a regulator has moved (Y₀ factored before the move, its buses kept
    with their blocks of Z) flows, reflows after further moves (the other regulator's buses joining them) and gives
    results exactly as the original."""
    net = TEMPLATES["ieee34"]()
    rows = [int(r) for r in np.flatnonzero(net.trafo.tap_min.notna().to_numpy())]
    batch = fixed_point(copies(net))
    rng = np.random.default_rng(4)

    def step(batches: list[BatchedSolver], moves: dict[int, int]) -> None:
        injs = [random_injections(net, rng, len(net.sgen)) for _ in range(COPIES)]
        taps = {c: int(net.trafo.tap_pos.iat[row]) + int(rng.integers(1, 6)) for c, row in moves.items()}
        for b in batches:
            assert all(b.flow(injs))
            for c, row in moves.items():
                b.solvers[c].set_trafo_tap(row, taps[c])
            assert all(b.reflow([injs[c] for c in moves], list(moves)))
        for b in batches[1:]:
            for got, want in zip(b.results(), batches[0].results()):
                np.testing.assert_array_equal(got.vm_pu, want.vm_pu)
                np.testing.assert_array_equal(got.va_degree, want.va_degree)
                assert got.iterations == want.iterations

    step([batch], {1: rows[0]})
    step([batch], {})
    assert len(batch._aff) and (batch.solvers[1].Ybus.data != batch._Ydata).any()
    twins = [batch, pickle.loads(pickle.dumps(batch)), copy.deepcopy(batch)]
    for moves in ({}, {0: rows[1]}, {2: rows[0], 3: rows[1]}, {}):
        step(twins, moves)
    assert len(batch._aff) > 2  # the other regulator's buses joined after the copy


def test_copies_changed_on_more_buses_than_max_rank_solve_by_newton(monkeypatch):
    """The low-rank update keeps the PQ buses where any copy's Ybus has differed from Y₀; once a tap move would take
    them past max_rank, the changed copies solve by their own Newton–Raphson (the unchanged ones still batch), and
    all match their twins solved on their own."""
    net = TEMPLATES["ieee34"]()
    rows = [int(r) for r in np.flatnonzero(net.trafo.tap_min.notna().to_numpy())]
    solvers, twins = copies(net, 3), copies(net, 3)
    batch = BatchedSolver(solvers, fixed_point_from=1, max_rank=2)  # one regulator's two buses
    inj = random_injections(net, np.random.default_rng(8), len(net.sgen))
    newton = spy_newton(monkeypatch)
    for moves, by_newton in (({1: rows[0]}, []), ({2: rows[1]}, [1, 2])):
        for c, row in moves.items():
            for s in (solvers[c], twins[c]):
                s.set_trafo_tap(row, int(net.trafo.tap_pos.iat[row]) + 3)
        newton.clear()
        assert all(batch.flow([inj] * 3))
        assert sorted(i for i in newton if i in map(id, solvers)) == sorted(id(solvers[c]) for c in by_newton)
        for c, (s, twin) in enumerate(zip(solvers, twins)):
            assert twin.flow(inj)
            np.testing.assert_allclose(s._V, twin._V, atol=1e-8, rtol=0, err_msg=f"copy {c} after {moves}")


@pytest.mark.parametrize("make", [fixed_point, one_pass])
def test_a_nan_copy_fails_alone_in_flow_and_reflow(make):
    """A copy with a NaN injection fails its flow and its reflow (no bus powers to reuse) without touching the
    others; the next flow with finite injections recovers it."""
    net, injections, expected = scenario("ieee13")
    solvers = copies(net, 3)
    batch = make(solvers)
    nan = copy.deepcopy(injections[0])
    nan.sgen_q_mvar[0] = np.nan
    assert batch.flow([injections[0], nan, injections[0]]) == [True, False, True]
    assert batch.reflow([injections[0], nan], [0, 1]) == [True, False]
    got = batch.results()
    assert not got[1].converged and np.all(np.isnan(got[1].vm_pu))
    for c in (0, 2):
        assert_matches(got[c], expected[0], f"copy {c} beside a NaN copy")
    assert all(batch.flow([injections[1]] * 3))
    for c, res in enumerate(batch.results()):
        assert_matches(res, expected[1], f"copy {c} after the NaN step")


def test_one_blas_thread_holds_the_blas_to_one_thread_and_restores_it():
    from threadpoolctl import threadpool_info, threadpool_limits

    from powergrid.solvers import blas_threads

    if not blas_threads.controllable():
        pytest.skip("numpy's BLAS is not one threadpoolctl can limit")

    def counts() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    with threadpool_limits(limits=2, user_api="blas"):
        before = counts()
        assert max(before) == 2
        with blas_threads.one_blas_thread():
            assert counts() == [1] * len(before)
        assert counts() == before
        # blocks that overlap (as two vector envs stepping in two threads): one thread until the last one ends
        first, second = blas_threads.one_blas_thread(), blas_threads.one_blas_thread()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert counts() == [1] * len(before)
        second.__exit__(None, None, None)
        assert counts() == before


def test_probe_of_all_copies_equals_each_copys_probe():
    """BatchedSolver.probe (the relays' readings of every copy in one pass) gives the same floats as FastSolver.probe
    of each copy, at per-copy taps; copies of another layout, or fewer than one_pass_from, are left to probe on their
    own (None)."""
    net = TEMPLATES["ieee34"]()
    rows = tuple(int(r) for r in np.flatnonzero(net.trafo.tap_min.notna().to_numpy()))
    buses = tuple(int(net.bus.index.get_loc(b)) for b in net.trafo.lv_bus.iloc[list(rows)]) + (0,)
    solvers = copies(net, 3)
    for c, s in enumerate(solvers):
        s.set_trafo_tap(rows[c % len(rows)], int(net.trafo.tap_pos.iat[rows[c % len(rows)]]) - 2 * c)
    batch = fixed_point(solvers)
    rng = np.random.default_rng(4)
    assert all(batch.flow([random_injections(net, rng, len(net.sgen)) for _ in solvers]))
    assert batch.probe([2, 0, 1], buses, rows) is None, "3 copies: each its own probe"
    vm, p, q = fixed_point(solvers, one_pass_from=3).probe([2, 0, 1], buses, rows)
    for row, c in enumerate([2, 0, 1]):
        assert [vm[row].tolist(), p[row].tolist(), q[row].tolist()] == list(solvers[c].probe(buses, rows))
    assert np.abs(p).min() > 0.1, "the regulators carry the feeder's load"
    other = copies(TEMPLATES["ieee13"](), 1)[0]
    mixed = one_pass(solvers + [other])
    assert mixed.probe([0, 3], buses[:1], ()) is None


def test_one_pass_over_layouts_of_different_sizes_equals_each_copys_own():
    """Each copy's own Newton-Raphson with the bus powers from one product per layout, over copies whose layouts differ
    in size (an ieee34 copy with a line out of service, an ieee13 copy): flows and results are each copy's own."""
    import attrs

    net = TEMPLATES["ieee34"]()
    cut = copy.deepcopy(net)
    cut.line.loc[cut.line.index[-1], "in_service"] = False
    nets = [net, net, cut, TEMPLATES["ieee13"](), net]
    rng = np.random.default_rng(6)
    injections = [random_injections(n, rng, len(n.sgen)) for n in nets]
    solvers = [copies(n, 1)[0] for n in nets]
    batch = one_pass(solvers)
    assert len(set(batch._layout_of(solvers))) == 3
    assert all(batch.flow(injections))
    own = [copies(n, 1)[0] for n in nets]
    for c, (s, o, inj, got) in enumerate(zip(solvers, own, injections, batch.results())):
        want = o.solve(inj)
        np.testing.assert_array_equal(s._V, o._V, err_msg=f"copy {c}")
        np.testing.assert_array_equal(s._Sbus, o._Sbus, err_msg=f"copy {c}")
        for field in attrs.fields(type(want)):
            np.testing.assert_array_equal(getattr(got, field.name), getattr(want, field.name),
                                          err_msg=f"copy {c} {field.name}")


def test_mode_thresholds_default_to_the_module_constants_at_construction(monkeypatch):
    """fixed_point_from and one_pass_from left out (None) are FIXED_POINT_FROM and ONE_PASS_FROM as they are when the
    solver is constructed."""
    from powergrid.solvers import batched

    monkeypatch.setattr(batched, "FIXED_POINT_FROM", 3)
    monkeypatch.setattr(batched, "ONE_PASS_FROM", 2)
    batch = BatchedSolver(copies(TEMPLATES["ieee13"](), 2))
    assert (batch.fixed_point_from, batch.one_pass_from) == (3, 2)
    assert (BatchedSolver(batch.solvers, fixed_point_from=5, one_pass_from=1).fixed_point_from, 1) == (5, 1)


@pytest.mark.parametrize("scale", [1.0, 1.2])  # 1.2: IEEE 34's far end at ≈0.63 pu
def test_extrapolated_fixed_point_reaches_each_copys_newton_in_fewer_steps(monkeypatch, scale):
    """The fixed point with its extrapolation, on copies with moved taps (the low-rank update) and per-copy loads:
    every copy's power mismatch below the tolerance, its voltages those of its own Newton–Raphson, in fewer steps
    than the plain iteration from the same start."""
    from powergrid.solvers import batched

    net = TEMPLATES["ieee34"]()
    rows = [int(r) for r in np.flatnonzero(net.trafo.tap_min.notna().to_numpy())]
    lp, lq = net.load.p_mw.to_numpy(float) * scale, net.load.q_mvar.to_numpy(float) * scale
    rng = np.random.default_rng(0)
    injs = [Injections(lp * rng.uniform(0.8, 1.2, lp.size), lq * rng.uniform(0.8, 1.2, lq.size),
                       net.sgen.p_mw.to_numpy(float), net.sgen.q_mvar.to_numpy(float)) for _ in range(COPIES)]
    newton = spy_newton(monkeypatch)
    steps, first = {}, batched.EXTRAPOLATE_FROM
    for extrapolate_from in (first, 1000):  # (1000: never, the plain iteration)
        monkeypatch.setattr(batched, "EXTRAPOLATE_FROM", extrapolate_from)
        solvers, twins = copies(net), copies(net)
        for c, (row, move) in enumerate(zip(rows, (4, -5)), start=1):
            for s in (solvers[c], twins[c]):
                s.set_trafo_tap(row, int(net.trafo.tap_pos.iat[row]) + move)
        assert all(fixed_point(solvers).flow(injs))
        assert not {id(s) for s in solvers} & set(newton), "solved by the fixed point"
        for c, (s, twin, inj) in enumerate(zip(solvers, twins, injs)):
            assert twin.flow(inj)
            mismatch = (s._V * np.conj(s.Ybus @ s._V) - s._Sbus)[s.pq]
            assert np.abs(mismatch).max() < s.params.tolerance_mva, f"copy {c}"
            np.testing.assert_allclose(s._V, twin._V, atol=1e-7, rtol=0, err_msg=f"copy {c}")
        steps[extrapolate_from] = solvers[0]._iterations
    assert first < steps[first] < steps[1000]


def test_extrapolation_steps_only_where_the_residuals_contract():
    """_extrapolate's step ``r/(1 − r)·(f₁ + f₂)`` past ``g`` per copy: taken where ``f₂ = r·f₀`` with r in (0, 0.95),
    none (``g`` exactly) where the residuals grow, flip sign, vanish or are not finite."""
    from powergrid.solvers.batched import _extrapolate

    rng = np.random.default_rng(3)
    n, k = 7, 8
    f0, f1 = rng.normal(size=(2, n, k)) + 1j * rng.normal(size=(2, n, k))
    f0[:, 4] = 0.0
    f0[2, 5] = np.nan
    f2 = f0 * np.array([0.25, 0.9, -0.5, 1.2, 0.5, 0.5, 0.97, -0.1])  # r per copy
    g = rng.normal(size=(n, k)) + 1j * rng.normal(size=(n, k))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = _extrapolate(g, np.stack([f0, f1, f2]), np.empty_like(g))
    for c, r in ((0, 0.25), (1, 0.9)):
        np.testing.assert_allclose(out[:, c], g[:, c] + r / (1 - r) * (f1[:, c] + f2[:, c]), rtol=1e-12)
    np.testing.assert_array_equal(out[:, [2, 3, 4, 6, 7]], g[:, [2, 3, 4, 6, 7]])
    assert np.isnan(out[2, 5]) and np.array_equal(np.delete(out[:, 5], 2), np.delete(g[:, 5], 2))


def test_a_copy_with_non_finite_voltages_does_not_hold_the_others_back(monkeypatch):
    """A copy whose warm start is not finite fails the fixed point alone (to its own Newton–Raphson); the others stop
    as soon as they converge instead of running to ``max_iteration`` with it."""
    net = TEMPLATES["ieee34"]()
    lp, lq = net.load.p_mw.to_numpy(float), net.load.q_mvar.to_numpy(float)
    inj = Injections(lp, lq, net.sgen.p_mw.to_numpy(float), net.sgen.q_mvar.to_numpy(float))
    solvers = copies(net)
    solvers[1]._V = np.full_like(solvers[1]._V, np.nan)
    newton = spy_newton(monkeypatch)
    batch = fixed_point(solvers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        batch.flow([inj] * len(solvers))
    assert newton == [id(solvers[1])]
    healthy = [s for c, s in enumerate(solvers) if c != 1]
    assert all(s._converged for s in healthy)
    assert max(s._iterations for s in healthy) < batch.max_iteration / 2


def test_the_fixed_point_iterates_the_buses_with_power_and_adds_a_bus_whose_power_turns_nonzero():
    """Buses without bus power (and not fed by a slack) are left out of the iteration and their voltages derived after
    it; a bus whose power turns nonzero joins the iterated ones. Every bus matches runpp before and after."""
    net = TEMPLATES["ieee34"]()
    batch = fixed_point(copies(net, 2))
    first = batch.solvers[0]
    fed = set(np.flatnonzero(first.Ybus[first.ref].toarray().any(axis=0)).tolist())  # the slack and its neighbours
    alone = [row for row, bus in enumerate(net.load.bus) if (net.load.bus == bus).sum() == 1
             and bus not in set(net.sgen.bus) and first.S_const[first.bus_map[bus]] == 0
             and first.bus_map[bus] not in fed]
    rng = np.random.default_rng(11)
    inj = random_injections(net, rng, len(net.sgen))
    off = copy.deepcopy(inj)
    off.load_p_mw[alone[0]] = off.load_q_mvar[alone[0]] = 0.0
    for injections in ([off, off], [off, inj]):
        expected = [PandapowerSolver(copy.deepcopy(net)).solve(i) for i in injections]
        for c, (got, want) in enumerate(zip(batch.solve(injections), expected)):
            assert_matches(got, want, f"copy {c}")
        if injections[1] is off:
            live = len(batch._live)
            assert live < len(batch.pq), "ieee34 has buses without loads or generators"
    assert len(batch._live) == live + 1

"""Automatic tap control: the relay equation by hand, band/delay/limits, and the control loop on real nets."""

from __future__ import annotations

import copy
import math
import warnings

import attrs
import numpy as np
import pytest

from powergrid.controllers import Regulator, RegulatorSettings, TapControl, add_regulators, regulator_settings
from powergrid.networks import TEMPLATES
from powergrid.solvers.base import Injections
from powergrid.solvers.fast import FastParams, FastSolver
from powergrid.solvers.pandapower_solver import PandapowerSolver

IEEE13_REG = RegulatorSettings("Reg", 122.0, 2.0, 20.0, 700.0, 3.0, 9.0)


def base_injections(net, load_scale=1.0):
    return Injections(net.load.p_mw.to_numpy() * load_scale, net.load.q_mvar.to_numpy() * load_scale,
                      net.sgen.p_mw.to_numpy(), net.sgen.q_mvar.to_numpy())


def test_relay_voltage_hand_example():
    """IEEE 13 regulator (PT 20, CT 700 A, R 3 V, X 9 V) at 1.0 pu delivering 3 MW + j1.5 Mvar:
    V_sec = 2401.7771/20 = 120.088856 V; I = (3e6 - j1.5e6)/(3 * 2401.7771) = 416.358367 - j208.179184 A;
    I/CT = 0.5947977 - j0.2973988; (3 + j9)(I/CT) = 4.4609825 + j4.4609825 V;
    |120.088856 - 4.4609825 - j4.4609825| = |115.6278735 - j4.4609825| = 115.713895 V."""
    reg = Regulator.bind(TEMPLATES["ieee13"](), IEEE13_REG)
    assert reg.v_ln == pytest.approx(4160 / math.sqrt(3))
    assert reg.relay_volts(1.0, -3.0, -1.5) == pytest.approx(115.713895, abs=1e-5)
    # without LDC the relay reads the PT secondary
    plain = Regulator.bind(TEMPLATES["ieee13"](), RegulatorSettings("Reg", 122.0, 2.0, 20.0))
    assert plain.relay_volts(1.05, -3.0, -1.5) == pytest.approx(1.05 * 2401.777 / 20, abs=1e-3)
    # a one-phase regulator in a balanced equivalent sees 3x the balanced current
    one = Regulator.bind(TEMPLATES["ieee13"](), RegulatorSettings("Reg", 122.0, 2.0, 20.0, 700.0, 3.0, 9.0, phases=1))
    drop3 = 3 * complex(4.4609825, 4.4609825)
    assert one.relay_volts(1.0, -3.0, -1.5) == pytest.approx(abs(120.088856 - drop3), abs=1e-5)


def test_band_and_direction():
    net = TEMPLATES["ieee13"]()
    reg = Regulator.bind(net, IEEE13_REG)  # tap on the LV side: a higher tap raises the voltage
    assert reg.raise_sign == 1 and (reg.tap_min, reg.tap_max, reg.tap) == (-16, 16, 10)
    assert reg.taps_wanted(122.9) == 0 and reg.taps_wanted(121.1) == 0  # inside 122 +/- 1 V
    # 120 V: 2 V low, one tap = 0.625 % of 120 V = 0.75 V -> 3 taps up (2/0.75 = 2.67)
    assert reg.taps_wanted(120.0) == 3
    assert reg.taps_wanted(123.5) == -2  # 1.5 V high / (0.00625 * 123.5) = 1.94
    net.trafo.loc[net.trafo.name == "Reg", "tap_side"] = "hv"
    assert Regulator.bind(net, IEEE13_REG).taps_wanted(120.0) == -3


def test_settings_round_trip_and_errors():
    net = TEMPLATES["ieee13"]()
    assert regulator_settings(net) == [IEEE13_REG]
    add_regulators(net, [RegulatorSettings("XFM-1", 120.0, 2.0)])
    assert [s.trafo for s in regulator_settings(net)] == ["Reg", "XFM-1"]
    with pytest.raises(ValueError, match="no tap changer"):
        Regulator.bind(net, RegulatorSettings("XFM-1"))
    with pytest.raises(ValueError, match="no transformer named 'nope'"):
        Regulator.bind(net, RegulatorSettings("nope"))
    twice = TEMPLATES["ieee13"]()
    add_regulators(twice, [RegulatorSettings("Reg", 118.0)])  # a second relay on Reg's tap changer
    with pytest.raises(ValueError, match="'Reg' more than once"):  # (each relay kept its own tap position)
        TapControl.from_net(FastSolver(twice))
    net.trafo.loc[net.trafo.name == "Reg", "tap_step_percent"] = 0.0  # (a ZeroDivisionError at the first move)
    with pytest.raises(ValueError, match=r"'Reg'.*tap_step_percent is 0\.0"):
        Regulator.bind(net, IEEE13_REG)
    with pytest.raises(ValueError):
        RegulatorSettings("Reg", bandwidth=0.0)


def test_settles_ieee13_at_the_published_tap():
    """With its published settings the gang regulator settles at tap 10 (published taps 10/8/11)."""
    net = TEMPLATES["ieee13"]()
    net.trafo.loc[net.trafo.name == "Reg", "tap_pos"] = 0
    control = TapControl.from_net(FastSolver(net))
    control.reset()
    result = control.solve(base_injections(net))
    assert control.taps == {"Reg": 10}
    assert control.tap_changes == 0  # the settling solve at reset is not counted
    reg = control.regulators[0]
    volts = reg.relay_volts(result.vm_pu[reg.bus], result.trafo_p_lv_mw[reg.row], result.trafo_q_lv_mvar[reg.row])
    assert abs(volts - 122.0) <= 1.0


def test_delay_limits_and_count():
    net = TEMPLATES["ieee13"]()
    net.regulator["delay_ticks"] = 2
    net.regulator["max_taps"] = 2
    control = TapControl.from_net(FastSolver(net))
    control.reset()
    control.solve(base_injections(net))
    assert control.taps == {"Reg": 10}
    heavy = base_injections(net, 1.3)  # more load: the relay voltage drops out of band
    taps = []
    for _ in range(5):
        control.solve(heavy)
        taps.append((control.taps["Reg"], control.tap_changes))
    # out of band for 2 ticks before the first move (delay 2), then at most 2 taps a tick, counted
    assert taps[0] == (10, 0) and taps[1] == (10, 0)
    assert taps[2][0] - 10 == taps[2][1] and 1 <= taps[2][1] <= 2
    assert control.total_tap_changes == sum(n for _, n in taps) == taps[-1][0] - 10 > 0
    control.reset()
    assert control.taps == {"Reg": 10} and control.total_tap_changes == 0


@pytest.mark.parametrize("solver", [FastSolver, PandapowerSolver])
def test_a_failed_first_flow_leaves_the_settle_to_the_next_converged_one(solver):
    """ieee34 with a two-tick delay: the first flow after reset diverges (50 x load: no relay reads it); the next,
    at 1.3 x load, settles both regulators at once, uncounted, where a control that never failed settles them. The
    failed flow used up the settle: the regulators then waited their delay and moved up to max_taps a tick, and
    those moves counted as tap changes (an agent charged for the episode's start)."""
    net = TEMPLATES["ieee34"]()
    net.regulator["delay_ticks"] = 2
    net.regulator["max_taps"] = 2
    clean = TapControl.from_net(solver(copy.deepcopy(net)))
    clean.reset()
    clean.solve(base_injections(net, 1.3))
    control = TapControl.from_net(solver(copy.deepcopy(net)))
    control.reset()
    assert not control.solve(base_injections(net, 50.0)).converged
    assert control.solve(base_injections(net, 1.3)).converged
    assert control.taps == clean.taps != {r.settings.trafo: r.tap_init for r in control.regulators}
    assert control.tap_changes == control.total_tap_changes == 0


def test_tap_limits():
    net = TEMPLATES["ieee13"]()
    net.regulator["v_set"] = 140.0  # unreachable: the tap runs to its upper limit and stays there
    control = TapControl.from_net(FastSolver(net))
    control.reset()
    result = control.solve(base_injections(net))
    assert result.converged and control.taps == {"Reg": 16}


def test_excluded_transformer_is_left_alone():
    net = TEMPLATES["ieee34"]()
    solver = FastSolver(net)
    reg1 = int(np.flatnonzero(net.trafo.name == "Reg1")[0])
    control = TapControl.from_net(solver, exclude={reg1})
    assert [r.settings.trafo for r in control.regulators] == ["Reg2"]
    control.reset()
    control.solve(base_injections(net))
    assert net.trafo.tap_pos.iat[reg1] == 7


@pytest.mark.parametrize("name", ["ieee13", "ieee34", "ieee123", "ieee34_3mg"])
def test_fast_and_pandapower_control_agree(name):
    """The same control loop around both solvers lands on the same taps and voltages (1e-6 pu)."""
    net = TEMPLATES[name]()
    scales = np.random.default_rng(7).uniform(0.5, 1.2, 4)
    runs = []
    for solver in (FastSolver(copy.deepcopy(net), FastParams(backend="numpy")), PandapowerSolver(copy.deepcopy(net))):
        control = TapControl.from_net(solver)
        control.reset()
        out = []
        for scale in scales:
            result = control.solve(base_injections(net, scale))
            out.append((control.taps, control.tap_changes, result.vm_pu))
        runs.append(out)
    for (taps_a, n_a, v_a), (taps_b, n_b, v_b) in zip(*runs):
        assert taps_a == taps_b and n_a == n_b
        np.testing.assert_allclose(v_a, v_b, atol=1e-6)


def test_fast_control_loop_scatters_the_injections_once_per_tick(monkeypatch):
    """Around the fast solver the re-solves after tap moves reuse the first solve's bus powers: one scatter of
    the injections per tick however many Newton–Raphson solves, the relays read probes and the full result is
    derived once, the flow of a fresh solve at the final taps."""
    net = TEMPLATES["ieee34"]()
    solver = FastSolver(copy.deepcopy(net))
    counts = {"_scatter": 0, "_newton": 0, "_results": 0}

    def spy(name):
        real = getattr(solver, name)

        def counted(*args):
            counts[name] += 1
            return real(*args)
        return counted

    for name in counts:
        monkeypatch.setattr(solver, name, spy(name))
    control = TapControl.from_net(solver)
    control.reset()
    inj = base_injections(net, 1.1)
    result = control.solve(inj)  # settles the taps from their initial positions: a tap move and a re-solve
    assert counts["_scatter"] == 1 and counts["_newton"] >= 2 and counts["_results"] == 1
    fresh = FastSolver(copy.deepcopy(net))
    for reg in control.regulators:
        fresh.set_trafo_tap(reg.row, reg.tap)
    np.testing.assert_allclose(result.vm_pu, fresh.solve(inj).vm_pu, atol=1e-8)


@pytest.mark.parametrize("name", ["ieee13", "ieee34", "ieee123", "cigre_mv", "ieee34_3mg"])
def test_probe_reads_the_values_of_the_result(name):
    """FastSolver.probe gives the result's voltages at the regulated buses and the LV-side powers of the
    regulators' transformers, the same floats, over flows at random loads and tap moves."""
    net = TEMPLATES[name]()
    solver = FastSolver(copy.deepcopy(net))
    control = TapControl.from_net(solver)
    buses, rows = tuple(r.bus for r in control.regulators), tuple(r.row for r in control.regulators)
    rng = np.random.default_rng(2)
    for _ in range(6):
        for reg in control.regulators:
            solver.set_trafo_tap(reg.row, int(rng.integers(reg.tap_min, reg.tap_max + 1)))
        assert solver.flow(base_injections(net, rng.uniform(0.4, 1.3)))
        vm, p, q = solver.probe(buses, rows)
        result = solver.result()
        assert vm == result.vm_pu[list(buses)].tolist()
        assert p == result.trafo_p_lv_mw[list(rows)].tolist() and q == result.trafo_q_lv_mvar[list(rows)].tolist()


def test_probe_of_a_transformer_and_a_bus_out_of_service():
    """A transformer out of service reads no flow and a bus cut off with it NaN, as in the result."""
    net = TEMPLATES["ieee34"]()
    xfm = int(np.flatnonzero(net.trafo.name == "XFM-1")[0])
    net.trafo.loc[net.trafo.index[xfm], "in_service"] = False
    solver = FastSolver(net)
    dead = int(net.bus.index.get_loc(net.trafo.lv_bus.iat[xfm]))
    buses, rows = (0, dead), tuple(range(len(net.trafo)))
    assert solver.flow(base_injections(net))
    vm, p, q = solver.probe(buses, rows)
    result = solver.result()
    assert np.isnan(vm[1]) and p[xfm] == q[xfm] == 0.0
    np.testing.assert_array_equal(vm, result.vm_pu[list(buses)])
    assert p == result.trafo_p_lv_mw.tolist() and q == result.trafo_q_lv_mvar.tolist()


@pytest.mark.parametrize("name", ["ieee34", "ieee123"])
def test_loop_on_probes_equals_the_loop_on_full_results(name):
    """TapControl.solve around the fast solver (relays on probes, one result per tick) and the rounds a vector env
    runs (``move`` on each re-solve's full result) move the same taps and give the same flow, bit for bit."""
    net = TEMPLATES[name]()
    a, b = (TapControl.from_net(FastSolver(copy.deepcopy(net))) for _ in range(2))
    for control in (a, b):
        control.reset()
    for scale in np.random.default_rng(3).uniform(0.4, 1.4, 12):
        inj = base_injections(net, scale)
        got = a.solve(inj)
        want = b.solver.solve(inj)
        b.begin()
        while b.move(want):
            want = b.solver.resolve(inj)
        assert a.taps == b.taps and a.tap_changes == b.tap_changes
        assert all(np.array_equal(getattr(got, f.name), getattr(want, f.name)) for f in attrs.fields(type(got)))
    assert a.total_tap_changes > 0


def test_a_fast_solver_that_delegates_runs_the_same_loop_as_pandapower():
    """A net the fast path cannot model (voltage-dependent loads): flow, probe and result go to pandapower, and the
    control loop moves the taps as around PandapowerSolver itself."""
    net = TEMPLATES["ieee13"]()
    net.load["const_z_p_percent"] = 40.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the delegation warning (once per process)
        fast = FastSolver(copy.deepcopy(net))
    assert fast.backend == "pandapower"
    controls = [TapControl.from_net(solver) for solver in (fast, PandapowerSolver(copy.deepcopy(net)))]
    for control in controls:
        control.reset()
    for scale in (1.0, 1.3, 1.3):
        got, want = (control.solve(base_injections(net, scale)) for control in controls)
        assert controls[0].taps == controls[1].taps and controls[0].tap_changes == controls[1].tap_changes
        np.testing.assert_array_equal(got.vm_pu, want.vm_pu)
    assert controls[0].total_tap_changes > 0


def test_env_leaves_a_regulator_driven_by_an_oltc_agent_alone():
    """A regulator that a config gives to an OLTC device agent is that agent's, not the automatic control's."""
    pytest.importorskip("powergrid_devices", reason="the OLTC device comes with powergrid-devices")
    from powergrid.env import MultiAgentPowerGridEnv

    scenario = {
        "name": "agent_regulator", "network": "ieee34", "time": {"steps_per_episode": 4},
        "agents": [{"id": "reg1", "type": "OLTC", "bus": "850", "policy": "learned",
                    "params": {"trafo": "Reg1", "tap_min": -16, "tap_max": 16, "tap_step_percent": 0.625,
                               "tap_side": "lv", "init": 3}}],
    }
    env = MultiAgentPowerGridEnv.from_config(scenario)
    env.reset(seed=0)
    assert [r.settings.trafo for r in env.tap_control.regulators] == ["Reg2"]
    reg1 = int(np.flatnonzero(env.net.trafo.name == "Reg1")[0])
    for _ in range(3):
        env.step({"reg1": 3})
        assert env.net.trafo.tap_pos.iat[reg1] == 3  # held where the agent put it


def _star_of_regulators(n, tap_pos=8):
    """A 20 kV slack bus feeding ``n`` buses, each through its own regulator (10 MVA, LV-side taps ±16 × 0.625 %,
    no line-drop compensation, 120 V ± 1 V on a 120 V base) and carrying 0.5 MW + j0.2 Mvar (none on the first)."""
    import pandapower as pp

    net = pp.create_empty_network(sn_mva=1.0)
    src = pp.create_bus(net, 20.0)
    pp.create_ext_grid(net, src, vm_pu=1.0)
    for k in range(n):
        bus = pp.create_bus(net, 20.0)
        pp.create_transformer_from_parameters(
            net, src, bus, sn_mva=10.0, vn_hv_kv=20.0, vn_lv_kv=20.0, vkr_percent=0.1, vk_percent=1.0, pfe_kw=0.0,
            i0_percent=0.0, name=f"R{k}", tap_side="lv", tap_neutral=0, tap_min=-16, tap_max=16,
            tap_step_percent=0.625, tap_pos=tap_pos, tap_changer_type="Ratio")
        pp.create_load(net, bus, p_mw=0.5 if k else 0.0, q_mvar=0.2 if k else 0.0)
    add_regulators(net, [RegulatorSettings(f"R{k}", 120.0, 2.0) for k in range(n)])
    return net


def _out_of_band(control, result):
    return [r.settings.trafo for r in control.regulators
            if abs(r.relay_volts(result.vm_pu[r.bus], result.trafo_p_lv_mw[r.row], result.trafo_q_lv_mvar[r.row])
                   - r.settings.v_set) > r.settings.bandwidth / 2]


@pytest.mark.parametrize("solver", [FastSolver, PandapowerSolver])
def test_many_regulators_out_of_band_at_once_all_settle(solver):
    """30 regulators, all 6 V high at tap 8 (126 V against 120 ± 1 V): the settle at reset brings every one into
    its band (30 rounds of one move each; a loop capped at 20 rounds left 10 out of band, and the next tick moved
    their 80 taps as counted tap changes)."""
    net = _star_of_regulators(30)
    control = TapControl.from_net(solver(net))
    control.reset()
    inj = base_injections(net)
    result = control.solve(inj)
    assert result.converged and _out_of_band(control, result) == []
    assert all(r.moves == 1 for r in control.regulators) and control.tap_changes == 0
    result = control.solve(inj)
    assert _out_of_band(control, result) == [] and control.tap_changes == 0


def test_a_hunting_regulator_stops_after_its_moves_and_the_others_still_move():
    """R0 (no load, so 120 V + 0.75 V per tap) with its band centre midway between taps 0 and 1 and a band (0.5 V)
    narrower than a step hunts between them: it stops after ``max_iterations`` moves, and R1, behind it in the
    control's order, still settles in its band (a cap on the loop's rounds ended the tick with R1 untouched)."""
    net = _star_of_regulators(2)
    net.regulator.loc[0, ["v_set", "bandwidth"]] = 120.375, 0.5
    control = TapControl.from_net(FastSolver(net), max_iterations=7)
    assert [r.settings.trafo for r in control.regulators] == ["R0", "R1"]
    control.reset()
    result = control.solve(base_injections(net))
    hunter, other = control.regulators
    assert hunter.moves == 7 and hunter.tap in (0, 1)
    assert _out_of_band(control, result) == ["R0"] and other.moves == 1 and other.tap < 8


@pytest.mark.parametrize("solver", [FastSolver, PandapowerSolver])
def test_a_regulator_out_of_service_stays_put_and_the_others_settle(solver):
    """ieee123 with Reg2 (9-9r) out of service: its regulated bus is de-energised (NaN), its relay reads NaN and does
    not move (this raised ValueError from round(NaN)); the other three settle where they do on the intact feeder."""
    net = TEMPLATES["ieee123"]()
    intact = TapControl.from_net(FastSolver(copy.deepcopy(net)))
    intact.reset()
    intact.solve(base_injections(net))
    net.trafo.loc[net.trafo.name == "Reg2", "in_service"] = False
    control = TapControl.from_net(solver(net))
    control.reset()
    result = control.solve(base_injections(net))
    reg2 = next(r for r in control.regulators if r.settings.trafo == "Reg2")
    assert result.converged and np.isnan(result.vm_pu[reg2.bus]) and reg2.taps_wanted(math.nan) == 0
    assert control.taps == {**intact.taps, "Reg2": -1}
    control.solve(base_injections(net, 1.2))
    assert reg2.tap == -1 and reg2.timer == 0


def test_regulators_of_a_net_whose_slack_is_a_generator_are_ordered_upstream_first():
    """A slack generator (no ext_grid) feeding two regulators in series, listed downstream first: the control orders
    them by hops from that slack (from_net raised IndexError on the empty ext_grid table) and settles both."""
    import pandapower as pp

    net = pp.create_empty_network(sn_mva=1.0)
    buses = [pp.create_bus(net, 20.0) for _ in range(3)]
    pp.create_gen(net, buses[0], p_mw=0.0, vm_pu=1.0, slack=True)
    for name, hv, lv in (("up", 0, 1), ("down", 1, 2)):
        pp.create_transformer_from_parameters(
            net, buses[hv], buses[lv], sn_mva=10.0, vn_hv_kv=20.0, vn_lv_kv=20.0, vkr_percent=0.1, vk_percent=1.0,
            pfe_kw=0.0, i0_percent=0.0, name=name, tap_side="lv", tap_neutral=0, tap_min=-16, tap_max=16,
            tap_step_percent=0.625, tap_pos=8, tap_changer_type="Ratio")
    pp.create_load(net, buses[2], p_mw=0.5, q_mvar=0.2)
    add_regulators(net, [RegulatorSettings("down", 120.0, 2.0), RegulatorSettings("up", 120.0, 2.0)])
    control = TapControl.from_net(PandapowerSolver(net))
    assert [r.settings.trafo for r in control.regulators] == ["up", "down"]
    control.reset()
    result = control.solve(base_injections(net))
    assert result.converged and _out_of_band(control, result) == []


def test_a_new_deviation_after_a_move_waits_its_delay():
    """cigre_mv (one tick of delay): out of band at 0.9 x load for two ticks, the OLTCs move into band at the second;
    when the load falls back to 0.5 x the deviation is new and is tolerated one tick (the timer used to carry the
    ticks before the move, and they moved at once)."""
    net = TEMPLATES["cigre_mv"]()
    control = TapControl.from_net(FastSolver(net))
    control.reset()
    moves = []
    for scale in (0.5, 0.5, 0.9, 0.9, 0.5, 0.5):
        control.solve(base_injections(net, scale))
        moves.append(control.tap_changes > 0)
    assert moves == [False, False, False, True, False, True]


@pytest.mark.parametrize("solver", [FastSolver, PandapowerSolver])
def test_a_regulator_pushed_out_of_band_by_another_moves_in_the_same_tick(solver):
    """ieee123, no delays: settled at base load, then at 1.2 x load Reg1 (upstream) moves first and its move pushes
    Reg2 out of band; Reg2 corrects that in the same tick, so every regulator ends it in band. Before, Reg2 waited for
    the next tick (its timer counted only deviations seen at the tick's first flow): on the flagship ieee34_3mg that
    left Reg2 out of band after Reg1's moves, 832 at up to 1.0575 pu. With one tick of delay it waits that tick."""
    net = TEMPLATES["ieee123"]()
    control = TapControl.from_net(solver(copy.deepcopy(net)))
    control.reset()
    control.solve(base_injections(net))
    result = control.solve(base_injections(net, 1.2))
    assert control.tap_changes > 0 and _out_of_band(control, result) == []
    net.regulator["delay_ticks"] = 1
    control = TapControl.from_net(solver(copy.deepcopy(net)))
    control.reset()
    control.solve(base_injections(net))
    out = [_out_of_band(control, control.solve(base_injections(net, 1.2))) for _ in range(3)]
    assert "Reg2" in out[1] and out[2] == []


def _opendss_bus(net, b) -> str:
    """The OpenDSS bus of pandapower bus ``b`` (the bus it is merged into)."""
    merged = {int(s.element): int(s.bus) for s in net.switch.itertuples() if s.et == "b" and s.closed}
    while int(b) in merged:
        b = merged[int(b)]
    return f"b{int(b)}"


def _opendss_circuit(net, taps: dict[int, int]) -> list[str]:
    """OpenDSS commands for the balanced ``net`` as a positive-sequence circuit (one name per pandapower bus, a
    closed bus-bus switch merging its buses): a stiff source at the ext_grid, lines (R1/X1/C1 per km, as R0/X0/C0
    too), wye-wye transformers with the same %R, %X and tap range (tap on winding 2, the LV side, at ``taps``),
    capacitors, constant-power loads and the sgens as negative ones."""
    def bus(b):
        return _opendss_bus(net, b)

    eg, kv = net.ext_grid.iloc[0], net.bus.vn_kv
    out = ["clear", f"New Circuit.pg basekv={kv[eg.bus]} pu={eg.vm_pu} angle={eg.va_degree} phases=3 "
                    f"bus1={bus(eg.bus)} MVAsc3=1e12 MVAsc1=1e12"]
    for i, ln in net.line[net.line.in_service].iterrows():
        r, x, c = ln.r_ohm_per_km / ln.parallel, ln.x_ohm_per_km / ln.parallel, ln.c_nf_per_km * ln.parallel
        out.append(f"New Line.l{i} phases=3 bus1={bus(ln.from_bus)} bus2={bus(ln.to_bus)} R1={r} X1={x} C1={c} "
                   f"R0={r} X0={x} C0={c} length={ln.length_km} units=km")
    for i, t in net.trafo.iterrows():
        tapped = i in taps
        step = t.tap_step_percent / 100 if tapped else 0.0
        out.append(f"New Transformer.t{i} phases=3 windings=2 buses=[{bus(t.hv_bus)} {bus(t.lv_bus)}] conns=[wye wye] "
                   f"kvs=[{t.vn_hv_kv} {t.vn_lv_kv}] kvas=[{t.sn_mva * 1e3} {t.sn_mva * 1e3}] %loadloss={t.vkr_percent} "
                   f"XHL={math.sqrt(t.vk_percent ** 2 - t.vkr_percent ** 2)} %noloadloss=0 %imag=0"
                   + (f" NumTaps={int(t.tap_max - t.tap_min)} MinTap={1 + t.tap_min * step} MaxTap={1 + t.tap_max * step}"
                      f" wdg=2 tap={1 + taps[i] * step}" if tapped else ""))
    for i, s in net.shunt[net.shunt.in_service].iterrows():
        out.append(f"New Capacitor.c{i} bus1={bus(s.bus)} phases=3 kvar={-s.q_mvar * s.step * 1e3} kv={s.vn_kv}")
    for kind, table, sign in (("d", net.load, 1.0), ("g", net.sgen, -1.0)):
        for i, e in table[table.in_service].iterrows():
            out.append(f"New Load.{kind}{i} bus1={bus(e.bus)} phases=3 kv={kv[e.bus]} kW={sign * e.p_mw * e.scaling * 1e3} "
                       f"kvar={sign * e.q_mvar * e.scaling * 1e3} model=1 vminpu=0.3 vmaxpu=2")
    return out + ["Set voltagebases=[" + " ".join(map(str, sorted(set(kv)))) + "]", "calcv"]


@pytest.mark.parametrize("name", ["ieee13", "ieee34", "ieee123"])
@pytest.mark.parametrize(("load", "pv"), [(0.5, 0.0), (1.0, 0.0), (0.3, 1.5)], ids=["light", "peak", "reverse"])
def test_settled_taps_and_opendss_regcontrol_both_hold_every_band(name, load, pv):
    """The same balanced feeder in OpenDSS (opendssdirect): at the initial taps its voltages equal the fast solver's
    (1e-4 pu: the converter's check); its RegControls, with the regulators' band, PT and CT ratios and R/X
    compensation, settle (STATIC mode) at taps where this control's relays read every regulator inside its band,
    as they do at the control's own taps — at light load, peak load, and with PV on the four last load buses
    sending 1.5 x the feeder load back through the regulators. Measured (s31): the taps differ by up to two
    positions (this control moves to the band centre, RegControl stops near the band edge); the same relay."""
    dss = pytest.importorskip("opendssdirect", reason="opendssdirect.py (OpenDSS) not installed")
    import pandapower as pp

    net = TEMPLATES[name]()
    net.load[["p_mw", "q_mvar"]] *= load
    far = net.load.bus.unique()[-4:]
    for b in far if pv else ():
        pp.create_sgen(net, b, p_mw=pv * net.load.p_mw.sum() / len(far), q_mvar=0.0)
    injections = base_injections(net)
    control = TapControl.from_net(FastSolver(copy.deepcopy(net)))
    initial = {r.row: r.tap for r in control.regulators}

    def run(commands):
        for command in commands:
            dss.Text.Command(command)
        dss.Solution.Solve()
        assert dss.Solution.Converged()

    run(_opendss_circuit(net, initial) + ["Set ControlMode=OFF"])
    fixed = FastSolver(copy.deepcopy(net)).solve(injections)
    for b in net.bus.index:
        dss.Circuit.SetActiveBus(_opendss_bus(net, b))
        assert np.mean(dss.Bus.puVmagAngle()[0::2]) == pytest.approx(fixed.vm_pu[net.bus.index.get_loc(b)], abs=1e-4)
    commands = _opendss_circuit(net, initial)
    for reg in control.regulators:
        s = reg.settings
        commands.append(f"New RegControl.r{reg.row} transformer=t{reg.row} winding=2 vreg={s.v_set} band={s.bandwidth} "
                        f"ptratio={reg.pt} CTprim={s.ct_primary_a or 1} R={s.r_ldc if s.ct_primary_a else 0} "
                        f"X={s.x_ldc if s.ct_primary_a else 0} delay=0 maxtapchange={reg.tap_max - reg.tap_min}")
    run(commands + ["Set ControlMode=STATIC", "Set MaxControlIter=100"])
    at_opendss = FastSolver(copy.deepcopy(net))
    for reg in control.regulators:
        dss.Transformers.Name(f"t{reg.row}")
        dss.Transformers.Wdg(2)
        at_opendss.set_trafo_tap(reg.row, round((dss.Transformers.Tap() - 1) / reg.tap_step))
    control.reset()
    assert _out_of_band(control, control.solve(injections)) == []
    assert _out_of_band(control, at_opendss.solve(injections)) == []


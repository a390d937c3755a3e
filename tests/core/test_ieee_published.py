"""Each IEEE template against the reference node voltages, as phase averages.

The reference: OpenDSS's copies of the IEEE PES test feeders (repository dss-extensions/electricdss-tst,
``Version8/Distrib/IEEETestCases/13Bus/IEEE13Nodeckt.dss``, ``34Bus/ieee34Mod1.dss`` and
``123Bus/IEEE123Master.dss``) solved by OpenDSS (DSS C-API 0.15 through opendssdirect.py 0.9) with
the regulator taps fixed at the published final taps, as the cases' own alternate run scripts do
(``IEEE13Nodeckt.dss`` end, ``Run_IEEE34Mod1.dss``, ``Run_IEEE123Bus.DSS``): IEEE 13 10/8/11,
IEEE 34 Reg1 12/5/5 and Reg2 13/11/12, IEEE 123 Reg1 7, Reg2 -1, Reg3 0/-1, Reg4 8/1/5.  Each
entry: node, mean of its phase-to-neutral voltages (pu), number of phases.  These OpenDSS models
reproduce the IEEE published reports to about 0.003 pu (e.g. IEEE 13 node 632: 1.0267 here,
published 1.0210/1.0420/1.0174 -> 1.0268).

The templates are balanced equivalents with constant-power loads at the rounded phase-average taps,
so they are held to max |dV| <= 0.01 pu on three-phase nodes and 0.02 pu elsewhere, except for the
nodes in ``EXCEPTIONS`` (bound and reason given there, and in docs/networks.md).

ieee34's regulators under automatic control are checked against OpenDSS's own control run of the case
(``IEEE34_CONTROLLED``): taps and node voltages.
"""

from __future__ import annotations

import pandapower as pp
import pytest

from powergrid.controllers import TapControl
from powergrid.networks import TEMPLATES
from powergrid.solvers.base import Injections
from powergrid.solvers.fast import FastSolver


def _table(text):
    rows = (r.split() for r in text.replace("\n", "|").split("|") if r.strip())
    return {node: (float(v), int(n)) for node, v, n in rows}


REFERENCE = {
    "ieee13": _table("""
        611 0.9750 1|632 1.0267 3|633 1.0242 3|634 1.0038 3|645 1.0241 2|646 1.0222 2|650 0.9999 3
        652 0.9819 1|671 1.0072 3|675 1.0052 3|680 1.0072 3|684 0.9822 2|692 1.0072 3|RG60 1.0602 3"""),
    "ieee34": _table("""
        800 1.0500 3|802 1.0481 3|806 1.0469 3|808 1.0242 3|810 1.0297 1|812 0.9981 3|814 0.9774 3
        816 1.0213 3|818 1.0169 1|820 0.9932 1|822 0.9902 1|824 1.0123 3|826 1.0163 1|828 1.0116 3
        830 0.9945 3|832 1.0363 3|834 1.0314 3|836 1.0308 3|838 1.0297 1|840 1.0307 3|842 1.0314 3
        844 1.0311 3|846 1.0313 3|848 1.0313 3|850 1.0216 3|852 0.9642 3|854 0.9940 3|856 0.9986 1
        858 1.0341 3|860 1.0310 3|862 1.0308 3|864 1.0347 1|888 1.0001 3|890 0.9201 3"""),
    "ieee123": _table("""
        1 1.0358 3|2 1.0411 1|3 1.0332 1|4 1.0327 1|5 1.0319 1|6 1.0312 1|7 1.0302 3|8 1.0266 3|9 1.0145 1
        10 1.0061 1|11 1.0058 1|12 1.0380 1|13 1.0213 3|14 1.0065 1|15 1.0184 1|16 1.0174 1|17 1.0179 1
        18 1.0144 3|19 0.9977 1|20 0.9968 1|21 1.0139 3|22 1.0306 1|23 1.0135 3|24 1.0086 1|25 1.0131 3
        26 0.9997 2|27 0.9995 2|28 1.0130 3|29 1.0128 3|30 1.0127 3|31 1.0018 1|32 1.0014 1|33 0.9954 1
        34 1.0188 1|35 1.0123 3|36 1.0121 2|37 0.9945 1|38 1.0283 1|39 1.0279 1|40 1.0111 3|41 1.0098 1
        42 1.0099 3|43 1.0258 1|44 1.0090 3|45 0.9915 1|46 0.9911 1|47 1.0080 3|48 1.0077 3|49 1.0076 3
        50 1.0075 3|51 1.0074 3|52 1.0178 3|53 1.0161 3|54 1.0151 3|55 1.0150 3|56 1.0150 3|57 1.0123 3
        58 1.0301 1|59 1.0297 1|60 1.0064 3|61 1.0064 3|62 1.0051 3|63 1.0043 3|64 1.0028 3|65 1.0015 3
        66 1.0011 3|67 1.0338 3|68 1.0342 1|69 1.0324 1|70 1.0312 1|71 1.0305 1|72 1.0336 3|73 1.0323 1
        74 1.0304 1|75 1.0294 1|76 1.0336 3|77 1.0347 3|78 1.0350 3|79 1.0349 3|80 1.0365 3|81 1.0371 3
        82 1.0381 3|83 1.0391 3|84 1.0346 1|85 1.0334 1|86 1.0332 3|87 1.0329 3|88 1.0346 1|89 1.0328 3
        90 1.0268 1|91 1.0327 3|92 1.0376 1|93 1.0326 3|94 1.0330 1|95 1.0325 3|96 1.0258 1|97 1.0331 3
        98 1.0329 3|99 1.0326 3|100 1.0325 3|101 1.0325 3|102 1.0319 1|103 1.0303 1|104 1.0285 1
        105 1.0321 3|106 1.0291 1|107 1.0276 1|108 1.0318 3|109 1.0270 1|110 1.0250 1|111 1.0243 1
        112 1.0243 1|113 1.0222 1|114 1.0218 1|135 1.0144 3|149 1.0437 3|150 1.0000 3|152 1.0213 3
        160 1.0064 3|197 1.0331 3|250 1.0127 3|300 1.0318 3|450 1.0325 3|610 1.0064 3|160r 1.0355 3
        25r 1.0001 2|9r 1.0082 1"""),
}

#: (template, node) -> (bound pu, reason)
EXCEPTIONS = {
    ("ieee13", "611"): (0.03, "phase C lateral of 671, whose phase C sits 0.03 pu below the phase average "
                              "(the published loads are unbalanced); a balanced model has only the average"),
    ("ieee13", "684"): (0.03, "phases A and C of 671, 0.017 and 0.029 pu below its phase average (as for 611)"),
    ("ieee34", "890"): (0.025, "the published 450 kW load at 890 is constant current (D-I) at about 0.92 pu, "
                               "so it draws 8 % less than the constant-power equivalent used here"),
    ("ieee34", "888"): (0.015, "upstream of 890 through XFM-1 (as for 890)"),
    ("ieee123", "58"): (0.025, "phase B lateral 57-58-59, on the phase that is highest at 57"),
    ("ieee123", "59"): (0.025, "phase B lateral 57-58-59 (as for 58)"),
}


@pytest.mark.parametrize("name", list(REFERENCE))
def test_template_matches_reference_voltages(name):
    net = TEMPLATES[name]()
    pp.runpp(net, numba=False)
    ref = REFERENCE[name]
    assert set(net.bus.name) == set(ref)
    failures = []
    for node, vm in zip(net.bus.name, net.res_bus.vm_pu):
        v_ref, phases = ref[node]
        bound = EXCEPTIONS.get((name, node), (0.01 if phases == 3 else 0.02,))[0]
        if not abs(vm - v_ref) <= bound:
            failures.append(f"{node}: {vm:.4f} vs {v_ref:.4f} ({phases} phases, bound {bound})")
    assert not failures, failures


def test_exceptions_are_needed():
    """Every listed exception really exceeds the general bound (no stale entries)."""
    for (name, node), _ in EXCEPTIONS.items():
        net = TEMPLATES[name]()
        pp.runpp(net, numba=False)
        vm = net.res_bus.vm_pu[net.bus.name == node].iloc[0]
        v_ref, phases = REFERENCE[name][node]
        assert abs(vm - v_ref) > (0.01 if phases == 3 else 0.02), (name, node)


#: OpenDSS's ieee34Mod1 solved with its own RegControls on (the first run of ``Run_IEEE34Mod1.dss``: compile, solve;
#: published settings, 15 s delay, three single-phase controls per bank), same OpenDSS as ``REFERENCE``: final taps
#: Reg1 14/4/5 and Reg2 13/13/13 (published 12/5/5 and 13/11/12) and node voltages (phase averages, pu).
IEEE34_CONTROLLED_TAPS = {"Reg1": (14, 4, 5), "Reg2": (13, 13, 13)}
IEEE34_CONTROLLED = _table("""
    800 1.0500 3|802 1.0481 3|806 1.0469 3|808 1.0240 3|810 1.0297 1|812 0.9978 3|814 0.9769 3
    816 1.0226 3|818 1.0276 1|820 1.0042 1|822 1.0012 1|824 1.0136 3|826 1.0101 1|828 1.0129 3
    830 0.9956 3|832 1.0435 3|834 1.0386 3|836 1.0379 3|838 1.0345 1|840 1.0379 3|842 1.0385 3
    844 1.0383 3|846 1.0384 3|848 1.0385 3|850 1.0229 3|852 0.9652 3|854 0.9952 3|856 0.9921 1
    858 1.0412 3|860 1.0381 3|862 1.0379 3|864 1.0463 1|888 1.0073 3|890 0.9273 3""")


def test_ieee34_regulators_settle_where_opendss_regcontrol_does():
    """ieee34's gang regulators under automatic control (published settings, base load) against OpenDSS's own control
    run: each within 2 taps of the phase average of OpenDSS's taps (one tap for where in the band each control stops,
    one for the gang reading the phase-average current; measured Reg1 9 vs 7.67, Reg2 12 vs 13), node voltages within
    0.01 pu on three-phase nodes and 0.02 pu elsewhere (measured 0.0081 at 850-854 and 890, 0.0111 at 826)."""
    net = TEMPLATES["ieee34"]()
    control = TapControl.from_net(FastSolver(net))
    control.reset()
    result = control.solve(Injections(net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy(),
                                      net.sgen.p_mw.to_numpy(), net.sgen.q_mvar.to_numpy()))
    assert result.converged
    for name, taps in IEEE34_CONTROLLED_TAPS.items():
        assert abs(control.taps[name] - sum(taps) / len(taps)) <= 2, (name, control.taps[name], taps)
    failures = []
    for node, vm in zip(net.bus.name, result.vm_pu):
        v_ref, phases = IEEE34_CONTROLLED[node]
        if not abs(vm - v_ref) <= (0.01 if phases == 3 else 0.02):
            failures.append(f"{node}: {vm:.4f} vs {v_ref:.4f} ({phases} phases)")
    assert not failures, failures


#: OpenDSS's ieee34Mod1 at the fixed published taps (the ``REFERENCE`` solve, same OpenDSS): the power into 800 and
#: the losses (``Circuit.TotalPower``, ``Circuit.Losses``), kW. Re-derived at 7ba7026 with opendssdirect.py (review
#: r44a's q1_physics.py): 2,030.8 kW in, 270.1 kW of losses (34.3 kvar), 1,760.7 kW drawn by the loads. The case's
#: substation transformer is stiff there (25 MVA, X 0.01 %), so its losses are negligible on both sides.
IEEE34_TOTALS_KW = {"input": 2030.8, "losses": 270.1}


def test_ieee34_input_power_and_losses_match_opendss():
    """The balanced template's power into 800 within 2 % and its losses (lines and regulators) within 8 % of OpenDSS's.

    Measured at 7ba7026: 2,052.6 kW in (+1.1 %) and 283.6 kW of losses (+5.0 %); the loads draw 1,769.0 kW against
    1,760.7 (here constant power; the published constant-current and constant-impedance loads draw less at their low
    voltages). Each of these fails here (losses): every line's resistance 3 % higher (296.3 kW, +9.7 %), the loads 5 %
    higher (326.7 kW), the capacitors out (401.6 kW), the regulators' reactance tripled (307.0 kW); at fixed taps the
    node voltages above fail on them too, so this is a second check, on the energy the feeder loses (which the bills
    pay), not a more sensitive one."""
    net = TEMPLATES["ieee34"]()
    pp.runpp(net, numba=False)
    p_in = net.res_ext_grid.p_mw.sum() * 1e3
    losses = (net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()) * 1e3
    assert abs(p_in / IEEE34_TOTALS_KW["input"] - 1) <= 0.02, p_in
    assert abs(losses / IEEE34_TOTALS_KW["losses"] - 1) <= 0.08, losses

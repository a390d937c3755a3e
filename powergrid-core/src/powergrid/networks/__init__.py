"""Network templates: functions returning a fresh pandapower net.

Buses carry readable names (used as ``bus:`` in YAML) and, where a template has
microgrids, the pandapower ``zone`` column names them (``mg1``, ``mg2``…).
"""

from __future__ import annotations

import pandapower.networks as pn

from powergrid.controllers import RegulatorSettings, add_regulators
from powergrid.networks.ieee import ieee13, ieee34, ieee34_3mg, ieee123


def case33bw():
    """Baran & Wu 33-bus 12.66 kV radial distribution feeder (pandapower's ``case33bw``)."""
    return pn.case33bw()


#: OLTC of the two 110/20 kV 25 MVA CIGRE MV transformers: (tap min, tap max, step %).
CIGRE_MV_TAPS = (-9, 9, 1.5)
#: Their relay (120 V base): hold 1.02 pu (122.4 V) ± 1.1 V, rising with load through LDC.
CIGRE_MV_RELAY = {"v_set": 122.4, "bandwidth": 2.2, "ct_primary_a": 800.0, "r_ldc": 2.4, "x_ldc": 1.2,
                  "delay_ticks": 1}


def cigre_mv():
    """CIGRE TF C6.04.02 medium-voltage benchmark, 20 kV, without DER (pandapower), with
    on-load tap changers under automatic control on its two 110/20 kV 25 MVA transformers.

    The benchmark gives the transformers without tap changers; HV/MV supply transformers
    of this size carry an HV-side OLTC of typically ±9 × 1.5 % (±13.5 %; e.g. the
    110/20 kV 25 MVA types of pandapower's standard library, and SimBench's HV/MV
    transformers). Relay settings (120 V base, :data:`CIGRE_MV_RELAY`): band centre
    122.4 V (1.02 pu), bandwidth 2.2 V (1.83 %, more than one 1.5 % step of 1.8 V, so a
    move lands inside the band), one tick of delay (a 15-min tick is far longer than the
    30–120 s of a real relay: a deviation lasting one tick is tolerated). Line-drop
    compensation, CT 800 A (rated current 25 MVA / (√3·20 kV) = 722 A), R 2.4 V, X 1.2 V:
    at rated current the busbar target rises by about 2 % (to about 1.04 pu), which
    offsets the 6–7 % drop to the end of feeder 1 (bus 11) at the published peak load.
    Taps start at neutral (0); the first solve of an episode settles them.
    """
    net = pn.create_cigre_network_mv(with_der=False)
    tap_min, tap_max, step = CIGRE_MV_TAPS
    net.trafo["tap_side"] = "hv"
    net.trafo["tap_neutral"] = 0
    net.trafo["tap_min"], net.trafo["tap_max"], net.trafo["tap_step_percent"] = tap_min, tap_max, step
    net.trafo["tap_pos"] = 0
    net.trafo["tap_step_degree"] = 0.0
    net.trafo["tap_changer_type"] = "Ratio"
    net.trafo["oltc"] = True
    add_regulators(net, [RegulatorSettings(str(name), **CIGRE_MV_RELAY) for name in net.trafo.name])
    return net


#: No-load (de-energised) taps of the CIGRE LV 20/0.4 kV transformers: (tap min, tap max, step %, set position).
CIGRE_LV_TAPS = (-2, 2, 2.5, -2)


def cigre_lv():
    """CIGRE TF C6.04.02 low-voltage benchmark, 0.4 kV (pandapower), with the no-load taps
    of its three 20/0.4 kV transformers set to boost the LV side.

    Distribution transformers carry an HV-side de-energised tap changer of ±2 × 2.5 %
    (:data:`CIGRE_LV_TAPS`), set once for the feeder's drop. The benchmark gives none: with
    the MV side at 1.0 pu the commercial feeder's end (Bus C12) reads 0.912 pu at the
    published peak. Set at −2 (HV winding −5 %, LV +5.3 %) the LV buses stay inside
    0.95–1.05 pu from 20 % of the peak (max 1.049 pu) to the peak (min 0.970 pu).
    The taps are fixed (no automatic control), as a de-energised changer is.
    """
    net = pn.create_cigre_network_lv()
    tap_min, tap_max, step, pos = CIGRE_LV_TAPS
    net.trafo["tap_side"] = "hv"
    net.trafo["tap_neutral"] = 0
    net.trafo["tap_min"], net.trafo["tap_max"], net.trafo["tap_step_percent"] = tap_min, tap_max, step
    net.trafo["tap_pos"] = pos
    net.trafo["tap_step_degree"] = 0.0
    net.trafo["tap_changer_type"] = "Ratio"
    return net


TEMPLATES = {
    "case33bw": case33bw,
    "cigre_mv": cigre_mv,
    "cigre_lv": cigre_lv,
    "ieee13": ieee13,
    "ieee34": ieee34,
    "ieee123": ieee123,
    "ieee34_3mg": ieee34_3mg,
}

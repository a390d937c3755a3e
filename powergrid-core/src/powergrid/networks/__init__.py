"""Network templates: functions returning a fresh pandapower net.

Buses carry readable names (used as ``bus:`` in YAML) and, where a template has
microgrids, the pandapower ``zone`` column names them (``mg1``, ``mg2``…).
"""

from __future__ import annotations

import pandapower.networks as pn

from powergrid.networks.ieee import ieee13, ieee34, ieee34_3mg, ieee123


def case33bw():
    """Baran & Wu 33-bus 12.66 kV radial distribution feeder (pandapower's ``case33bw``)."""
    return pn.case33bw()


def cigre_mv():
    """CIGRE TF C6.04.02 medium-voltage benchmark, 20 kV, without DER (pandapower)."""
    return pn.create_cigre_network_mv(with_der=False)


def cigre_lv():
    """CIGRE TF C6.04.02 low-voltage benchmark, 0.4 kV (pandapower)."""
    return pn.create_cigre_network_lv()


TEMPLATES = {
    "case33bw": case33bw,
    "cigre_mv": cigre_mv,
    "cigre_lv": cigre_lv,
    "ieee13": ieee13,
    "ieee34": ieee34,
    "ieee123": ieee123,
    "ieee34_3mg": ieee34_3mg,
}

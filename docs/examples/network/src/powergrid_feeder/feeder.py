"""A radial feeder whose size and loading come from the scenario's ``network.params``."""

from __future__ import annotations

import pandapower as pp


def radial_feeder(n_buses: int = 6, vn_kv: float = 12.47, length_km: float = 1.0, load_mw: float = 0.3,
                  vm_pu: float = 1.02):
    """``n_buses`` buses ``"1"``…``"n"`` in a row behind a slack at ``"0"`` (``vm_pu``), ``length_km``
    of 336 ACSR between neighbours (0.19 + j0.38 ohm/km), ``load_mw`` at 0.95 power factor on each;
    the last two buses form zone ``"mg"``, the rest zone ``"feeder"``."""
    if n_buses < 2:
        raise ValueError(f"radial_feeder needs n_buses ≥ 2, got {n_buses}")
    net = pp.create_empty_network(name=f"radial feeder, {n_buses} buses", f_hz=60.0)
    buses = [pp.create_bus(net, vn_kv=vn_kv, name=str(i), zone="feeder" if i < n_buses - 1 else "mg")
             for i in range(n_buses + 1)]
    pp.create_ext_grid(net, buses[0], vm_pu=vm_pu)
    for a, b in zip(buses, buses[1:]):
        pp.create_line_from_parameters(net, a, b, length_km, r_ohm_per_km=0.19, x_ohm_per_km=0.38,
                                       c_nf_per_km=10.0, max_i_ka=0.53, name=f"{a}-{b}")
        pp.create_load(net, b, p_mw=load_mw, q_mvar=load_mw * 0.329, name=f"load {b}")
    return net

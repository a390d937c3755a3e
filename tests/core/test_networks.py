"""Network templates: build, solve at base load, check structure and a few published numbers."""

from __future__ import annotations

import math

import pandapower as pp
import pandapower.topology as top
import pytest

from powergrid.networks import TEMPLATES
from powergrid.networks.ieee import MG_SITES

FT_KM = 0.0003048
MILE_KM = 1.609344


@pytest.fixture(scope="module")
def solved():
    """Every template built once and solved at base load."""
    nets = {}
    for name, build in TEMPLATES.items():
        net = build()
        pp.runpp(net, numba=False)
        nets[name] = net
    return nets


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_converges_with_sane_voltages(solved, name):
    net = solved[name]
    assert net.converged
    supplied = net.res_bus.index.difference(list(top.unsupplied_buses(net)))
    vm = net.res_bus.vm_pu.loc[supplied]
    assert vm.notna().all()
    assert vm.min() >= 0.85, (name, net.bus.name[vm.idxmin()], vm.min())
    assert vm.max() <= 1.10, (name, net.bus.name[vm.idxmax()], vm.max())


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_fresh_net_each_call(solved, name):
    fresh = TEMPLATES[name]()
    assert fresh is not solved[name] and fresh.bus is not solved[name].bus
    assert len(fresh.bus) == len(solved[name].bus) and fresh.res_bus.empty


@pytest.mark.parametrize("name", ["ieee13", "ieee34", "ieee123", "ieee34_3mg"])
def test_ieee_names_zones_ratings(solved, name):
    net = solved[name]
    assert net.bus.name.is_unique
    assert net.bus.zone.notna().all()
    assert (net.line.max_i_ka > 0).all() and (net.trafo.sn_mva > 0).all()
    # ratings give sane loadings (the published XFM-1s of IEEE 13/34 run at about their rating)
    assert net.res_line.loading_percent.max() < 100
    assert net.res_trafo.loading_percent.max() < 115


IEEE13_NODES = {"650", "632", "633", "634", "645", "646", "671", "680", "684", "611", "652", "692", "675"}
IEEE123_REG_NODES = {"9r", "25r", "160r"}  # regulated sides of regulators 2-4 (149 is regulator 1's)
IEEE34_NODES = {str(n) for n in (800, 802, 806, 808, 810, 812, 814, 816, 818, 820, 822, 824, 826, 828, 830, 832,
                                 834, 836, 838, 840, 842, 844, 846, 848, 850, 852, 854, 856, 858, 860, 862, 864,
                                 888, 890)}


def test_ieee13_structure_and_published_load(solved):
    net = solved["ieee13"]
    assert set(net.bus.name) == IEEE13_NODES | {"RG60"} and len(net.bus) == 14
    assert set(net.bus.zone) == {"feeder"}
    # published total: spot loads 3266 kW / 1986 kvar + distributed 632-671 200 kW / 116 kvar
    assert net.load.p_mw.sum() == pytest.approx(3.466, abs=1e-9)
    assert net.load.q_mvar.sum() == pytest.approx(2.102, abs=1e-9)
    assert net.shunt.q_mvar.sum() == pytest.approx(-0.7)
    xfm = net.trafo[net.trafo.name == "XFM-1"].iloc[0]
    assert (net.bus.name[xfm.hv_bus], net.bus.name[xfm.lv_bus]) == ("633", "634")
    reg = net.trafo[net.trafo.name == "Reg"].iloc[0]
    assert (net.bus.name[reg.hv_bus], net.bus.name[reg.lv_bus], reg.tap_pos) == ("650", "RG60", 10)
    assert net.regulator.to_dict("records")[0] == {
        "trafo": "Reg", "v_set": 122.0, "bandwidth": 2.0, "pt_ratio": 20.0, "ct_primary_a": 700.0,
        "r_ldc": 3.0, "x_ldc": 9.0, "delay_ticks": 0, "max_taps": 16, "phases": 3}
    sw = net.switch.iloc[0]
    assert {net.bus.name[sw.bus], net.bus.name[sw.element]} == {"671", "692"} and sw.closed


def test_ieee13_line_632_671_hand_check():
    """Config 601 (ohm/mile): diag R .3465 .3375 .3414, X 1.0179 1.0478 1.0348; off-diag R .1560 .1580 .1535,
    X .5017 .4236 .3849.  Z1 = Zs - Zm = (0.341800 - 0.155833) + j(1.033500 - 0.436733) = 0.185967 + j0.596767
    ohm/mile; over 2000 ft (0.378788 mile): R = 0.070442 ohm, X = 0.226048 ohm."""
    r1 = (0.3465 + 0.3375 + 0.3414) / 3 - (0.1560 + 0.1580 + 0.1535) / 3
    x1 = (1.0179 + 1.0478 + 1.0348) / 3 - (0.5017 + 0.4236 + 0.3849) / 3
    miles = 2000 / 5280
    assert r1 * miles == pytest.approx(0.070442, abs=1e-6)
    assert x1 * miles == pytest.approx(0.226048, abs=1e-6)
    net = TEMPLATES["ieee13"]()
    line = net.line[net.line.name == "632-671"].iloc[0]
    assert line.length_km == pytest.approx(2000 * FT_KM)
    assert line.r_ohm_per_km * line.length_km == pytest.approx(0.070442, abs=1e-6)
    assert line.x_ohm_per_km * line.length_km == pytest.approx(0.226048, abs=1e-6)
    # B1 = Bs - Bm = 5.966033 + 1.333333 uS/mile -> C = B1 / (2 pi 60) per km
    b1 = (6.2998 + 5.9597 + 5.6386) / 3 + (1.9958 + 1.2595 + 0.7417) / 3
    assert line.c_nf_per_km == pytest.approx(b1 / MILE_KM / (2 * math.pi * 60) * 1e3)


def test_lateral_equivalents_hand_check():
    """One-phase 816-818 (config 302, Zs = 2.7995 + j1.4855 ohm/mile, 1710 ft = 0.323864 mile):
    3 Zs -> R = 2.719969, X = 1.443298 ohm; B = Bs/3 = 1.408367 uS/mile.  Two-phase 632-645 (config 603,
    Zs = 1.3266 + j1.3520, Zm = 0.2066 + j0.4591 ohm/mile, 500 ft = 0.094697 mile):
    1.5 (Zs - Zm/2) = 1.834950 + j1.683675 ohm/mile -> R = 0.173764, X = 0.159439 ohm."""
    line = TEMPLATES["ieee34"]().line.set_index("name").loc["816-818"]
    assert line.r_ohm_per_km * line.length_km == pytest.approx(2.719969, abs=1e-6)
    assert line.x_ohm_per_km * line.length_km == pytest.approx(1.443298, abs=1e-6)
    assert line.c_nf_per_km == pytest.approx(1.408367 / MILE_KM / (2 * math.pi * 60) * 1e3, rel=1e-6)
    line = TEMPLATES["ieee13"]().line.set_index("name").loc["632-645"]
    assert line.r_ohm_per_km * line.length_km == pytest.approx(0.173764, abs=1e-6)
    assert line.x_ohm_per_km * line.length_km == pytest.approx(0.159439, abs=1e-6)


def test_ieee34_structure(solved):
    net = solved["ieee34"]
    assert set(net.bus.name) == IEEE34_NODES and len(net.bus) == 34
    assert net.load.p_mw.sum() == pytest.approx(1.769) and net.load.q_mvar.sum() == pytest.approx(1.044)
    lv = set(net.bus.name[net.bus.vn_kv == 4.16])
    assert lv == {"888", "890"}
    assert set(net.trafo.name) == {"Reg1", "Reg2", "XFM-1"}


def test_ieee123_structure(solved):
    net = solved["ieee123"]
    names = set(net.bus.name)
    assert len(net.bus) >= 114 and {str(n) for n in range(1, 115)} | IEEE123_REG_NODES <= names
    assert list(net.regulator.trafo) == ["Reg1", "Reg2", "Reg3", "Reg4"]
    assert list(net.regulator.phases) == [3, 1, 2, 3]
    assert net.load.p_mw.sum() == pytest.approx(3.490) and len(net.load) == 85
    # radial and connected with the normal switch states; 54-94 open
    assert not top.unsupplied_buses(net)
    closed = int(net.switch.closed.sum())
    assert len(net.line) + len(net.trafo) + closed == len(net.bus) - 1
    sw = net.switch[~net.switch.closed].iloc[0]
    assert {net.bus.name[sw.bus], net.bus.name[sw.element]} == {"54", "94"}


def test_ieee34_3mg_structure_and_balance(solved):
    net = solved["ieee34_3mg"]
    assert net.bus.name.is_unique
    feeder = net.bus[net.bus.zone == "feeder"]
    assert set(feeder.name) == IEEE34_NODES
    assert len(net.bus) == 34 + 3 * 13
    for mg, site in MG_SITES:
        buses = net.bus[net.bus.zone == mg]
        assert set(buses.name) == {f"{mg}.{n}" for n in IEEE13_NODES}
        pcc = net.trafo[net.trafo.name == f"{mg}.pcc"]
        assert len(pcc) == 1
        assert net.bus.name[pcc.hv_bus.iloc[0]] == site
        assert net.bus.name[pcc.lv_bus.iloc[0]] == f"{mg}.650"
        mg_load = net.load.p_mw[net.load.bus.isin(buses.index)].sum()
        assert mg_load == pytest.approx(1.0, abs=1e-6)
    assert len(net.ext_grid) == 1 and net.bus.name[net.ext_grid.bus.iloc[0]] == "800"
    p_sub, p_load = net.res_ext_grid.p_mw.sum(), net.res_load.p_mw.sum()
    losses = net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()
    assert p_sub == pytest.approx(p_load + losses, abs=1e-4)
    assert 0 < losses < 0.10 * p_load

"""CHP: coupled electric and heat output, fuel and backup-boiler cost."""

from __future__ import annotations

import numpy as np
import pytest

from tests.devices.helpers import context, make


def test_full_load_covers_heat_demand() -> None:
    chp = make("CHP", p_max_mw=0.4, eta_e=0.35, eta_th=0.45, fuel_price=30.0, om_cost=10.0, ua_kw_per_c=30.0,
               t_base_c=18.0)
    chp.step(np.array([1.0]), context(temperature=8.0))
    fuel = 0.4 / 0.35
    assert chp.heat_mw == pytest.approx(0.45 * fuel) and chp.demand_mw == pytest.approx(0.3)
    assert chp.cost == pytest.approx((30.0 * fuel + 10.0 * 0.4) * 0.25)


def test_off_pays_the_backup_boiler_and_min_load_projects() -> None:
    chp = make("CHP", min_load=0.5, boiler_cost=40.0, ua_kw_per_c=30.0)
    chp.step(np.array([0.2]), context(temperature=8.0))
    assert chp.u == 0.0 and chp.projection == pytest.approx(0.2)
    assert chp.cost == pytest.approx(40.0 * 0.3 * 0.25)


def test_heat_led_rule() -> None:
    chp = make("CHP", p_max_mw=0.4, eta_e=0.35, eta_th=0.45, ua_kw_per_c=30.0, min_load=0.5)
    u = chp.rule_action(context(temperature=8.0))[0]
    assert u == pytest.approx(0.3 / (0.45 / 0.35 * 0.4), rel=1e-6)

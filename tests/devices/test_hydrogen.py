"""Electrolyzer and FuelCell: efficiency curves, minimum load, tank limits, shared tank, cost."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid_devices.hydrogen import LHV_KWH_PER_KG
from tests.devices.helpers import at, context, make


def test_electrolyzer_production_over_steps() -> None:
    el = make("Electrolyzer", p_max_mw=1.0, tank_capacity_kg=100.0, tank_init=0.5, h2_price=5.0)
    ctx = context()
    kg = 1000.0 * 0.5 * 0.65 / LHV_KWH_PER_KG * 0.25
    for t in range(3):
        el.step(np.array([0.5]), at(ctx, t))
        assert el.tank.level_kg == pytest.approx(50.0 + (t + 1) * kg)
    assert el.p_mw == -0.5 and el.cost == pytest.approx(-5.0 * kg)


@pytest.mark.parametrize(("u", "applied"), [(0.04, 0.0), (0.07, 0.1), (0.3, 0.3)])
def test_electrolyzer_minimum_load(u: float, applied: float) -> None:
    el = make("Electrolyzer", min_load=0.1)
    el.step(np.array([u]), context())
    assert el.u == pytest.approx(applied) and el.projection == pytest.approx(abs(u - applied))


def test_electrolyzer_stops_at_a_full_tank() -> None:
    el = make("Electrolyzer", tank_capacity_kg=100.0, tank_init=0.99)  # 1 kg of room
    el.step(np.array([1.0]), context())
    assert el.h2_kg == pytest.approx(1.0, abs=1e-6) and el.tank.level_kg <= 100.0
    el.step(np.array([1.0]), context())
    assert el.u == 0.0 and el.projection == 1.0


def test_fuel_cell_consumption_and_cost() -> None:
    fc = make("FuelCell", p_max_mw=0.5, h2_price=4.0, tank_capacity_kg=100.0, tank_init=0.5)
    fc.step(np.array([1.0]), context())
    kg = 1000.0 * 0.5 / (0.45 * LHV_KWH_PER_KG) * 0.25
    assert fc.h2_kg == pytest.approx(kg) and fc.tank.level_kg == pytest.approx(50.0 - kg)
    assert fc.p_mw == 0.5 and fc.cost == pytest.approx(4.0 * kg)


def test_fuel_cell_limited_by_hydrogen() -> None:
    fc = make("FuelCell", tank_capacity_kg=100.0, tank_init=0.0)
    fc.step(np.array([1.0]), context())
    assert fc.p_mw == 0.0 and fc.projection == 1.0 and fc.safety == 0.0


def test_shared_tank() -> None:
    net: dict = {}
    el = make("Electrolyzer", tank="h2", tank_init=0.2)
    fc = make("FuelCell", tank="h2", tank_init=0.9)
    el.attach(net, 0)
    fc.attach(net, 0)
    assert el.tank is fc.tank
    rng = np.random.default_rng(0)
    el.reset(rng)
    fc.reset(rng)  # not the owner: keeps the level
    assert el.tank.level_kg == pytest.approx(20.0)
    el.step(np.array([1.0]), context())
    fc.step(np.array([0.5]), context())
    assert fc.tank.level_kg == pytest.approx(20.0 + el.h2_kg - fc.h2_kg)
    with pytest.raises(ValueError, match="tank 'h2'"):
        make("FuelCell", tank="h2", tank_capacity_kg=50.0).attach(net, 0)


def test_devices_sharing_a_tank_value_its_hydrogen_alike() -> None:
    """A kg credited at 4 $/kg by the electrolyzer and burnt free by a fuel cell at the default h2_price 0 made
    cycling at a constant electricity price pay (+223 $ in 12 h at 50 $/MWh): a mismatch is a config error."""
    net: dict = {}
    make("Electrolyzer", tank="h2", h2_price=4.0).attach(net, 0)
    with pytest.raises(ValueError, match="h2_price"):
        make("FuelCell", tank="h2").attach(net, 0)
    make("FuelCell", tank="h2", h2_price=4.0).attach(net, 0)


@pytest.mark.parametrize("price", [50.0, -5.0])
def test_at_a_steady_price_neither_hydrogen_rule_runs(price: float) -> None:
    # a steady price is its own mean, inside the band: with (1 ∓ band)·mean at −5 $/MWh both ran at full load (the
    # fuel cell burning hydrogen to export at a negative price while the electrolyzer made it)
    ctx = context(price=price)
    electrolyzer, fuel_cell = make("Electrolyzer"), make("FuelCell")
    for device in (electrolyzer, fuel_cell):
        for t in range(4):
            device.step(device.rule_action(at(ctx, t)), ctx)
            assert device.u == 0.0, type(device).__name__
    ctx.price = price - 0.2 * abs(price)  # cheap: below mean − band·|mean| of the 5 prices
    assert electrolyzer.rule_action(ctx)[0] == 1.0 and fuel_cell.rule_action(ctx)[0] == 0.0
    ctx.price = price + 0.2 * abs(price)  # dear
    assert electrolyzer.rule_action(ctx)[0] == 0.0 and fuel_cell.rule_action(ctx)[0] == 1.0

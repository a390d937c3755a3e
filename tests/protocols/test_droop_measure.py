"""``droop`` with ``measure: pcc`` measures the imbalance at the participants' PCC meters (GridConnections): device
participants with no GridConnection among them gave no meter, so the imbalance was silently the units' own share
(the PCC import read as 0 MW every tick). Now one configuration error at ``horizontal[i]``."""

from __future__ import annotations

import pytest

from powergrid.config import EnvConfig
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ConfigError
from tests.devices.test_grid_connection import SITE as GRID_SITE

pytest.importorskip("powergrid_devices", reason="the site's ESS and PV come with powergrid-devices")

# tests/devices' one-microgrid site on cigre_mv (mg: ess, pv and its meter pcc at Line 4-5), droop after it
SITE = GRID_SITE.replace("PCC_BUS", "Bus 4").replace("ELEMENT", "line, name: Line 4-5") + "horizontal:\n"


def _env(droop: str) -> MultiAgentPowerGridEnv:
    return MultiAgentPowerGridEnv(EnvConfig.from_text(SITE + f"  - {{type: droop, {droop}}}\n", file="site.yaml"))


@pytest.mark.parametrize("params", ["", ", params: {measure: pcc}"], ids=["default", "explicit"])
def test_device_participants_without_a_meter_are_refused_under_measure_pcc(params):
    with pytest.raises(ConfigError) as caught:
        _env(f"participants: [ess, pv]{params}")
    assert str(caught.value) == (
        "site.yaml:9 horizontal[0]: params.measure: pcc measures the imbalance at the participants' PCC meters, expected "
        "a GridConnection among the participants or below a participating grid agent (or measure: ext_grid), got none "
        "among ess, pv")


@pytest.mark.parametrize("droop", ["participants: [ess, pv, pcc]", "participants: [ess, pv], params: {measure: ext_grid}"])
def test_a_meter_or_the_slack_measures(droop):
    proto = _env(droop).scenario.horizontal[0]
    assert [d.id for d in proto.units] == ["ess"]
    assert [m is not None for m in proto.meters] == ([False, False, True] if "pcc" in droop else [False, False])

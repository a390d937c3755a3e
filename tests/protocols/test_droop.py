"""P–f and Q–V droop laws, and the nominal frequency taken from the network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from powergrid.env import MultiAgentPowerGridEnv
from powergrid_protocols.droop import pf_droop, qv_droop

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_pf_droop_shares_in_proportion_to_rating_over_droop():
    share = pf_droop(0.6, [1.0, 2.0, 3.0], [0.05, 0.05, 0.05], f0_hz=60.0)
    np.testing.assert_allclose(share.delta_p_mw, [0.1, 0.2, 0.3])
    assert share.delta_f_hz == pytest.approx(-0.6 / (6.0 / (0.05 * 60.0)))
    sat = pf_droop(0.6, [1.0, 2.0, 3.0], [0.05, 0.05, 0.05], up_mw=[0.05, 1, 1])
    assert sat.delta_p_mw.sum() == pytest.approx(0.6) and sat.delta_p_mw[0] == pytest.approx(0.05)
    assert sat.delta_p_mw[1] / sat.delta_p_mw[2] == pytest.approx(2 / 3)


def test_the_frequency_deviation_depends_on_the_nominal_frequency():
    # three 0.6 MW units at 5 % droop: K = 0.6/(0.05·f0) each, ΣK = 3·0.6/(0.05·60) = 0.6 MW/Hz at 60 Hz
    # a 0.3 MW shortfall gives Δf = −0.3/0.6 = −0.5 Hz at 60 Hz; at 50 Hz ΣK = 0.72 MW/Hz and Δf = −0.4167 Hz
    at60 = pf_droop(0.3, [0.6] * 3, [0.05] * 3, f0_hz=60.0)
    at50 = pf_droop(0.3, [0.6] * 3, [0.05] * 3, f0_hz=50.0)
    assert at60.delta_f_hz == pytest.approx(-0.5)
    assert at50.delta_f_hz == pytest.approx(-0.3 / 0.72)
    np.testing.assert_allclose(at60.delta_p_mw, [0.1, 0.1, 0.1])  # the split is the same, Δf is not


def test_qv_droop():
    np.testing.assert_allclose(qv_droop(np.array([0.98, 1.0, 1.03, 1.2]), np.ones(4), 0.05), [0.4, 0, -0.6, -1.0])


def _droop_config(**params):
    data = yaml.safe_load((CONFIGS / "droop.yaml").read_text())
    data["horizontal"][0]["params"].update(params)
    return data


def test_the_droop_example_runs_at_the_feeders_60_hz():
    env = MultiAgentPowerGridEnv.from_config(CONFIGS / "droop.yaml")
    assert env.scenario.net.f_hz == 60.0
    proto = env.scenario.horizontal[0]
    assert proto.params.f0_hz == 60.0 and proto.f0_hz == 60.0
    # left out, f0 follows the network
    data = _droop_config()
    del data["horizontal"][0]["params"]["f0_hz"]
    assert MultiAgentPowerGridEnv.from_config(data).scenario.horizontal[0].f0_hz == 60.0


def test_a_nominal_frequency_other_than_the_networks_is_a_config_error():
    with pytest.raises(Exception, match=r"horizontal\[0\].*f0_hz.*60 Hz, got 50 Hz"):
        MultiAgentPowerGridEnv.from_config(_droop_config(f0_hz=50.0))

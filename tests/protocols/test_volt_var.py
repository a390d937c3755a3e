"""Volt-var (IEEE 1547-2018 Category B) and droop laws."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid_protocols.curves import IEEE1547_CAT_B, check_curve, pf_droop, qv_droop, volt_var_q


@pytest.mark.parametrize("v, q", [(0.92, 0.44), (0.98, 0.0), (1.00, 0.0), (1.02, 0.0), (1.08, -0.44),
                                  (0.80, 0.44), (1.20, -0.44), (0.95, 0.22), (1.05, -0.22)])
def test_category_b_breakpoints_and_saturation(v, q):
    assert float(volt_var_q(v)) == pytest.approx(q, abs=1e-12)


def test_the_standard_curve_values():
    assert IEEE1547_CAT_B == ((0.92, 0.44), (0.98, 0.0), (1.02, 0.0), (1.08, -0.44))
    check_curve(IEEE1547_CAT_B)
    with pytest.raises(ValueError):
        check_curve(((0.92, -0.44), (0.98, 0), (1.02, 0), (1.08, 0.44)))


def test_pf_droop_shares_in_proportion_to_rating_over_droop():
    share = pf_droop(0.6, [1.0, 2.0, 3.0], [0.05, 0.05, 0.05], f0_hz=60.0)
    np.testing.assert_allclose(share.delta_p_mw, [0.1, 0.2, 0.3])
    assert share.delta_f_hz == pytest.approx(-0.6 / (6.0 / (0.05 * 60.0)))
    sat = pf_droop(0.6, [1.0, 2.0, 3.0], [0.05, 0.05, 0.05], up_mw=[0.05, 1, 1])
    assert sat.delta_p_mw.sum() == pytest.approx(0.6) and sat.delta_p_mw[0] == pytest.approx(0.05)
    assert sat.delta_p_mw[1] / sat.delta_p_mw[2] == pytest.approx(2 / 3)


def test_qv_droop():
    np.testing.assert_allclose(qv_droop(np.array([0.98, 1.0, 1.03, 1.2]), np.ones(4), 0.05), [0.4, 0, -0.6, -1.0])

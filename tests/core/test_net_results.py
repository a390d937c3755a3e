"""``env.write_results`` copies the last step's flow into the net's ``res_*`` tables (the fast solver leaves the
build's there): they equal ``pandapower.runpp`` on the same injections and taps."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandapower as pp
import pytest

from powergrid.env import MultiAgentPowerGridEnv

pytest.importorskip("powergrid_devices", reason="the scenario uses the ESS, DG, PV and GridConnection devices")

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_write_results_puts_the_last_flow_into_the_res_tables_as_runpp_gives_it():
    env = MultiAgentPowerGridEnv.from_config(CONFIGS / "ieee34_3mg.yaml")
    env.reset(seed=0)
    built = env.net.res_bus.vm_pu.to_numpy(copy=True)
    for a in env.possible_agents:
        env.action_space(a).seed(0)
    for _ in range(3):
        env.step({a: env.action_space(a).sample() for a in env.agents})
    net = env.net
    stale = np.abs(net.res_bus.vm_pu.to_numpy() - env.last_result.vm_pu).max()
    assert np.array_equal(net.res_bus.vm_pu.to_numpy(), built) and stale > 1e-4  # before: the build's flow
    env.write_results()
    assert len(net.trafo) and len(net.ext_grid)
    # the same injections (as the pandapower solver sets them) and taps, solved by pandapower itself
    ref = copy.deepcopy(net)
    inj = env._injections
    ref.load["p_mw"], ref.load["q_mvar"] = inj.load_p_mw, inj.load_q_mvar
    ref.sgen["p_mw"], ref.sgen["q_mvar"] = inj.sgen_p_mw, inj.sgen_q_mvar
    pp.runpp(ref, tolerance_mva=1e-10)
    for table, columns, tol in (("res_bus", ("vm_pu", "va_degree"), 1e-6),
                                ("res_line", ("p_from_mw", "loading_percent"), 1e-5),
                                ("res_trafo", ("p_hv_mw", "p_lv_mw", "q_lv_mvar", "loading_percent"), 1e-5),
                                ("res_ext_grid", ("p_mw", "q_mvar"), 1e-5)):
        for column in columns:
            np.testing.assert_allclose(net[table][column].to_numpy(float), ref[table][column].to_numpy(float),
                                       rtol=0, atol=tol, err_msg=f"{table}.{column}")
    # what the result does not hold is not left stale
    assert net.res_line.q_from_mvar.isna().all() and net.res_bus.p_mw.isna().all()


def test_write_results_before_reset_is_an_error_not_a_flat_result():
    """Before the first reset no flow has run: it wrote 1.0 pu and 0 MW everywhere as if a result (rv1 D4)."""
    env = MultiAgentPowerGridEnv.from_config(CONFIGS / "ieee34_3mg.yaml")
    before = env.net.res_bus.copy()
    with pytest.raises(RuntimeError, match=r"^write_results\(\) called before reset\(\): no power flow yet; call reset\(\) first$"):
        env.write_results()
    assert env.net.res_bus.equals(before)
    env.reset(seed=0)
    env.write_results()  # after reset: the reset's flow
    assert np.array_equal(env.net.res_bus.vm_pu.to_numpy(), env.last_result.vm_pu)

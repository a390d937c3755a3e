"""Every example config with every pack installed: PettingZoo API, seeds, pickling, workers, CLI, data."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys

import numpy as np
import pandapower as pp
import pytest
import yaml
from pettingzoo.test import parallel_api_test
from pettingzoo.test.seed_test import check_environment_deterministic_parallel

from powergrid.builder import build_network
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.plugins import get_registry

from ..conftest import CONFIGS

ALL_CONFIGS = sorted(CONFIGS.glob("**/*.yaml"))
IEEE34_3MG = CONFIGS / "ieee34_3mg.yaml"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")
    monkeypatch.delenv("POWERGRID_DATA_DIR", raising=False)


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: p.stem)
def test_every_config_passes_the_parallel_api_test(config):
    parallel_api_test(MultiAgentPowerGridEnv.from_config(config), num_cycles=100)


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: p.stem)
def test_every_config_is_seed_deterministic(config):
    # parallel_seed_test's own check: it takes num_cycles on every pettingzoo (parallel_seed_test only from 1.24.2)
    check_environment_deterministic_parallel(MultiAgentPowerGridEnv.from_config(config), MultiAgentPowerGridEnv.from_config(config), 20)


def test_ieee34_3mg_voltages_equal_an_independent_pandapower_run():
    env = MultiAgentPowerGridEnv.from_config(IEEE34_3MG)
    env.reset(seed=11)
    rng = np.random.default_rng(1)
    for _ in range(5):
        env.step({a: rng.uniform(env.action_space(a).low, env.action_space(a).high).astype(np.float32) for a in env.agents})
        net = build_network(env.config, get_registry())
        net.trafo["tap_pos"] = env.net.trafo["tap_pos"].to_numpy()  # where the automatic regulators stand
        load = env.load_multipliers[env.tick - 1]
        net.load["p_mw"] *= load
        net.load["q_mvar"] *= load
        for d in env.scenario.device_agents:
            pp.create_sgen(net, int(net.bus.index[d.bus]), p_mw=d.device.p_mw, q_mvar=d.device.q_mvar)
        pp.runpp(net, numba=False)
        assert env.last_result.converged
        np.testing.assert_allclose(env.last_result.vm_pu, net.res_bus.vm_pu.to_numpy(), atol=1e-6)
        pcc = env.scenario.agents["mg1_pcc"].device
        assert pcc.import_mw == pytest.approx(net.res_trafo.p_hv_mw[net.trafo.name == "mg1.pcc"].iloc[0], abs=1e-6)


def _step_in_worker(payload: bytes) -> bytes:
    """Runs in a fresh (spawned) process: plugins are rediscovered there through entry points."""
    env = pickle.loads(payload)
    actions = {a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents}
    return pickle.dumps(env.step(actions))


def test_env_pickles_into_a_spawned_worker_and_steps_identically():
    env = MultiAgentPowerGridEnv.from_config(IEEE34_3MG)
    env.reset(seed=2)
    env.step({a: env.action_space(a).sample() for a in env.agents})
    payload = pickle.dumps(env)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        remote = pickle.loads(pool.apply(_step_in_worker, (payload,)))
    local = env.step({a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents})
    # the worker recompiles the solver, so its Newton–Raphson starts from the compile run's voltages:
    # equal to the solver's tolerance (1e-8 pu), not bit for bit
    for agent in env.possible_agents:
        np.testing.assert_allclose(local[0][agent], remote[0][agent], rtol=1e-6, atol=1e-6)
        assert local[1][agent] == pytest.approx(remote[1][agent], rel=1e-9, abs=1e-9)


def test_cli_plugins_lists_packs_with_distributions():
    out = subprocess.run([sys.executable, "-m", "powergrid.cli", "plugins"], capture_output=True, text=True, check=True).stdout
    for name, dist in (("ESS", "powergrid-devices"), ("setpoint", "powergrid-protocols"), ("caiso", "powergrid-datasets"),
                       ("ieee34_3mg", "powergrid-core")):
        line = next(line for line in out.splitlines() if line.split()[:1] == [name])
        assert dist in line


def test_cli_validates_every_config():
    out = subprocess.run([sys.executable, "-m", "powergrid.cli", "validate", *map(str, ALL_CONFIGS)],
                         capture_output=True, text=True, env=dict(os.environ), check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(": ok") == len(ALL_CONFIGS)


def test_cli_runs_a_day_of_ieee34_3mg(tmp_path):
    out = subprocess.run([sys.executable, "-W", "error", "-m", "powergrid.cli", "run", str(IEEE34_3MG), "--episodes", "1",
                          "--policy", "rule", "--out", str(tmp_path)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "1 episode(s) × 96 steps" in out.stdout and "0 failed step(s)\n" in out.stdout
    for agent in ("mg1", "mg2", "mg3", "mg1_ess", "mg3_pcc"):
        assert any(line.startswith(agent + " ") for line in out.stdout.splitlines())
    rows = (tmp_path / "ieee34_3mg_trajectory.csv").read_text().splitlines()
    assert len(rows) == 1 + 96 * 15  # header + 96 ticks × 15 agents


@pytest.mark.filterwarnings("error")
def test_ieee34_3mg_runs_on_the_shipped_caiso_2023_data_with_no_warning():
    env = MultiAgentPowerGridEnv.from_config(IEEE34_3MG)
    env.reset(seed=4)
    providers = env.scenario.providers
    assert all(type(providers[r]).__name__ == "Caiso2023Provider" for r in ("price", "load", "solar"))
    assert providers["load"].params.area == "AVA" and providers["load"].last_start.year == 2023
    price = env.ctx.profiles["price"]
    assert price.shape == (96,) and np.isfinite(price).all() and price.std() > 0
    while env.agents:
        env.step({a: env.action_space(a).sample() for a in env.agents})
    assert env.last_result.converged


def test_a_dataset_without_data_falls_back_with_a_warning():
    data = yaml.safe_load(IEEE34_3MG.read_text())
    data["datasets"]["price"] = {"provider": "caiso", "report": "lmp", "fallback": "synthetic"}  # no files, offline
    env = MultiAgentPowerGridEnv.from_config(data)
    with pytest.warns(RuntimeWarning, match="datasets.price: no data"):
        env.reset(seed=4)
    assert env.scenario.providers["price"].active is env.scenario.providers["price"].fallback


def test_system_agent_price_reaches_every_device_and_holds_between_its_periods():
    env = MultiAgentPowerGridEnv.from_config(CONFIGS / "ieee34_3mg_iso.yaml")
    env.reset(seed=0)
    assert env.possible_agents == ["iso", "mg1"]
    devices = [d for d in env.scenario.device_agents]
    mg1_action = env.action_from_physical("mg1", np.zeros(env.action_space("mg1").shape))
    for tick, price in enumerate([20.0, 140.0, 140.0, 140.0, 90.0]):
        iso_action = env.action_from_physical("iso", np.array([price]))  # $/MWh → the normalized action
        _, _, _, _, infos = env.step({"iso": iso_action, "mg1": mg1_action})
        applied = 20.0 if tick < 4 else 90.0  # the ISO acts at ticks 0 and 4 only (period 4)
        assert all(d.price == pytest.approx(applied) for d in devices), tick
        assert infos["iso"]["acting"] == ((tick + 1) % 4 == 0)
    # the rule microgrids answer the price: DGs run when it exceeds their marginal cost
    dg2 = env.scenario.agents["mg2_dg"].device
    assert dg2.p_mw > 0.0  # 90 $/MWh > 85 $/MWh marginal cost at zero output
    costs = env.agent_costs()
    assert costs["iso"][0] == pytest.approx(sum(c for a, (c, _) in costs.items() if a.endswith(("_ess", "_dg", "_pv", "_pcc"))))

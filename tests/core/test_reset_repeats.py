"""reset(seed) repeats an episode bit for bit, whatever episodes the env ran before: the solver restarts from the
state a new one has (warm start, admittances after tap moves and back, lightsim2grid's grid), the regulators' timers
and taps from their initial ones."""

from __future__ import annotations

import copy
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from powergrid.config import EnvConfig
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.networks import TEMPLATES
from powergrid.solvers.base import Injections
from powergrid.solvers.fast import FastParams, FastSolver

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _config(solver: str, episode: str) -> EnvConfig:
    """ieee34_3mg (two regulators, a long feeder) with ``solver`` and a shorter episode."""
    config = yaml.safe_load((CONFIGS / "ieee34_3mg.yaml").read_text())
    config["solver"] = {"type": solver}
    config["time"] = {"physics": "15min", "episode": episode}
    return EnvConfig.from_dict(config)


def _episode(env: MultiAgentPowerGridEnv, seed: int, actions: int) -> tuple[bytes, int]:
    """One whole episode from ``reset(seed)`` with uniform random actions (stream ``actions``): its observations,
    rewards, flags, infos and taps at every step, pickled; and the tap positions moved in it."""
    rng = np.random.default_rng(actions)
    record = [env.reset(seed=seed), env.tap_control.taps]
    moved = 0
    while env.agents:
        acts = {a: rng.uniform(env.action_space(a).low, env.action_space(a).high).astype(np.float32)
                for a in env.agents}
        record += [env.step(acts), env.tap_control.taps]
        moved += env.tap_control.tap_changes
    return pickle.dumps(record), moved


@pytest.mark.parametrize("solver, episode", [("fast", "12h"), ("pandapower", "2h")])
def test_reset_with_a_seed_repeats_the_episode_of_a_new_env(solver, episode):
    """A new env's episode, and the same seed and actions on an env that ran two random episodes first (its
    regulators moved and came back; the fast solver's warm start and patched Ybus used to carry over, ≈1e-12)."""
    pytest.importorskip("powergrid_devices", reason="the batteries come with powergrid-devices")
    config = _config(solver, episode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (pandapower's FutureWarnings)
        fresh, _ = _episode(MultiAgentPowerGridEnv(config), 5, actions=1)
        env = MultiAgentPowerGridEnv(config)
        moved = sum(_episode(env, seed, actions=seed)[1] for seed in (11, 12))
        again, _ = _episode(env, 5, actions=1)
    assert again == fresh
    if solver == "fast":
        assert moved > 0  # the earlier episodes moved taps


@pytest.mark.parametrize("backend", ["lightsim2grid", "numpy"])
def test_restart_after_tap_moves_gives_the_compiled_solver(backend):
    """FastSolver.restart after regulator taps moved and came back: the compiled Ybus, flow matrix and warm start of
    a new solver, and its next flows the same floats; a copy pickled at moved taps restarts to the same."""
    net = TEMPLATES["ieee34"]()
    inj = Injections(net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy(), net.sgen.p_mw.to_numpy(),
                     net.sgen.q_mvar.to_numpy())
    params = FastParams(backend=backend)
    new, used = FastSolver(copy.deepcopy(net), params), FastSolver(copy.deepcopy(net), params)
    rows = np.flatnonzero(net.trafo.name.isin(["Reg1", "Reg2"])).tolist()
    start = [int(net.trafo.tap_pos.iat[r]) for r in rows]
    clone = None
    for taps in ([3, 5], [8, 10], [-2, 4], start):
        for solver in (used, clone) if clone else (used,):
            for row, tap in zip(rows, taps):
                solver.set_trafo_tap(row, tap)
            assert solver.solve(inj).converged
        if clone is None:
            clone = pickle.loads(pickle.dumps(used))  # (compiled at the moved taps 3, 5)
    assert not np.array_equal(used.Ybus.data, new.Ybus.data)  # the drift the restart removes
    for solver in (used, clone):
        solver.restart()
        assert np.array_equal(solver.Ybus.data, new.Ybus.data) and np.array_equal(solver._M.data, new._M.data)
        assert np.array_equal(solver._V, new._V)
    for taps in ([6, 7], [6, 9]):
        for row, tap in zip(rows, taps):
            for solver in (used, clone, new):
                solver.set_trafo_tap(row, tap)
        a, b, c = used.solve(inj), clone.solve(inj), new.solve(inj)
        for x in (a, b):
            assert np.array_equal(x.vm_pu, c.vm_pu) and np.array_equal(x.trafo_p_lv_mw, c.trafo_p_lv_mw)


def test_restart_replays_a_tap_that_stands_away_from_the_compile():
    """A tap an OLTC device holds away from the compiled position at a reset: the restart moves it there from the
    compile's position, as a new solver's first move did (the same Ybus and warm start)."""
    net = TEMPLATES["ieee34"]()
    row = int(np.flatnonzero(net.trafo.name == "Reg1")[0])
    new, used = FastSolver(copy.deepcopy(net)), FastSolver(copy.deepcopy(net))
    new.set_trafo_tap(row, 9)
    for tap in (4, 12, 9):
        used.set_trafo_tap(row, tap)
    used.restart()
    assert np.array_equal(used.Ybus.data, new.Ybus.data) and np.array_equal(used._V, new._V)
    assert used.net.trafo.tap_pos.iat[row] == 9


def test_restart_of_a_recompiled_solver_recompiles_at_the_current_taps():
    """A shunt step recompiles (a switched capacitor at every reset, at the taps the last episode ended with): the
    restart at the initial taps then equals a new solver's recompile at that step, not the recompile plus tap moves."""
    net = TEMPLATES["ieee34"]()
    inj = Injections(net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy(), net.sgen.p_mw.to_numpy(),
                     net.sgen.q_mvar.to_numpy())
    rows = np.flatnonzero(net.trafo.name.isin(["Reg1", "Reg2"])).tolist()
    start = [int(net.trafo.tap_pos.iat[r]) for r in rows]
    new, used = FastSolver(copy.deepcopy(net)), FastSolver(copy.deepcopy(net))
    new.set_shunt_step(0, 0)
    used.set_shunt_step(0, 0)
    for taps in ([8, 10], start):
        for row, tap in zip(rows, taps):
            used.set_trafo_tap(row, tap)
        if taps != start:
            assert used.solve(inj).converged
            used.set_shunt_step(0, 0)  # (recompiled at taps 8, 10)
    used.restart()
    assert np.array_equal(used.Ybus.data, new.Ybus.data) and np.array_equal(used._V, new._V)
    assert np.array_equal(used.solve(inj).vm_pu, new.solve(inj).vm_pu)


def test_a_reset_after_an_episode_recompiles_once_for_the_switched_capacitor():
    """ev_depot's capacitor bank is set again at every reset (one recompile): the regulators are back at their
    initial taps before it, so the solver's restart finds none away from that compile (it used to recompile again,
    ≈20 ms); the episode from the next reset still repeats a new env's."""
    pytest.importorskip("powergrid_devices", reason="the depot's chargers come with powergrid-devices")
    config = EnvConfig.from_yaml(CONFIGS / "ev_depot.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh, _ = _episode(MultiAgentPowerGridEnv(config), 3, actions=1)
        env = MultiAgentPowerGridEnv(config)
        assert _episode(env, 4, actions=4)[1] > 0  # its regulators moved
        assert list(env.tap_control.taps.values()) != [r.tap_init for r in env.tap_control.regulators]  # and stand away
        solver, recompiles = env.solver, []
        solver.topology_changed = lambda: recompiles.append(type(solver).topology_changed(solver))
        env.reset(seed=3)
        del solver.topology_changed
        again, _ = _episode(env, 3, actions=1)
    assert len(recompiles) == 1
    assert again == fresh


def test_gymnasiums_env_checker_passes_on_a_single_agent_view():
    """Its determinism check resets with one seed twice and compares a step's reward bit for bit."""
    pytest.importorskip("powergrid_devices", reason="the batteries come with powergrid-devices")
    env_checker = pytest.importorskip("gymnasium.utils.env_checker")
    from powergrid.rl.gym import SingleAgentView

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (its notes on the spaces' bounds)
        env_checker.check_env(SingleAgentView(str(CONFIGS / "ieee34_3mg.yaml"), "mg1"), skip_render_check=True)

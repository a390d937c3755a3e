"""VectorPowerGridEnv: N copies with batched power flows equal N independent environments step by step."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import numpy as np
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ActionError
from powergrid.plugins import make_registry
from powergrid.vector import VectorPowerGridEnv

from .scenarios import load_local, two_feeders


@pytest.fixture(scope="module")
def registry():
    load_local()
    return make_registry(include_local=True)


def regulated() -> dict:
    """IEEE 34 (two regulators under automatic control) with two learned loads and 'huge', whose action 2
    draws 60 MW at bus 890 (no flow converges: the episode terminates)."""
    return {
        "name": "vector_taps", "network": {"type": "ieee34"}, "spaces": {"action": "physical"},
        "time": {"step_minutes": 15, "steps_per_episode": 8},
        "reward": {"on_divergence": "terminate", "divergence_penalty": 50.0},
        "agents": [
            {"id": "a", "type": "ConstantPower", "bus": "860", "policy": "learned", "params": {"p_mw": 0.4, "q_mvar": 0.2}},
            {"id": "b", "type": "ConstantPower", "bus": "840", "policy": "learned", "period": 2, "params": {"p_mw": -0.3}},
            {"id": "huge", "type": "ConstantPower", "bus": "890", "policy": "learned", "params": {"p_mw": -30.0}},
        ],
    }


def _actions(venv: VectorPowerGridEnv, rng: np.random.Generator, diverge: int | None) -> dict[str, np.ndarray]:
    n = venv.num_envs
    actions = {a: rng.uniform(0, 2, size=(n, *venv.action_space(a).shape)).astype(np.float32)
               for a in venv.possible_agents}
    if "huge" in actions:
        actions["huge"][:] = 0.0
        if diverge is not None:
            actions["huge"][diverge] = 2.0
    return actions


def _assert_same(obs, rewards, terms, truncs, info, o, r, te, tr, single_info, exact: bool) -> None:
    for a in o:
        if exact:
            np.testing.assert_array_equal(obs[a], o[a])
            assert rewards[a] == r[a] or (np.isnan(rewards[a]) and np.isnan(r[a]))
        else:
            np.testing.assert_allclose(obs[a], o[a], atol=1e-4)  # normalized voltages: 1e-6 pu is 2e-5
            np.testing.assert_allclose(rewards[a], r[a], rtol=1e-6, atol=1e-6)
        assert terms[a] == te[a] and truncs[a] == tr[a]
        assert info[a]["converged"] == single_info[a]["converged"]
        assert info[a]["failure"] == single_info[a]["failure"]


def _assert_same_flow(copy: MultiAgentPowerGridEnv, env: MultiAgentPowerGridEnv, exact: bool) -> None:
    assert [g.tap for g in copy.tap_control.regulators] == [g.tap for g in env.tap_control.regulators]
    if exact:
        np.testing.assert_array_equal(copy.last_result.vm_pu, env.last_result.vm_pu)
    else:
        np.testing.assert_allclose(copy.last_result.vm_pu, env.last_result.vm_pu, atol=1e-6)


#: the vector env's flows: each copy on its own; batched with each copy's own Newton-Raphson and the rest in one
#: pass (bus powers, relays' readings, results); batched with the fixed point over all copies (and one pass)
FLOWS = {"one_by_one": (False, None, None), "one_pass": (True, 1, None), "fixed_point": (True, 1, 1)}


def _vector(scenario: dict | str, n: int, flows: str, registry) -> VectorPowerGridEnv:
    """``n`` copies of ``scenario`` solving their flows as :data:`FLOWS` ``[flows]`` says, at any number of copies."""
    batched, one_pass_from, fixed_point_from = FLOWS[flows]
    venv = VectorPowerGridEnv(scenario, n, batched_flows=batched, registry=registry)
    assert (venv._batch is not None) == batched
    if one_pass_from is not None:
        venv._batch.one_pass_from = one_pass_from
    if fixed_point_from is not None:
        venv._batch.fixed_point_from = fixed_point_from
    return venv


@pytest.mark.parametrize("flows", list(FLOWS))
@pytest.mark.parametrize("scenario", [two_feeders, regulated])
def test_copies_equal_independent_envs_over_episodes(registry, scenario, flows):
    """Observations, rewards, dones, taps and auto-resets of 3 copies against 3 single envs: full episodes,
    regulator tap moves (IEEE 34) and a copy whose flow diverges (it terminates and resets). Each copy solving
    its own flow, or batched with each copy's own Newton-Raphson, are bit for bit the single envs; the batched
    fixed point is within solver tolerance (voltages within 1e-6 pu)."""
    n, seed = 3, 5
    exact = flows != "fixed_point"
    venv = _vector(scenario(), n, flows, registry)
    envs = [MultiAgentPowerGridEnv.from_config(scenario(), registry=registry) for _ in range(n)]
    obs, _ = venv.reset(seed=seed)
    singles = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    for a in venv.possible_agents:
        assert obs[a].shape == (n, venv.observation_space(a).shape[0])
        np.testing.assert_array_equal(obs[a], np.stack([s[a] for s in singles]))
    rng = np.random.default_rng(0)
    resets, failures, tap_moves = 0, 0, 0
    for step in range(20):  # 8-step episodes: every copy resets at least twice
        actions = _actions(venv, rng, diverge=1 if step == 10 else None)
        obs, rewards, terms, truncs, infos = venv.step(actions)
        for i, env in enumerate(envs):
            o, r, te, tr, info = env.step({a: actions[a][i] for a in env.agents})
            tap_moves += env.tap_control.tap_changes
            if env.agents:  # (a finished copy has already reset: compared after the single env's reset)
                _assert_same_flow(venv.envs[i], env, exact)
            else:
                resets += 1
                failures += not info[env.possible_agents[0]]["converged"]
                final = infos[i]["final_info"]
                _assert_same(infos[i]["final_observation"], {a: rewards[a][i] for a in r}, {a: terms[a][i] for a in r},
                             {a: truncs[a][i] for a in r}, final, o, r, te, tr, info, exact)
                o, _ = env.reset()
                _assert_same_flow(venv.envs[i], env, exact)
            _assert_same({a: obs[a][i] for a in o}, {a: rewards[a][i] for a in r}, {a: terms[a][i] for a in r},
                         {a: truncs[a][i] for a in r}, infos[i], o, r, te, tr, info, exact)
    assert resets >= 2 * n
    if scenario is regulated:
        assert failures == 1 and tap_moves > 0


CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "ieee34_3mg.yaml")


def _taps(venv: VectorPowerGridEnv) -> list[list[int]]:
    return [[g.tap for g in env.tap_control.regulators] for env in venv.envs]


@pytest.mark.parametrize("flows", list(FLOWS))
def test_pickled_and_copied_vector_env_steps_like_the_original(flows):
    """ieee34_3mg's copies pickled and deep-copied once a regulator has moved (each flow mode; the fixed point keeps
    its factored Ybus and the tapped buses' blocks) step exactly as the original: observations, rewards, dones, taps
    and voltages over 160 steps with tap moves and auto-resets."""
    pytest.importorskip("powergrid_devices", reason="ieee34_3mg's batteries come with powergrid-devices")
    venv = _vector(CONFIG, 3, flows, None)
    venv.reset(seed=3)
    start, rng = _taps(venv), np.random.default_rng(1)
    for _ in range(200):
        venv.step(_actions(venv, rng, None))
        if _taps(venv) != start:
            break
    assert _taps(venv) != start  # the copies' Ybus differ from the one the fixed point factored
    twins = [pickle.loads(pickle.dumps(venv)), copy.deepcopy(venv)]
    for twin in twins:
        assert twin._batch is not None or flows == "one_by_one"
        assert twin._batch is None or twin._batch.solvers[0] is twin.envs[0].solver
    resets = moves = 0
    for _ in range(160):
        actions = _actions(venv, rng, None)
        want = venv.step(actions)
        resets += sum("final_observation" in info for info in want[4])
        moves += sum(env.tap_control.tap_changes for env in venv.envs)
        for twin in twins:
            got = twin.step(actions)
            for mine, theirs in zip(got[:4], want[:4]):
                assert mine.keys() == theirs.keys()
                for a in theirs:
                    np.testing.assert_array_equal(mine[a], theirs[a])
            for info, theirs in zip(got[4], want[4]):
                if "final_observation" in theirs:
                    for a, o in theirs["final_observation"].items():
                        np.testing.assert_array_equal(info["final_observation"][a], o)
            assert _taps(twin) == _taps(venv)
            for mine, theirs in zip(twin.envs, venv.envs):
                np.testing.assert_array_equal(mine.last_result.vm_pu, theirs.last_result.vm_pu)
    assert resets >= 3 and moves > 0


def test_vector_needs_one_copy(registry):
    with pytest.raises(ValueError):
        VectorPowerGridEnv(two_feeders(), 0, registry=registry)


def test_flows_batch_by_default_from_batch_from_copies(registry, monkeypatch):
    """``batched_flows=None`` batches from BATCH_FROM copies on, and from FIXED_POINT_FROM (the fixed point) only
    when the BLAS runs on one thread (held by threadpoolctl, or set to 1 thread by the environment variables); a
    False or a single copy solves one by one. The choice is made again in the process that unpickles the env."""
    from powergrid import vector

    for n in (vector.BATCH_FROM, vector.FIXED_POINT_FROM - 1):  # each copy's own Newton-Raphson, whatever the BLAS
        default = VectorPowerGridEnv(two_feeders(), n, registry=registry)
        assert default.batched_flows and default._batch is not None and default._batch.fixed_point_from > n
    monkeypatch.setattr(vector, "BATCH_FROM", 2)
    monkeypatch.setattr(vector.blas_threads, "controllable", lambda: False)
    assert VectorPowerGridEnv(regulated(), 2, registry=registry).batched_flows  # below FIXED_POINT_FROM: no BLAS
    monkeypatch.setattr(vector, "FIXED_POINT_FROM", 2)
    monkeypatch.setattr(vector.blas_threads, "controllable", lambda: True)
    batched = VectorPowerGridEnv(regulated(), 2, registry=registry)
    assert batched.batched_flows and batched._batch is not None and batched._batch.fixed_point_from == 2
    assert not VectorPowerGridEnv(regulated(), 1, registry=registry).batched_flows
    assert not VectorPowerGridEnv(regulated(), 2, batched_flows=False, registry=registry).batched_flows
    monkeypatch.setattr(vector.blas_threads, "controllable", lambda: False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert not VectorPowerGridEnv(regulated(), 2, registry=registry).batched_flows
    assert not pickle.loads(pickle.dumps(batched)).batched_flows  # a worker whose BLAS cannot be held
    assert pickle.loads(pickle.dumps(VectorPowerGridEnv(regulated(), 2, batched_flows=True,
                                                        registry=registry))).batched_flows
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert VectorPowerGridEnv(regulated(), 2, registry=registry).batched_flows


def _moves(venv: VectorPowerGridEnv) -> list[tuple[int, list[int]]]:
    """Each copy's tick and per-agent action counts (a copy that began a step counted its agents' actions)."""
    return [(env.tick, env.action_counts.tolist()) for env in venv.envs]


def test_bad_batches_give_the_single_env_errors_before_any_copy_moves(registry):
    """A row of the wrong shape, an unknown agent or a batch without one row per copy is refused with an
    ActionError (a row's error as the single env words it), and no copy has stepped; NaN rows step as in a
    single env (the devices project them)."""
    n = 3
    venv = VectorPowerGridEnv(regulated(), n, registry=registry)
    single = MultiAgentPowerGridEnv.from_config(regulated(), registry=registry)
    venv.reset(seed=2)
    single.reset(seed=2)
    before = _moves(venv)
    good = _actions(venv, np.random.default_rng(0), None)
    bad_row = [np.zeros(1), np.zeros(2), np.zeros(1)]
    with pytest.raises(ActionError) as single_error:
        single.step({"a": bad_row[1]})
    with pytest.raises(ActionError) as vector_error:
        venv.step({**good, "a": bad_row})
    assert str(vector_error.value) == str(single_error.value)
    with pytest.raises(ActionError, match="'nobody': an unknown agent id"):
        venv.step({**good, "nobody": np.zeros((n, 1))})
    with pytest.raises(ActionError, match=f"'b': expected a batch of {n} actions"):
        venv.step({**good, "b": good["b"][:2]})
    assert _moves(venv) == before
    good["a"][0] = np.nan  # copy 0 and the single env share their seed
    obs, rewards, *_ = venv.step(good)
    _, r, *_ = single.step({a: good[a][0] for a in good})
    assert rewards["a"][0] == r["a"]
    assert np.isfinite(obs["a"]).all()


@pytest.mark.parametrize("as_lists", [False, True])
def test_a_finished_copy_is_refused_before_any_copy_moves(registry, as_lists):
    """A copy whose episode ended without an auto-reset (:meth:`step_copies`) makes ``step`` raise the single env's
    RuntimeError, for ready ``(n, ...)`` arrays as for batches each copy checks, and no copy has moved."""
    n, ticks = 3, regulated()["time"]["steps_per_episode"]
    venv = VectorPowerGridEnv(regulated(), n, registry=registry)
    single = MultiAgentPowerGridEnv.from_config(regulated(), registry=registry)
    venv.reset(seed=4)
    single.reset(seed=4)
    rng = np.random.default_rng(2)
    for _ in range(ticks):
        actions = _actions(venv, rng, None)
        venv.step_copies([1], [{a: actions[a][1] for a in actions}])
        single.step({a: actions[a][1] for a in actions})
    assert not venv.envs[1].agents and not single.agents
    with pytest.raises(RuntimeError) as single_error:
        single.step({})
    before = _moves(venv)
    actions = _actions(venv, rng, None)
    with pytest.raises(RuntimeError) as vector_error:
        venv.step({a: list(rows) for a, rows in actions.items()} if as_lists else actions)
    assert str(vector_error.value) == str(single_error.value)
    assert _moves(venv) == before


def test_step_arrays_rows_are_each_copys_step(registry):
    """``reset_arrays``/``step_arrays``: ``(n, obs_size)`` float32 observations whose row ``i`` is copy ``i``'s
    agents' observations one after another, ``(n, agents)`` float64 rewards, ``(n,)`` bool dones, as single
    envs give them; new arrays at every call."""
    n, seed = 2, 7
    venv = VectorPowerGridEnv(two_feeders(), n, registry=registry)
    envs = [MultiAgentPowerGridEnv.from_config(two_feeders(), registry=registry) for _ in range(n)]
    agents = venv.possible_agents
    size = sum(venv.observation_space(a).shape[0] for a in agents)
    obs, infos = venv.reset_arrays(seed=seed)
    assert obs.shape == (n, size) and obs.dtype == np.float32 and len(infos) == n
    for i, env in enumerate(envs):
        o, _ = env.reset(seed=seed + i)
        np.testing.assert_array_equal(obs[i], np.concatenate([o[a] for a in agents]))
    rng = np.random.default_rng(3)
    previous = obs
    for _ in range(3):  # within the 8-step episodes: no copy resets
        kept = previous.copy()
        actions = _actions(venv, rng, None)
        out = venv.step_arrays(actions)
        assert out.observations.shape == (n, size) and out.observations.dtype == np.float32
        assert out.rewards.shape == (n, len(agents)) and out.rewards.dtype == np.float64
        for done in (out.terminated, out.truncated):
            assert done.shape == (n,) and done.dtype == bool
        assert len(out.infos) == n
        assert not np.shares_memory(out.observations, previous)
        np.testing.assert_array_equal(previous, kept)
        for i, env in enumerate(envs):
            o, r, te, tr, _ = env.step({a: actions[a][i] for a in agents})
            np.testing.assert_array_equal(out.observations[i], np.concatenate([o[a] for a in agents]))
            np.testing.assert_array_equal(out.rewards[i], [r[a] for a in agents])
            assert out.terminated[i] == te[agents[0]] and out.truncated[i] == tr[agents[0]]
        previous = out.observations


def test_a_scenario_seed_seeds_copy_i_with_seed_plus_i(registry):
    """A scenario with a top-level ``seed`` reset without one: copy ``i`` is a single env seeded ``seed + i``
    (not ``n`` copies of the same episode: the same profiles, the same random policy's draws)."""
    n, seed = 3, 7
    scenario = {**two_feeders(), "seed": seed}
    venv = VectorPowerGridEnv(scenario, n, registry=registry)
    envs = [MultiAgentPowerGridEnv.from_config(scenario, registry=registry) for _ in range(n)]
    obs, _ = venv.reset_arrays()
    for i, env in enumerate(envs):
        o, _ = env.reset(seed=seed + i)
        np.testing.assert_array_equal(obs[i], np.concatenate([o[a] for a in venv.possible_agents]))
    rng = np.random.default_rng(0)
    rewards = []
    for _ in range(10):  # over an auto-reset (8-step episodes): each copy keeps its own stream
        actions = _actions(venv, rng, None)
        out = venv.step_arrays(actions)
        for i, env in enumerate(envs):
            _, r, *_ = env.step({a: actions[a][i] for a in env.agents})
            np.testing.assert_array_equal(out.rewards[i], [r[a] for a in venv.possible_agents])
            if not env.agents:
                env.reset()
        rewards.append(out.rewards[:, venv.possible_agents.index("mg")])
    assert len({tuple(copy_rewards) for copy_rewards in np.transpose(rewards)}) == n  # the copies differ

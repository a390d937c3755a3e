"""The SB3 VecEnv over the batched vector env: SuperSuit's slot layout, auto-reset conventions, PPO learns on it."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import supersuit as ss
from stable_baselines3 import PPO

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ActionError
from powergrid.rl.sb3 import PowerGridVecEnv

from .scenarios import CONFIGS

IEEE34_3MG = str(CONFIGS / "ieee34_3mg.yaml")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")  # the CAISO 2023 data shipped with the dataset pack


def short(steps: int = 6) -> dict:
    """ieee34_3mg with ``steps`` 15-minute steps per episode (auto-resets within a few steps)."""
    import yaml

    config = yaml.safe_load((CONFIGS / "ieee34_3mg.yaml").read_text(encoding="utf-8"))
    config["time"] = {"physics": "15min", "episode": f"{15 * steps}min"}
    return config


def test_slots_match_supersuit_on_the_pettingzoo_env():
    """Same layout as ``concat_vec_envs_v1(pettingzoo_env_to_vec_env_v1(env), n)``: copy-major slots, the same
    observations, rewards, dones and terminal observations (voltages to the solvers' tolerance)."""
    n = 2
    ours = PowerGridVecEnv(short(), n)
    theirs = ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(MultiAgentPowerGridEnv.from_config(short())),
                                   n, num_cpus=0, base_class="stable_baselines3")
    assert ours.num_envs == theirs.num_envs == n * 3
    assert ours.observation_space == theirs.observation_space and ours.action_space == theirs.action_space
    ours.seed(11)  # copy i seeded 11 + i, as SuperSuit's ConcatVecEnv does (its SB3 wrapper's seed() is broken)
    np.testing.assert_allclose(ours.reset(), theirs.venv.reset(seed=11)[0], atol=1e-4)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(9):
        actions = rng.uniform(-1, 1, size=(ours.num_envs, 3)).astype(np.float32)
        o, r, d, info = ours.step(actions)
        o2, r2, d2, info2 = theirs.step(actions)
        np.testing.assert_allclose(o, o2, atol=1e-4)
        np.testing.assert_allclose(r, r2, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(d, d2)
        for slot in np.flatnonzero(d):
            ends += 1
            np.testing.assert_allclose(info[slot]["terminal_observation"], info2[slot]["terminal_observation"], atol=1e-4)
            assert info[slot]["TimeLimit.truncated"] is True
            assert info[slot]["cost"] > 0  # the final step's info, as SB3's DummyVecEnv (SuperSuit gives the reset's)
    assert ends == ours.num_envs  # 6-step episodes over 9 steps: every slot ended once
    theirs.close()


def test_ppo_learns_on_the_vector_env():
    venv = PowerGridVecEnv(IEEE34_3MG, 2)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=2 * 32 * venv.num_envs)
    assert model.num_timesteps == 2 * 32 * venv.num_envs
    assert any(not np.allclose(b.numpy(), p.detach().numpy()) for b, p in zip(before, model.policy.parameters()))
    action, _ = model.predict(venv.reset(), deterministic=True)
    assert action.shape == (venv.num_envs, 3)
    venv.close()


def test_agents_with_different_spaces_are_refused_in_a_short_message_naming_both():
    """The message printed both spaces whole: 1,765 characters of Box bounds on ieee34_3mg_iso (r46b F4)."""
    import yaml

    from .scenarios import multi_rate

    with pytest.raises(ValueError, match="shares one policy"):
        PowerGridVecEnv(multi_rate(), 1)
    iso = yaml.safe_load((CONFIGS / "ieee34_3mg_iso.yaml").read_text(encoding="utf-8"))
    with pytest.raises(ValueError) as err:
        PowerGridVecEnv(iso, 1)
    assert str(err.value) == (
        "PowerGridVecEnv shares one policy, so every learned agent needs the same spaces: the observation space of "
        "'mg1' (Box(18,) float32) differs from that of 'iso' (Box(31,) float32); train agents whose spaces differ "
        "with RLlibPowerGridEnv (a module per agent) or SingleAgentView")
    physical = short()  # equal shapes, different bounds: the first entry that differs
    physical["spaces"] = {"action": "physical"}
    next(a for a in physical["agents"] if a.get("id") == "mg2_ess")["params"]["p_max_mw"] = 0.7
    with pytest.raises(ValueError, match=r"the action space of 'mg2' \(Box\(3,\) float32, entry 0 in \[-0.7, 0.7\]\) "
                                         r"differs from that of 'mg1' \(in \[-0.5, 0.5\]\); ") as err:
        PowerGridVecEnv(physical, 1)
    assert len(str(err.value)) < 300


def test_discrete_actions_that_start_below_zero_are_shifted_to_sb3s_range():
    """Two learned tap changers (``Discrete(19, start=-9)``): SB3 samples 0 … 18 only, so the VecEnv exposes
    ``Discrete(19)`` and its action ``k`` is position ``k − 9`` (action 0 drives the taps down as -9 does in a
    single env)."""
    from .scenarios import tap_changers

    venv = PowerGridVecEnv(tap_changers(), 1)
    assert venv.action_space == gymnasium.spaces.Discrete(19)
    single = MultiAgentPowerGridEnv.from_config(tap_changers())
    venv.seed(0)
    obs = venv.reset()
    o, _ = single.reset(seed=0)
    np.testing.assert_array_equal(obs, np.stack([o["t1"], o["t12"]]))
    for _ in range(6):
        obs, rewards, _, _ = venv.step(np.zeros(venv.num_envs, np.int64))
        o, r, _, _, info = single.step({"t1": -9, "t12": -9})
        np.testing.assert_array_equal(obs, np.stack([o["t1"], o["t12"]]))
        np.testing.assert_allclose(rewards, [r["t1"], r["t12"]], rtol=1e-6)
    assert info["t1"]["projection"] > 0  # one tap position per tick: still on its way down


@pytest.mark.parametrize("actions", [np.zeros((2, 3), np.float32), np.zeros(6, np.float32),
                                     np.zeros((6, 3, 1), np.float32), np.array([None] * 6), np.zeros((6, 3), bool)],
                         ids=["copies-not-slots", "flat", "extra-axis", "object", "bool"])
def test_actions_of_the_wrong_shape_or_type_are_one_clear_error(actions):
    """One error naming the expected (slots, action) shape and what came, before any copy moves (numpy's reshape
    error, an agent's scalar-shape complaint, or ``None`` actions taken as "hold" before)."""
    venv = PowerGridVecEnv(short(), 2)
    venv.reset()
    with pytest.raises(ActionError, match=r"shape \(6, 3\) \(one per slot: 2 copies × agents \['mg1', 'mg2', 'mg3'\]\)"):
        venv.step(actions)
    assert [env.tick for env in venv.venv.envs] == [0, 0]
    venv.step(np.zeros((6, 3), np.int64))  # integers are numbers
    assert [env.tick for env in venv.venv.envs] == [1, 1]


def test_env_method_calls_each_copy_once_and_answers_every_slot(monkeypatch):
    """Three slots share a copy: a method with effects (``reset`` draws from the copy's stream) runs once per copy."""
    venv = PowerGridVecEnv(short(), 2)
    calls = []
    for c, env in enumerate(venv.venv.envs):
        monkeypatch.setattr(env, "rule_action", lambda agent, c=c: calls.append(c) or (c, agent))
    assert venv.env_method("rule_action", "mg2") == [(0, "mg2")] * 3 + [(1, "mg2")] * 3
    assert calls == [0, 1]
    assert venv.env_method("rule_action", "mg1", indices=[5, 1, 4]) == [(1, "mg1"), (0, "mg1"), (1, "mg1")]
    assert calls == [0, 1, 1, 0]


def test_reset_infos_hold_each_slots_reset_info_as_sb3_keeps_them():
    """SB3 keeps the infos of each env's last reset in ``reset_infos`` (its DummyVecEnv on reset and auto-reset); they
    stayed ``{}`` here."""
    venv = PowerGridVecEnv(short(3), 2)
    venv.reset()
    assert [info["time_s"] for info in venv.reset_infos] == [0] * 6
    assert [info["acting"] for info in venv.reset_infos] == [True] * 6
    for _ in range(2):
        venv.step(np.zeros((6, 3), np.float32))
    for info in venv.reset_infos:
        info["time_s"] = -1  # a marker the auto-reset must replace
    _, _, dones, _ = venv.step(np.zeros((6, 3), np.float32))
    assert dones.all()
    assert [info["time_s"] for info in venv.reset_infos] == [0] * 6

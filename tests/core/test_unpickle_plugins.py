"""A pickled env names the folders of its local plugins: a worker that has not loaded them loads them itself (r43 F3:
a forkserver or Ray worker started before ``load_plugins`` failed with PluginLoadError although the folder existed)."""

from __future__ import annotations

import multiprocessing
import pickle
import re
import shutil
import sys
from typing import Any

import numpy as np
import pytest

import powergrid
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import PluginLoadError
from tests.core.scenarios import LOCAL_PLUGINS, two_feeders, two_feeders_of


def _actions(env: MultiAgentPowerGridEnv, k: int) -> dict[str, np.ndarray]:
    """Step ``k``'s actions: every agent due at a scale that changes with ``k`` (0–2)."""
    return {a: np.full(env.action_space(a).shape, 0.25 * (k % 8), np.float32) for a in env.agents if env.is_acting(a)}


def _play(env: MultiAgentPowerGridEnv) -> list[tuple[Any, ...]]:
    """Observations, rewards, terminations and truncations of the env's steps to the episode's end."""
    out = []
    while env.agents:
        out.append(env.step(_actions(env, env.tick))[:4])
    return out


def _unpickle_and_play(blob: bytes) -> tuple[list[str], list[tuple[Any, ...]]]:
    """In the worker: the local plugin modules it had before unpickling, and the unpickled env's steps."""
    before = sorted(m for m in sys.modules if m.startswith("powergrid_local_"))
    return before, _play(pickle.loads(blob))


def _in_a_spawned_worker(blob: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[tuple[Any, ...]]]:
    """``_unpickle_and_play`` in a fresh interpreter that has neither POWERGRID_PLUGIN_PATH nor load_plugins."""
    monkeypatch.delenv("POWERGRID_PLUGIN_PATH", raising=False)  # load_plugins put the folder there for children
    monkeypatch.delenv("_POWERGRID_PLUGIN_PATH_ADDED", raising=False)
    monkeypatch.setenv("POWERGRID_OFFLINE", "1")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_unpickle_and_play, (blob,))


def _assert_identical(got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    assert len(got) == len(expected) == 7  # ticks 1-7 of 8
    for (obs, rewards, terminations, truncations), (o, r, te, tr) in zip(got, expected, strict=True):
        assert obs.keys() == o.keys() and (rewards, terminations, truncations) == (r, te, tr)  # floats compared with ==
        for a in obs:
            assert obs[a].dtype == o[a].dtype and obs[a].tobytes() == o[a].tobytes()


def test_a_worker_loads_the_local_plugin_folder_the_pickle_names(monkeypatch):
    powergrid.load_plugins(LOCAL_PLUGINS)
    env = MultiAgentPowerGridEnv.from_config(two_feeders())
    env.reset(seed=3)
    env.step(_actions(env, 5))  # mid-episode
    blob = pickle.dumps(env)
    before, got = _in_a_spawned_worker(blob, monkeypatch)
    assert before == []  # the worker had not loaded it: unpickling did
    _assert_identical(got, _play(env))


def test_a_plugin_folder_gone_since_pickling_is_still_a_clear_error(monkeypatch, tmp_path):
    folder = tmp_path / "gone"
    folder.mkdir()
    source = (LOCAL_PLUGINS / "constant_power.py").read_text()
    (folder / "gone_power.py").write_text(source.replace('register_device("ConstantPower")', 'register_device("GonePower")'))
    powergrid.load_plugins(folder)
    config = two_feeders_of("GonePower")
    blob = pickle.dumps(MultiAgentPowerGridEnv.from_config(config))
    shutil.rmtree(folder)
    file = re.escape(str(folder.resolve() / "gone_power.py"))
    with pytest.raises(PluginLoadError, match=rf"module powergrid_local_gone_power \({file}, which no longer exists\) is not loaded"):
        _in_a_spawned_worker(blob, monkeypatch)


def _same_named_plugins(tmp_path) -> tuple[Any, Any]:
    """Folders ``a`` and ``b``, each with a ``dev.py`` whose ``ConstantPower`` class registers as ``APower`` /
    ``BPower`` and injects 1× / 3× its ``p_mw``: the same module stem and class name, other physics."""
    source = (LOCAL_PLUGINS / "constant_power.py").read_text()
    for name, gain in (("a", "1.0"), ("b", "3.0")):
        (tmp_path / name).mkdir()
        source_here = source.replace('register_device("ConstantPower")', f'register_device("{name.upper()}Power")')
        source_here = source_here.replace("self.scale * self.params.p_mw", f"{gain} * self.scale * self.params.p_mw")
        (tmp_path / name / "dev.py").write_text(source_here)
    return tmp_path / "a", tmp_path / "b"


def _b_power_env() -> MultiAgentPowerGridEnv:
    config = two_feeders_of("BPower")
    env = MultiAgentPowerGridEnv.from_config(config)
    env.reset(seed=3)
    env.step(_actions(env, 5))
    return env


def test_same_named_plugin_files_keep_their_module_names_in_a_worker(monkeypatch, tmp_path):
    # loaded b before a, the pickle's powergrid_local_dev is b's file; a worker loading the folders the pickle names in
    # their sorted order gave that name to a's file and played its 1× physics silently (rewards a third of these)
    a, b = _same_named_plugins(tmp_path)
    powergrid.load_plugins(b)
    powergrid.load_plugins(a)
    env = _b_power_env()
    blob = pickle.dumps(env)
    before, got = _in_a_spawned_worker(blob, monkeypatch)
    assert before == []
    _assert_identical(got, _play(env))


def _load_then_unpickle(folder: Any, blob: bytes) -> None:
    powergrid.load_plugins(folder)
    pickle.loads(blob)


def test_a_module_name_bound_to_another_file_is_a_clear_error(monkeypatch, tmp_path):
    a, b = _same_named_plugins(tmp_path)
    powergrid.load_plugins(b)
    blob = pickle.dumps(_b_power_env())
    monkeypatch.delenv("POWERGRID_PLUGIN_PATH", raising=False)
    monkeypatch.delenv("_POWERGRID_PLUGIN_PATH_ADDED", raising=False)
    with multiprocessing.get_context("spawn").Pool(1) as pool, pytest.raises(PluginLoadError) as caught:
        pool.apply(_load_then_unpickle, (a, blob))  # the worker's powergrid_local_dev is a's dev.py
    assert str(caught.value) == (f"cannot unpickle: the local plugin module powergrid_local_dev is {a.resolve() / 'dev.py'} "
                                 f"in this process, but was {b.resolve() / 'dev.py'} where the environment was pickled; "
                                 f"load the plugin folders in the same order in both processes, or give the .py files "
                                 f"different names")

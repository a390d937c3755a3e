"""A pickled env records its state format: a pickle of another format (an older PowerGrid's, whose devices' or links'
pickled layout differed) is refused on load with one error naming the format found and expected, not a deep
AttributeError; a pickle of the current format continues bit for bit."""

from __future__ import annotations

import copy
import copyreg
import io
import pickle
from typing import Any

import numpy as np
import pytest

from powergrid import env as env_module
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.plugins import make_registry
from powergrid.vector import VectorPowerGridEnv

from .scenarios import load_local, two_feeders

FORMAT = env_module.PICKLE_FORMAT


@pytest.fixture(scope="module")
def registry():
    load_local()
    return make_registry(include_local=True)


def _pickle_with(obj: Any, key: str, value: Any) -> bytes:
    """``pickle.dumps(obj)`` with its pickled state's ``key`` replaced by ``value`` (``...``: removed), as a pickle
    written by a PowerGrid of another state format would hold it."""

    class Altering(pickle.Pickler):
        def reducer_override(self, o: Any) -> Any:
            if o is not obj:
                return NotImplemented
            state = dict(o.__getstate__())
            if value is ...:
                state.pop(key, None)
            else:
                state[key] = value
            return copyreg.__newobj__, (type(o),), state

    out = io.BytesIO()
    Altering(out, protocol=4).dump(obj)
    return out.getvalue()


def _actions(env: MultiAgentPowerGridEnv, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {a: rng.uniform(env.action_space(a).low, env.action_space(a).high).astype(np.float32) for a in env.agents}


@pytest.mark.parametrize("found", [..., None, 0, FORMAT + 1, "1"], ids=["stripped", "none", "zero", "next", "text"])
def test_a_pickle_of_another_format_is_refused_with_one_clear_error(registry, found):
    env = MultiAgentPowerGridEnv.from_config(two_feeders(), registry=registry)
    env.reset(seed=1)
    blob = _pickle_with(env, "format", found)
    with pytest.raises(pickle.UnpicklingError) as caught:
        pickle.loads(blob)
    message = str(caught.value)
    shown = "not recorded" if found in (..., None) else repr(found)
    assert f"state format is {shown}" in message and f"expected format {FORMAT}" in message, message
    assert "MultiAgentPowerGridEnv" in message and "rebuild the env from its scenario" in message, message


def test_a_vector_pickle_of_another_format_is_refused(registry):
    venv = VectorPowerGridEnv(two_feeders(), 2, registry=registry)
    venv.reset(seed=1)
    for found in (..., FORMAT + 1):
        with pytest.raises(pickle.UnpicklingError, match=r"VectorPowerGridEnv.*rebuild the env from its scenario"):
            pickle.loads(_pickle_with(venv, "_pickle_format", found))


def test_a_current_pickle_round_trips_and_continues_bit_for_bit(registry):
    env = MultiAgentPowerGridEnv.from_config(two_feeders(), registry=registry)
    env.reset(seed=2)
    rng = np.random.default_rng(0)
    env.step(_actions(env, rng))
    assert env.__getstate__()["format"] == FORMAT
    twins = [pickle.loads(pickle.dumps(env)), copy.deepcopy(env)]
    for _ in range(6):
        actions = _actions(env, rng) if env.agents else None
        if actions is None:
            break
        want = env.step(actions)
        for twin in twins:
            got = twin.step(actions)
            for a in want[0]:
                np.testing.assert_array_equal(got[0][a], want[0][a])
                assert got[1][a] == want[1][a]
    venv = VectorPowerGridEnv(two_feeders(), 2, registry=registry)
    venv.reset(seed=3)
    batches = [{a: np.stack([_actions(env, rng)[a] for env in venv.envs]) for a in venv.possible_agents} for _ in range(4)]
    venv.step(batches[0])
    clone = pickle.loads(pickle.dumps(venv))
    assert "_pickle_format" not in clone.__dict__
    for batch in batches[1:]:
        for mine, theirs in zip(clone.step(batch)[:2], venv.step(batch)[:2]):
            for a in theirs:
                np.testing.assert_array_equal(mine[a], theirs[a])

"""Every key ``infos[agent]`` and ``infos["__common__"]`` carry is listed in docs/rl.md's infos table and in the
README's infos comment (hold-out review r40 item 11: both lists left out keys the env emits, e.g. ``ticks_to_next``,
``next_action_s``, ``time_s``). Keys named by what emits them are listed by placeholder: ``<Protocol>`` (a protocol's
``info()`` under its class name) and ``<record>`` (a device's ``info()`` records under their key)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from powergrid.env import COMMON_INFO, MultiAgentPowerGridEnv
from powergrid.rl.gym import SingleAgentView
from tests.docs.blocks import ROOT

CONFIGS = ROOT / "configs"


def rl_table() -> set[str]:
    """The keys of docs/rl.md's infos table: the backquoted names of its first column."""
    text = (ROOT / "docs" / "rl.md").read_text()
    table = text.split("| key | meaning |\n| --- | --- |\n", 1)[1].split("\n\n", 1)[0]
    return {name for row in table.splitlines() for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def readme_comment() -> set[str]:
    """The keys the README's ``# infos[agent]`` comment lists: the first name of each item after its colon, the items
    parted by commas, semicolons and "and", their parenthesised remarks dropped (so a word of a remark is no key)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("# infos[agent]"))
    comment = []
    for line in lines[start:]:
        if not line.strip().startswith("#"):
            break
        comment.append(line)
    text = re.sub(r"\([^()]*\)", "", " ".join(line.strip().lstrip("#") for line in comment)).split(":", 1)[1]
    items = re.split(r"[,;]|\band\b", text)
    return {m.group() for item in items if (m := re.search(r"<?[A-Za-z_][A-Za-z0-9_]*>?", item))}


def _sources(env: MultiAgentPowerGridEnv) -> tuple[set[str], set[str]]:
    """The class names of the env's protocols and the keys its devices' records have now."""
    s = env.scenario
    protocols = {type(a.protocol).__name__ for a in s.agents.values() if getattr(a, "protocol", None) is not None}
    protocols |= {type(p).__name__ for p in s.horizontal}
    records = {key for d in s.device_agents if hasattr(d.device, "info") for key in d.device.info()}
    return protocols, records


def episode_infos(env: MultiAgentPowerGridEnv, steps: int) -> Iterator[tuple[dict, set[str], set[str]]]:
    """The infos of ``reset`` (seed 0) and of ``steps`` random steps, each with :func:`_sources` at that step."""
    _, infos = env.reset(seed=0)
    for space in map(env.action_space, env.possible_agents):
        space.seed(0)
    yield (infos, *_sources(env))
    for _ in range(steps):
        if env.ended:
            break
        infos = env.step({a: env.action_space(a).sample() for a in env.agents})[4]
        yield (infos, *_sources(env))


def undocumented(keys: set[str], documented: set[str], protocols: set[str], records: set[str]) -> set[str]:
    """The keys neither listed nor covered by a listed placeholder."""
    return {k for k in keys if k not in documented and not ("<Protocol>" in documented and k in protocols)
            and not ("<record>" in documented and k in records)}


def _hil_site(port: int) -> dict:
    """A learned site over a HIL unit and a rule-driven HIL meter beside it, both at a closed port: every step has a
    ``comm`` record, in the site's infos and in the env's entry."""
    unit = {"type": "ModbusDevice", "params": {"port": port, "timeout_s": 0.1}}
    return {"name": "hil_infos", "network": {"type": "case33bw"}, "time": {"step_minutes": 15, "steps_per_episode": 4},
            "agents": [{"id": "site", "kind": "grid", "policy": "learned", "protocol": {"type": "setpoint"},
                        "children": ["unit"]},
                       {"id": "unit", "bus": 5, **unit}, {"id": "meter", "bus": 6, **unit}]}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def documented() -> dict[str, set[str]]:
    return {"docs/rl.md": rl_table(), "README.md": readme_comment()}


@pytest.mark.parametrize(("config", "expected"), [
    ("hierarchical_3level.yaml", {"PriceSignal", "directive_age_s", "measurement_age_s", "next_action_s"}),
    ("p2p_3mg.yaml", {"P2PTrading", "time_s", "timestamp"}),
    ("hil", {"comm", COMMON_INFO}),
])
def test_every_infos_key_is_documented(config, expected, documented):
    if config == "hil":
        pytest.importorskip("powergrid_hil")
        env = MultiAgentPowerGridEnv.from_config(_hil_site(_closed_port()))
    else:
        env = MultiAgentPowerGridEnv.from_config(CONFIGS / config)
    seen = set()
    for infos, protocols, records in episode_infos(env, 12):
        common = infos.get(COMMON_INFO, {})
        seen |= set(common) | ({COMMON_INFO} if common else set())
        assert set(common) <= records  # the env's entry holds records only, by their key
        for agent, info in infos.items():
            if agent == COMMON_INFO:
                continue
            seen |= set(info)
            for where, names in documented.items():
                missing = undocumented(set(info), names, protocols, records)
                assert not missing, f"{config}: infos[{agent!r}] keys {sorted(missing)} are not listed in {where}"
    assert expected <= seen  # the scenario emits the keys it is here for


def test_the_env_entry_is_documented_where_it_is_described():
    assert 'infos["__common__"]` (`{<record>: {device agent id: records}}`' in (ROOT / "docs" / "rl.md").read_text()
    assert 'device records such as comm (else in infos["__common__"])' in (ROOT / "README.md").read_text()


def test_an_adapters_infos_keys_are_documented(documented):
    view = SingleAgentView(CONFIGS / "hierarchical_3level.yaml", "mg1")
    _, info = view.reset(seed=0)
    keys = set(info)
    view.action_space.seed(0)
    for _ in range(3):
        keys |= set(view.step(view.action_space.sample())[4])
    protocols, records = _sources(view.env)
    assert "ticks" in keys
    assert not undocumented(keys - {COMMON_INFO}, documented["docs/rl.md"], protocols, records)

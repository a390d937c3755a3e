"""The friction points a new plugin author met (issue 13), each fixed: tested as a user meets them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from powergrid import hookimpl
from powergrid.builder import build_scenario
from powergrid.cli import main
from powergrid.config import EnvConfig
from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import ConfigError
from powergrid.plugins import PluginRecord, get_registry, make_registry
from powergrid.progress import progress
from powergrid.protocols import VerticalProtocol, mw_range, pending_mw, set_pending_mw
from tests.docs.blocks import ROOT

SMALL = """
name: small
network: {type: cigre_mv}
time: {physics: 1h, episode: 6h}
agents:
  - {id: mg, kind: grid, policy: learned, protocol: {type: setpoint}, children: [ess, pv]}
  - {id: ess, type: ESS, bus: Bus 5, params: {p_max_mw: 0.5, capacity_mwh: 1.0}}
  - {id: pv, type: PV, bus: Bus 5, params: {p_max_mw: 0.3}}
"""


def test_the_configuration_page_network_params_example_works():
    config = EnvConfig.from_text("network: {type: ieee34_3mg, params: {vm_pu: 1.03}}\n"
                                 "agents: [{id: pv, type: PV, bus: mg1.675}]", file="x.yaml")
    assert build_scenario(config).net.ext_grid.vm_pu.tolist() == [1.03]


@pytest.mark.parametrize(("network", "params", "message"), [
    ("ieee34_3mg", "{vm: 1.0}", "x.yaml:1 network.params.vm: unknown parameter of network 'ieee34_3mg' (known: vm_pu)"),
    ("ieee34_3mg", "{vm_pu: high}", "x.yaml:1 network.params.vm_pu: expected a number (pu), got 'high'"),
    ("case33bw", "{vm_pu: 1.0}", "x.yaml:1 network.params.vm_pu: unknown parameter of network 'case33bw' (known: none)"),
])
def test_network_parameter_errors_name_the_network(network, params, message):
    config = EnvConfig.from_text(f"network: {{type: {network}, params: {params}}}\nagents: [{{id: pv, type: PV, bus: '1'}}]",
                                 file="x.yaml")
    with pytest.raises(ConfigError) as caught:
        build_scenario(config)
    assert str(caught.value) == message


def test_a_relative_dataset_path_is_relative_to_the_scenario_file(tmp_path, monkeypatch):
    folder = tmp_path / "study"
    folder.mkdir()
    scenario = folder / "s.yaml"
    scenario.write_text(SMALL + "datasets:\n  price: {provider: caiso, path: oasis}\n")
    monkeypatch.chdir(tmp_path)                 # elsewhere: the path must not follow the working directory
    built = build_scenario(EnvConfig.from_yaml("study/s.yaml"))
    assert Path(built.providers["price"].params.path) == folder / "oasis"  # absolute: a later chdir keeps it
    text = build_scenario(EnvConfig.from_text(SMALL + "datasets:\n  price: {provider: caiso, path: oasis}\n"))
    assert text.providers["price"].params.path == "oasis"   # from text: kept as given


class Counting(VerticalProtocol):
    """A vertical protocol that counts its directives within the episode."""

    def __init__(self, params, parent):
        super().__init__(params, parent)
        self.count = 0

    def reset(self, rng):
        self.count = 0

    def directives(self, action, ctx):
        self.count += 1
        return super().directives(action, ctx)

    def info(self):
        return {"count": self.count}


@hookimpl
def powergrid_register_protocols():
    return [PluginRecord("counting", Counting)]


def test_the_env_resets_vertical_protocols():
    registry = make_registry(sys.modules[__name__], entry_points=True)
    env = MultiAgentPowerGridEnv(EnvConfig.from_text(SMALL.replace("type: setpoint", "type: counting")), registry=registry)
    for _ in range(2):
        env.reset(seed=0)
        assert env.scenario.agents["mg"].protocol.count == 0, "info() after reset shows this episode, not the last"
        while env.agents:
            _, _, _, _, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
        assert infos["mg"]["Counting"]["count"] == 6


def test_public_setpoint_helpers_for_protocol_authors():
    import powergrid_protocols.common as common

    assert (common.mw_range, common.pending_mw, common.set_pending_mw) == (mw_range, pending_mw, set_pending_mw)
    env = MultiAgentPowerGridEnv.from_config(str(ROOT / "configs" / "ieee34_3mg.yaml"))
    env.reset(seed=0)
    ess = env.scenario.agents["mg1_ess"]
    ess.device.soc = ess.device.params.soc_min      # empty: it can charge but not discharge
    low, high = mw_range(ess)
    assert low == pytest.approx(-0.5) and high == pytest.approx(0.0, abs=1e-9)
    ess.pending = None
    assert pending_mw(ess) == 0.0
    set_pending_mw(ess, -0.3)
    assert pending_mw(ess) == pytest.approx(-0.3) and ess.pending.shape == ess.device.action_space.shape


def test_plugins_params_prints_units_defaults_and_ranges(capsys):
    assert main(["plugins", "--params", "ESS"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("device ESS (powergrid-devices ")
    assert any(line.split()[:4] == ["capacity_mwh", "MWh", "2.0", "a"] and "> 0 (MWh)" in line for line in out.splitlines())
    assert main(["plugins", "--params", "ieee34_3mg"]) == 0
    assert "vm_pu                  pu       1.05" in capsys.readouterr().out
    assert main(["plugins", "--params", "ess"]) == 2
    err = capsys.readouterr().err
    assert err == ("powergrid: error: no device, protocol, network, dataset or solver is called 'ess'; did you mean 'ESS'? "
                   "(powergrid plugins lists them)\n")


def _cli(*args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "powergrid.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_help_lists_pack_commands_and_a_missing_pack_command_names_its_pack():
    helped = " ".join(_cli("--help").stdout.split())
    assert "datasets list, describe and plot dataset providers [powergrid-datasets" in helped
    assert "network network tools" in helped and "commands of packs not installed" not in helped
    core_only = {"POWERGRID_DISABLE_PLUGINS": "datasets,hil"}
    helped = _cli("--help", env=core_only)
    assert ("commands of packs not installed: datasets (pip install powergrid-datasets); hil (pip install powergrid-hil)"
            in " ".join(helped.stdout.split()))
    missing = _cli("datasets", "list", env=core_only)
    assert missing.returncode == 2
    assert missing.stderr == ("powergrid: error: 'datasets' is a command of powergrid-datasets, which is not installed: "
                              "pip install powergrid-datasets\n")


def test_run_plot_writes_three_pngs_into_out_only(tmp_path):
    import matplotlib.image

    (tmp_path / "s.yaml").write_text(SMALL)
    done = _cli("run", "s.yaml", "--episodes", "2", "--plot", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = {"small_trajectory.csv", "small_voltages.png", "small_dispatch.png", "small_market.png"}
    assert {p.name for p in (tmp_path / "out").iterdir()} == names
    assert {p.name for p in tmp_path.iterdir()} == {"s.yaml", "out"}
    for name in names - {"small_trajectory.csv"}:
        assert matplotlib.image.imread(tmp_path / "out" / name).shape[2] == 4
    assert "\r" not in done.stderr, "no progress bar when stderr is not a terminal"


def test_episode_record_envelope_is_the_flow_result():
    from powergrid.plots import EpisodeRecord

    env = MultiAgentPowerGridEnv(EnvConfig.from_text(SMALL))
    env.reset(seed=0)
    record = EpisodeRecord(env)
    lows, highs = [], []
    while env.agents:
        price = env.ctx.price
        env.step({a: env.action_space(a).sample() for a in env.agents})
        record.record(env, env.tick, price)
        lows.append(env.last_result.vm_pu.min())
        highs.append(env.last_result.vm_pu.max())
    assert record.v_min == pytest.approx(lows) and record.v_max == pytest.approx(highs)
    assert all(lo <= mean <= hi for lo, mean, hi in zip(record.v_min, record.v_mean, record.v_max))
    assert np.allclose(record.price, env.ctx.profiles["price"][: len(record.price)])
    assert set(record.soc) == {"ess"} and set(record.p_mw) == {"ess", "pv"}


def test_network_plot_marks_the_agents(tmp_path):
    done = _cli("network", "plot", str(ROOT / "configs" / "ieee34_3mg.yaml"), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"network plot: {tmp_path / 'ieee34_3mg_network.png'}"
    done = _cli("network", "plot", "ieee13", "--out", str(tmp_path))
    assert (tmp_path / "ieee13_network.png").stat().st_size > 10_000
    bad = _cli("network", "plot", "ieee99", "--out", str(tmp_path))
    assert bad.returncode == 2 and bad.stderr.startswith("powergrid: error: unknown network type 'ieee99'")


def test_tree_layout_puts_the_slack_first_and_children_deeper():
    from powergrid.plots import tree_layout

    net = get_registry().load("network", "ieee13")()
    pos = tree_layout(net)
    slack = int(net.ext_grid.bus.iloc[0])
    assert pos[slack][0] == 0 and set(pos) == set(int(b) for b in net.bus.index)
    for a, b in zip(net.line.from_bus, net.line.to_bus):
        assert abs(pos[int(a)][0] - pos[int(b)][0]) == 1   # a radial feeder: each line one level apart


def test_progress_is_off_when_stderr_is_not_a_terminal():
    bar = progress(range(3), desc="x")
    assert bar.disable and list(bar) == [0, 1, 2]

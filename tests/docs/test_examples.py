"""Each guide's example package, pip-installed into a folder, runs in an episode and does what its guide says."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.docs.blocks import ROOT
from tests.docs.conftest import run_env


def run(examples_path, code: str) -> str:
    """Run ``code`` in a fresh interpreter that sees the installed examples; its stdout."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=run_env(examples_path),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_protocol_example_shares_ranges_caps_generation_and_resets(examples_path):
    out = run(examples_path, """
        import numpy as np
        from powergrid.env import MultiAgentPowerGridEnv

        env = MultiAgentPowerGridEnv.from_config("docs/examples/protocol/scenario.yaml")
        mg1 = env.scenario.agents["mg1"]
        assert type(mg1.protocol).__name__ == "ProportionalShare" and mg1.protocol.params.floor == 0.1
        dgs = [env.scenario.agents[i].device for i in ("dg1", "dg2")]
        for seed in (0, 1):
            env.reset(seed=seed)
            assert mg1.protocol.sent == {}, "reset() clears what the last episode sent"
            while env.agents:
                _, _, _, _, infos = env.step({a: np.ones(1, np.float32) for a in env.agents})  # full share
                assert sum(d.p_mw for d in dgs) <= 0.8 + 1e-6, "generation_cap holds the two gensets to 0.8 MW"
                assert infos["mg1"]["GenerationCap"]["capped"] is True   # both asked for 0.6 MW
                assert set(infos["mg1"]["ProportionalShare"]["setpoints_mw"]) == {"ess1", "dg1"}
        print("ok")
    """)
    assert out.strip().endswith("ok")


def test_network_example_takes_its_parameters_from_yaml(examples_path):
    out = run(examples_path, """
        from powergrid.env import MultiAgentPowerGridEnv
        from powergrid.config import EnvConfig
        from powergrid.errors import ConfigError

        env = MultiAgentPowerGridEnv.from_config("docs/examples/network/scenario.yaml")
        net = env.scenario.net
        assert len(net.bus) == 9 and list(net.load.p_mw) == [0.2] * 8   # n_buses: 8, load_mw: 0.2
        assert abs(net.ext_grid.vm_pu[0] - 1.02) < 1e-12                   # the default vm_pu
        env.reset(seed=0)
        while env.agents:
            _, _, _, _, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
            assert infos["mg"]["converged"]
        bad = EnvConfig.from_text("network: {type: radial_feeder, params: {n_bus: 3}}\\nagents: [{id: a, type: PV, bus: '1'}]",
                                  file="x.yaml")
        try:
            MultiAgentPowerGridEnv(bad)
        except ConfigError as exc:
            assert "network 'radial_feeder'" in str(exc) and "n_buses" in str(exc) and str(exc).startswith("x.yaml:1"), exc
        else:
            raise AssertionError("an unknown parameter must fail")
        print("ok")
    """)
    assert out.strip().endswith("ok")


def test_dataset_example_reads_the_csv_beside_the_scenario(examples_path, tmp_path):
    out = run(examples_path, f"""
        import csv, os
        import numpy as np
        from powergrid.env import MultiAgentPowerGridEnv

        os.chdir({str(tmp_path)!r})                          # the path is relative to the YAML, not to here
        env = MultiAgentPowerGridEnv.from_config({str(ROOT / "docs/examples/dataset/scenario.yaml")!r})
        env.reset(seed=0)
        rows = list(csv.DictReader(open({str(ROOT / "docs/examples/dataset/data/day.csv")!r})))
        price = np.array([float(r["price"]) for r in rows])
        load = np.array([float(r["load"]) for r in rows]) * 1.1
        assert np.allclose(env.ctx.profiles["price"], price) and np.allclose(env.ctx.profiles["load"], load)
        while env.agents:
            env.step({{a: env.action_space(a).sample() for a in env.agents}})
        print("ok")
    """)
    assert out.strip().endswith("ok")


def test_policy_example_charges_at_midday_and_discharges_in_the_evening(examples_path):
    out = run(examples_path, """
        from powergrid.env import MultiAgentPowerGridEnv

        env = MultiAgentPowerGridEnv.from_config("docs/examples/policy/scenario.yaml")
        env.reset(seed=0)
        ess = env.scenario.agents["ess"].device
        power = {}
        while env.tick < env.max_ticks:
            hour = env.ctx.hour
            env.step({})
            power[hour] = ess.p_mw
        assert all(power[h] < 0 for h in (10.0, 11.0, 12.0)), power       # charging at up to 0.4 MW
        assert all(power[h] > 0 for h in (17.0, 18.0)), power              # discharging
        assert power[3.0] == 0.0 and power[23.0] == 0.0
        print("ok")
    """)
    assert out.strip().endswith("ok")


def test_command_example_prints_the_agent_tree_and_is_in_help(examples_path):
    env = run_env(examples_path)
    tree = subprocess.run([sys.executable, "-m", "powergrid.cli", "tree", "docs/examples/protocol/scenario.yaml"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert tree.returncode == 0, tree.stderr
    assert tree.stdout.splitlines()[:3] == ["mg1: GridAgent, policy learned via ProportionalShare",
                                            "  ess1: DeviceAgent at bus 5, policy rule",
                                            "  dg1: DeviceAgent at bus 5, policy rule"]
    bad = subprocess.run([sys.executable, "-m", "powergrid.cli", "tree", "no/such.yaml"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("powergrid: error: no/such.yaml") and bad.stderr.count("\n") == 1
    helped = subprocess.run([sys.executable, "-m", "powergrid.cli", "--help"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert "[powergrid-tree 0.1.0]" in helped.stdout

"""Run plots: the voltage envelope over the in-service buses, no write through a symbolic link, the slack's layout."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest

from powergrid.env import MultiAgentPowerGridEnv
from powergrid.errors import PowerGridError
from powergrid.networks import TEMPLATES
from powergrid.plots import EpisodeRecord, draw_state, tree_layout
from powergrid.plugins import make_registry

from .scenarios import load_local, two_feeders
from .test_failures import _Networks


@pytest.fixture(scope="module")
def oos_env():
    """two_feeders on case33bw with bus 17 out of service (0 pu in the accepted flow)."""
    load_local()
    env = MultiAgentPowerGridEnv.from_config(two_feeders(network="case33_oos_bus"),
                                             registry=make_registry(_Networks, include_local=True))
    env.reset(seed=0)
    return env


def test_the_envelope_and_the_state_plot_leave_an_out_of_service_bus_out(oos_env):
    """The envelope was taken over every bus: v_min 0 pu (the out-of-service bus) at every step."""
    pytest.importorskip("matplotlib", reason="plots need the plot extra")
    env = oos_env
    env.reset(seed=0)
    record = EpisodeRecord(env)
    on = env.net.bus.in_service.to_numpy(bool)
    assert not on[17]
    while env.agents:
        env.step({a: env.action_space(a).sample() for a in env.agents})
        record.record(env, env.tick, env.ctx.price)
        vm = env.last_result.vm_pu
        assert vm[17] == 0.0
        assert record.v_min[-1] == vm[on].min() > 0.9
        assert record.v_mean[-1] == pytest.approx(vm[on].mean(), rel=1e-12)
        assert record.v_max[-1] == vm[on].max()
    shown = draw_state(env).axes[0].lines[0].get_ydata()
    assert np.isnan(shown[17]) and np.array_equal(shown[on], vm[on])


def test_saving_refuses_a_symbolic_link_in_the_folder(oos_env, tmp_path):
    """A link at one of the PNGs' names was written through (a file outside the folder overwritten with a PNG)."""
    pytest.importorskip("matplotlib", reason="plots need the plot extra")
    env = oos_env
    env.reset(seed=0)
    record = EpisodeRecord(env)
    env.step({a: env.action_space(a).sample() for a in env.agents})
    record.record(env, env.tick, env.ctx.price)
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{env.config.name}_dispatch.png").symlink_to(precious)
    with pytest.raises(PowerGridError, match="symbolic link"):
        record.save(out)
    assert precious.read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == [f"{env.config.name}_dispatch.png"]  # nothing written
    (out / f"{env.config.name}_dispatch.png").unlink()
    assert [p.name for p in record.save(out)] == [f"{env.config.name}_{k}.png" for k in ("voltages", "dispatch", "market")]


def test_the_layout_starts_at_the_in_service_slack():
    """With the first ext_grid out of service the tree grew from it; now from the in-service one at bus 32."""
    net = TEMPLATES["case33bw"]()
    pp.create_ext_grid(net, 32, vm_pu=1.0)
    net.ext_grid.loc[net.ext_grid.index[0], "in_service"] = False
    pos = tree_layout(net)
    assert pos[32][0] == 0.0 and pos[0][0] > 0.0

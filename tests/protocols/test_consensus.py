"""Gossip consensus: exact average on connected graphs and over lossy links; an honest `converged`."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid_protocols.channel import ChannelParams, LossyChannel
from powergrid_protocols.consensus import gossip_average, ring, star


def _random_connected(n, rng):
    edges = [(i, int(rng.integers(0, i))) for i in range(1, n)]  # a random spanning tree
    extra = [(int(a), int(b)) for a, b in rng.integers(0, n, size=(n, 2)) if a != b]
    return edges + extra


@pytest.mark.parametrize("graph", ["ring", "star", "random"])
def test_converges_to_the_exact_average(graph):
    rng = np.random.default_rng(3)
    n = 12
    values = rng.uniform(-5, 20, n)
    edges = {"ring": ring(n), "star": star(n), "random": _random_connected(n, rng)}[graph]
    r = gossip_average(values, edges, tol=1e-10)
    assert r.converged and r.connected
    assert r.iterations > 0 and r.messages > 0
    np.testing.assert_allclose(r.values, np.full(n, values.mean()), atol=1e-9)


def test_disconnected_graph_reports_non_convergence():
    values = [0.0, 1.0, 2.0, 10.0, 11.0, 12.0]
    r = gossip_average(values, [(0, 1), (1, 2), (3, 4), (4, 5)], max_iter=500)
    assert not r.connected and not r.converged and r.iterations == 500
    np.testing.assert_allclose(r.values[:3], 1.0, atol=1e-6)  # each component finds its own average
    np.testing.assert_allclose(r.values[3:], 11.0, atol=1e-6)


def test_through_a_delayed_channel_reaches_the_exact_average():
    values = np.arange(6, dtype=float)
    r = gossip_average(values, ring(6), tol=1e-8, channel=LossyChannel(ChannelParams(delay=1, loss=0.0)))
    assert r.converged
    np.testing.assert_allclose(r.values, 2.5, atol=1e-8)  # (0 + 1 + … + 5)/6


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_over_a_lossy_channel_the_estimates_reach_the_true_average(seed):
    # path mg1 – mg2 – mg3 with marginal costs 40, 60 and 110 $/MWh: average (40 + 60 + 110)/3 = 70 $/MWh.
    # 30 % of the messages are lost and the rest arrive a tick late; the running sums carry the lost mass
    channel = LossyChannel(ChannelParams(delay=1, loss=0.3, seed=seed))
    r = gossip_average([40.0, 60.0, 110.0], [(0, 1), (1, 2)], tol=1e-6, channel=channel)
    assert channel.stats["dropped"] > 0
    assert r.converged and r.spread <= 1e-6 and r.average_error <= 1e-6
    np.testing.assert_allclose(r.values, 70.0, atol=1e-5)


def test_agreement_without_mass_is_not_convergence():
    # every message lost: no agent hears anything, each keeps its own value (40, 60, 110):
    # spread 110 − 40 = 70 $/MWh, and the run must end unconverged at max_iter
    channel = LossyChannel(ChannelParams(delay=0, loss=1.0, seed=0))
    r = gossip_average([40.0, 60.0, 110.0], [(0, 1), (1, 2)], tol=1e-6, max_iter=50, channel=channel)
    assert not r.converged and r.iterations == 50
    assert r.spread == pytest.approx(70.0)
    np.testing.assert_allclose(r.values, [40.0, 60.0, 110.0])


def test_in_env_a_lossy_channel_reports_converged_only_at_the_true_average():
    import yaml

    from powergrid.env import MultiAgentPowerGridEnv
    from tests.protocols.test_configs import CONFIGS

    data = yaml.safe_load((CONFIGS / "consensus_3mg.yaml").read_text())
    data["horizontal"][0]["params"].update(channel="lossy", channel_delay=1, channel_loss=0.3)
    env = MultiAgentPowerGridEnv.from_config(data)
    env.reset(seed=0)
    for _ in range(4):
        obs, _, _, _, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
        info = infos["mg1"]["Consensus"]
        errors = [abs(v - info["average"]) for v in info["estimates"].values()]
        tol = env.scenario.horizontal[0].params.tol
        assert info["converged"] == (info["spread"] <= tol and info["average_error"] <= tol)
        if info["converged"]:
            assert max(errors) <= 2 * tol
        assert obs["mg1"][-1] == float(info["converged"])


def _ieee34_3mg_with_a_bus_out_of_service():
    """ieee34_3mg with mg1.652 (a leaf of microgrid mg1, no device on it) out of service with its line and load."""
    from powergrid.networks import TEMPLATES

    net = TEMPLATES["ieee34_3mg"]()
    b = int(net.bus.index[net.bus.name == "mg1.652"][0])
    net.bus.loc[b, "in_service"] = False
    net.line.loc[(net.line.from_bus == b) | (net.line.to_bus == b), "in_service"] = False
    net.load.loc[net.load.bus == b, "in_service"] = False
    return net


def test_the_voltage_signal_is_the_mean_over_the_zone_s_in_service_buses():
    """An out-of-service bus is 0 pu in the accepted flow: it is no part of a zone's mean voltage (was averaged in:
    mg1's signal 0.9224 pu against 0.9993 pu over its in-service buses)."""
    import yaml

    from powergrid import PluginRecord, hookimpl
    from powergrid.env import MultiAgentPowerGridEnv
    from powergrid.plugins import make_registry
    from tests.protocols.test_configs import CONFIGS

    class Networks:
        @staticmethod
        @hookimpl
        def powergrid_register_networks():
            return [PluginRecord("ieee34_3mg_oos", _ieee34_3mg_with_a_bus_out_of_service, "mg1.652 out of service")]

    data = yaml.safe_load((CONFIGS / "consensus_3mg.yaml").read_text())
    data["network"] = {"type": "ieee34_3mg_oos"}
    data["horizontal"][0]["params"] = {"topology": "ring", "signal": "voltage", "value_min": 0.0, "value_max": 2.0}
    env = MultiAgentPowerGridEnv.from_config(data, registry=make_registry(Networks, entry_points=True))
    env.reset(seed=0)
    proto = env.scenario.horizontal[0]
    net = env.net
    for _ in range(3):
        env.step({"mg1": np.zeros(env.action_space("mg1").shape, np.float32)})
        vm = env.last_result.vm_pu
        for agent in proto.participants:
            zone = np.flatnonzero((net.bus.zone == agent.id).to_numpy() & net.bus.in_service.to_numpy(bool))
            assert proto.rule_value(agent, env.ctx) == pytest.approx(vm[zone].mean(), rel=1e-12)
        assert 0.95 < proto.rule_value(proto.participants[0], env.ctx) < 1.05


def test_a_run_ignores_the_messages_an_earlier_run_left_on_a_shared_channel():
    """Over a 1-tick delay the last iteration's messages arrive at the next run's first tick; their running-sum stamps
    (an earlier run's iteration numbers) were taken as this run's, the earlier mass was added and this run's own
    messages were ignored until their stamps caught up."""
    channel = LossyChannel(ChannelParams(delay=1, loss=0.0))
    first = gossip_average([40.0, 60.0, 110.0], [(0, 1), (1, 2)], tol=1e-6, channel=channel)
    assert first.converged and channel.in_flight > 0  # the last round is still on its way
    second = gossip_average([100.0, 100.0, 130.0], [(0, 1), (1, 2)], tol=1e-6, channel=channel,
                            start_tick=first.iterations)
    clean = gossip_average([100.0, 100.0, 130.0], [(0, 1), (1, 2)], tol=1e-6,
                           channel=LossyChannel(ChannelParams(delay=1, loss=0.0)))
    assert second.converged and second.iterations == clean.iterations
    np.testing.assert_allclose(second.values, 110.0, atol=1e-5)


def test_what_a_run_leaves_in_the_channel_does_not_leak_into_the_next_tick():
    """A run ends with messages in flight (here the last iteration's, delayed by one tick; before capacities below
    the messages per iteration were refused, a whole backlog). They were left in the channel and the next tick's run
    took them as its own (estimates 54–74 against a true average of 110 with capacity 2). Each tick's run now starts
    on an empty channel."""
    from powergrid.agents import GridAgent
    from powergrid_protocols.consensus import Consensus, ConsensusParams

    params = ConsensusParams(topology="edges", edges=[["a", "b"], ["b", "c"]], channel="lossy", channel_delay=1,
                             channel_capacity=4, tol=1e-4, max_iter=300)
    proto = Consensus(params, [GridAgent("a"), GridAgent("b"), GridAgent("c")])
    proto.reset(np.random.default_rng(0))
    proto.coordinate({k: np.array([v]) for k, v in zip("abc", [40.0, 60.0, 110.0])}, None)
    assert proto.channel.in_flight == 0
    second = [100.0, 100.0, 130.0]
    proto.coordinate({k: np.array([v]) for k, v in zip("abc", second)}, None)
    clean = gossip_average(second, proto.edges, tol=1e-4, max_iter=300,
                           channel=LossyChannel(ChannelParams(delay=1, loss=0.0, capacity=4)))
    np.testing.assert_array_equal(list(proto.estimate.values()), clean.values)
    assert proto.result.converged and proto.result.average_error == clean.average_error


def test_a_channel_capacity_below_the_messages_per_iteration_is_a_config_error():
    """Review of 27e725a (ADMM) for gossip: a 3-agent path sends 4 messages per iteration; with capacity 3 the
    backlog grew by one per iteration and the run never converged (5000 iterations, error 0.44; capacity 2: 2.3)."""
    from powergrid.agents import GridAgent
    from powergrid_protocols.consensus import Consensus, ConsensusParams

    agents = [GridAgent("a"), GridAgent("b"), GridAgent("c")]
    for capacity, topology in ((3, "edges"), (5, "ring")):
        edges = {"edges": [["a", "b"], ["b", "c"]]} if topology == "edges" else {}
        params = ConsensusParams(topology=topology, channel_capacity=capacity, **edges)
        expected = 4 if topology == "edges" else 6
        with pytest.raises(ValueError, match=rf"expected channel_capacity ≥ {expected} .*got {capacity}"):
            Consensus(params, agents)
    stuck = gossip_average([40.0, 60.0, 110.0], [(0, 1), (1, 2)], tol=1e-4, max_iter=2000,
                           channel=LossyChannel(ChannelParams(delay=0, loss=0.0, capacity=3)))
    assert not stuck.converged
    Consensus(ConsensusParams(topology="edges", edges=[["a", "b"], ["b", "c"]], channel_capacity=4), agents)


def test_edges_without_the_edges_topology_are_refused():
    """consensus_3mg.yaml without 'topology: edges' (the default is ring): its path mg1-mg2-mg3 was silently ignored
    and the gossip ran over the ring [(0, 1), (1, 2), (2, 0)]."""
    from powergrid_protocols.consensus import ConsensusParams

    with pytest.raises(ValueError, match="only with topology: edges"):
        ConsensusParams(edges=[["mg1", "mg2"], ["mg2", "mg3"]])
    with pytest.raises(ValueError, match="needs edges"):
        ConsensusParams(topology="edges")
    assert ConsensusParams(topology="edges", edges=[["mg1", "mg2"]]).edges == (("mg1", "mg2"),)
    with pytest.raises(ValueError, match="value_min < value_max"):  # was gymnasium's 'Box all low values …'
        ConsensusParams(value_min=300.0, value_max=0.0)


def test_the_next_tick_s_run_on_an_ideal_channel_hears_its_first_iteration():
    """The drain after a run moved the channel's clock onto the next run's first tick (receive(clock)); on a delay-0
    channel that run's first iteration then heard nothing: 3 iterations where a fresh channel takes 1."""
    from powergrid.agents import GridAgent
    from powergrid_protocols.consensus import Consensus, ConsensusParams

    proto = Consensus(ConsensusParams(tol=1e-6), [GridAgent("a"), GridAgent("b"), GridAgent("c")])
    proto.reset(np.random.default_rng(0))
    proto.coordinate({k: np.array([v]) for k, v in zip("abc", [40.0, 60.0, 110.0])}, None)
    second = [100.0, 100.0, 130.0]
    proto.coordinate({k: np.array([v]) for k, v in zip("abc", second)}, None)
    fresh = Consensus(ConsensusParams(tol=1e-6), [GridAgent("a"), GridAgent("b"), GridAgent("c")])
    fresh.reset(np.random.default_rng(0))
    fresh.coordinate({k: np.array([v]) for k, v in zip("abc", second)}, None)
    assert proto.result.iterations == fresh.result.iterations
    np.testing.assert_array_equal(list(proto.estimate.values()), list(fresh.estimate.values()))

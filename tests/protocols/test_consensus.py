"""Gossip consensus: exact average on connected graphs, reported failure on a disconnected one."""

from __future__ import annotations

import numpy as np
import pytest

from powergrid_protocols.channel import ChannelParams, LossyChannel
from powergrid_protocols.gossip import gossip_average, ring, star


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


def test_through_a_delayed_channel_still_agrees():
    values = np.arange(6, dtype=float)
    r = gossip_average(values, ring(6), tol=1e-8, channel=LossyChannel(ChannelParams(delay=1, loss=0.0)))
    assert r.converged
    assert abs(r.values.mean() - values.mean()) < 0.5  # stale values: near, not exactly, the average

"""Consensus by gossip averaging over a communication graph (pure functions).

Synchronous average consensus with Metropolis–Hastings weights (Xiao & Boyd 2004):

    x_i ← x_i + Σ_{j ∈ N(i)} w_ij (x_j − x_i),   w_ij = 1 / (1 + max(deg_i, deg_j))

``W`` is symmetric and doubly stochastic, so Σ x is preserved and, on a
connected graph, every x_i → the network average (1/n)·Σ x_i(0). On a
disconnected graph each component converges to its own average; the run then
ends at ``max_iter`` without agreement and reports ``converged = False``
(``connected`` is also reported, from a breadth-first search).

Stopping rule: ``max_i x_i − min_i x_i ≤ tol`` (agreement); one iteration sends
one message along each direction of every edge (``2·|E|`` messages).

With a :class:`~powergrid_protocols.channel.Channel`, each iteration is one
channel tick: agents send their value to each neighbour, and combine with the
last value *received* from each neighbour (a lost or late message means a
stale value; the iteration then no longer preserves the sum exactly).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs
import numpy as np

from powergrid_protocols.channel import Channel, Message


@attrs.frozen
class GossipResult:
    values: np.ndarray
    iterations: int
    converged: bool
    connected: bool
    messages: int
    spread: float


def adjacency(n: int, edges: Iterable[tuple[int, int]]) -> np.ndarray:
    """Symmetric 0/1 adjacency matrix of an undirected graph on ``n`` nodes (self-loops ignored)."""
    a = np.zeros((n, n), dtype=bool)
    for i, j in edges:
        if not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"edge ({i}, {j}) outside nodes 0..{n - 1}")
        if i != j:
            a[i, j] = a[j, i] = True
    return a


def is_connected(adj: np.ndarray) -> bool:
    n = len(adj)
    if n == 0:
        return True
    seen = np.zeros(n, bool)
    stack = [0]
    seen[0] = True
    while stack:
        i = stack.pop()
        for j in np.flatnonzero(adj[i]):
            if not seen[j]:
                seen[j] = True
                stack.append(int(j))
    return bool(seen.all())


def metropolis_weights(adj: np.ndarray) -> np.ndarray:
    """Metropolis–Hastings weight matrix (symmetric, doubly stochastic)."""
    deg = adj.sum(axis=1)
    w = np.where(adj, 1.0 / (1.0 + np.maximum.outer(deg, deg)), 0.0)
    w[np.diag_indices_from(w)] = 1.0 - w.sum(axis=1)
    return w


def gossip_average(values: Sequence[float], edges: Iterable[tuple[int, int]], *, tol: float = 1e-9,
                   max_iter: int = 10_000, channel: Channel | None = None, start_tick: int = 0) -> GossipResult:
    """Run synchronous gossip until agreement within ``tol`` or ``max_iter`` iterations."""
    x = np.asarray(values, dtype=np.float64).copy()
    n = len(x)
    adj = adjacency(n, edges)
    connected = is_connected(adj)
    w = metropolis_weights(adj)
    nbrs = [np.flatnonzero(adj[i]) for i in range(n)]
    n_edges_directed = int(adj.sum())
    messages = 0
    spread = float(x.max() - x.min()) if n else 0.0
    if spread <= tol:
        return GossipResult(x, 0, True, connected, 0, spread)
    known = np.tile(x, (n, 1))  # known[i, j]: the last value of j that i has received
    for it in range(1, max_iter + 1):
        if channel is None:
            x = w @ x
            messages += n_edges_directed
        else:
            tick = start_tick + it - 1
            for i in range(n):
                for j in nbrs[i]:
                    channel.send(Message(str(i), str(j), float(x[i])), tick)
                    messages += 1
            for m in channel.receive(tick):
                known[int(m.recipient), int(m.sender)] = m.payload
            new = x.copy()
            for i in range(n):
                for j in nbrs[i]:
                    new[i] += w[i, j] * (known[i, j] - x[i])
            x = new
        spread = float(x.max() - x.min())
        if spread <= tol:
            return GossipResult(x, it, True, connected, messages, spread)
    return GossipResult(x, max_iter, False, connected, messages, spread)


def ring(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) for i in range(n)] if n > 2 else [(0, 1)] if n == 2 else []


def star(n: int) -> list[tuple[int, int]]:
    return [(0, i) for i in range(1, n)]

"""Average consensus by gossip: ratio consensus with running sums (pure functions) and its
environment adapter :class:`Consensus`.

Each agent ``i`` holds a pair ``(y_i, z_i)``, initially ``(x_i(0), 1)``, and splits it in
``deg_i + 1`` equal shares each iteration: it keeps one and sends one to every neighbour
(push-sum / ratio consensus, Kempe et al. 2003; Bénézit et al. 2010). Its estimate of the
average is ``y_i / z_i``. Over an ideal channel Σy and Σz are conserved and, on a connected
graph, every ``y_i/z_i → (1/n)·Σ x(0)``.

Lossy and delayed links (Hadjicostis, Domínguez-García & Vaidya 2016): a message carries
the *running sums* of every share the sender has sent on that link, and the receiver adds
the difference to the last running sum it received. A lost message's mass arrives with the
next one that gets through, and a late one still counts: no mass is lost, so the estimates
still converge to the exact average (unless a link drops everything).

``converged`` is reported only when two checks agree: the estimates agree
(``max − min ≤ tol``) **and** they agree on the conserved average (mass conservation:
``|mean(estimates) − mean(x(0))| ≤ tol``). Estimates that agree on a wrong value — mass
lost on the way — are reported as not converged. Together they bound each estimate's error by
``2·tol`` (``|x_i − mean(x(0))| ≤ spread + |mean(estimates) − mean(x(0))|``), not ``tol``: 1.4e-6 seen at
tol 1e-6 (r42). Otherwise the run ends at ``max_iter``
with ``converged = False`` (on a disconnected graph each component finds its own average;
``connected`` is reported from a breadth-first search). One iteration is one channel tick
and sends one message along each direction of every edge (``2·|E|`` messages).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import gymnasium
import numpy as np

from powergrid import scaling
from powergrid.devices import StepContext, box
from powergrid.params import Check, choice, integer, quantity
from powergrid.protocols import HorizontalProtocol
from powergrid.scaling import Feature
from powergrid.solvers.base import PowerFlowResult
from powergrid_protocols.channel import Channel, IdealChannel, Message
from powergrid_protocols.common import (
    ChannelFields,
    build_channel,
    clock_after,
    devices_of,
    dg_marginal,
    finite_or,
    pending_mw,
    project_pending,
    read_extra,
)


@attrs.frozen
class GossipResult:
    """Estimates of the average per agent, and how the run went (``spread``, ``average_error`` in the
    values' unit)."""

    values: np.ndarray
    iterations: int
    converged: bool
    connected: bool
    messages: int
    spread: float
    average_error: float


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


def gossip_average(values: Sequence[float], edges: Iterable[tuple[int, int]], *, tol: float = 1e-9,
                   max_iter: int = 10_000, channel: Channel | None = None, start_tick: int = 0) -> GossipResult:
    """Run ratio consensus until both checks of the module docstring hold, or ``max_iter`` iterations.

    ``channel`` (default: ideal) carries the messages; iteration ``k`` is its tick ``start_tick + k − 1``. A message
    the channel delivers that was sent before ``start_tick`` (an earlier run's, on a shared channel) is ignored.
    """
    x0 = np.asarray(values, dtype=np.float64)
    n = len(x0)
    adj = adjacency(n, edges)
    connected = is_connected(adj)
    nbrs = [np.flatnonzero(adj[i]) for i in range(n)]
    share = 1.0 / (1.0 + adj.sum(axis=1))
    channel = channel if channel is not None else IdealChannel()
    mean = float(x0.mean()) if n else 0.0
    y, z = x0.copy(), np.ones(n)
    sent = np.zeros((n, 2))  # running sums of (y, z) that i has sent on each of its links
    got = np.zeros((n, n, 2))  # got[i, j]: the last running sums i received from j
    stamp = np.zeros((n, n), int)  # the iteration that running sum was sent (a late old one is ignored)

    def result(est: np.ndarray, it: int, messages: int) -> GossipResult:
        spread = float(est.max() - est.min()) if n else 0.0
        error = abs(float(est.mean()) - mean) if n else 0.0
        return GossipResult(est, it, spread <= tol and error <= tol, connected, messages, spread, error)

    out = result(x0.copy(), 0, 0)
    messages = 0
    for it in range(1, max_iter + 1):
        if out.converged:
            break
        tick = start_tick + it - 1
        y, z = y * share, z * share  # the share each agent keeps; one more goes to each neighbour
        sent += np.column_stack([y, z])
        for i in range(n):
            for j in nbrs[i]:
                channel.send(Message(str(i), str(j), (it, sent[i, 0], sent[i, 1])), tick)
                messages += 1
        for m in channel.receive(tick):
            if m.sent_tick < start_tick:  # an earlier run's: its running sums are not this run's
                continue
            i, j = int(m.recipient), int(m.sender)
            k, sy, sz = m.payload
            if k > stamp[i, j]:
                y[i] += sy - got[i, j, 0]
                z[i] += sz - got[i, j, 1]
                got[i, j] = (sy, sz)
                stamp[i, j] = k
        out = result(y / z, it, messages)
    return out


def ring(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) for i in range(n)] if n > 2 else [(0, 1)] if n == 2 else []


def star(n: int) -> list[tuple[int, int]]:
    return [(0, i) for i in range(1, n)]


def _edges_check() -> Check:
    expected = "a list of [agent id, agent id] pairs"

    def convert(value: Any) -> tuple[tuple[str, str], ...]:
        if isinstance(value, tuple) and all(isinstance(e, tuple) for e in value):
            return value
        if not isinstance(value, list):
            raise ValueError(expected)
        out = []
        for e in value:
            if not isinstance(e, (list, tuple)) or len(e) != 2 or not all(isinstance(x, str) for x in e):
                raise ValueError(expected)
            out.append((e[0], e[1]))
        return tuple(out)

    return Check(expected, convert)


def edge_list(default: tuple = ()) -> Any:
    check = _edges_check()
    return attrs.field(default=default, converter=check.convert, metadata={"unit": "", "check": check,
                                                                           "doc": "communication graph"})


@attrs.frozen
class ConsensusParams(ChannelFields):
    topology: str = choice(("ring", "star", "complete", "edges"), "ring", doc="communication graph")
    edges: tuple = edge_list()
    signal: str = choice(("marginal_cost", "voltage", "net_power"), "marginal_cost",
                         doc="what a rule participant contributes")
    value_min: float = quantity("1", 0.0, doc="bounds of a learned participant's value")
    value_max: float = quantity("1", 300.0)
    tol: float = quantity("1", 1e-6, gt=0, doc="tolerance of the spread (max − min) and of the mean's error (each "
                                                 "estimate then within 2·tol of the average)")
    max_iter: int = integer(1000, ge=1)

    def __attrs_post_init__(self) -> None:
        if self.value_min >= self.value_max:
            raise ValueError(f"expected value_min < value_max, got {self.value_min} ≥ {self.value_max}")
        if self.edges and self.topology != "edges":  # they would be ignored: the graph would be the topology's
            raise ValueError(f"edges are read only with topology: edges (topology is {self.topology!r})")
        if self.topology == "edges" and not self.edges:
            raise ValueError("topology: edges needs edges (a list of [agent id, agent id] pairs)")


class Consensus(HorizontalProtocol):
    """Average consensus by gossip among the participants each tick.

    Value of a participant: a learned agent's extra action (one number in
    ``[value_min, value_max]``); a rule agent's signal — its DG marginal cost at the
    current setpoint ($/MWh), its zone's mean voltage (pu, last power flow, over the in-service buses) or its
    devices' net injection (MW, last tick). Graph: ``ring``/``star``/``complete`` over the
    participants in order, or ``edges`` (pairs of participant ids). Ratio consensus runs
    through the protocol's channel until the estimates agree on the participants' true average
    or ``max_iter`` (one channel tick per iteration; see the module docstring for the honest
    ``converged``). Observation: ``[own estimate, converged]``; the info reports iterations,
    convergence, spread, the error of the estimates' mean, and connectivity.
    """

    participant_kinds = ("grid", "system")  # among microgrid controllers: a device agent is a config error

    Params = ConsensusParams

    def __init__(self, params: ConsensusParams, participants: Sequence[Any]) -> None:
        super().__init__(params, participants)
        ids = [a.id for a in self.participants]
        n = len(ids)
        if params.topology == "edges":
            index = {a: i for i, a in enumerate(ids)}
            for a, b in params.edges:
                if a not in index or b not in index:
                    raise ValueError(f"consensus edge ({a}, {b}) names a non-participant (participants: {ids})")
            self.edges = [(index[a], index[b]) for a, b in params.edges]
        elif params.topology == "ring":
            self.edges = ring(n)
        elif params.topology == "star":
            self.edges = star(n)
        else:
            self.edges = [(i, j) for i in range(n) for j in range(i + 1, n)]
        sent = int(adjacency(n, self.edges).sum())  # one message along each direction of every edge per iteration
        self.channel = build_channel(params, sent, f"both directions of the {sent // 2} edges, sent every iteration")
        self._voltage = {a.id: 1.0 for a in self.participants}
        self._reset_state()

    def _reset_state(self) -> None:
        self.result: GossipResult | None = None
        self.projection: dict[str, float] = {}
        self.estimate = {a.id: 0.0 for a in self.participants}
        self.target = 0.0
        self._clock = 0

    def reset(self, rng: np.random.Generator) -> None:
        self.channel.reset(int(rng.integers(2**31)))
        self._voltage = {a.id: 1.0 for a in self.participants}
        self._reset_state()

    def action_space(self, agent: Any) -> gymnasium.spaces.Box:
        return box(self.params.value_min, self.params.value_max)

    def observation_features(self, agent: Any) -> tuple[Feature, ...]:
        """``[the agent's estimate of the average signal, converged (0/1)]``; the signal's units."""
        signal = {"voltage": scaling.VOLTAGE, "net_power": scaling.power(1.0)}.get(self.params.signal, scaling.PRICE)
        return (signal, scaling.FLAG)

    def rule_value(self, agent: Any, ctx: StepContext, dg_mw: Callable[[Any], float] = pending_mw) -> float:
        """What a rule participant contributes (the class docstring); ``dg_mw``: a DG agent's setpoint (MW)."""
        signal = self.params.signal
        if signal == "voltage":
            return self._voltage[agent.id]
        if signal == "net_power":
            return float(sum(d.device.p_mw for d in agent.devices()))
        dgs = devices_of(agent, ("DG",))
        return float(np.mean([dg_marginal(d, dg_mw(d)) for d in dgs])) if dgs else float(ctx.price)

    def rule_extra(self, agent: Any, parts: list[np.ndarray] | None, ctx: StepContext) -> np.ndarray:
        """``[rule value]``, its DG children at their setpoints in ``parts`` (MW; without parts, their pending ones)."""
        planned = {c.id: float(x[0]) for c, x in zip(agent.children, parts or []) if x.size}
        return np.array([self.rule_value(agent, ctx, lambda d: planned.get(d.id, pending_mw(d)))])

    def coordinate(self, actions: Mapping[str, np.ndarray], ctx: StepContext) -> None:
        self.projection = {}
        project_pending(self.participants, self.projection)
        values = []
        for agent in self.participants:
            extra = read_extra(agent, actions, self.action_space(agent), self.projection)
            values.append(float(extra[0]) if extra is not None else self.rule_value(agent, ctx))
        self.result = gossip_average(values, self.edges, tol=self.params.tol, max_iter=self.params.max_iter,
                                     channel=self.channel, start_tick=self._clock)
        self._clock = clock_after(self.channel, self._clock, self.result.iterations)
        self.estimate = {a.id: float(v) for a, v in zip(self.participants, self.result.values)}
        self.target = float(np.mean(values))

    def attach(self, net: Any) -> None:
        """Each participant's voltage zone: the in-service buses (positions) of its zone, else of its devices'
        buses (an out-of-service bus has no voltage: 0 pu in an accepted flow)."""
        on = net.bus.in_service.to_numpy(bool)
        self._zones: dict[str, np.ndarray] = {}
        for agent in self.participants:
            zone = agent.zone if getattr(agent, "zone", None) is not None and len(agent.zone) else \
                np.array([d.bus for d in agent.devices()], int)
            zone = np.asarray(zone, int)
            self._zones[agent.id] = zone[on[zone]]

    def settle(self, result: PowerFlowResult, ctx: StepContext) -> dict[str, tuple[float, float]]:
        if result.converged:
            for agent in self.participants:
                zone = self._zones[agent.id]
                if len(zone):
                    self._voltage[agent.id] = float(finite_or(np.mean(result.vm_pu[zone]), self._voltage[agent.id]))
        return {}

    def observe(self, agent: Any) -> np.ndarray:
        converged = 1.0 if self.result is not None and self.result.converged else 0.0
        return np.array([self.estimate.get(agent.id, 0.0), converged], np.float32)

    def info(self) -> dict[str, Any]:
        r = self.result
        if r is None:
            return {"iterations": 0, "converged": False}
        return {"iterations": r.iterations, "converged": r.converged, "connected": r.connected, "messages": r.messages,
                "average": self.target, "spread": r.spread, "average_error": r.average_error,
                "estimates": dict(self.estimate), "projection": dict(self.projection)}


__all__ = ["Consensus", "ConsensusParams", "GossipResult", "adjacency", "gossip_average", "is_connected", "ring", "star"]

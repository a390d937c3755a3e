"""Message channels between agents: delay (ticks), seeded loss, capacity (messages per tick).

The one channel model of PowerGrid: the environment's vertical links (parent ↔ child) and the
protocol pack's horizontal protocols both use it.

A channel is a small store-and-forward queue with a clock that the caller
supplies (an environment tick, or an iteration of a distributed algorithm)::

    ch = LossyChannel(delay=2, loss=0.1, capacity=0, seed=7)
    ch.send(Message("mg1", "mg2", 0.42), tick=5)
    ch.receive(tick=7)            # -> [Message(...)] unless it was lost

Rules (the same for every channel):

- ``send(msg, tick)`` stamps the message; it is *delivered* at ``tick + delay`` (also when
  the channel was received from at that tick before the send: a delay-0 message sent after a
  receive at its tick arrives at the next receive, at that tick).
- A sent message is dropped with probability ``loss`` (a Bernoulli draw from the
  channel's own seeded generator, made at send time, in send order).
- ``capacity`` > 0 bounds the messages *delivered* per tick: messages due at the
  same tick are delivered in send order; the excess waits for the next tick
  (FIFO, no loss). ``capacity = 0`` means unlimited.
- ``receive(tick, recipient=None)`` returns, and removes, the delivered messages
  whose delivery tick is ≤ ``tick`` (for ``recipient`` only, when given), in
  delivery order. An agent never sees a message before it has arrived.

``stats`` counts sent, dropped, delivered and deferred (by capacity) messages.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs
import numpy as np

from powergrid.params import integer, quantity


@attrs.define(slots=True)
class Message:
    """One message: who sent it, to whom (``None`` = broadcast to whoever receives), what, and when."""

    sender: str
    recipient: str | None
    payload: Any
    sent_tick: int = -1
    deliver_tick: int = -1


@attrs.frozen
class ChannelParams:
    delay: int = integer(0, ge=0, doc="ticks between send and delivery")
    loss: float = quantity("1", 0.0, ge=0, le=1, doc="probability that a message is lost")
    capacity: int = integer(0, ge=0, doc="messages delivered per tick; 0 = unlimited")
    seed: int = integer(0, ge=0, doc="seed of the loss draws")


class Channel:
    """Base channel: delay, seeded loss and capacity (the ideal channel has all three off)."""

    Params = ChannelParams

    def __init__(self, params: ChannelParams | None = None, **overrides: Any) -> None:
        params = params if params is not None else ChannelParams()
        if overrides:
            params = attrs.evolve(params, **overrides)
        self.params = params
        self.reset()

    # the three knobs, for readability
    @property
    def delay(self) -> int:
        return self.params.delay

    @property
    def loss(self) -> float:
        return self.params.loss

    @property
    def capacity(self) -> int:
        return self.params.capacity

    def reset(self, seed: int | None = None) -> None:
        """Forget every message in flight and restart the loss draws (from ``seed`` when given)."""
        self._rng = np.random.default_rng(self.params.seed if seed is None else seed)
        self._in_flight: deque[Message] = deque()  # in send order (FIFO), also those sent due at or before the clock
        self._delivered: list[Message] = []
        self._clock = -1  # the last tick received at
        self._used = 0  # messages delivered at the clock's tick (its capacity)
        self._waiting = 0  # messages due by the clock's tick, left there for lack of capacity (counted deferred at it)
        self.stats = {"sent": 0, "dropped": 0, "delivered": 0, "deferred": 0}

    def send(self, msg: Message, tick: int) -> bool:
        """Send ``msg`` at ``tick``; returns False when the channel lost it."""
        self.stats["sent"] += 1
        msg.sent_tick = int(tick)
        msg.deliver_tick = int(tick) + self.delay
        if self.loss > 0.0 and self._rng.random() < self.loss:
            self.stats["dropped"] += 1
            return False
        self._in_flight.append(msg)
        return True

    def _arrive(self, due: list[Message], t: int) -> int:
        """Deliver the first of ``due`` (in send order) at tick ``t``, the clock's, as many as its capacity has room
        for; returns how many (the rest are deferred)."""
        n = min(len(due), self.capacity - self._used) if self.capacity else len(due)
        self.stats["deferred"] += len(due) - max(n, self._waiting)  # each left message once per tick it waits
        self._waiting = len(due) - n
        for m in due[:n]:
            m.deliver_tick = t  # the tick it actually arrived
        self._delivered.extend(due[:n])
        self.stats["delivered"] += n
        self._used += n
        return n

    def _advance(self, tick: int) -> None:
        """Move messages due at ticks ≤ ``tick`` to the delivered list in send order, at most ``capacity`` per tick.

        The scan starts at the clock's tick: a message sent after a receive at the tick it was due arrives at it, within
        the capacity left there, behind those sent before it."""
        if not self._in_flight:
            if tick > self._clock:
                self._clock, self._used, self._waiting = tick, 0, 0
            return
        for t in range(self._clock, tick + 1):
            if t > self._clock:
                self._clock, self._used, self._waiting = t, 0, 0
            due = [m for m in self._in_flight if m.deliver_tick <= t]
            if due:
                chosen = {id(m) for m in due[:self._arrive(due, t)]}
                self._in_flight = deque(m for m in self._in_flight if id(m) not in chosen)

    def receive(self, tick: int, recipient: str | None = None) -> list[Message]:
        """Messages that have arrived by ``tick`` (for ``recipient`` when given), removed from the channel."""
        self._advance(int(tick))
        if recipient is None:
            out, self._delivered = self._delivered, []
            return out
        out = [m for m in self._delivered if m.recipient in (recipient, None)]
        self._delivered = [m for m in self._delivered if m.recipient not in (recipient, None)]
        return out

    @property
    def in_flight(self) -> int:
        return len(self._in_flight) + len(self._delivered)


class IdealChannel(Channel):
    """No delay, no loss, no capacity limit (parameters may still override them)."""


class LossyChannel(Channel):
    """A channel with delay, seeded loss and capacity (defaults: 1 tick delay, 10 % loss)."""

    Params = ChannelParams

    def __init__(self, params: ChannelParams | None = None, **overrides: Any) -> None:
        if params is None:
            params = ChannelParams(delay=1, loss=0.1)
        super().__init__(params, **overrides)


class Link:
    """One direction of a parent–child link: a channel and the last message it delivered.

    The receiver acts on ``last`` (``None`` before the first delivery); ``sent_tick`` is when that
    message was sent (0, the episode start, before any), so its age at ``tick`` is ``tick − sent_tick``.
    ``arrived`` tells whether the last :meth:`poll` delivered something.
    """

    def __init__(self, channel: Channel, sender: str, recipient: str) -> None:
        self.channel = channel
        self.sender = sender
        self.recipient = recipient
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.channel.reset(seed)
        self.last: Any = None
        self.sent_tick = 0
        self.arrived = False

    def send(self, payload: Any, tick: int) -> None:
        self.channel.send(Message(self.sender, self.recipient, payload), tick)

    def poll(self, tick: int) -> None:
        """Take what the channel delivered by ``tick``; the newest message becomes ``last``."""
        got = self.channel.receive(tick)
        if got:
            self.last, self.sent_tick, self.arrived = got[-1].payload, got[-1].sent_tick, True


__all__ = ["Channel", "ChannelParams", "IdealChannel", "Link", "LossyChannel", "Message"]

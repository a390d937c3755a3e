"""Channels: delay, seeded loss within 3 standard errors, capacity."""

from __future__ import annotations

import math

import pytest

from powergrid_protocols.channel import ChannelParams, IdealChannel, LossyChannel, Message, make_channel


@pytest.mark.parametrize("delay", [0, 1, 3, 7])
def test_a_message_sent_at_t_is_seen_at_t_plus_delay(delay):
    ch = LossyChannel(ChannelParams(delay=delay, loss=0.0))
    ch.send(Message("a", "b", "hello"), tick=10)
    for t in range(10, 10 + delay):
        assert ch.receive(t, "b") == []
    got = ch.receive(10 + delay, "b")
    assert [m.payload for m in got] == ["hello"] and got[0].deliver_tick == 10 + delay


@pytest.mark.parametrize("delay", [0, 2])
def test_a_message_sent_after_a_receive_at_its_delivery_tick_arrives_at_that_tick(delay):
    # the scan of due messages began after the last tick received: sent at 10 after receive(10 + delay) with delay 0,
    # or sent at 8 after receive(10) with delay 2, a message arrived one tick late (r41b F1b: a lossy link without
    # delay, polled by the environment before its parent sends, applied every setpoint a tick late)
    ch = LossyChannel(ChannelParams(delay=delay, loss=0.0))
    assert ch.receive(10, "b") == []
    ch.send(Message("a", "b", "late"), tick=10 - delay)
    got = ch.receive(10, "b")
    assert [m.payload for m in got] == ["late"] and got[0].deliver_tick == 10 and ch.stats["delivered"] == 1


def test_a_late_message_still_respects_the_capacity_of_its_tick():
    ch = IdealChannel(ChannelParams(capacity=2))
    ch.send(Message("a", "b", 0), tick=0)
    assert [m.payload for m in ch.receive(0)] == [0]
    for i in (1, 2):
        ch.send(Message("a", "b", i), tick=0)  # sent after the receive at 0: one place is left at tick 0
    got = ch.receive(0)
    assert [m.payload for m in got] == [1] and ch.stats["deferred"] == 1
    assert [(m.payload, m.deliver_tick) for m in ch.receive(1)] == [(2, 1)]


def test_a_late_message_left_by_the_capacity_arrives_before_those_sent_after_it():
    # a delay-0 message sent after the receive at its tick, with that tick's capacity used, was queued behind the
    # messages sent at later ticks (r41c F1: m2, sent at 1, arrived at 1 and m1, sent at 0, at 2)
    ch = IdealChannel(ChannelParams(capacity=1))
    ch.send(Message("a", "b", "m0"), tick=0)
    assert [m.payload for m in ch.receive(0)] == ["m0"]
    ch.send(Message("a", "b", "m1"), tick=0)
    ch.send(Message("a", "b", "m2"), tick=1)
    assert [(m.payload, m.deliver_tick) for m in ch.receive(1)] == [("m1", 1)]
    assert [(m.payload, m.deliver_tick) for m in ch.receive(2)] == [("m2", 2)]
    assert ch.stats["deferred"] == 2  # m1 at 0, m2 at 1: each once per tick it waited


def test_a_message_waiting_at_a_full_tick_is_counted_deferred_once_per_tick():
    ch = IdealChannel(ChannelParams(capacity=1))
    ch.send(Message("a", "b", 0), tick=0)
    ch.send(Message("a", "b", 1), tick=0)
    for _ in range(3):  # received from again at the same tick: 1 still waits there, counted once
        ch.receive(0)
    ch.send(Message("a", "b", 2), tick=0)  # sent after the receives, waits at 0 too
    assert ch.receive(0) == [] and ch.stats["deferred"] == 2
    assert [m.payload for m in ch.receive(1)] == [1] and ch.stats["deferred"] == 3


def test_the_ideal_channel_delivers_at_once():
    ch = make_channel("ideal")
    assert isinstance(ch, IdealChannel)
    ch.send(Message("a", "b", 1), tick=0)
    assert len(ch.receive(0)) == 1


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_loss_rate_within_three_standard_errors(p):
    n = 10_000
    ch = LossyChannel(ChannelParams(delay=0, loss=p, seed=11))
    received = 0
    for t in range(n):
        ch.send(Message("a", "b", t), tick=t)
        received += len(ch.receive(t))
    observed = 1 - received / n
    se = math.sqrt(p * (1 - p) / n)
    assert abs(observed - p) <= 3 * se
    assert ch.stats["dropped"] + ch.stats["delivered"] == n


def test_loss_is_reproducible_from_the_seed():
    def run(seed):
        ch = LossyChannel(ChannelParams(delay=0, loss=0.5, seed=seed))
        return [ch.send(Message("a", "b", i), i) for i in range(200)]

    assert run(1) == run(1) and run(1) != run(2)


def test_capacity_defers_the_excess_in_send_order():
    ch = IdealChannel(ChannelParams(capacity=2))
    for i in range(5):
        ch.send(Message("a", "b", i), tick=0)
    assert [m.payload for m in ch.receive(0)] == [0, 1]
    assert [m.payload for m in ch.receive(1)] == [2, 3]
    assert [m.payload for m in ch.receive(2)] == [4]
    assert ch.stats["deferred"] == 3 + 1


def test_a_protocols_lossy_channel_without_delay_or_loss_is_a_config_error():
    """``channel: lossy`` alone built a LossyChannel with delay 0 and loss 0, an ideal channel in disguise."""
    from powergrid.params import build_params
    from powergrid_protocols.common import build_channel
    from powergrid_protocols.p2p import P2PParams

    with pytest.raises(ValueError, match="channel_delay, channel_loss and/or channel_capacity"):
        build_channel(build_params(P2PParams, {"channel": "lossy"}))
    channel = build_channel(build_params(P2PParams, {"channel": "lossy", "channel_loss": 0.2}))
    assert channel.params.loss == 0.2 and channel.params.delay == 0


def test_a_protocols_lossy_channel_with_only_a_capacity_limits_deliveries():
    """``channel: lossy`` with delay 0 and loss 0 but ``channel_capacity`` 2 is no ideal channel: it is built (it was
    refused) and delivers 2 messages per tick, the rest later."""
    from powergrid.params import build_params
    from powergrid_protocols.common import build_channel
    from powergrid_protocols.p2p import P2PParams

    channel = build_channel(build_params(P2PParams, {"channel": "lossy", "channel_capacity": 2}))
    assert isinstance(channel, LossyChannel) and (channel.delay, channel.loss) == (0, 0.0)
    for i in range(3):
        channel.send(Message("a", "b", i), tick=0)
    assert [m.payload for m in channel.receive(0)] == [0, 1]
    assert [m.payload for m in channel.receive(1)] == [2]

"""Message channels of the protocol pack: the core channel model and channels by registry name.

The model (delay in ticks, seeded loss, capacity) lives in :mod:`powergrid.channels`, shared with
the environment's vertical links; this module re-exports it and adds :func:`make_channel`.
"""

from __future__ import annotations

from typing import Any

from powergrid.channels import Channel, ChannelParams, IdealChannel, LossyChannel, Message


def make_channel(name: str = "ideal", **params: Any) -> Channel:
    """Build a registered channel by name (``ideal``, ``lossy`` or a channel from another pack)."""
    if name == "ideal":
        return IdealChannel(ChannelParams(**params))
    if name == "lossy":
        return LossyChannel(ChannelParams(**{"delay": 1, "loss": 0.1, **params}))
    from powergrid import get_registry

    registry = get_registry()
    cls = registry.load("protocol", name) if name in registry.names("protocol") else None
    if not (isinstance(cls, type) and issubclass(cls, Channel)):  # a misspelt name, or a protocol that is no channel
        raise ValueError(f"params.channel: expected 'ideal', 'lossy' or a registered channel, got {name!r}")
    return cls(cls.Params(**params))


__all__ = ["Channel", "ChannelParams", "IdealChannel", "LossyChannel", "Message", "make_channel"]

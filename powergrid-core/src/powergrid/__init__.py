"""PowerGrid: hierarchical multi-agent reinforcement learning on AC power systems."""

from __future__ import annotations

__version__ = "0.1.0"

from powergrid.hookspecs import hookimpl
from powergrid.plugins import (
    PluginRecord,
    get_registry,
    load_plugins,
    register_dataset,
    register_device,
    register_network,
    register_policy,
    register_protocol,
    register_solver,
)

__all__ = [
    "PluginRecord",
    "__version__",
    "get_registry",
    "hookimpl",
    "load_plugins",
    "register_dataset",
    "register_device",
    "register_network",
    "register_policy",
    "register_protocol",
    "register_solver",
]

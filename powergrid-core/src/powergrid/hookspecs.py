"""pluggy hook specifications of PowerGrid.

Every hook returns a list of :class:`powergrid.plugins.PluginRecord` (or of
plain ``(name, factory)`` pairs) for one kind of plugin. A plugin module
implements any subset::

    from powergrid import hookimpl, PluginRecord

    @hookimpl
    def powergrid_register_devices():
        return [PluginRecord("HVAC", "my_pkg.hvac:HVAC", "first-order RC building")]
"""

from __future__ import annotations

import pluggy

PROJECT = "powergrid"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def powergrid_register_devices() -> list:
    """Device models (subclasses of :class:`powergrid.devices.Device`)."""


@hookspec
def powergrid_register_protocols() -> list:
    """Vertical and horizontal coordination protocols and message channels."""


@hookspec
def powergrid_register_networks() -> list:
    """Network templates: callables returning a pandapower net."""


@hookspec
def powergrid_register_datasets() -> list:
    """Dataset providers yielding time series (load, price, solar, wind)."""


@hookspec
def powergrid_register_solvers() -> list:
    """Power-flow solvers (subclasses of :class:`powergrid.solvers.PowerFlowSolver`)."""


@hookspec
def powergrid_register_policies() -> list:
    """Internal (non-learned) policies usable as ``policy:`` in YAML."""


@hookspec
def powergrid_register_commands() -> list:
    """CLI sub-commands: ``PluginRecord(name, "module:main")`` where ``main(argv: list[str]) -> int``."""


KINDS: dict[str, str] = {
    "device": "powergrid_register_devices",
    "protocol": "powergrid_register_protocols",
    "network": "powergrid_register_networks",
    "dataset": "powergrid_register_datasets",
    "solver": "powergrid_register_solvers",
    "policy": "powergrid_register_policies",
    "command": "powergrid_register_commands",
}

"""The plugin module named by the ``powergrid`` entry point in pyproject.toml."""

from __future__ import annotations

from powergrid import PluginRecord, hookimpl


@hookimpl
def powergrid_register_devices() -> list[PluginRecord]:
    return [PluginRecord("{{Class}}", "powergrid_{{name}}.device:{{Class}}", "energy store (template device)")]

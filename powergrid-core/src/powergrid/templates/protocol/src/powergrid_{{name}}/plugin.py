"""The plugin module named by the ``powergrid`` entry point in pyproject.toml."""

from __future__ import annotations

from powergrid import PluginRecord, hookimpl


@hookimpl
def powergrid_register_protocols() -> list[PluginRecord]:
    return [PluginRecord("{{name}}", "powergrid_{{name}}.protocol:{{Class}}",
                         "price signal: the price received plus a peak adder (template protocol)")]

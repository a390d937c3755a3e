"""Core's own plugin: network templates, solvers, the ``none`` protocol and basic policies.

Registered explicitly before any entry point, so it works with autoload off.
"""

from __future__ import annotations

from powergrid.hookspecs import hookimpl
from powergrid.plugins import PluginRecord


@hookimpl
def powergrid_register_networks() -> list[PluginRecord]:
    from powergrid.networks import TEMPLATES

    return [PluginRecord(name, fn) for name, fn in TEMPLATES.items()]


@hookimpl
def powergrid_register_solvers() -> list[PluginRecord]:
    return [
        PluginRecord("pandapower", "powergrid.solvers.pandapower_solver:PandapowerSolver",
                     "pandapower.runpp on the net (reference, slow)"),
        PluginRecord("fast", "powergrid.solvers.fast:FastSolver",
                     "compiled Ybus + warm-started Newton-Raphson (lightsim2grid KLU, numpy fallback)"),
    ]


@hookimpl
def powergrid_register_protocols() -> list[PluginRecord]:
    return [PluginRecord("none", "powergrid.protocols:NoProtocol", "children act on their own policies")]


@hookimpl
def powergrid_register_policies() -> list[PluginRecord]:
    return [
        PluginRecord("random", "powergrid.policies:RandomPolicy", "uniform samples of the action space"),
        PluginRecord("rule", "powergrid.policies:RulePolicy", "each device's own rule (Device.rule_action)"),
    ]


@hookimpl
def powergrid_register_datasets() -> list[PluginRecord]:
    return [PluginRecord("daily_shape", "powergrid.profiles:DailyShape",
                         "built-in deterministic daily load/solar/wind/price/temperature shapes")]

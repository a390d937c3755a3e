"""Contracts between core and the packs: hint table, hook documentation, plugin interfaces."""

from __future__ import annotations

import inspect

import pytest

from powergrid import hookspecs
from powergrid.devices import Device
from powergrid.first_party import FIRST_PARTY
from powergrid.plugins import get_registry
from powergrid.profiles import ProfileProvider
from powergrid.protocols import HorizontalProtocol, VerticalProtocol
from powergrid.solvers.base import PowerFlowSolver

BASES = {"device": Device, "dataset": ProfileProvider, "solver": PowerFlowSolver}


@pytest.mark.parametrize("dist", sorted(FIRST_PARTY))
def test_first_party_hint_table_matches_what_each_pack_registers(dist):
    registry = get_registry()
    for kind in {"device", "protocol", "dataset", "policy"}:
        registered = {r.name for r in registry.records(kind) if r.distribution == dist}
        assert registered == set(FIRST_PARTY[dist].get(kind, ())), f"{dist} {kind}s"


def test_every_hook_is_documented():
    for hook in hookspecs.KINDS.values():
        assert inspect.getdoc(getattr(hookspecs, hook)), hook


@pytest.mark.parametrize("kind", ["device", "protocol", "dataset", "solver", "policy"])
def test_every_registered_plugin_loads_and_has_the_right_base(kind):
    for record in get_registry().records(kind):
        factory = record.load()
        assert record.summary, f"{kind} {record.name} has no summary"
        if kind in BASES:
            assert issubclass(factory, BASES[kind]), record.name
        if kind == "protocol" and isinstance(factory, type):
            assert issubclass(factory, (VerticalProtocol, HorizontalProtocol)) or hasattr(factory, "send"), record.name

"""pytest plugin shipped with powergrid-core (entry point ``pytest11``) for plugin authors.

Fixtures:

- ``powergrid_registry(*plugins)`` — a fresh registry with core's built-ins and
  exactly the given plugin modules (no entry points), so a test never depends
  on what happens to be installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from powergrid.plugins import Registry, make_registry


@pytest.fixture
def powergrid_registry() -> Callable[..., Registry]:
    """Factory: ``powergrid_registry(my_plugin_module, entry_points=False) -> Registry``."""

    def factory(*plugins: Any, entry_points: bool = False) -> Registry:
        return make_registry(*plugins, entry_points=entry_points)

    return factory

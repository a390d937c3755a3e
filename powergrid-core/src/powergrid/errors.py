"""Exceptions of PowerGrid. Each message names where the problem is and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PowerGridError(Exception):
    """Base class of every PowerGrid error."""


class ConfigError(PowerGridError, ValueError):
    """A configuration value is wrong: the message gives ``file:line path: expected …, got …``
    (``file:line:column`` for a YAML syntax error)."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, path: str = "",
                 column: int | None = None):
        self.file, self.line, self.column, self.path, self.detail = file, line, column, path, message
        where = f"{file}:{line}" if file and line else (file or "<config>")
        where += f":{column}" if file and line and column else ""
        super().__init__(f"{where} {path}: {message}" if path else f"{where}: {message}")


class PluginError(PowerGridError):
    """Base class of plugin errors."""


class UnknownPluginError(PluginError, LookupError):
    """A plugin name is not registered."""


class DuplicatePluginError(PluginError):
    """Two plugins register the same name for the same kind."""


class PluginLoadError(PluginError, ImportError):
    """An entry-point plugin failed to import (raised only in strict mode)."""


class ActionError(PowerGridError, ValueError):
    """An action passed to ``step`` does not fit: unknown agent id, wrong shape or type. Names the agent and its space."""


class BusError(ValueError):
    """Raised by a device's ``attach`` when its agent's ``bus`` (not a parameter) does not fit the network: reported at
    ``agents[i].bus`` (any other ``ValueError`` of ``attach`` at ``agents[i].params``)."""


def closest(text: str, names: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The name of ``names`` that ``text`` is in another case, else the one difflib finds closest (at least
    ``cutoff``), else None: the suggestion of a "did you mean" hint."""
    names = list(names)
    lowered = {n.lower(): n for n in names}
    if text.lower() in lowered:
        return lowered[text.lower()]
    close = difflib.get_close_matches(text, names, n=1, cutoff=cutoff)
    return close[0] if close else None


def plugin_failure(exc: Exception, where: str) -> Exception:
    """The error to raise ``from exc``, raised by plugin code: one of ``exc``'s type whose message is ``where`` (which
    agent and plugin, in which call at which tick) followed by the original message; a :class:`PluginError` naming the
    original type too when that type is not made from one message."""
    detail = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else exc
    where = _at_line(exc, where)
    try:
        return type(exc)(f"{where}: {detail}")
    except Exception:  # a constructor that wants other arguments
        return PluginError(f"{where}: {type(exc).__name__}: {detail}")


def _at_line(exc: BaseException, where: str) -> str:
    """``where`` with ``:LINE`` after the plugin's file it names (``…, /…/device.py)`` → ``…, /…/device.py:42)``): the
    line of the innermost frame of ``exc``'s traceback in that file (the raise, or the call into the code that raised);
    ``where`` as it is when no frame is in a file it names."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        file = tb.tb_frame.f_code.co_filename
        if file and (f", {file})" in where or where.endswith(f", {file}")):
            found = file, tb.tb_lineno
        tb = tb.tb_next
    if found is None:
        return where
    file, line = found
    at = where.rfind(f", {file}") + 2 + len(file)
    return f"{where[:at]}:{line}{where[at:]}"

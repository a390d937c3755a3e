"""Plugin discovery and the registry of named plugins.

Core's built-ins are registered first (they work with entry points off), then
every module of the ``powergrid`` entry-point group. Environment variables:

- ``POWERGRID_STRICT_PLUGINS=1``: a plugin that fails to import is fatal.
- ``POWERGRID_DISABLE_PLUGINS=a,b``: entry points named ``a`` and ``b`` are skipped.
- ``POWERGRID_NO_ENTRY_POINTS=1``: load core's built-ins and local plugins only.
- ``POWERGRID_PLUGIN_PATH=dir1:dir2``: folders of unpackaged plugins loaded with
  :func:`load_plugins` (also in worker processes, which inherit the variable; :func:`load_plugins`
  adds its folder to it).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import os
import pickle
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
import importlib_metadata
import pluggy

from powergrid import hookspecs
from powergrid.errors import DuplicatePluginError, PluginLoadError, UnknownPluginError, closest
from powergrid.first_party import first_party_names, provider_of

ENTRY_POINT_GROUP = "powergrid"
KINDS = tuple(hookspecs.KINDS)


@attrs.frozen
class PluginRecord:
    """One named plugin: ``factory`` is the object, or a lazy ``"module:attr"`` string."""

    name: str
    factory: Any
    summary: str = ""
    kind: str = ""
    distribution: str = "local"
    version: str = ""
    entry_point: str = ""  # the name in the ``powergrid`` entry-point group, when it came from one

    def load(self) -> Any:
        """The factory object, importing it first when it is a ``"module:attr"`` string."""
        if not isinstance(self.factory, str):
            return self.factory
        problem = self._form_problem()
        if problem:
            raise PluginLoadError(f"{self.kind or 'plugin'} {self.name!r} from {self.provider} cannot be loaded: "
                                  f"{problem}")
        module, _, attr = self.factory.partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # ImportError, AttributeError, or whatever the module raises when imported
            raise PluginLoadError(f"{self.kind or 'plugin'} {self.name!r} from {self.provider} cannot be loaded: "
                                  f"{self.factory!r} ({type(exc).__name__}: {exc})") from exc
        return obj

    def problem(self) -> str | None:
        """Why a lazy ``"module:attr"`` factory cannot load (its module is not installed), without importing it."""
        if not isinstance(self.factory, str):
            return None
        problem = self._form_problem()
        if problem:
            return problem
        module = self.factory.partition(":")[0]
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError) as exc:
            return f"module {module!r} cannot be found ({type(exc).__name__}: {exc})"
        return None if found else f"module {module!r} is not installed"

    def _form_problem(self) -> str | None:
        """Why a string factory is not of the form ``"module:attribute"``, or None."""
        module, colon, attr = str(self.factory).partition(":")
        if colon and module and attr:
            return None
        return f"expected a factory 'module:attribute' (such as 'my_pack.device:MyDevice'), got {self.factory!r}"

    @property
    def provider(self) -> str:
        return f"{self.distribution} {self.version}".strip()

    def defined_in(self) -> str:
        """Where the factory is defined: ``module:attribute in file`` (a lazy factory's file found without importing
        its module; ``module:attribute`` alone when there is no file)."""
        if isinstance(self.factory, str):
            target = self.factory
            try:
                spec = importlib.util.find_spec(target.partition(":")[0])
            except (ImportError, ValueError):
                spec = None
            file = spec.origin if spec is not None and spec.has_location else None
        else:
            target = f"{getattr(self.factory, '__module__', '?')}:{getattr(self.factory, '__qualname__', self.factory)}"
            try:
                file = inspect.getsourcefile(self.factory)
            except TypeError:  # a built-in, or a class of a module that is not in sys.modules
                file = None
        return f"{target} in {file}" if file else target


@attrs.frozen
class FailedPlugin:
    """An entry point that raised while being imported."""

    name: str
    distribution: str
    error: str


class Registry:
    """Every named plugin, by kind. Build with :func:`get_registry`."""

    def __init__(self, records: Iterable[PluginRecord], failed: Iterable[FailedPlugin] = (), *, strict: bool = True):
        """``strict``: a name registered twice raises; otherwise the first one is kept and the clash kept in ``conflicts``."""
        self._by_kind: dict[str, dict[str, PluginRecord]] = {kind: {} for kind in KINDS}
        self.failed: tuple[FailedPlugin, ...] = tuple(failed)
        conflicts = []
        for record in records:
            table = self._by_kind[record.kind]
            if record.name in table:
                first = table[record.name]
                points = [f"{r.entry_point} ({r.provider})" for r in (first, record) if r.entry_point]
                message = (f"{record.kind} '{record.name}' is registered twice: by {first.provider} "
                           f"and by {record.provider} ({first.defined_in()}; {record.defined_in()}); "
                           + (f"uninstall or rename one of them, or disable its entry point with "
                              f"POWERGRID_DISABLE_PLUGINS=<name>: {' or '.join(points)}" if points
                              else "rename one of them"))
                if strict:
                    raise DuplicatePluginError(message)
                conflicts.append(message)
                continue
            table[record.name] = record
        self.conflicts: tuple[str, ...] = tuple(conflicts)

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[kind])

    def records(self, kind: str) -> list[PluginRecord]:
        return [self._by_kind[kind][name] for name in self.names(kind)]

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        return name in self._by_kind[kind]

    def get(self, kind: str, name: str) -> PluginRecord:
        """The record of ``name``; an unknown name raises with choices, a suggestion and a pip hint."""
        table = self._by_kind[kind]
        if name in table:
            return table[name]
        raise UnknownPluginError(self.unknown_message(kind, name))

    def load(self, kind: str, name: str, base: type | None = None) -> Any:
        """The object of ``name``; an unknown name raises :meth:`unknown_message` (``base``: for a slot that takes
        subclasses of ``base`` only, e.g. a vertical protocol)."""
        table = self._by_kind[kind]
        if name in table:
            return table[name].load()
        raise UnknownPluginError(self.unknown_message(kind, name, base))

    def names_of(self, kind: str, base: type) -> list[str]:
        """The names of ``kind`` whose object is a subclass of ``base`` (those that fail to load are left out)."""
        names = []
        for record in self.records(kind):
            try:
                obj = record.load()
            except Exception:  # a broken plugin: listed by `powergrid plugins`, not offered here
                continue
            if isinstance(obj, type) and issubclass(obj, base):
                names.append(record.name)
        return names

    def unknown_message(self, kind: str, name: object, base: type | None = None) -> str:
        """Why ``name`` is no ``kind``: the installed names (of subclasses of ``base`` when given), the closest one,
        the pack that provides it, the plugins that failed to load, else (no likely typo) where local plugins come from."""
        choices = self.names(kind) if base is None else self.names_of(kind, base)
        text = str(name)
        # a first-party name whose pack is missing: no other name; else the closest installed name, else the closest
        # name of a first-party pack that is not installed
        close = None if provider_of(kind, text) else (
            closest(text, choices) or closest(text, [n for n in first_party_names(kind) if n not in self._by_kind[kind]]))
        message = f"unknown {kind} type {name!r}"
        if close:
            message += f"; did you mean {close!r}?"
        dist = provider_of(kind, close or text)
        missing_pack = bool(dist) and (close or text) not in self._by_kind[kind]
        if missing_pack:
            message += f"{' It' if close else '; it'} is provided by {dist}: {_switched_off(dist) or f'pip install {dist}'}"
        installed = "installed" if base is None else f"installed {base.__name__}s"
        message += f" ({installed}: {', '.join(choices) if choices else 'none'})"
        if self.failed:  # the name may be one of theirs: their errors are the cause, not a missing local plugin
            failures = "; ".join(f"{f.name!r} from {f.distribution}: {f.error}" for f in self.failed)
            message += (f"; plugins that failed to load, which may provide it: {failures} "
                        f"(POWERGRID_STRICT_PLUGINS=1 shows the traceback)")
        elif not _typo(text, close) and not provider_of(kind, text):
            message += _local_plugins_hint()  # not a typo of a known name, nor a first-party one: perhaps a local plugin's
        return message + ("" if close or dist else _misplaced_entry_points())


def origin(obj: Any) -> str:
    """Where the class of ``obj`` (or ``obj``, a class) comes from, for an error its code raised: its kind, registered
    name and provider when a registry built here lists it, and its file (``device 'ChillerZone' from
    powergrid-chiller-zone 0.1, /…/device.py``); else its class name and file."""
    cls = obj if isinstance(obj, type) else type(obj)
    lazy = f"{cls.__module__}:{cls.__qualname__}"
    records = [*_LOCAL.records, *(r for reg in list(_CACHE.values()) for table in reg._by_kind.values() for r in table.values())]
    record = next((r for r in records if r.factory is cls or r.factory == lazy), None)
    try:
        file = inspect.getsourcefile(cls)
    except TypeError:  # a built-in class
        file = None
    what = f"{record.kind} {record.name!r} from {record.provider}" if record else cls.__qualname__
    return f"{what}, {file}" if file else what


def _typo(text: str, close: str | None) -> bool:
    """Whether ``text`` reads as a typo of the suggested name ``close`` (another case, or ≥ 80 % alike: ``Heatr`` for
    ``Heater``), not a far match that difflib found (``LateDevice`` → ``SunSpecDevice``, perhaps a local plugin's)."""
    return close is not None and difflib.SequenceMatcher(None, text.lower(), close.lower()).ratio() >= 0.8


def _switched_off(dist: str) -> str | None:
    """How an installed ``dist`` was left out by the environment variables, or None (not installed, or not left out)."""
    try:
        points = [ep.name for ep in importlib_metadata.distribution(dist).entry_points if ep.group == ENTRY_POINT_GROUP]
    except Exception:  # not installed (PackageNotFoundError), or broken metadata
        return None
    if points and _env_flag("POWERGRID_NO_ENTRY_POINTS"):
        return "it is installed, and POWERGRID_NO_ENTRY_POINTS=1 leaves it out"
    disabled = {n.strip() for n in os.environ.get("POWERGRID_DISABLE_PLUGINS", "").split(",")}
    off = [n for n in points if n in disabled]
    return f"it is installed, and POWERGRID_DISABLE_PLUGINS={','.join(off)} leaves it out" if off else None


def _local_plugins_hint() -> str:
    """Where plugins come from, for a name no installed pack provides: a worker process (Ray, SubprocVecEnv) sees only
    the ``POWERGRID_PLUGIN_PATH`` it started with, not a later ``load_plugins`` of its parent; and a plugin package's
    entry points only on its own ``sys.path``, which for a Ray worker is not the driver's (r46b F5)."""
    here = os.environ.get("POWERGRID_PLUGIN_PATH", "").strip()
    return (f"; local plugins load from POWERGRID_PLUGIN_PATH ({f'here: {here}' if here else 'unset here'}), which a "
            f"worker process (Ray, SubprocVecEnv) takes from its parent when it starts: call powergrid.load_plugins() "
            f"before ray.init() or before starting the workers; a plugin package is found through its entry points on "
            f"this process's own sys.path: install it in this Python or put its folder on PYTHONPATH (a Ray worker "
            f"does not see a folder the driver added to sys.path)")


def _misplaced_entry_points() -> str:
    """A hint naming installed entry points declared in a group like ``powergrid.devices`` instead of ``powergrid``."""
    try:
        misplaced = [ep for ep in importlib_metadata.entry_points()
                     if ep.group != ENTRY_POINT_GROUP and ep.group.lower().replace("-", "_").startswith("powergrid")]
    except Exception:  # a broken installation must not hide the message this hint adds to
        return ""
    if not misplaced:
        return ""
    found = ", ".join(f"{ep.name} = {ep.value} in group {ep.group!r} ({_distribution(ep)[0]})" for ep in misplaced[:3])
    return f"; entry points are read from the group {ENTRY_POINT_GROUP!r} only, found: {found}"


class _LocalPlugins:
    """Plugins registered with decorators or :func:`load_plugins`, without packaging."""

    def __init__(self) -> None:
        self.records: list[PluginRecord] = []

    def add(self, record: PluginRecord) -> None:
        """Add ``record``; one of the same kind and name from the same module and of the same qualified name is
        replaced (a notebook cell or a module run again redefines it); two modules, or two classes of one module,
        registering one name still clash."""
        def key(r: PluginRecord) -> tuple[str, str, str, str]:
            return r.kind, r.name, r.distribution, getattr(r.factory, "__qualname__", repr(r.factory))

        self.records = [r for r in self.records if key(r) != key(record)] + [record]
        _clear_cache()


_LOCAL = _LocalPlugins()
_LOCAL_MODULES: list[tuple[Any, str]] = []
_LOCAL_FILES: dict[str, str] = {}  # module name of every local plugin file loaded here -> the file (absolute)
_CACHE: dict[str, Registry] = {}


def _clear_cache() -> None:
    _CACHE.clear()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def build_plugin_manager(
    *, entry_points: bool = True, local: bool = True
) -> tuple[pluggy.PluginManager, dict[str, tuple[str, str]], list[FailedPlugin]]:
    """A plugin manager with core's built-ins, then local plugins, then entry points.

    Returns the manager, the distribution and version of every registered plugin
    name, and the entry points that failed to import.
    """
    from powergrid import builtin

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    from powergrid import __version__

    origin: dict[str, tuple[str, str]] = {"core": ("powergrid-core", __version__)}
    pm.register(builtin, name="core")
    for module, where in _LOCAL_MODULES if local else ():
        name = f"local:{module.__name__}"
        if pm.get_plugin(name) is None:
            pm.register(module, name=name)
            origin[name] = (where, "")
    failed: list[FailedPlugin] = []
    if entry_points and not _env_flag("POWERGRID_NO_ENTRY_POINTS"):
        disabled = {n.strip() for n in os.environ.get("POWERGRID_DISABLE_PLUGINS", "").split(",") if n.strip()}
        for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in disabled or pm.get_plugin(ep.name) is not None:
                continue
            dist, version = _distribution(ep)
            try:
                module = ep.load()
                _check_hooks(module)
            except Exception as exc:  # a broken plugin must not take the others down
                failure = FailedPlugin(ep.name, dist, f"{type(exc).__name__}: {exc}")
                if _env_flag("POWERGRID_STRICT_PLUGINS"):
                    raise PluginLoadError(
                        f"plugin {ep.name!r} from {dist} {version} failed to import: {failure.error}"
                    ) from exc
                warnings.warn(
                    f"powergrid: skipped plugin {ep.name!r} from {dist} {version}: {failure.error} "
                    f"(set POWERGRID_STRICT_PLUGINS=1 to make this fatal)",
                    RuntimeWarning,
                    stacklevel=2,
                )
                failed.append(failure)
                continue
            pm.register(module, name=ep.name)
            origin[ep.name] = (dist, version)
    pm.check_pending()
    return pm, origin, failed


def _check_hooks(module: Any) -> None:
    """Raise ``ValueError`` naming a ``@hookimpl`` function of ``module`` that no hook of PowerGrid has (a typo such as
    ``powergrid_register_device``), or pluggy's ``PluginValidationError`` for one it refuses (an argument its hook
    does not have), here where the plugin is skipped, instead of at registration, stopping every command."""
    known = sorted(n for n in dir(hookspecs) if n.startswith("powergrid_"))
    marker = f"{hookspecs.PROJECT}_impl"
    marked = {n: getattr(getattr(module, n, None), marker, None) for n in dir(module)}
    hooks = [(opts.get("specname") or n) for n, opts in marked.items() if isinstance(opts, dict)]  # pluggy's options
    unknown = [n for n in hooks if n not in known]
    if unknown:
        raise ValueError(f"unknown hook {unknown[0]!r} (the hooks are {', '.join(known)})")
    if hooks:  # what else pluggy refuses at registration (an argument the hook does not have, ...)
        probe = pluggy.PluginManager(hookspecs.PROJECT)
        probe.add_hookspecs(hookspecs)
        probe.register(module)


def _distribution(ep: Any) -> tuple[str, str]:
    """Name and version of the distribution declaring ``ep``; a broken one (a ``.dist-info`` without METADATA,
    left by an interrupted install) is named by its folder instead of failing every command."""
    if ep.dist is None:
        return "unknown", ""
    # checked, not caught: without it importlib-metadata gives name None (< 8.5), KeyError, TypeError or MetadataNotFound (9)
    if ep.dist.read_text("METADATA") is None and ep.dist.read_text("PKG-INFO") is None:
        where = getattr(ep.dist, "_path", None)
        return f"{where or 'a distribution'} (no METADATA file: an interrupted install?)", ""
    return ep.dist.name, ep.dist.version


def _normalise(item: Any, kind: str, dist: str, version: str, entry_point: str = "") -> PluginRecord:
    if isinstance(item, PluginRecord):
        record = item
    elif isinstance(item, (tuple, list)) and len(item) >= 2:
        record = PluginRecord(item[0], item[1], item[2] if len(item) > 2 else "")
    else:
        raise ValueError(f"expected a PluginRecord or a (name, factory[, summary]) pair, got {item!r}")
    if not isinstance(record.name, str) or not record.name:
        raise ValueError(f"expected a plugin name (a non-empty string), got {record.name!r}")
    if not record.summary and not isinstance(record.factory, str):
        doc = (getattr(record.factory, "__doc__", None) or "").strip()
        first = doc.splitlines()[0].replace("``", "").rstrip(".") if doc else ""
        record = attrs.evolve(record, summary=first)
    if record.distribution == "local" and dist != "local":
        record = attrs.evolve(record, distribution=dist, version=version)
    return attrs.evolve(record, kind=kind, entry_point=entry_point)


def collect_records(pm: pluggy.PluginManager, origin: dict[str, tuple[str, str]],
                    failed: list[FailedPlugin] | None = None) -> list[PluginRecord]:
    """Call every registration hook of every plugin, tagging records with their distribution.

    A hook that raises or returns something other than records is skipped with a warning and
    added to ``failed`` (fatal with ``POWERGRID_STRICT_PLUGINS=1``), like a plugin that fails to import.
    """
    records: list[PluginRecord] = []
    for kind, hook_name in hookspecs.KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            dist, version = origin.get(impl.plugin_name, (impl.plugin_name, ""))
            # entry points are registered under their own name; core, local and test plugins under "core", "local:…", "test:…"
            entry_point = "" if impl.plugin_name == "core" or ":" in impl.plugin_name else impl.plugin_name
            try:
                items = impl.function() or ()
                if isinstance(items, (str, bytes, dict)):
                    raise ValueError(f"expected a list of records, got {type(items).__name__} {items!r}")
                records.extend([_normalise(item, kind, dist, version, entry_point) for item in items])
            except Exception as exc:  # one broken plugin must not take the others (or `powergrid plugins`) down
                error = f"{hook_name}: {type(exc).__name__}: {exc}"
                if _env_flag("POWERGRID_STRICT_PLUGINS"):
                    raise PluginLoadError(f"plugin {impl.plugin_name!r} from {dist} {version} failed: {error}") from exc
                warnings.warn(f"powergrid: skipped the {kind}s of plugin {impl.plugin_name!r} from {dist} {version}: "
                              f"{error} (set POWERGRID_STRICT_PLUGINS=1 to make this fatal)", RuntimeWarning, stacklevel=2)
                if failed is not None:
                    failed.append(FailedPlugin(impl.plugin_name, dist, error))
    return records


def get_registry(*, entry_points: bool = True, allow_conflicts: bool = False) -> Registry:
    """The registry of every plugin (built once per process and cached).

    A name registered twice raises :class:`DuplicatePluginError` unless ``allow_conflicts`` (the clashes are then in
    :attr:`Registry.conflicts`; ``powergrid plugins`` reports them before any listing).
    """
    key = f"ep={entry_points}"
    if key not in _CACHE:
        load_plugin_path()
        pm, origin, failed = build_plugin_manager(entry_points=entry_points)
        records = collect_records(pm, origin, failed) + _LOCAL.records
        _CACHE[key] = Registry(records, failed, strict=False)
    registry = _CACHE[key]
    if registry.conflicts and not allow_conflicts:
        raise DuplicatePluginError(registry.conflicts[0])
    return registry


def make_registry(*plugins: Any, entry_points: bool = False, include_local: bool = False) -> Registry:
    """A fresh registry of core's built-ins plus ``plugins`` (modules or objects with hook implementations).

    For tests: nothing installed or registered elsewhere leaks in unless ``entry_points``
    (installed packs) or ``include_local`` (decorators, :func:`load_plugins`) is true.
    """
    pm, origin, failed = build_plugin_manager(entry_points=entry_points, local=include_local)
    for i, plugin in enumerate(plugins):
        name = f"test:{getattr(plugin, '__name__', i)}"
        pm.register(plugin, name=name)
        origin[name] = (name, "")
    pm.check_pending()
    return Registry(collect_records(pm, origin, failed) + (_LOCAL.records if include_local else []), failed)


def _register(kind: str) -> Callable[..., Any]:
    def decorator_factory(name: Any = None, *, summary: str = "") -> Any:
        if name is not None and not isinstance(name, str):  # used without parentheses: @register_device
            return decorator_factory(summary=summary)(name)

        def decorator(obj: Any) -> Any:
            _LOCAL.add(
                PluginRecord(
                    name or obj.__name__,
                    obj,
                    summary or ((obj.__doc__ or "").strip().splitlines() or [""])[0],
                    kind=kind,
                    distribution=f"local:{getattr(obj, '__module__', '?')}",
                )
            )
            return obj

        return decorator

    decorator_factory.__doc__ = (f"Register a {kind} under ``name`` (default: the object's name) without packaging; "
                                 f"``@register_{kind}`` without parentheses works too.")
    return decorator_factory


register_device = _register("device")
register_protocol = _register("protocol")
register_network = _register("network")
register_dataset = _register("dataset")
register_solver = _register("solver")
register_policy = _register("policy")


def load_plugin_path() -> None:
    """Import the folders of ``POWERGRID_PLUGIN_PATH`` with :func:`load_plugins` (modules already imported are kept):
    before building a registry, and before a process unpickles an environment whose devices come from them."""
    for directory in os.environ.get("POWERGRID_PLUGIN_PATH", "").split(os.pathsep):
        if directory.strip():
            try:
                load_plugins(directory.strip())
            except FileNotFoundError:
                if directory.strip() in _ADDED_FOLDERS:  # loaded here by load_plugins, deleted since: its modules stay
                    continue
                if directory.strip() in os.environ.get(_ADDED_VARIABLE, "").split(os.pathsep):  # by a parent process
                    warnings.warn(f"powergrid: POWERGRID_PLUGIN_PATH: skipped {directory.strip()}, which a parent process "
                                  f"loaded with load_plugins and which is no longer a directory", RuntimeWarning, stacklevel=2)
                    continue
                raise PluginLoadError(f"POWERGRID_PLUGIN_PATH: {directory.strip()} is not a directory "
                                      f"(expected folders of plugin .py files, separated by {os.pathsep!r})") from None


def local_plugin_files() -> dict[str, str]:
    """The file (absolute) of every local plugin module loaded in this process, by module name."""
    return dict(_LOCAL_FILES)


def unpickle(blob: bytes, files: dict[str, str]) -> Any:
    """``pickle.loads(blob)`` after importing the local plugins it may need. Each of ``files`` (the pickling process's
    :func:`local_plugin_files`) that exists here is imported under the module name it had there, before
    :func:`load_plugin_path`: a same-named file of another folder, which a different loading order would give that
    name, cannot stand in for it. A local plugin module still missing, or bound here to another file, is one
    :class:`PluginLoadError` naming the module, its file and ``POWERGRID_PLUGIN_PATH`` (was a bare
    ModuleNotFoundError, or the other file's classes)."""
    for name, file in files.items():
        path = Path(file)
        if not path.is_file():  # moved, or on another machine: found through POWERGRID_PLUGIN_PATH, or the error below
            continue
        bound = getattr(sys.modules.get(name), "__file__", None)
        if bound is None:
            _import(path, name)
        elif Path(bound).resolve() != path.resolve():
            raise PluginLoadError(f"cannot unpickle: the local plugin module {name} is {bound} in this process, but was "
                                  f"{file} where the environment was pickled; load the plugin folders in the same "
                                  f"order in both processes, or give the .py files different names")
    load_plugin_path()
    try:
        return pickle.loads(blob)
    except ModuleNotFoundError as exc:
        name = exc.name or ""
        if not name.startswith("powergrid_local_"):  # the name load_plugins gives a local plugin file
            raise
    where = f" ({files[name]}, which no longer exists)" if name in files else ""
    raise PluginLoadError(f"cannot unpickle: the local plugin module {name}{where} is not loaded in this process; set "
                          f"POWERGRID_PLUGIN_PATH to the folder of its .py file before it starts, or call "
                          f"powergrid.load_plugins on it before unpickling") from None


_ADDED_FOLDERS: set[str] = set()
_ADDED_VARIABLE = "_POWERGRID_PLUGIN_PATH_ADDED"  # the folders load_plugins put in the variable, for child processes


def _add_to_plugin_path(folder: str) -> None:
    """Put ``folder`` (absolute) in ``POWERGRID_PLUGIN_PATH``: appended, or in place of a relative entry naming it, so
    that a worker process starting in another folder finds it too."""
    current = [d.strip() for d in os.environ.get("POWERGRID_PLUGIN_PATH", "").split(os.pathsep) if d.strip()]
    same = [Path(d).resolve() == Path(folder) for d in current]
    updated = [folder if match else d for d, match in zip(current, same)] if any(same) else [*current, folder]
    if updated != current:
        os.environ["POWERGRID_PLUGIN_PATH"] = os.pathsep.join(updated)
        _ADDED_FOLDERS.add(folder)
        inherited = [d for d in os.environ.get(_ADDED_VARIABLE, "").split(os.pathsep) if d and d != folder]
        os.environ[_ADDED_VARIABLE] = os.pathsep.join([*inherited, folder])


def load_plugins(directory: str | os.PathLike[str]) -> list[str]:
    """Import every ``*.py`` file of ``directory`` as a local plugin; returns the module names.

    A file may use the ``register_*`` decorators or define ``@hookimpl`` functions. The folder (absolute) is
    added to ``POWERGRID_PLUGIN_PATH``, so that processes started from here (spawned RL workers unpickling an
    environment) load it too.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"load_plugins: {folder} is not a directory")
    loaded = []
    for path in sorted(folder.resolve().glob("*.py")):
        if path.name.startswith("_"):
            continue
        module_name = next((name for name, file in _LOCAL_FILES.items() if file == str(path)), None)
        if module_name is None:  # not loaded yet (an unpickled environment may have loaded it under another name)
            module_name = f"powergrid_local_{path.stem}"
            if module_name in sys.modules:  # a same-named file of another folder
                module_name += "_" + hashlib.sha256(str(path).encode()).hexdigest()[:8]
            _import(path, module_name)
        loaded.append(module_name)
    _add_to_plugin_path(str(folder.resolve()))  # once every file loaded: a worker would fail on a broken one
    return loaded


def _import(path: Path, module_name: str) -> None:
    """Import the local plugin file ``path`` (absolute) as ``module_name``."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
        _check_hooks(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise PluginLoadError(f"local plugin {path} failed to import: {type(exc).__name__}: {exc}") from exc
    if any(hasattr(getattr(module, n), "powergrid_impl") for n in dir(module)):
        _LOCAL_MODULES.append((module, f"local:{path}"))
    _LOCAL_FILES[module_name] = str(path)
    _clear_cache()

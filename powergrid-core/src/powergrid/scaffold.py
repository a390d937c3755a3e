"""``powergrid new device|protocol NAME``: a pip-installable plugin package from a bundled template."""

from __future__ import annotations

import keyword
import re
from importlib import resources
from pathlib import Path

from powergrid.first_party import FIRST_PARTY

#: The bundled templates by what they make: ``powergrid new KIND NAME``.
TEMPLATES = {"device": "templates/device", "protocol": "templates/protocol"}
KINDS = tuple(TEMPLATES)
MAX_NAME = 64  #: characters of a class name (a snake-case name is at most twice as long)


def snake_case(name: str) -> str:
    """``HeatStorage`` → ``heat_storage``; a run of capitals is one word: ``EVFleet`` → ``ev_fleet``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def template_imports(kind: str = "device") -> set[str]:
    """The names the ``kind`` template's modules import (``Device``, ``StepContext``, …): a class of such a name
    would shadow one of them in the generated code."""
    names: set[str] = set()
    for node in resources.files("powergrid").joinpath(TEMPLATES[kind]).iterdir():
        stack = [node]
        while stack:
            item = stack.pop()
            if item.is_dir():
                stack.extend(item.iterdir())
            elif item.name.endswith(".py"):
                for imported in re.findall(r"^\s*from \S+ import (.+)$", item.read_text(encoding="utf-8"), re.M):
                    names.update(n.strip() for n in imported.split(",") if "{{" not in n)
    return names


def registered_name(kind: str, class_name: str) -> str:
    """The name the ``kind`` package registers ``class_name`` under (``type:`` in a scenario): a device by its class
    name (``HeatStorage``), a protocol by its snake-case name (``time_of_use``), as the first-party packs do."""
    return class_name if kind == "device" else snake_case(class_name)


def new_package(kind: str, class_name: str, where: Path) -> Path:
    """Create ``where/powergrid-<name>`` from the ``kind`` template (``device`` or ``protocol``); returns the folder.

    Placeholders in file names and contents: ``{{name}}`` (snake case; ``powergrid-{{name}}``
    becomes the hyphenated distribution name) and ``{{Class}}``.
    """
    if kind not in TEMPLATES:
        raise ValueError(f"expected one of {', '.join(KINDS)}, got {kind!r}")
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", class_name) or keyword.iskeyword(class_name):
        raise ValueError(f"expected a class name in CamelCase such as HeatStorage, got {class_name!r}")
    if len(class_name) > MAX_NAME:  # its snake-case file names must stay below the file systems' 255 bytes
        raise ValueError(f"expected a class name of at most {MAX_NAME} characters, got {len(class_name)}")
    if class_name in template_imports(kind):
        raise ValueError(f"{class_name!r} is a name the generated code imports from PowerGrid; choose another name")
    from powergrid.plugins import get_registry

    registry = get_registry(allow_conflicts=True)
    plugin_name = registered_name(kind, class_name)
    taken = [n for n in registry.names(kind) if n.lower() == plugin_name.lower()]
    if taken:  # the same name: every command would stop at "registered twice"; another case: a trap in every scenario
        raise ValueError(f"a {kind} {taken[0]!r} is already registered by {registry.get(kind, taken[0]).provider}; "
                         f"choose another name")
    name = snake_case(class_name)
    target = where / f"powergrid-{name.replace('_', '-')}"
    if target.name in ("powergrid-core", *FIRST_PARTY):  # pip install -e would replace that distribution
        raise ValueError(f"{class_name!r} would make a package named {target.name}, which is PowerGrid's own; "
                         f"choose another name")
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose another name or folder")
    root = resources.files("powergrid").joinpath(TEMPLATES[kind])

    def fill(text: str) -> str:
        text = text.replace("powergrid-{{name}}", target.name)  # distribution names use hyphens
        return text.replace("{{name}}", name).replace("{{Class}}", class_name)

    def copy(node, dest: Path) -> None:  # type: ignore[no-untyped-def]
        for child in node.iterdir():
            if child.name == "__pycache__":
                continue
            out = dest / fill(child.name)
            if child.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                copy(child, out)
            else:
                out.write_text(fill(child.read_text(encoding="utf-8")), encoding="utf-8")

    target.mkdir(parents=True)
    copy(root, target)
    return target


def new_device(class_name: str, where: Path) -> Path:
    """``powergrid new device``: a device plugin package registering ``class_name`` (``type: HeatStorage``)."""
    return new_package("device", class_name, where)


def new_protocol(class_name: str, where: Path) -> Path:
    """``powergrid new protocol``: a vertical-protocol plugin package registering ``class_name`` under its snake-case
    name (``TimeOfUse`` → ``type: time_of_use``)."""
    return new_package("protocol", class_name, where)

"""The reference pages are complete: every hook documented, the generated YAML and CLI pages cover the code, the nav holds every page."""

from __future__ import annotations

import inspect
import re
import sys

import attrs
import yaml

from powergrid import config, hookspecs
from powergrid.params import params_of
from powergrid.plugins import get_registry
from tests.docs.blocks import DOCS, ROOT, pages

sys.path.insert(0, str(DOCS / "tools"))
import reference  # docs/tools/reference.py


def test_every_hook_has_a_section_and_a_docstring():
    text = (DOCS / "reference" / "hooks.md").read_text()
    headings = set(re.findall(r"^## (\w+)$", text, re.M))
    for hook in hookspecs.KINDS.values():
        assert hook in headings, f"docs/reference/hooks.md has no section '## {hook}'"
        assert inspect.getdoc(getattr(hookspecs, hook)), f"{hook} has no docstring"
    assert headings - {"The specifications"} <= set(hookspecs.KINDS.values()), "a section for a hook that does not exist"


def test_yaml_reference_covers_every_section_field_and_every_plugin_parameter():
    text = reference.yaml_reference()
    for key in (*config.TOP_KEYS, *config.AGENT_KEYS, *config.TIME_KEYS, *config.LINK_KEYS, *config.EVENT_KEYS):
        assert f"`{key}`" in text, key
    for cls in reference.SECTIONS.values():
        for field in attrs.fields(cls):
            assert f"| `{field.name}` |" in text, (cls.__name__, field.name)
    registry = get_registry()
    for kind in reference.PLUGIN_KINDS:
        for record in registry.records(kind):
            section = text.split(f"### `{record.name}`\n", 1)
            assert len(section) == 2, f"{kind} {record.name} is not in the YAML reference"
            own = section[1].split("\n### ", 1)[0]
            if kind != "policy":
                for field in attrs.fields(params_of(record.load(), record.name)):
                    assert f"| `{field.name}` |" in own, (record.name, field.name)


def test_yaml_reference_shows_units_defaults_ranges_and_device_actions():
    text = reference.yaml_reference()
    ess = text.split("### `ESS`\n", 1)[1].split("\n### ", 1)[0]
    assert "| `capacity_mwh` | MWh | `2.0` | a number > 0 (MWh) |" in ess
    assert "Action at the default parameters: Box [1]: low [-0.5], high [0.5]." in ess
    network = text.split("### `ieee34_3mg`\n", 1)[1].split("\n### ", 1)[0]
    assert "| `vm_pu` | pu | `1.05` | a number (pu) |" in network


def test_cli_reference_has_every_built_in_command():
    from powergrid.cli import build_parser

    text = reference.cli_reference()
    parser = build_parser({})
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    for name in commands:
        assert f"## `powergrid {name}`" in text, name
    assert "## `powergrid network plot`" in text and "--plot" in text and "--params NAME" in text


def _nav_files(items) -> list[str]:
    found = []
    for item in items:
        target = next(iter(item.values())) if isinstance(item, dict) else item
        found += _nav_files(target) if isinstance(target, list) else [target]
    return found


def test_nav_lists_every_page_and_every_nav_entry_exists():
    site = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = _nav_files(site["nav"])
    generated = {"reference/yaml.md", "reference/cli.md"}
    written = {str(p.relative_to(DOCS)) for p in pages()}
    assert written - set(nav) == set(), "pages missing from the nav in mkdocs.yml"
    assert set(nav) - written - generated == set(), "nav entries without a page"


def test_readme_documentation_table_points_at_existing_pages():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Documentation", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(docs/[^`]+\.md)`", table)
    assert named and all((ROOT / n).is_file() for n in named), named

"""mkdocs hooks: the generated reference pages, and a nav that skips pages not written yet."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).parent))

import reference  # docs/tools/reference.py, beside this file

log = logging.getLogger("mkdocs.hooks.powergrid")
GENERATED = {"reference/yaml.md": reference.yaml_reference, "reference/cli.md": reference.cli_reference}


def _prune(items: list[Any], docs: Path) -> list[Any]:
    kept = []
    for item in items:
        title, target = next(iter(item.items())) if isinstance(item, dict) else (None, item)
        if isinstance(target, list):
            target = _prune(target, docs)
        elif target not in GENERATED and not (docs / target).is_file():
            log.info("nav: %s is not written yet; left out", target)
            continue
        kept.append({title: target} if title is not None else target)
    return kept


def on_config(config: Any) -> Any:
    """Leave out nav entries whose page does not exist yet (pages other people are writing)."""
    config.nav = _prune(config.nav, Path(config.docs_dir))
    return config


def on_files(files: Files, config: Any) -> Files:
    """Add the reference pages generated from the code."""
    for uri, make in GENERATED.items():
        files.append(File.generated(config, uri, content=make()))
    return files

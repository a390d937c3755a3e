"""The fenced code blocks of the documentation, with their test markers.

A block runs as its language says (see ``runner.py``); an HTML comment on the line before it
changes that: ``<!-- docs-test: skip REASON -->`` (not run; kept few, counted by a test) or
``<!-- docs-test: file PATH -->`` (written to PATH in the page's working folder, for the blocks
after it). ``--8<-- "FILE"`` lines include a file of ``docs/examples/`` (pymdownx.snippets).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^`]*)$")
MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<kind>skip|file)\s+(?P<arg>.+?)\s*-->")
SNIPPET = re.compile(r'^\s*--8<--\s+"(?P<file>[^"]+)"\s*$')
#: Languages that are output or prose, not code.
TEXT = {"", "text", "console", "output"}
#: Pages other people own whose blocks need hardware or a network, with the reason (kept short).
NOT_RUN_PAGES = {"hil.md": "a Modbus server and client on real sockets; tests/hil runs the same code"}


class Block(NamedTuple):
    page: str          # path relative to docs/
    line: int          # 1-based line of the opening fence
    lang: str
    code: str
    marker: str        # "", "skip" or "file"
    arg: str           # the skip reason or the file path


def pages() -> list[Path]:
    """Every Markdown page of the site (not the example packages)."""
    return sorted(p for p in DOCS.rglob("*.md") if EXAMPLES not in p.parents)


def include_snippets(code: str) -> str:
    """``code`` with each ``--8<-- "FILE"`` line replaced by that file of ``docs/examples/``."""
    def one(line: str) -> str:
        match = SNIPPET.match(line)
        return (EXAMPLES / match["file"]).read_text().rstrip("\n") if match else line

    return "\n".join(one(line) for line in code.split("\n"))


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` in order."""
    found, lines = [], page.read_text().split("\n")
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        lang = match["info"].strip().split(" ")[0].strip("{}.").lower()
        body, j = [], i + 1
        while j < len(lines) and not re.match(rf"^ {{0,{indent}}}{fence[0]}{{{len(fence)},}}\s*$", lines[j]):
            body.append(lines[j][indent:])
            j += 1
        previous = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = MARKER.search(previous)
        found.append(Block(str(page.relative_to(DOCS)), i + 1, lang, include_snippets("\n".join(body)),
                           marker["kind"] if marker else "", marker["arg"] if marker else ""))
        i = j + 1
    return found

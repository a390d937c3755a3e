"""Every code block of the documentation runs (tests/docs/runner.py says how, by language)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import DOCS, NOT_RUN_PAGES, ROOT, TEXT, blocks, pages
from tests.docs.conftest import run_env

RUNNER = Path(__file__).with_name("runner.py")
CODE_PAGES = [p for p in pages() if any(b.lang not in TEXT for b in blocks(p))]
#: The most blocks the docs may mark ``skip``: keep them few.
MAX_SKIPPED = 12


@pytest.mark.parametrize("page", CODE_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_code_blocks_run(page, tmp_path, examples_path):
    reason = NOT_RUN_PAGES.get(str(page.relative_to(DOCS)))
    if reason:
        pytest.skip(reason)
    for name in ("configs", "docs"):  # the reader's checkout; outputs go to tmp_path only
        (tmp_path / name).symlink_to(ROOT / name)
    steps = tmp_path / "blocks.json"
    steps.write_text(json.dumps([b._asdict() for b in blocks(page)]))
    done = subprocess.run([sys.executable, str(RUNNER), str(steps)], cwd=tmp_path, env=run_env(examples_path),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]


def test_skipped_blocks_are_few_and_say_why():
    skipped = [b for p in pages() for b in blocks(p) if b.marker == "skip"]
    assert len(skipped) <= MAX_SKIPPED, [f"{b.page}:{b.line}" for b in skipped]
    assert all(len(b.arg) > 10 for b in skipped), "each skip gives its reason"


def test_every_code_block_has_a_known_language():
    for page in pages():
        for b in blocks(page):
            assert b.lang in TEXT | {"python", "py", "bash", "sh", "shell", "yaml", "yml", "toml", "json"}, \
                f"{b.page}:{b.line}: {b.lang!r}"

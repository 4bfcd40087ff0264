"""The README's "From Python" examples run: each ``python`` block of that section, in order, in one namespace
(as a reader pastes them into one session), in an empty working directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## From Python"


def section(text: str, title: str) -> str | None:
    """The text of the ``## title`` section (up to the next ``## `` heading), or None when there is none."""
    match = re.search(rf"^{re.escape(title)}[ \t]*\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    return match.group(1) if match else None


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python[ \t]*\n(.*?)^```", text, flags=re.M | re.S)


def test_section_and_block_extraction():
    text = "# t\n## From Python\nintro\n```python\na = 1\n```\n```bash\nzoo list\n```\n```python\nb = a\n```\n## Next\n"
    body = section(text, SECTION)
    assert body is not None and "## Next" not in body
    assert python_blocks(body) == ["a = 1\n", "b = a\n"]
    assert section("# t\n## Python API\n", SECTION) is None


def test_from_python_examples_run(tmp_path, monkeypatch):
    body = section(README.read_text(encoding="utf-8"), SECTION)
    assert body is not None, f"the README has no '{SECTION}' section"
    blocks = python_blocks(body)
    assert blocks, f"the README's '{SECTION}' section has no python code block"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZOO_RUNS_DIR", raising=False)  # the examples' runs go to runs/ in the working directory
    namespace: dict = {"__name__": "__readme__"}
    for i, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"README '{SECTION}' block {i}", "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"README '{SECTION}' python block {i} fails: {type(exc).__name__}: {exc}\n{block}")

"""The README stays true: its plugin guide is what the scaffold writes, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from zoo.scaffold import write_plugin

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_plugin_guide_blocks_are_what_the_scaffold_writes(tmp_path):
    blocks = re.findall(r"<!-- scaffold: (\S+) -->\n```\w*\n(.*?)\n```", README, flags=re.S)
    assert {path for path, _ in blocks} >= {"pyproject.toml", "zoo_demo/__init__.py", "zoo_demo/impl.py",
                                           "tests/test_contract.py"}
    package = write_plugin("demo", tmp_path)
    for path, text in blocks:
        assert text == (package / path).read_text().rstrip(), f"README block for {path} is stale"


def test_every_command_is_in_the_reference():
    from zoo.cli import main

    reference = README[README.index("## Command reference"):README.index("## Python API")]
    for name in main.commands:
        assert f"zoo {name}" in reference, name


def test_ci_runs_the_readme_test_command():
    quick = README[README.index("## Quick start"):README.index("## What is in the box")]
    commands = re.findall(r"```bash\n(.*?)\n```", quick, flags=re.S)
    assert len(commands) == 2 and commands[0].endswith("zoo train regression-mlp")
    test_command = commands[1].rsplit("&&", 1)[1].strip()
    assert test_command == "python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()

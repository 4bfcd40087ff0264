"""``zoo.tables.format_table``, and ``zoo list`` laid out by it (the CLI as a subprocess, on a pipe and a terminal)."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys

import pytest

from zoo.runlist import format_table as runs_table
from zoo.tables import ELLIPSIS, format_table, shorten

HEADER = ("NAME", "KIND", "COUNT", "SUMMARY")
ROWS = [("alpha", "a", 1, "short"), ("a-much-longer-name", "bb", 12345, "x" * 200), ("gamma", None, -0.5, "")]


def test_columns_are_aligned_under_a_header():
    lines = format_table(HEADER, ROWS, align="<<><").splitlines()
    assert lines[0].split() == list(HEADER)
    end = lines[0].index("COUNT") + len("COUNT")
    assert [line[:end].split()[-1] for line in lines] == ["COUNT", "1", "12345", "-0.5"]  # right-aligned numbers
    assert all(line[end:end + 1] in ("", " ") for line in lines)
    starts = [line.index(cell) for line, cell in zip(lines, ("SUMMARY", "short", "xxx"))]
    assert len(set(starts)) == 1  # left-aligned text
    assert lines[3].split()[:3] == ["gamma", "-", "-0.5"]  # None shows as '-'
    assert all(line == line.rstrip() for line in lines)


@pytest.mark.parametrize("width", [100, 60, 40])
def test_lines_fit_and_the_shrinkable_column_is_shortened(width):
    lines = format_table(HEADER, ROWS, align="<<><", max_width=width, shrink=(3,), indent="  ").splitlines()
    assert all(len(line) <= width and line.startswith("  ") for line in lines)
    assert max(len(line) for line in lines) == width  # no room wasted
    assert lines[2].endswith(ELLIPSIS) and "  12345  " in lines[2]  # numbers are never shortened
    if width >= 60:  # room enough: only the summary is shortened
        assert lines[2].split()[:3] == ["a-much-longer-name", "bb", "12345"]


def test_widest_text_columns_shrink_first_and_numbers_never():
    rows = [("r" * 60, "recipe-" + "y" * 40, "fixed text", 3.25)]
    lines = format_table(("RUN", "RECIPE", "STARTED", "VALUE"), rows, align="<<<>", max_width=50,
                         shrink=(0, 1)).splitlines()
    assert all(len(line) <= 50 for line in lines)
    run, recipe = lines[1].split()[:2]
    assert run.endswith(ELLIPSIS) and recipe.endswith(ELLIPSIS) and abs(len(run) - len(recipe)) <= 1
    assert lines[1].endswith("fixed text   3.25")  # other text and the numbers are left whole


def test_too_narrow_shortens_other_text_columns_down_to_their_header():
    lines = format_table(("RUN", "STATUS", "VALUE"), [("run-name", "stopped early", 123456.5)], align="<<>",
                         max_width=22, shrink=(0,)).splitlines()
    assert all(len(line) <= 22 for line in lines), lines
    assert lines[1].endswith("123456.5") and lines[0].split() == ["RUN", "STATUS", "VALUE"]


def test_shorten():
    assert shorten("abcdef", 6) == "abcdef"
    assert shorten("abcdefg", 6) == "abc" + ELLIPSIS
    assert shorten("abcdefg", 2) == "ab"


def test_bad_align_or_row_length_is_refused():
    with pytest.raises(ValueError):
        format_table(("A", "B"), [("x", "y")], align="<")
    with pytest.raises(ValueError):
        format_table(("A", "B"), [("x",)])


def _run_row(**changes):
    row = {"name": "run", "path": "runs/run", "recipe": "blobs-mlp", "dataset": "blobs", "model": "mlp",
           "loss": "bce-with-logits", "task": "binary", "started": "2001-01-01T10:00:00", "finished": None,
           "status": "finished", "epochs": 3, "planned_epochs": 3, "best_epoch": 2, "monitor": "val_loss",
           "best_value": 0.123456, "test_metric": "accuracy", "test_value": 0.975, "error": None}
    return {**row, **changes}


def _column_end(header: str, name: str) -> int:
    (match,) = re.finditer(rf"(?<!\S){name}(?!\S)", header)
    return match.end()


def test_runs_table_right_aligns_numbers_of_different_widths():
    rows = [_run_row(), _run_row(name="n" * 150, recipe=None, status="running", epochs=12, planned_epochs=100,
                                 best_epoch=11, best_value=1234567.0, monitor="val_loss", test_metric=None,
                                 test_value=None),
            _run_row(name="broken", best_epoch=None, best_value=None, test_value=-0.001234, status="unknown")]
    lines = runs_table(rows).splitlines()
    header = lines[0]
    assert all(len(line) <= 100 for line in lines), lines
    ends = {name: _column_end(header, name) for name in ("EPOCHS", "BEST", "AT", "TEST")}
    cells = {name: [line[:end].split()[-1] for line in lines[1:]] for name, end in ends.items()}
    assert cells == {"EPOCHS": ["3", "12/100", "3/3"], "BEST": ["0.1235", "1.235e+06", "-"],
                     "AT": ["2", "11", "-"], "TEST": ["0.975", "-", "-0.001234"]}
    run, recipe = lines[2].split()[:2]
    assert run.startswith("nnn") and run.endswith(ELLIPSIS)
    assert recipe == shorten("blobs+mlp+bce-with-logits", len(recipe)) and len(recipe) >= 8

    # too wide even with both names at 8 characters: other text gives way, numbers stay whole
    rows[1].update(monitor="val_precision", test_metric="accuracy", test_value=-0.00001234, status="stopped early")
    lines = runs_table(rows).splitlines()
    assert all(len(line) <= 100 for line in lines) and "1.235e+06" in lines[2] and "-1.234e-05" in lines[2]


def test_zoo_list_has_headers_and_fits_100_columns(zoo_cli):
    out = zoo_cli("list")
    assert out.returncode == 0 and out.stderr == ""
    lines = out.stdout.splitlines()
    assert all(len(line) <= 100 for line in lines), max(lines, key=len)
    for title, third in (("datasets", "TASKS"), ("models", "TASKS"), ("losses", "TASKS"),
                         ("recipes", "COMPONENTS")):
        assert lines[lines.index(title) + 1].split() == ["NAME", "PLUGIN", third, "SUMMARY"]
    assert any(line.endswith(ELLIPSIS) for line in lines)  # some built-in summaries are longer than that
    models = zoo_cli("list", "models").stdout.splitlines()
    header = models[1]
    start = header.index("SUMMARY")
    data = {i["name"]: i["summary"] for i in json.loads(zoo_cli("list", "models", "--json").stdout)["items"]}
    for line in models[2:]:
        name, summary = line.split()[0], line[start:]
        assert data[name].startswith(summary.removesuffix(ELLIPSIS)), line  # the summary column, aligned

    for columns in ("60", "300"):  # not a terminal: 100 columns whatever COLUMNS says
        assert zoo_cli("list", env={"COLUMNS": columns}).stdout == out.stdout


def _run_in_terminal(args: list[str], cwd, columns: int) -> tuple[int, list[str]]:
    """Run ``zoo ARGS`` with its output on a pseudo-terminal ``columns`` wide: ``(rc, lines)``."""
    fcntl, pty, termios = (pytest.importorskip(m) for m in ("fcntl", "pty", "termios"))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_") and k not in ("COLUMNS", "LINES")}
    with open(cwd / "stderr.txt", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "zoo", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=slave, stderr=err)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # Linux: EIO once the child has closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    rc = proc.wait(timeout=60)
    text = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode())  # without the bold of section titles
    return rc, text.replace("\r\n", "\n").splitlines()


def test_zoo_list_on_a_narrow_terminal_fits_its_width(tmp_path):
    rc, lines = _run_in_terminal(["list", "models"], tmp_path, columns=60)
    assert rc == 0, (tmp_path / "stderr.txt").read_text()
    assert lines[0] == "models" and lines[1].split() == ["NAME", "PLUGIN", "TASKS", "SUMMARY"]
    assert len(lines) > 5 and all(len(line) <= 60 for line in lines), lines
    assert max(len(line) for line in lines) == 60

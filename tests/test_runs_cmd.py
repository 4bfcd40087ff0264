"""``zoo runs`` and ``zoo.runlist.list_runs``: real runs trained in-process, the CLI as a subprocess."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys

import pytest

import zoo
from helpers import run_zoo
from zoo import rundir as runs
from zoo.errors import UsageError
from zoo.runlist import _fmt, list_runs
from zoo.rundir import RunDir

PROBE = """
import runpy, sys
sys.argv = ["zoo", *sys.argv[1:]]
try:
    runpy.run_module("zoo", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("HEAVY:" + ",".join(m for m in ("torch", "sklearn", "numpy", "matplotlib") if m in sys.modules),
      file=sys.stderr)
sys.exit(code)
"""


def _set_status(run_dir, **changes):
    status = json.loads((run_dir / runs.STATUS).read_text())
    status.update(changes)
    (run_dir / runs.STATUS).write_text(json.dumps(status))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A runs directory holding one run of each status, a broken one and some clutter."""
    root = tmp_path_factory.mktemp("runs")
    finished = root / "reg-finished"
    zoo.train("regression-mlp", params={"n_samples": 300}, epochs=2, device="cpu", quiet=True, out=finished)
    _set_status(finished, started="2001-01-01T10:00:00")
    with pytest.raises(zoo.ZooError):
        zoo.train("regression-mlp", lr=1e30, optimizer="sgd", epochs=2, params={"n_samples": 300},
                  device="cpu", quiet=True, out=root / "failed")
    _set_status(root / "failed", started="2001-01-01T11:00:00")
    for name, started, status in (("interrupted", "2001-01-01T12:00:00", "interrupted"),
                                  ("stopped", "2001-01-01T09:00:00", "stopped early"),
                                  ("running", "2001-01-01T13:00:00", "running")):
        shutil.copytree(finished, root / name)
        _set_status(root / name, started=started, status=status)
    (root / "running" / runs.METRICS).unlink()  # a running run has no metrics yet
    shutil.copytree(finished, root / "broken")
    (root / "broken" / runs.STATUS).write_text("{not json")
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("not a run")
    (root / "README.txt").write_text("not a run either")
    return root


def test_lists_every_status_newest_first_and_skips_non_runs(root):
    from zoo.locks import RunLock

    lock = RunLock(root / "running").acquire()  # a live process trains there
    try:
        rows = list_runs(root)
    finally:
        lock.release()
    assert {r["name"]: r["status"] for r in list_runs(root)}["running"] == "dead"  # its process has gone
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"reg-finished", "failed", "interrupted", "stopped", "running", "broken"}
    assert {n: r["status"] for n, r in by_name.items()} == {
        "reg-finished": "finished", "failed": "failed", "interrupted": "interrupted",
        "stopped": "stopped early", "running": "running", "broken": "unknown"}
    dated = [r["name"] for r in rows if r["started"]]
    assert dated == ["running", "interrupted", "failed", "reg-finished", "stopped"]
    assert rows[0]["name"] == "broken"  # no start date: its directory's time, which is the newest


def test_finished_run_row(root):
    row = {r["name"]: r for r in list_runs(root)}["reg-finished"]
    metrics = json.loads((root / "reg-finished" / runs.METRICS).read_text())
    history = RunDir(root / "reg-finished").read_history()
    assert row["recipe"] == "regression-mlp"
    assert (row["dataset"], row["model"], row["loss"], row["task"]) == ("sine", "mlp", "mse", "regression")
    assert row["epochs"] == row["planned_epochs"] == 2
    assert row["best_epoch"] == metrics["best_epoch"] and row["monitor"] == "val_loss"
    assert row["best_value"] == pytest.approx(min(h["val_loss"] for h in history))
    assert row["test_metric"] == "mse"
    assert row["test_value"] == pytest.approx(metrics["test"]["mse"])
    assert row["error"] is None


def test_failed_running_and_broken_rows(root):
    by_name = {r["name"]: r for r in list_runs(root)}
    failed = by_name["failed"]
    assert failed["epochs"] == 0 and failed["best_epoch"] is None and failed["test_value"] is None
    assert failed["error"] == json.loads((root / "failed" / runs.STATUS).read_text())["error"]
    assert "loss" in failed["error"]
    running = by_name["running"]  # no metrics.json: best derived from history.csv
    history = RunDir(root / "running").read_history()
    best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    assert running["best_epoch"] == best + 1
    assert running["best_value"] == pytest.approx(history[best]["val_loss"])
    assert running["test_value"] is None
    broken = by_name["broken"]
    assert broken["recipe"] == "regression-mlp" and broken["started"] is None


def test_missing_root_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        list_runs(tmp_path / "nope")
    assert list_runs(tmp_path) == []


def test_cli_table_json_and_errors(root, tmp_path):
    # the table, without importing torch, numpy, scikit-learn or matplotlib
    out = subprocess.run([sys.executable, "-c", PROBE, "runs", "--dir", str(root)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stderr.splitlines() if line.startswith("HEAVY:")] == ["HEAVY:"]
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["RUN", "RECIPE", "STARTED", "STATUS"]
    shown = [_shown(line.split()[0]) for line in lines[1:]]  # names may be shortened to fit 100 columns
    assert shown == [r["name"][:len(s)] for s, r in zip(shown, list_runs(root))]
    assert len(lines) == 1 + len(list_runs(root)) and all(len(line) <= 100 for line in lines)
    assert "stopped early" in out.stdout and "failed" in out.stdout and "unknown" in out.stdout
    assert all("regression-mlp".startswith(_shown(line.split()[1])) for line in lines[1:])
    assert "2001-01-01 10:00" in out.stdout

    # JSON for scripts, and the default directory from $ZOO_RUNS_DIR
    out = run_zoo("runs", "--json", cwd=tmp_path, env={"ZOO_RUNS_DIR": str(root)})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data == json.loads(json.dumps(list_runs(root)))
    assert all(v is None or not isinstance(v, float) or math.isfinite(v) for r in data for v in r.values())

    out = run_zoo("runs", "--dir", str(tmp_path / "missing"), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"error: runs directory {tmp_path / 'missing'} does not exist"]

    out = run_zoo("runs", cwd=tmp_path, env={"ZOO_RUNS_DIR": str(tmp_path)})
    assert out.returncode == 0 and out.stdout.strip() == f"no runs in {tmp_path}{NO_RUNS_HINT}"
    out = run_zoo("runs", "--root", str(tmp_path), cwd=tmp_path)  # an explicit empty root: no hint
    assert out.returncode == 0 and out.stdout.strip() == f"no runs in {tmp_path}"


NO_RUNS_HINT = ": 'zoo train' saves runs there; use --root DIR to look elsewhere"
LONG = "blobs-experiment-with-a-rather-long-descriptive-name-" + "x" * 80


@pytest.fixture(scope="module")
def long_root(tmp_path_factory):
    """Two tiny real runs, one with a very long name, marked interrupted so its EPOCHS reads 1/1."""
    root = tmp_path_factory.mktemp("long")
    zoo.train("blobs-mlp", epochs=1, device="cpu", quiet=True, out=root / LONG)
    _set_status(root / LONG, started="2001-01-01T10:00:00", status="interrupted")
    zoo.train("regression-mlp", params={"n_samples": 200}, epochs=1, device="cpu", quiet=True, out=root / "b")
    _set_status(root / "b", started="2001-01-02T10:00:00")
    return root


def test_runs_from_a_directory_without_runs(tmp_path):
    out = run_zoo("runs", cwd=tmp_path)
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.splitlines() == [f"no runs in {tmp_path.resolve() / 'runs'}{NO_RUNS_HINT}"]
    out = run_zoo("runs", "--json", cwd=tmp_path)
    assert out.returncode == 0 and json.loads(out.stdout) == []
    assert not (tmp_path / "runs").exists()  # listing creates nothing


@pytest.mark.parametrize("flag", ["--root", "--dir"])
def test_runs_root_that_is_missing_or_a_file_is_an_error(flag, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    for given, problem in (("missing", "does not exist"), ("file", "is not a directory")):
        for json_flag in ((), ("--json",)):
            out = run_zoo("runs", flag, given, *json_flag, cwd=tmp_path)  # relative: shown absolute
            assert out.returncode == 2, out
            assert out.stdout == ""
            assert out.stderr.splitlines() == [f"error: runs directory {tmp_path.resolve() / given} {problem}"]


def _shown(cell: str) -> str:
    """A table cell without the ``...`` that marks it shortened."""
    return cell.removesuffix("...")


def _column_end(header: str, name: str) -> int:
    (match,) = re.finditer(rf"(?<!\S){name}(?!\S)", header)
    return match.end()


def test_runs_root_table_fits_100_columns_and_aligns_numbers(long_root, tmp_path):
    out = run_zoo("runs", "--root", str(long_root), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header, body = lines[0], lines[1:]
    assert header.split() == ["RUN", "RECIPE", "STARTED", "STATUS", "EPOCHS", "MONITOR", "BEST", "AT", "METRIC",
                              "TEST"]
    assert len(body) == 2 and all(len(line) <= 100 for line in lines), lines
    assert body[0].startswith("b ") and body[1].split()[0].endswith("...")
    assert LONG.startswith(_shown(body[1].split()[0]))
    assert LONG not in out.stdout and "2001-01-01 10:00" in body[1] and "interrupted" in body[1]
    rows = list_runs(long_root)
    ends = {name: _column_end(header, name) for name in ("EPOCHS", "BEST", "AT", "TEST")}
    for line, row in zip(body, rows):
        epochs = f"{row['epochs']}" + ("" if row["status"] == "finished" else f"/{row['planned_epochs']}")
        expected = {"EPOCHS": epochs, "BEST": _fmt(row["best_value"]), "AT": str(row["best_epoch"]),
                    "TEST": _fmt(row["test_value"])}
        for name, end in ends.items():  # right-aligned: each value ends where its header ends
            assert line[:end].split()[-1] == expected[name], (name, line)
            assert line[end:end + 1] in ("", " "), (name, line)
    assert {line[:ends["EPOCHS"]].split()[-1] for line in body} == {"1", "1/1"}  # widths differ, ends agree

    # the same from inside the runs directory, by the alias and a relative path
    again = run_zoo("runs", "--dir", ".", cwd=long_root)
    assert again.returncode == 0 and again.stdout == out.stdout

"""``zoo runs`` and ``zoo.runlist.list_runs``: real runs trained in-process, the CLI as a subprocess."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest

import zoo
from helpers import run_zoo
from zoo import runs
from zoo.errors import UsageError
from zoo.runlist import list_runs, read_history

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
    rows = list_runs(root)
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
    history = read_history(root / "reg-finished")
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
    assert "training loss became" in failed["error"]
    running = by_name["running"]  # no metrics.json: best derived from history.csv
    history = read_history(root / "running")
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
    assert [line.split()[0] for line in lines[1:]] == [r["name"] for r in list_runs(root)]
    assert "stopped early" in out.stdout and "failed" in out.stdout and "unknown" in out.stdout
    assert "regression-mlp" in out.stdout and "2001-01-01 10:00" in out.stdout

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
    assert out.returncode == 0 and out.stdout.strip() == f"no runs in {tmp_path}"

"""Listing saved runs: what ``zoo runs`` shows.

Light on purpose (no torch, numpy or scikit-learn): it only reads the JSON and CSV
files a run directory holds, so listing even hundreds of runs is instant.

A directory counts as a run when it holds ``config.json`` or ``run.json``. Any file
may be missing or broken (a run that failed before its first epoch has no
``history.csv``; a crashed disk may leave a bad ``run.json``): the row then shows what
can be read and ``status`` ``unknown`` rather than failing the whole listing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from . import rundir as runs
from .config import MINIMIZE
from .errors import UsageError
from .locks import is_held
from .rundir import RunDir
from .rundir import as_number as _number
from .tables import MAX_WIDTH
from .tables import format_table as format_columns

#: The keys of every row :func:`list_runs` returns.
FIELDS = ("name", "path", "recipe", "dataset", "model", "loss", "task", "started", "finished", "status",
          "epochs", "planned_epochs", "best_epoch", "monitor", "best_value", "test_metric", "test_value", "error")


def _int(value: Any) -> int | None:
    v = _number(value)
    return int(v) if v is not None else None


def minimize(monitor: str) -> bool:
    """Whether a smaller value of ``monitor`` (``val_loss``, ``val_accuracy``, ...) is better (by the built-in
    metrics' names: listing runs reads files, not plugins; a finished run records its best epoch)."""
    return monitor.removeprefix("val_") in MINIMIZE


def best_from_history(history: list[dict[str, float | None]], monitor: str) -> tuple[int | None, float | None]:
    """``(epoch, value)`` of the best finite ``monitor`` in ``history`` (the first of equals)."""
    best_epoch = best_value = None
    lower = minimize(monitor)
    for i, row in enumerate(history, 1):
        v = row.get(monitor)
        if v is None:
            continue
        if best_value is None or (v < best_value if lower else v > best_value):
            best_epoch, best_value = int(row.get("epoch") or i), v
    return best_epoch, best_value


def _value_at(history: list[dict[str, float | None]], epoch: int | None, monitor: str) -> float | None:
    if epoch is None:
        return None
    for i, row in enumerate(history, 1):
        if int(row.get("epoch") or i) == epoch:
            return row.get(monitor)
    return None


def is_run_dir(path: Path) -> bool:
    return RunDir(path).is_run()


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def describe_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """One row of :func:`list_runs` for ``run_dir`` (never raises for broken files)."""
    d = Path(run_dir)
    run = RunDir(d)
    cfg = run.read_loose_config()
    status, status_ok = run.read_json(runs.STATUS)
    metrics = run.read_metrics()
    history = run.read_history()
    meta = cfg.get("meta") if isinstance(cfg.get("meta"), dict) else {}
    task = meta.get("task") or cfg.get("task")

    if status is None:
        state = "unknown"
        status = {}
    else:
        state = status.get("status") if isinstance(status.get("status"), str) else "unknown"
    if state == "running" and not is_held(d):
        state = "dead"  # run.json says running, but no live process holds the run's lock (killed, or the host died)

    monitor = metrics.get("monitor") or cfg.get("monitor") or "val_loss"
    if "best_epoch" in metrics:
        best_epoch = _int(metrics.get("best_epoch"))
        best_value = _value_at(history, best_epoch, monitor)
    else:
        best_epoch, best_value = best_from_history(history, monitor)

    test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    test_metric = test_value = None
    if test:
        listed = cfg.get("metrics") if isinstance(cfg.get("metrics"), list) else []
        names = listed or [k for k in test if k != "loss"] or ["loss"]  # the first metric is the headline
        test_metric = next((n for n in names if n in test), None)
        test_value = _number(test.get(test_metric)) if test_metric else None

    epochs = _int(status.get("epochs"))
    if epochs is None or (state == "running" and len(history) > epochs):
        epochs = len(history)  # run.json records epochs at the end; a running run has only its history

    return {
        "name": d.name,
        "path": str(d),
        "recipe": cfg.get("recipe") or None,
        "dataset": _name(cfg.get("dataset")),
        "model": _name(cfg.get("model")),
        "loss": _name(cfg.get("loss")),
        "task": task,
        "started": status.get("started") if isinstance(status.get("started"), str) else None,
        "finished": status.get("finished") if isinstance(status.get("finished"), str) else None,
        "status": state,
        "epochs": epochs,
        "planned_epochs": _int(cfg.get("epochs")),
        "best_epoch": best_epoch,
        "monitor": monitor if best_epoch is not None else None,
        "best_value": best_value,
        "test_metric": test_metric,
        "test_value": test_value,
        "error": status.get("error") if state == "failed" else None,
    }


def _sort_key(row: dict[str, Any], path: Path) -> tuple[float, str]:
    started = row.get("started")
    stamp = None
    if started:
        try:
            stamp = time.mktime(time.strptime(started[:19], "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            stamp = None
    if stamp is None:
        try:
            stamp = path.stat().st_mtime
        except OSError:
            stamp = 0.0
    return stamp, row["name"]


def list_runs(root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Describe every run directory directly under ``root``, newest first.

    ``root`` defaults to :func:`zoo.rundir.default_root` (``runs`` or ``$ZOO_RUNS_DIR``);
    if ``root`` is itself a run directory, that one run is listed. Each row is a dict
    with the keys in :data:`FIELDS`:

    - ``name``, ``path``: the directory; ``recipe`` (None for a dataset+model+loss run),
      ``dataset``, ``model``, ``loss``, ``task`` from ``config.json``;
    - ``started``, ``finished`` (ISO times) and ``status`` from ``run.json``: ``finished``,
      ``stopped early``, ``interrupted``, ``failed``, ``running`` (a live process holds the
      run's lock), ``dead`` (``run.json`` says running but no process holds the lock: it was
      killed; ``zoo train --resume`` continues it), or ``unknown`` when ``run.json`` is
      missing or broken; ``error`` is the failure message of a failed run;
    - ``epochs`` (done) and ``planned_epochs``;
    - ``best_epoch``, ``monitor`` and ``best_value``: from ``metrics.json`` when the run
      finished, else the best value of the configured monitor in ``history.csv``;
    - ``test_metric`` and ``test_value``: the task's headline test figure from
      ``metrics.json`` (None before the run finished).

    Numbers that are missing or not finite are None. A ``root`` that is missing or not a
    directory is a UsageError naming its absolute path.
    """
    root = Path(root) if root is not None else runs.default_root()
    if not root.exists():
        raise UsageError(f"runs directory {root.absolute()} does not exist")
    if not root.is_dir():
        raise UsageError(f"runs directory {root.absolute()} is not a directory")
    try:
        children = sorted(root.iterdir())
    except OSError as exc:
        raise UsageError(f"cannot read runs directory {root.absolute()}: {exc.strerror}") from None
    if is_run_dir(root) and not any(is_run_dir(p) for p in children):
        return [describe_run(root)]
    rows = []
    for path in children:
        try:
            if not is_run_dir(path):
                continue
        except OSError:
            continue
        row = describe_run(path)
        rows.append((_sort_key(row, path), row))
    rows.sort(key=lambda kv: kv[0], reverse=True)
    return [row for _, row in rows]


# -- the table ``zoo runs`` prints ---------------------------------------------------------


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"


def format_table(rows: list[dict[str, Any]], max_width: int = MAX_WIDTH) -> str:
    """A plain-text table of :func:`list_runs` rows, one run a line, under a header.

    Numbers (epochs, the best monitored value and the epoch it was reached at, the test
    figure) are right-aligned; the run and recipe names are shortened with ``...`` so
    that every line fits ``max_width`` characters.
    """
    header = ("RUN", "RECIPE", "STARTED", "STATUS", "EPOCHS", "MONITOR", "BEST", "AT", "METRIC", "TEST")
    table = []
    for r in rows:
        what = r["recipe"] or "+".join(str(r[k]) for k in ("dataset", "model", "loss") if r[k]) or "-"
        started = r["started"].replace("T", " ")[:16] if r["started"] else "-"
        epochs = "-" if r["epochs"] is None else str(r["epochs"])
        if r["planned_epochs"] is not None and r["status"] != "finished":
            epochs += f"/{r['planned_epochs']}"
        best = r["best_epoch"] is not None
        table.append((r["name"], what, started, r["status"], epochs, r["monitor"] if best else None,
                      _fmt(r["best_value"]) if best else None, r["best_epoch"],
                      r["test_metric"], _fmt(r["test_value"]) if r["test_metric"] else None))
    return format_columns(header, table, align="<<<<><>><>", max_width=max_width, shrink=(0, 1))

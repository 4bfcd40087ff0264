"""Run directories: unique names, the files in them, and reading them back (``zoo.runs()``, the API's
list of saved runs, is :func:`zoo.api.runs`)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from .errors import UsageError

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
LAST = "last.safetensors"
PREPROCESS = "preprocess.safetensors"  # zoo 0.1 runs only: now in the weights
PREPROCESS_STATE = "preprocess.json"
METRICS = "metrics.json"
HISTORY = "history.csv"
STATUS = "run.json"


def default_root() -> Path:
    return Path(os.environ.get("ZOO_RUNS_DIR", "runs"))


def create_run_dir(stem: str, out: str | os.PathLike | None = None, root: str | os.PathLike | None = None):
    """Claim a new, empty run directory for this process; never reuse another run's.

    Returns ``(path, lock)``: the directory and its :class:`zoo.locks.RunLock`, held until
    the caller releases it. With ``out`` the directory is exactly that path (it must not
    exist, or be empty); otherwise it is ``<root>/<stem>-<YYYYmmdd-HHMMSS>`` with a numeric
    suffix if that name is taken. The claim is exclusive: of several processes started at
    once with the same ``--out``, one gets the directory and the others fail with one line.
    """
    from .files import storage_error
    from .locks import LOCK, RunLock

    if out is not None:
        path = Path(out)
        if any(ord(c) < 32 or c == "\x7f" for c in str(path)):
            raise UsageError(f"--out {str(path)!r} holds a control character (a newline?); give a plain name")
        try:
            if path.exists() and not path.is_dir():
                raise UsageError(f"--out {path} already exists and is not a directory; runs are never overwritten")
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(str(storage_error(exc, path, "creating"))) from None
        lock = RunLock(path).acquire("create a run in")
        if any(p.name != LOCK for p in path.iterdir()):
            lock.release()
            raise UsageError(f"--out {path} already exists and is not an empty directory; runs are never overwritten")
        return path, lock
    root = Path(root) if root is not None else default_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(str(storage_error(exc, root, "creating"))) from None
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-")[:100] or "run"
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    for i in range(1000):
        path = root / (base if i == 0 else f"{base}-{i}")
        try:
            path.mkdir()  # the atomic claim of a fresh name
        except FileExistsError:
            continue
        except OSError as exc:
            raise UsageError(str(storage_error(exc, path, "creating"))) from None
        return path, RunLock(path).acquire("create a run in")
    raise UsageError(f"could not find a free run directory name under {root}")


class RunDir:
    """One run directory: the names of its files and the readers and writers of them. Every part of zoo
    that touches a run's files (training, ``zoo runs``, ``zoo eval``/``predict``, plots) goes through it.

    ``RunDir(path) / "x"`` is a path inside it; ``os.fspath(run)`` is the directory.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def name(self) -> str:
        return self.path.name

    # the files
    config = property(lambda self: self.path / CONFIG, doc="config.json: the resolved config, sectioned")
    weights = property(lambda self: self.path / WEIGHTS, doc="model.safetensors: the best epoch's weights")
    metrics = property(lambda self: self.path / METRICS, doc="metrics.json: final metrics per split")
    history = property(lambda self: self.path / HISTORY, doc="history.csv: one row per epoch")
    status = property(lambda self: self.path / STATUS, doc="run.json: running, finished, failed, ...")
    preprocess_state = property(lambda self: self.path / PREPROCESS_STATE,
                                doc="preprocess.json: a dataset's JSON fitted state (encoders)")
    preprocess_v1 = property(lambda self: self.path / PREPROCESS, doc="zoo 0.1's input standardisation")

    def is_run(self) -> bool:
        """Whether this looks like a run directory (a config or a status file)."""
        return self.path.is_dir() and (self.config.is_file() or self.status.is_file())

    def checkpoints(self):
        """The run's resumable checkpoint generations (:class:`zoo.resumable.CheckpointStore`)."""
        from .resumable import CheckpointStore

        return CheckpointStore(self.path)

    # writing
    def write_config(self, cfg: dict[str, Any]) -> None:
        """Write the run's resolved config as ``config.json``, in the sectioned form ``--config`` reads."""
        from .configfile import to_document
        from .files import write_json

        write_json(self.config, to_document(cfg))

    # reading, checked: for what acts on a run (training, eval, predict)
    def read_config(self, registry: Any = None) -> dict[str, Any]:
        """The run's resolved config, flat (see :mod:`zoo.config`); a missing or broken run directory is a
        UsageError. Reads the sectioned ``config.json`` of this version and the flat one of zoo 0.1.

        A run directory may come from anyone, so every read checks the config as ``zoo train`` checks
        what it is given (:func:`zoo.config.check_run_config`, with the components looked up in
        ``registry``, by default the installed plugins): a bad value is one line naming the file and
        the key, never a run that trains on it or a traceback.
        """
        from .config import check_run_config
        from .configfile import from_document

        if not self.path.is_dir():
            raise UsageError(f"run directory {self.path} does not exist")
        path = self.config
        if not path.is_file():
            raise UsageError(f"{self.path} is not a zoo run directory (no {CONFIG})")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path} is not UTF-8 text (byte {exc.start}); was it written by zoo?") from None
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except RecursionError:
            raise UsageError(f"{path} is nested too deeply to be a zoo config") from None
        except ValueError as exc:
            raise UsageError(f"{path} is not valid JSON: {exc}") from None
        cfg = from_document(data, str(path))
        missing = [k for k in ("dataset", "model", "loss", "meta", "target") if k not in cfg]
        if missing:
            raise UsageError(f"{path} lacks {', '.join(missing)}; was it written by zoo?")
        return check_run_config(cfg, str(path), registry)

    def read_preprocess_state(self) -> dict[str, Any] | None:
        """The dataset's JSON fitted state (``preprocess.json``), or None when it stored none."""
        from .errors import ZooError

        path = self.preprocess_state
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ZooError(f"{path} is not valid JSON: {exc}") from None
        except RecursionError:
            raise ZooError(f"{path} is nested too deeply to be a dataset's fitted state") from None
        if not isinstance(state, dict):
            raise ZooError(f"{path} must hold a JSON object, not {type(state).__name__}")
        return state

    # reading, best effort: for what describes runs (``zoo runs``, plots), where a broken file must not stop
    def read_json(self, name: str) -> tuple[dict[str, Any] | None, bool]:
        """``(data, ok)`` of a JSON object file: ``(None, True)`` when absent, ``(None, False)`` when unreadable."""
        try:
            text = (self.path / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, True
        except OSError:
            return None, False
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return None, False
        return (data, True) if isinstance(data, dict) else (None, False)

    def read_status(self) -> dict[str, Any]:
        """The run's status record (``{}`` when missing or unreadable)."""
        return self.read_json(STATUS)[0] or {}

    def read_metrics(self) -> dict[str, Any]:
        """``metrics.json`` (``{}`` when missing or unreadable)."""
        return self.read_json(METRICS)[0] or {}

    def read_loose_config(self) -> dict[str, Any]:
        """``config.json`` in the flat form, unchecked, as much as can be read (``{}`` when none)."""
        from .configfile import from_document

        data = self.read_json(CONFIG)[0] or {}
        try:
            return from_document(data)
        except UsageError:
            return {k: v for k, v in data.items() if not isinstance(v, dict) or k == "meta"}

    def read_history(self) -> list[dict[str, float | None]]:
        """The rows of ``history.csv`` as dicts of floats (non-numbers as None); [] if absent or unreadable."""
        import csv

        try:
            with open(self.history, newline="", encoding="utf-8") as fh:
                return [{k: as_number(v) for k, v in row.items() if k} for row in csv.DictReader(fh)]
        except (OSError, csv.Error, UnicodeDecodeError):
            return []


def as_number(value: Any) -> float | None:
    """A finite float, or None (for values read from a run's files)."""
    import math

    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def read_config(run_dir: str | os.PathLike, registry: Any = None) -> dict[str, Any]:
    """``RunDir(run_dir).read_config(registry)``: the run's checked config."""
    return RunDir(run_dir).read_config(registry)

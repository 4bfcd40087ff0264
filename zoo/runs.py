"""Run directories: unique names, the files in them, and reading them back."""

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


def write_config(run_dir: str | os.PathLike, cfg: dict[str, Any]) -> None:
    """Write the run's resolved config as ``config.json``, in the sectioned form ``--config`` reads."""
    from .configfile import to_document
    from .files import write_json

    write_json(Path(run_dir) / CONFIG, to_document(cfg))


def read_config(run_dir: str | os.PathLike, registry: Any = None) -> dict[str, Any]:
    """The run's resolved config, flat (see :mod:`zoo.config`); a missing or broken run directory is a
    UsageError. Reads the sectioned ``config.json`` of this version and the flat one of zoo 0.1.

    A run directory may come from anyone, so every read checks the config as ``zoo train`` checks
    what it is given (:func:`zoo.config.check_run_config`, with the components looked up in
    ``registry``, by default the installed plugins): a bad value is one line naming the file and
    the key, never a run that trains on it or a traceback.
    """
    from .config import check_run_config
    from .configfile import from_document

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"run directory {run_dir} does not exist")
    path = run_dir / CONFIG
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a zoo run directory (no {CONFIG})")
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


def flat_config(data: dict[str, Any]) -> dict[str, Any]:
    """``config.json``'s content in the flat form, best effort: for listing runs, where a broken file must
    not stop the listing (it falls back to what can be read)."""
    from .configfile import from_document

    try:
        return from_document(data)
    except UsageError:
        return {k: v for k, v in data.items() if not isinstance(v, dict) or k == "meta"}


def read_status(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's status record (``{}`` when missing or unreadable)."""
    try:
        data = json.loads((Path(run_dir) / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

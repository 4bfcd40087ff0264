"""The run a restarted worker continues: after the elastic launcher restarted the processes of a
``zoo train --nproc N --max-restarts M`` (or ``torchrun --max-restarts M``), each finds the run
directory the failed attempt was training by the launcher's run id recorded in its ``run.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import ZooError
from .launch import launch_env


def previous_attempt(out: str | os.PathLike | None, root: str | os.PathLike | None = None) -> Path | None:
    """After the launcher restarted the workers (``--max-restarts``): the run directory the previous attempt of
    this launch (same launcher run id) was training, if it left a checkpoint to continue from; else None.

    An attempt that failed before its first checkpoint left nothing to continue: with ``--out`` its directory
    (recognised by the launch id in its ``run.json``) is emptied by the writer for the new attempt."""
    env = launch_env()
    if env is None or env.restart == 0 or not env.run_id:
        return None
    from .rundir import default_root

    if out is not None:
        candidates = [Path(out)]
    else:
        base = Path(root) if root is not None else default_root()
        candidates = [p for p in base.iterdir() if p.is_dir()] if base.is_dir() else []
    found = []
    for path in candidates:
        if _launched_by(path, env.run_id):
            if _has_checkpoint(path):
                found.append((path.stat().st_mtime, str(path)))
            elif out is not None and env.rank == 0:
                _empty_failed_attempt(path)
    return Path(max(found)[1]) if found else None


def _launched_by(path: Path, launch_id: str) -> bool:
    from .rundir import STATUS

    try:
        status = json.loads((path / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    launch = status.get("distributed") if isinstance(status, dict) else None
    return isinstance(launch, dict) and launch.get("launch_id") == launch_id


def _empty_failed_attempt(path: Path) -> None:
    """The files of a run directory this launch made and never checkpointed (its lock file stays)."""
    import shutil

    from .locks import LOCK

    for child in path.iterdir():
        if child.name == LOCK:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _has_checkpoint(path: Path) -> bool:
    from .rundir import RunDir

    try:
        RunDir(path).checkpoints().current()
    except (ZooError, OSError, ValueError):
        return False
    return True

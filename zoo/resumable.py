"""The resumable checkpoint of a run: one complete, consistent set of files at every instant.

A checkpoint is a *generation*: a directory ``checkpoints/epoch-000018-<id>/`` holding
every file a resume needs (the last weights, the best weights so far, the optimizer and
random-generator states, and ``trainer.json`` with the epoch, history, best epoch and
schedule). A new generation is written into a temporary directory beside the old one,
each file and the directory flushed to disk, and renamed into place; then the pointer
``checkpoint.json`` is replaced atomically to name it, and only after that is the old
generation removed. A process killed at any instant (SIGKILL, power loss after the
pointer's rename was flushed, a full disk) leaves the pointer naming a complete
generation: the new one or the previous one. Anything else in ``checkpoints/`` (a
temporary directory, a generation the pointer never named) is debris that
:meth:`CheckpointStore.clean` removes when the run is resumed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable

from .errors import CheckpointError, UsageError
from .files import critical, fsync_dir, fsync_file, storage_error, write_json

POINTER = "checkpoint.json"
DIRECTORY = "checkpoints"
FORMAT = "zoo-checkpoint/1"
_NAME = re.compile(r"^epoch-\d{6,}-[0-9a-f]{6}$")


class CheckpointStore:
    """The checkpoint generations of one run directory."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.base = self.run_dir / DIRECTORY
        self.pointer = self.run_dir / POINTER

    def commit(self, epoch: int, write: Callable[[Path], None], fsync: bool = True) -> Path:
        """Write a new generation with ``write(directory)`` and make it the current one, atomically."""
        name = f"epoch-{epoch:06d}-{secrets.token_hex(3)}"
        with critical():
            try:
                self.base.mkdir(exist_ok=True)
                tmp = self.base / f".{name}.tmp"
                tmp.mkdir()
            except OSError as exc:
                raise storage_error(exc, self.base / name) from exc
            try:
                write(tmp)
                if fsync:
                    for f in tmp.iterdir():
                        fsync_file(f)
                    fsync_dir(tmp)
                os.rename(tmp, self.base / name)
                if fsync:
                    fsync_dir(self.base)
            except BaseException as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                if isinstance(exc, OSError):
                    raise storage_error(exc, tmp) from exc
                raise
            previous = self.current_name()
            write_json(self.pointer, {"format": FORMAT, "generation": name, "epoch": epoch}, fsync=fsync)
            if previous and previous != name:
                shutil.rmtree(self.base / previous, ignore_errors=True)
        return self.base / name

    def current_name(self) -> str | None:
        """The generation the pointer names (None before the first checkpoint)."""
        try:
            data = json.loads(self.pointer.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{self.pointer} is not a readable checkpoint pointer ({exc})") from None
        name = data.get("generation") if isinstance(data, dict) else None
        if not isinstance(name, str) or not _NAME.match(name) or data.get("format") != FORMAT:
            raise CheckpointError(f"{self.pointer} does not name a checkpoint generation (format {FORMAT})")
        return name

    def current(self) -> tuple[int, Path]:
        """``(epoch, directory)`` of the current generation, or a one-line error saying why there is none."""
        name = self.current_name()
        if name is None:
            if (self.run_dir / "trainer.json").is_file():
                raise UsageError(f"{self.run_dir} holds a checkpoint in the layout of zoo 0.1, which this zoo cannot "
                                 "resume; 'zoo eval' and 'zoo predict' still read the run")
            raise UsageError(f"{self.run_dir} has no checkpoint to resume from (no {POINTER}): it was stopped before "
                             "its first epoch ended")
        directory = self.base / name
        if not directory.is_dir():
            raise CheckpointError(f"{self.pointer} names {directory}, which does not exist")
        return int(name.split("-")[1]), directory

    def clean(self) -> list[str]:
        """Remove what an interrupted write left behind: temporary files of the run directory and every
        generation the pointer does not name. Returns the names removed."""
        keep = self.current_name()
        removed = []
        for path in list(self.run_dir.glob(".*.tmp")):
            try:
                path.unlink()
                removed.append(path.name)
            except OSError:
                pass
        if self.base.is_dir():
            for path in list(self.base.iterdir()):
                if path.name != keep:
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                    removed.append(f"{DIRECTORY}/{path.name}")
        return removed


def read_state(directory: Path) -> dict[str, Any]:
    """A generation's ``trainer.json``; a broken one is a one-line CheckpointError."""
    path = directory / "trainer.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing: the checkpoint is incomplete") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})") from None
    keys = ("epoch", "history", "best", "schedule")
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise CheckpointError(f"{path} lacks {', '.join(k for k in keys if not isinstance(state, dict) or k not in state)}")
    return state

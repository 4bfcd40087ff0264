"""The resumable checkpoint of a run: one complete, consistent set of files at every instant.

A checkpoint is a *generation*: a directory ``checkpoints/epoch-000018-<id>/`` holding
every file a resume needs: the last weights, the random generators, the procedure's state
(optimizers, schedules) and every callback's (such as the best weights so far), each as
safetensors for its tensors and JSON for the rest (:func:`pack`), and ``trainer.json``
with the epoch, the history and those JSON parts. A new generation is written into a temporary directory beside the old one,
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
FORMAT = "zoo-checkpoint/2"
#: Generations of the development versions before 0.2 (refused with one line).
OLD_FORMATS = ("zoo-checkpoint/1",)
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
        if isinstance(data, dict) and data.get("format") in OLD_FORMATS:
            raise UsageError(f"{self.run_dir} holds a checkpoint in an older layout ({data['format']}), which this zoo "
                             "cannot resume; 'zoo eval' and 'zoo predict' still read the run")
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
    keys = ("epoch", "history", "procedure", "callbacks")
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise CheckpointError(f"{path} lacks {', '.join(k for k in keys if not isinstance(state, dict) or k not in state)}")
    return state


# -- state as safetensors + JSON -------------------------------------------------------------

_TENSOR, _ITEMS = "__tensor__", "__items__"


def pack(state: Any, prefix: str = "") -> tuple[dict[str, Any], Any]:
    """Split a state (nested dicts and lists of JSON values and tensors, such as an optimizer's
    ``state_dict()``) into ``(tensors, plain)``: the tensors by a path name, for a safetensors file, and a
    JSON-able copy holding ``{"__tensor__": name}`` in their places. Dicts with keys that are not
    strings keep them as ``{"__items__": [[key, value], ...]}``. :func:`unpack` reverses it."""
    import torch

    tensors: dict[str, Any] = {}

    def walk(obj: Any, path: str) -> Any:
        if isinstance(obj, torch.Tensor):
            tensors[path] = obj
            return {_TENSOR: path}
        if isinstance(obj, dict):
            if all(isinstance(k, str) for k in obj) and _TENSOR not in obj and _ITEMS not in obj:
                return {k: walk(v, f"{path}.{k}" if path else k) for k, v in obj.items()}
            return {_ITEMS: [[k, walk(v, f"{path}.{i}" if path else str(i))] for i, (k, v) in enumerate(obj.items())]}
        if isinstance(obj, (list, tuple)):
            return [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(obj)]
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        raise TypeError(f"{path or 'the state'} is a {type(obj).__name__}: a checkpoint holds tensors and JSON "
                        "values (dicts, lists, numbers, strings) only")

    return tensors, walk(state, prefix)


def unpack(tensors: dict[str, Any], plain: Any) -> Any:
    """The state :func:`pack` split, joined again (a missing tensor is a CheckpointError)."""

    def walk(obj: Any) -> Any:
        if isinstance(obj, dict):
            if set(obj) == {_TENSOR}:
                if obj[_TENSOR] not in tensors:
                    raise CheckpointError(f"the checkpoint lacks the tensor {obj[_TENSOR]!r}")
                return tensors[obj[_TENSOR]]
            if set(obj) == {_ITEMS}:
                return {(tuple(k) if isinstance(k, list) else k): walk(v) for k, v in obj[_ITEMS]}
            return {k: walk(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        return obj

    return walk(plain)

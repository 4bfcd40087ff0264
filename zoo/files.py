"""Atomic, durable file writes: a reader never sees a half-written file under its final name.

Every write goes to a temporary file beside its target and is renamed into place. A
failure to write (a full disk, a read-only place, a name too long) becomes one
:class:`zoo.errors.StorageError` line naming the file, and the temporary file is removed.

Writes are *critical sections*: a second Ctrl-C (or SIGTERM) that asks to stop at once is
held back until the write in progress completes (see :func:`defer_until_safe`).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import StorageError

_depth = 0
_pending: list[Callable[[], None]] = []


@contextmanager
def critical() -> Iterator[None]:
    """A stretch of file operations that a stop request must not cut short."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending:
            action = _pending.pop()
            _pending.clear()
            action()


def defer_until_safe(action: Callable[[], None]) -> None:
    """Run ``action`` (which raises, to stop) now, or when the file write in progress has completed."""
    if _depth:
        _pending.append(action)
    else:
        action()


def storage_error(exc: OSError, path: str | os.PathLike, doing: str = "writing") -> StorageError:
    """One line for a failed file operation, naming the file and the cause people recognise."""
    path = Path(path)
    if exc.errno == errno.ENOSPC:
        text = f"no space left on device while {doing} {path}"
    elif exc.errno == errno.EDQUOT:
        text = f"disk quota exceeded while {doing} {path}"
    elif exc.errno == errno.EROFS:
        text = f"cannot write {path}: the file system is read-only"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        text = f"permission denied while {doing} {path}"
    else:
        verb = {"writing": "write", "reading": "read", "creating": "create", "removing": "remove"}.get(doing, doing)
        if exc.errno == errno.ENAMETOOLONG:
            shown = path.name if len(path.name) <= 60 else path.name[:57] + "..."
            text = (f"cannot {verb} {path.parent / shown}: the name is too long for the file system "
                    f"({len(path.name)} characters)")
        else:
            text = f"cannot {verb} {path}: {exc.strerror or exc}"
    return StorageError(text)


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory's entries (a rename or a new file in it) to disk."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every file system can sync a directory
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    ``fsync=True`` flushes the file and then its directory, so the new content survives a
    power cut once this returns; ``fsync=False`` still never shows a half-written file to
    another process. Any OSError becomes a one-line StorageError.
    """
    path = Path(path)
    with critical():
        try:
            tmp = _new_temp(path)
        except OSError as exc:
            raise storage_error(exc, path) from exc
        try:
            mode = stat.S_IMODE(os.stat(tmp).st_mode)
            yield Path(tmp)
            if stat.S_IMODE(os.stat(tmp).st_mode) != mode:  # a writer that recreated the file (safetensors does)
                os.chmod(tmp, mode)
            if fsync:
                fsync_file(tmp)
            os.replace(tmp, path)
            if fsync:
                fsync_dir(path.parent)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise storage_error(exc, path) from exc
            raise


def _new_temp(path: Path) -> str:
    """Create an empty, unique temporary file beside ``path``; its mode is what the umask gives a new file
    (``tempfile.mkstemp`` would force 0600, and colleagues could not read the run)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return str(tmp)
    raise FileExistsError(errno.EEXIST, f"could not create a temporary file beside {path}")


def write_text(path: str | os.PathLike, text: str, fsync: bool = True) -> None:
    with atomic_path(path, fsync) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any, fsync: bool = True) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n", fsync)

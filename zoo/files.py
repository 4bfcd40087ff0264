"""Atomic file writes: a reader never sees a half-written file under its final name."""

from __future__ import annotations

import json
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | os.PathLike, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    ``fsync=False`` skips flushing to disk: the file is still never seen half-written
    by another process, but a power cut may lose it (fine for per-epoch checkpoints).
    """
    path = Path(path)
    tmp = _new_temp(path)
    mode = stat.S_IMODE(os.stat(tmp).st_mode)
    try:
        yield Path(tmp)
        if stat.S_IMODE(os.stat(tmp).st_mode) != mode:  # a writer that recreated the file (safetensors does)
            os.chmod(tmp, mode)
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
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
    raise FileExistsError(f"could not create a temporary file beside {path}")


def write_text(path: str | os.PathLike, text: str, fsync: bool = True) -> None:
    with atomic_path(path, fsync) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any, fsync: bool = True) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n", fsync)

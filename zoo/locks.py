"""Run-directory locks: one live process owns a run directory at a time.

A run directory holds a ``run.lock`` file. The process that trains in it (a new run or
a resume) holds an exclusive ``flock`` on that file for as long as it runs, and writes
its process id, host and start time into it for messages. The operating system drops
the lock when the process ends in any way (SIGKILL included), so a lock left behind by
a dead process is never mistaken for a live one: "is anyone training here?" is answered
by trying the lock, not by trusting the file's content.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from .errors import UsageError

LOCK = "run.lock"


def _describe(info: dict[str, Any] | None) -> str:
    if not info:
        return "another process"
    return f"process {info.get('pid', '?')} on host {info.get('host', '?')} (since {info.get('started', '?')})"


def read_info(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """What the lock file says about its owner (None when absent or unreadable)."""
    try:
        data = json.loads((Path(run_dir) / LOCK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_held(run_dir: str | os.PathLike) -> bool:
    """Whether a live process holds the run's lock (False when there is no lock file)."""
    import fcntl

    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops the shared lock we may have taken
    return False


class RunLock:
    """The exclusive lock of one run directory, held by the process that trains in it."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self.fd: int | None = None

    def acquire(self, what: str = "train in") -> "RunLock":
        """Take the lock or raise a one-line UsageError naming the live owner."""
        import fcntl

        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                from .files import storage_error

                raise storage_error(exc, self.path) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UsageError(f"{self.run_dir} is in use by {_describe(read_info(self.run_dir))}: another zoo "
                                 f"process is training there, so it cannot {what} it now") from None
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP):
                    raise UsageError(f"{self.run_dir} is on a file system without locks ({exc.strerror}); "
                                     "zoo cannot guarantee one process per run there") from None
                raise
            # the file may have been removed by its previous owner between our open and our lock
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            self.fd = fd
            info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
            try:
                os.ftruncate(fd, 0)
                os.write(fd, (json.dumps(info) + "\n").encode())
            except OSError:
                pass  # the lock itself is what counts; its text is for messages
            return self
        raise UsageError(f"could not lock {self.path}: it keeps being replaced")

    def release(self) -> None:
        """Drop the lock and remove the file (a later reader sees no owner)."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

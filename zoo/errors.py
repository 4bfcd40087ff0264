"""Errors meant for people.

Everything a user can get wrong (an unknown name, a bad value, a missing file, a
bad combination) raises :class:`ZooError`. The CLI prints its message as one line
and exits non-zero; Python callers catch it like any other exception.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ZooError(Exception):
    """A user-facing error: its message is one clear line.

    ``shared``: with several processes, every one of them raises the same error at the same point
    (a bad argument, an agreed stop), so only the first reports it.
    """

    exit_code = 1
    shared = False


class UsageError(ZooError):
    """A bad argument or value (exit code 2, like click's usage errors)."""

    exit_code = 2
    shared = True


class CheckpointError(ZooError):
    """A weights file that cannot be read or does not fit the model."""


class StorageError(ZooError):
    """A file could not be written: a full disk, a read-only place, a name too long."""


class PluginLoadError(ZooError):
    """A plugin failed to import or declare its contributions."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choices, or ``""``."""
    close = difflib.get_close_matches(name, sorted(set(choices)), n=3, cutoff=0.6)
    if not close:
        return ""
    if len(close) == 1:
        return f"; did you mean '{close[0]}'?"
    return "; did you mean " + ", ".join(f"'{c}'" for c in close[:-1]) + f" or '{close[-1]}'?"


class TrainingInterrupted(ZooError):
    """SIGINT or SIGTERM ended the run after a clean epoch; it can be resumed."""

    shared = True

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class TrainingAborted(ZooError):
    """A second SIGINT/SIGTERM: stopped at once (after the file write in progress completed)."""

    shared = True

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


def one_line(text: object, limit: int = 2000) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters with "..."."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

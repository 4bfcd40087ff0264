"""What every tracker shares: the failure policy, the run described as parameters and tags, its pictures.

A tracker is a :class:`zoo.Callback`. :class:`Tracker` turns the loop's events into five calls a
tracker implements (``open``, ``log_epoch``, ``finish``, ``abort``, ``close``) and guarantees
what the run needs from all of them:

- **a failure never loses the run**: any exception inside a tracker is one warning line, the
  tracker is off for the rest of this run, and training and the run's files go on untouched;
- **one writer**: with several processes, only the one that writes the run's files tracks;
- **resumes continue, never duplicate**: the last epoch sent travels in the run's checkpoint, so a
  resumed run sends the epochs after it (and those a failed tracker missed), and nothing twice.

Nothing here imports a tracking library; :func:`require` does, with the install hint when it is missing.
"""

from __future__ import annotations

import abc
import importlib
import math
import os
import subprocess
import warnings
from pathlib import Path
from typing import Any

from zoo import Callback, ZooError

INSTALL_HINT = "pip install 'zoo[track]'"


class TrackingWarning(UserWarning):
    """A tracker failed and was turned off; the run itself went on."""


def require(module: str, package: str, label: str) -> Any:
    """Import ``module`` (of the ``package`` distribution), or a one-line :class:`ZooError` saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ZooError(f"tracking with {label} needs the {package} package, which is not installed: "
                       f"{INSTALL_HINT}") from None


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}"


def warn(trainer: Any, text: str) -> None:
    """One warning line: on the run's progress output when it has one, else as a :class:`TrackingWarning`
    (shown by Python once; ``zoo train -q`` and ``zoo.train(quiet=True)`` runs still see it)."""
    from zoo.progress import Reporter

    reporter = getattr(trainer, "reporter", None)
    if reporter is not None and type(reporter).message is not Reporter.message:
        reporter.message(f"warning: {text}")
    else:  # one line ("zoo:0: TrackingWarning: ..."): no source line of zoo's to show under it
        warnings.warn_explicit(text, TrackingWarning, "zoo", 0)


def note(trainer: Any, text: str) -> None:
    """A line on the run's progress output (nothing when the run is quiet)."""
    reporter = getattr(trainer, "reporter", None)
    if reporter is not None:
        reporter.message(text)


class Tracker(Callback, metaclass=abc.ABCMeta):
    """A callback that sends a run somewhere. Subclasses implement:

    - ``open(trainer)``: connect, before the first epoch this process trains (``self.sent`` is the last
      epoch already sent, from the checkpoint on a resume; 0 for a new run);
    - ``log_epoch(trainer, row)``: one history row (``row["epoch"]`` is the step);
    - ``finish(trainer, run)``: the run finished and its files are saved;
    - ``abort(trainer, exc)``: the run stopped with ``exc``;
    - ``close()``: release what ``open`` took (called once, after ``finish``/``abort`` or a failure);
    - ``state()``/``restore(state)``: what a resumed run needs besides the epoch sent (JSON values).

    Every call is guarded: an exception is one warning and the tracker is off for the rest of the run.
    """

    #: The tracker's name in messages ("TensorBoard").
    label = "tracker"

    def __init__(self) -> None:
        self.sent = 0  # the last epoch sent
        self.active = False  # connected and not failed
        self.failed = False

    # -- what a tracker implements ---------------------------------------------------

    @abc.abstractmethod
    def open(self, trainer: Any) -> None:
        """Connect (a writer, a tracking run) when training starts or resumes; every tracker implements it."""

    @abc.abstractmethod
    def log_epoch(self, trainer: Any, row: dict[str, float]) -> None:
        """Send one epoch's history row; every tracker implements it."""

    def finish(self, trainer: Any, run: Any) -> None:
        """The run finished (its files are saved)."""

    def abort(self, trainer: Any, exc: BaseException) -> None:
        """The run stopped with ``exc`` (an error or an interruption)."""

    def close(self) -> None:
        """Release the connection; must not raise."""

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state` returned (a resumed run)."""

    # -- the failure policy ----------------------------------------------------------

    def _guard(self, trainer: Any, doing: str, fn: Any, *args: Any) -> bool:
        """Call ``fn``; on failure warn once, turn the tracker off and release it. Interruptions pass through."""
        from zoo.errors import TrainingAborted, TrainingInterrupted

        try:
            fn(*args)
            return True
        except (TrainingAborted, TrainingInterrupted):
            raise
        except Exception as exc:  # noqa: BLE001 - a tracker never fails the run
            self.fail(trainer, doing, exc)
            return False

    def fail(self, trainer: Any, doing: str, exc: BaseException) -> None:
        """Turn the tracker off for the rest of the run, with one warning."""
        first = not self.failed
        self.failed, self.active = True, False
        try:
            self.close()
        except Exception:  # noqa: BLE001 - already failing
            pass
        if first:
            try:
                warn(trainer, f"{self.label} tracking failed while {doing} and is off for the rest of this run (the "
                              f"run goes on and keeps its files): {one_line(exc)}")
            except Exception:  # noqa: BLE001 - warnings turned into errors (-W error) still never fail the run
                pass

    # -- the loop's events -----------------------------------------------------------

    def on_load_checkpoint(self, trainer: Any, state: dict[str, Any]) -> None:
        def load() -> None:
            sent = state.get("sent", 0)
            if isinstance(sent, bool) or not isinstance(sent, int) or sent < 0:
                raise ValueError(f"the checkpoint's last epoch sent is {sent!r}")
            self.sent = sent
            self.restore(state)

        self._guard(trainer, "reading its state from the checkpoint", load)

    def on_fit_start(self, trainer: Any) -> None:
        if self.failed or not getattr(trainer, "is_writer", True):
            return  # with several processes, the one writing the run's files tracks it

        def start() -> None:
            self.sent = min(self.sent, trainer.epoch)  # epochs after the checkpoint are trained again
            self.open(trainer)
            self.active = True
            for row in trainer.history:  # what a tracker that failed before (or started later) missed
                if row["epoch"] > self.sent:
                    self.log_epoch(trainer, row)
                    self.sent = row["epoch"]

        self._guard(trainer, "starting", start)

    def on_epoch_end(self, trainer: Any, row: dict[str, float]) -> None:
        if not self.active:
            return

        def send() -> None:
            self.log_epoch(trainer, row)
            self.sent = row["epoch"]

        self._guard(trainer, f"sending epoch {row['epoch']}", send)

    def on_save_checkpoint(self, trainer: Any) -> dict[str, Any]:
        try:  # kept after a failure too: a resumed run tries the same tracked run again
            extra = self.state()
        except Exception:  # noqa: BLE001 - never fails a checkpoint
            extra = {}
        return {**extra, "sent": self.sent}

    def on_fit_end(self, trainer: Any, run: Any) -> None:
        if not self.active:
            return
        if self._guard(trainer, "sending the results", self.finish, trainer, run):
            self.active = False
            self._guard(trainer, "closing", self.close)

    def on_exception(self, trainer: Any, exc: BaseException) -> None:
        if not self.active:
            return
        self.active = False
        for step in (lambda: self.abort(trainer, exc), self.close):
            try:
                step()
            except Exception:  # noqa: BLE001 - the run's own error is the one to report
                pass


# -- the run, described -----------------------------------------------------------------


def _value(value: Any) -> Any:
    """A config value as a tracker's parameter: numbers, text and booleans as they are, lists as ``--set`` takes
    them (``32,32``)."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(_value(v)).lower() if isinstance(v, bool) else str(_value(v)) for v in value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def config_params(cfg: dict[str, Any]) -> dict[str, Any]:
    """The run's config as flat parameters, spelled as ``--set`` takes them: ``recipe``, each part's name
    (``dataset``, ``model``, ``loss``, ``optimizer``, ...) and hyperparameters (``model.hidden``), every training
    setting (``train.lr``, ``train.batch_size``, ...), the task and the callbacks' names."""
    from zoo.kinds import PARTS
    from zoo.settings import TRAIN_PARAMS

    out: dict[str, Any] = {}
    if cfg.get("recipe"):
        out["recipe"] = cfg["recipe"]
    for part in PARTS:
        if cfg.get(part):
            out[part] = cfg[part]
            for key, value in (cfg.get(f"{part}_params") or {}).items():
                if value is not None:
                    out[f"{part}.{key}"] = _value(value)
    for key in TRAIN_PARAMS:
        if cfg.get(key) is not None:
            out[f"train.{key}"] = _value(cfg[key])
    if cfg.get("task"):
        out["task"] = cfg["task"]
    names = [c["name"] for c in cfg.get("callbacks") or [] if isinstance(c, dict) and c.get("name")]
    if names:
        out["callbacks"] = ",".join(names)
    return out


def final_metrics(run: Any) -> dict[str, float]:
    """The run's results (the best epoch's weights on each split, as ``metrics.json`` holds them) as
    ``final_<split>_<metric>``, and ``best_epoch``."""
    out: dict[str, float] = {}
    for split, values in (run.metrics or {}).items():
        for key, value in (values or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"final_{split}_{key}"] = float(value)
    if run.best_epoch is not None:
        out["best_epoch"] = float(run.best_epoch)
    return out


def git_info(cwd: str | os.PathLike | None = None) -> dict[str, str]:
    """The commit (and branch, and whether the tree has uncommitted changes) of the git repository holding
    ``cwd``, or nothing when it is not in one or git is not installed."""
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return {}
    info = {"commit": commit}
    try:
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
        if branch and branch != "HEAD":
            info["branch"] = branch
        info["dirty"] = "true" if git("status", "--porcelain", "--untracked-files=no") else "false"
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def run_tags(trainer: Any) -> dict[str, str]:
    """What a run is, as text tags: zoo's version, the recipe, the task, each part with its plugin and the
    plugins' versions, the run directory."""
    from zoo import __version__
    from zoo.kinds import PARTS

    cfg = trainer.cfg
    tags = {"zoo.version": __version__, "zoo.run_dir": str(Path(trainer.run_dir).resolve()),
            "zoo.task": str(cfg.get("task") or "")}
    if cfg.get("recipe"):
        tags["zoo.recipe"] = cfg["recipe"]
    plugins: dict[str, str] = {}
    for part in PARTS:
        entry = trainer.combo.part(part)
        tags[f"zoo.{part}"] = entry.name
        tags[f"zoo.{part}.plugin"] = entry.plugin.name
        plugins[entry.plugin.name] = entry.plugin.version or ""
    for item in cfg.get("callbacks") or []:
        plugin = trainer.registry.plugins.get(item.get("plugin")) if isinstance(item, dict) else None
        if plugin is not None:
            plugins[plugin.name] = plugin.version or ""
    for name, version in sorted(plugins.items()):
        tags[f"zoo.plugin.{name}"] = version
    return tags


# -- the run's pictures -------------------------------------------------------------------

_PICTURES: dict[tuple[str, int], list[Path]] = {}


def pictures(trainer: Any) -> list[Path]:
    """The run's pictures (``curves.png``, ``decision.png``, ...: what ``zoo plot`` draws into the run directory),
    drawn once per finished run for all its trackers; none without matplotlib. A picture that cannot be
    drawn is left out (``zoo plot`` says why)."""
    key = (str(Path(trainer.run_dir).resolve()), trainer.epoch)
    if key in _PICTURES:
        return _PICTURES[key]
    paths: list[Path] = []
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        paths = []
    else:
        from zoo.plots import plot_run

        try:
            paths = plot_run(trainer.run_dir, warn=lambda text: None)
        except Exception:  # noqa: BLE001 - nothing to draw for this run; the trackers send the rest
            paths = []
    _PICTURES.clear()  # one finished run at a time
    _PICTURES[key] = paths
    return paths

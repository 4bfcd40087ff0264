"""Callbacks: what observes and steers the training loop without being the loop.

A :class:`Callback` overrides the events it needs; the :class:`zoo.engine.Trainer` calls them in
order (the built-ins first, then the user's). Its state travels in the resumable checkpoint:
``on_save_checkpoint`` returns a dict of JSON values and tensors (tensors are stored as
safetensors, the rest as JSON; never pickle) and ``on_load_checkpoint`` gets it back on
resume, so a resumed run continues every callback exactly.

The loop's own services are built-in callbacks: :class:`BestWeights` (the best epoch's
weights), :class:`EarlyStopping` (``patience``), :class:`PlateauSchedule` (feeds the
monitored figure to a schedule that wants it), :class:`Progress` (a
:class:`zoo.progress.Reporter`), :class:`Checkpointing` (a resumable checkpoint every
``checkpoint_every`` seconds) and :class:`StatusFile` (the run's ``run.json``).

``on_batch_end`` is called after every optimizer step, but only for callbacks that override
it: a run whose callbacks do not costs nothing per step. Its ``loss`` is a detached 0-d tensor
on the training device (reading it with ``float()`` waits for the device: do it rarely).
"""

from __future__ import annotations

import signal
import time
from typing import Any

#: What the events receive: the :class:`zoo.engine.Trainer` and the finished :class:`zoo.engine.Run`
#: (named here, not imported: the loop imports its callbacks, not the other way round).
Trainer = Run = Any


class Callback:
    """Override the events you need. Events receive the :class:`~zoo.engine.Trainer` (``trainer.epoch``,
    ``trainer.history``, ``trainer.model``, ``trainer.settings``, ``trainer.run_dir``,
    ``trainer.stop(reason)``, ``trainer.procedure``, ``trainer.strategy``)."""

    #: The key of this callback's state in a checkpoint (default: the class name; registry
    #: callbacks use their registered name). Two callbacks of a run must not share one.
    state_key: str | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first epoch this process trains (after a resume restored the checkpoint)."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before epoch ``epoch`` (1-based) trains."""

    def on_batch_end(self, trainer: Trainer, batch: int, loss: Any) -> None:
        """After optimizer step ``batch`` (1-based, within the epoch); ``loss`` is the batch's detached loss."""

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        """After an epoch was trained and validated; ``row`` is its history row (``epoch``, ``train_loss``,
        ``val_loss``, ``val_<metric>``, ``lr``, ``time``)."""

    def on_save_checkpoint(self, trainer: Trainer) -> dict[str, Any] | None:
        """The state to keep in the resumable checkpoint being written: JSON values and tensors."""
        return None

    def on_load_checkpoint(self, trainer: Trainer, state: dict[str, Any]) -> None:
        """Restore what :meth:`on_save_checkpoint` returned (on resume)."""

    def on_fit_end(self, trainer: Trainer, run: Run) -> None:
        """After the run finished and its results were saved."""

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        """The run stopped with ``exc`` (an error, an interruption); the exception is re-raised after."""


def overrides(cb: Callback, event: str) -> bool:
    """Whether ``cb`` implements ``event`` itself (the loop skips events nobody implements)."""
    return getattr(type(cb), event, None) is not getattr(Callback, event)


class Monitor:
    """The best value of a monitored figure so far: ``value``, ``epoch``, and ``bad_epochs`` since it last
    improved by more than ``min_delta``."""

    def __init__(self, minimize: bool, min_delta: float) -> None:
        self.minimize, self.min_delta = minimize, min_delta
        self.value: float | None = None
        self.epoch: int | None = None
        self.bad_epochs = 0

    def improved(self, value: float) -> bool:
        if self.value is None:
            return True
        return value < self.value - self.min_delta if self.minimize else value > self.value + self.min_delta

    def update(self, value: float, epoch: int) -> bool:
        if self.improved(value):
            self.value, self.epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    def state(self) -> dict[str, Any]:
        return {"value": self.value, "epoch": self.epoch, "bad_epochs": self.bad_epochs}

    def load(self, state: dict[str, Any]) -> None:
        value, epoch, bad = state["value"], state["epoch"], state["bad_epochs"]
        if not (value is None or isinstance(value, (int, float))) or not (epoch is None or isinstance(epoch, int)) \
                or not isinstance(bad, int):
            raise ValueError(f"a monitor state must hold numbers, not {state!r}")
        self.value, self.epoch, self.bad_epochs = value, epoch, bad


class BestWeights(Callback):
    """Keeps a copy of the weights of the epoch with the best monitored figure; the run's
    ``model.safetensors`` and its final metrics are that epoch's."""

    state_key = "best_weights"

    def __init__(self, monitor: str, minimize: bool, min_delta: float) -> None:
        self.monitor = monitor
        self.best = Monitor(minimize, min_delta)
        self.weights: dict[str, Any] | None = None

    @property
    def epoch(self) -> int | None:
        return self.best.epoch

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if self.best.update(row[self.monitor], row["epoch"]):
            self.weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    def on_save_checkpoint(self, trainer: Trainer) -> dict[str, Any]:
        return {**self.best.state(), "weights": self.weights}

    def on_load_checkpoint(self, trainer: Trainer, state: dict[str, Any]) -> None:
        from . import checkpoint

        self.best.load(state)
        weights = state.get("weights")
        if (weights is None) != (self.best.epoch is None):
            raise ValueError(f"best epoch {self.best.epoch} but {'no' if weights is None else ''} best weights")
        if weights is not None:
            problems = checkpoint.mismatch(trainer.model, weights)
            if problems:
                raise ValueError("the best weights do not fit the model: " + "; ".join(problems))
            self.weights = dict(weights)


class EarlyStopping(Callback):
    """Stops the run when the monitored figure has not improved (by more than ``min_delta``) for
    ``patience`` epochs."""

    state_key = "early_stopping"

    def __init__(self, monitor: str, minimize: bool, min_delta: float, patience: int) -> None:
        self.monitor, self.patience = monitor, patience
        self.best = Monitor(minimize, min_delta)

    def _check(self, trainer: Trainer) -> None:
        if self.best.bad_epochs >= self.patience:
            trainer.stop(f"stopped early after epoch {trainer.epoch}: {self.monitor} did not improve for "
                         f"{self.patience} epochs", early=True)

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.epoch:  # resumed with the patience already spent
            self._check(trainer)

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        self.best.update(row[self.monitor], row["epoch"])
        self._check(trainer)

    def on_save_checkpoint(self, trainer: Trainer) -> dict[str, Any]:
        return self.best.state()

    def on_load_checkpoint(self, trainer: Trainer, state: dict[str, Any]) -> None:
        self.best.load(state)


class PlateauSchedule(Callback):
    """Gives the monitored figure to the schedules that act on it (``epoch_end(value)``, e.g. ``plateau``)
    after every epoch. Their own state is saved with the procedure."""

    def __init__(self, monitor: str, schedules: list[Any]) -> None:
        self.monitor, self.schedules = monitor, schedules

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        value = row[self.monitor]
        for schedule in self.schedules:
            schedule.epoch_end(value)


class Progress(Callback):
    """Reports epochs to a :class:`zoo.progress.Reporter` (a bar on a terminal, lines otherwise)."""

    def __init__(self, reporter: Any) -> None:
        self.reporter = reporter

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        self.reporter.epoch_start(epoch, trainer.epochs, trainer.procedure.steps_per_epoch)

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        self.reporter.epoch_end(row, trainer.epochs)


class BatchProgress(Progress):
    """:class:`Progress` for a reporter that also shows batches (a live bar)."""

    def on_batch_end(self, trainer: Trainer, batch: int, loss: Any) -> None:
        self.reporter.batch(loss)


def progress(reporter: Any) -> Progress | None:
    """The progress callback for ``reporter``: none for the silent base, per batch only if it shows batches."""
    from .progress import Reporter

    kind = type(reporter)
    if all(getattr(kind, e) is getattr(Reporter, e) for e in ("epoch_start", "batch", "epoch_end")):
        return None
    return BatchProgress(reporter) if kind.batch is not Reporter.batch else Progress(reporter)


class Checkpointing(Callback):
    """Commits a resumable checkpoint every ``every`` seconds (after every epoch when 0). One is always
    committed at the end of the run and when it is interrupted, whatever this says."""

    def __init__(self, every: float) -> None:
        self.every = every

    def on_epoch_end(self, trainer: Trainer, row: dict[str, float]) -> None:
        if time.perf_counter() - trainer.saved_at >= self.every:
            trainer.save_checkpoint()


class StatusFile(Callback):
    """The run's ``run.json``: running, finished, stopped early, interrupted or failed, with when and why.
    A failure to write it (a full disk) never hides the error being reported. With several processes
    only the writer has a ``path``; the others keep the record without writing it."""

    def __init__(self, path: Any, status: dict[str, Any], warn: Any = None) -> None:
        self.path, self.status, self.warn = path, status, warn

    def write(self, state: str | None = None, **fields: Any) -> None:
        from .errors import ZooError
        from .files import write_json

        if state is not None:
            self.status["status"] = state
        self.status.update(fields)
        if self.path is None:
            return
        try:
            write_json(self.path, self.status)
        except ZooError as exc:
            if self.warn is not None:
                self.warn(f"warning: the run's status could not be recorded: {exc}")

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.status.get("status") != "running" or "error" in self.status:  # a resumed run: mark it again
            self.status.pop("error", None)
            self.status.pop("signal", None)
            self.write("running")

    def finished(self, trainer: Trainer, run: Run) -> None:
        """The run's final record (the trainer writes it when the results are saved)."""
        from .files import write_json

        self.status.update(status=run.status, finished=now(), epochs=trainer.epoch, best_epoch=run.best_epoch,
                           seconds=trainer.history[-1]["time"] if trainer.history else 0.0)
        if self.path is not None:
            write_json(self.path, self.status)  # a failure here fails the run (on_exception records it)

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        from .errors import TrainingAborted, TrainingInterrupted

        if isinstance(exc, TrainingInterrupted):
            self.write("interrupted", epochs=trainer.saved_epoch, signal=signal.Signals(exc.signum).name)
        elif isinstance(exc, (KeyboardInterrupt, TrainingAborted)):
            self.write("interrupted", epochs=trainer.saved_epoch, error=None)
        else:
            self.write("failed", epochs=trainer.saved_epoch, error=f"{type(exc).__name__}: {exc}")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


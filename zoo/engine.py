"""The training loop: a :class:`Trainer` builds a run from its parts and drives them.

Everything else lives behind seams, each a plugin kind or a module of its own:

- the **strategy** (:mod:`zoo.strategies`): the device, batching, which process writes;
- the **procedure** (:mod:`zoo.procedures`): what one training step is, with its optimizers
  and schedules, and how a split is evaluated;
- the **callbacks** (:mod:`zoo.callbacks`): best weights, early stopping, the plateau
  schedule, progress, timed checkpoints, the status file, and the user's own;
- the parts (:mod:`zoo.parts`), evaluation (:mod:`zoo.evaluation`), the resumable checkpoint
  (:mod:`zoo.resumable`) and a saved run's model and reload check (:mod:`zoo.saved`).

The loop is: for each epoch, the procedure trains, then evaluates the validation split;
the row goes to the history and to every callback; then the checkpoint and the signals.
SIGINT and SIGTERM stop a run at its next safe point with a resumable checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from . import __version__, checkpoint, rundir as runs
from .callbacks import (BestWeights, Callback, Checkpointing, EarlyStopping, PlateauSchedule, StatusFile, now,
                        overrides, progress)
from .config import entries_for, minimize
from .errors import CheckpointError, TrainingAborted, TrainingInterrupted, UsageError, ZooError
from .evaluation import MetricSet, head_inputs, raw_inputs, split_len
from .files import defer_until_safe, write_json, write_text
from .launch import note_run_dir
from .locks import RunLock
from .parts import RunModel, build_model, choose_threads, fit_scales, intra_op_threads, load_data, out_features
from .procedures import NonFiniteLoss, Procedure, RunContext
from .progress import LineReporter, Reporter
from .registry import Registry, get_registry
from .resumable import pack, read_state, unpack
from .rundir import RunDir
from .saved import RELOAD_CHECK_SAMPLES, WEIGHTS_FORMAT, reload_check
from .settings import TRAIN_PARAMS, settings_of
from .strategies import Strategy

__all__ = ["History", "NonFiniteLoss", "Run", "Trainer", "TrainingAborted", "TrainingInterrupted", "fit", "resume"]


class History(list):
    """A run's per-epoch rows (dicts: ``epoch``, ``train_loss``, ``val_loss``, ``val_<metric>``, ``lr``,
    ``time``), which also answer a column by name: ``run.history["val_loss"]`` is the list of
    validation losses, so ``plt.plot(h["epoch"], h["val_loss"])`` draws a curve."""

    def __getitem__(self, key):
        if isinstance(key, str):
            if self and key not in self[0]:
                from .errors import did_you_mean

                raise KeyError(f"no column {key!r} in the history{did_you_mean(key, self[0])} "
                               f"(columns: {', '.join(self[0])})")
            return [row.get(key) for row in self]
        return super().__getitem__(key)

    @property
    def columns(self) -> list[str]:
        return list(self[0]) if self else []


@dataclass
class Run:
    """A training run: where it is (``dir``), what it was (``config``), how it went (``history``: the
    per-epoch rows, ``metrics``: per split, ``status``, ``best_epoch``); :meth:`predict` and :meth:`plot`.

    ``model`` is the trained :class:`~zoo.parts.RunModel` (best epoch's weights): it takes raw inputs and
    returns the data's units (logits for classification).
    """

    dir: Path
    config: dict[str, Any]
    history: History
    metrics: dict[str, dict[str, float]]
    model: torch.nn.Module = field(repr=False)
    status: str = "finished"
    best_epoch: int | None = None

    def predict(self, X, device: str = "cpu"):
        """Predictions on raw inputs, exactly as ``zoo predict`` makes them (see :func:`zoo.predict`)."""
        from .inference import predict as predict_run

        return predict_run(self.dir, X, device=device)

    def plot(self, warn: Callable[[str], None] | None = None) -> list:
        """Draw the run's pictures as ``zoo plot`` does (``curves.png``, and ``fit.png``, ``decision.png``,
        ``confusion.png``... where they fit; written into :attr:`dir`) and return them as matplotlib
        Figures, in that order: a :class:`zoo.plots.Figures` list that a notebook shows as the pictures.

        A picture that cannot be drawn is passed to ``warn`` (one line; by default a ``UserWarning``)
        and the others are still returned; nothing to draw at all, or no matplotlib, is a ZooError."""
        from .plots import Figures, plot_run

        if warn is None:
            import warnings

            def warn(text: str) -> None:
                warnings.warn(text, stacklevel=3)

        figures = Figures()
        plot_run(self.dir, warn=warn, figures=figures)
        return figures

    def __repr__(self) -> str:
        names = [k for k in self.metrics.get("test", {}) if k != "loss"] or ["loss"]
        value = self.metrics.get("test", {}).get(names[0], float("nan"))
        return (f"Run({str(self.dir)!r}, epochs={len(self.history)}, status={self.status}, "
                f"test {names[0]}={value:.4g})")


# -- calling the procedure on a stack of its own ---------------------------------------------


def _stack_runner(slots: int = 4100):
    """``runner(fn, *args, **kwargs) -> fn(*args, **kwargs)``, from a frame with ``slots`` local variables.

    CPython (3.11 and later) keeps Python frames in 16 KiB chunks and frees a chunk as soon as the
    frame at its start returns. A training step calls ten to thirty frames deep (modules, autograd,
    the optimizer) from wherever the loop happens to stand; when a chunk boundary falls inside that
    span, every step maps and unmaps a chunk several times (measured: 19 000 extra mmap/munmap pairs
    and +5% wall time for ``zoo train regression-mlp``, depending only on how deep the caller's stack
    was; most of it in setting up and finishing a run, where loops of calls stand at the boundary). The
    runner's frame (33 KiB of never-used locals) does not fit in the current chunk, so it starts a
    fresh 64 KiB one, and what it calls stays inside the remaining 31 KiB, wherever the trainer was
    called from. ``fit``, ``resume`` and ``Trainer.run`` go through it; it costs one frame set-up.
    """
    names = [f"_{i}" for i in range(slots)]
    source = ("def runner(fn, *args, **kwargs):\n    if False:\n        " + " = ".join(names) + " = None\n"
              "    return fn(*args, **kwargs)\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, "<zoo.engine stack runner>", "exec"), namespace)  # noqa: S102 - a fixed, local source
    return namespace["runner"]


_on_own_stack = _stack_runner()


# -- the checkpoint a resume needs -------------------------------------------------------

#: The files of a checkpoint generation (see :mod:`zoo.resumable`).
CKPT_MODEL = "last.safetensors"
CKPT_PROCEDURE = "procedure.safetensors"
CKPT_CALLBACKS = "callbacks.safetensors"
CKPT_RNG = "rng.safetensors"
CKPT_STATE = "trainer.json"


def _rng_tensors(gen: torch.Generator) -> dict[str, torch.Tensor]:
    out = {"torch": torch.get_rng_state(), "shuffle": gen.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"cuda.{i}"] = s
    return out


def _restore_rng(tensors: dict[str, torch.Tensor], gen: torch.Generator) -> None:
    torch.set_rng_state(tensors["torch"])
    gen.set_state(tensors["shuffle"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])


# -- signals -----------------------------------------------------------------------------


class _StopFlag:
    """What the signal handlers saw: the first SIGINT/SIGTERM asks for a clean stop."""

    def __init__(self) -> None:
        self.signum: int | None = None


@contextlib.contextmanager
def _graceful_signals(flag: _StopFlag, abort_message: Callable[[str], str] | None = None):
    """For the whole life of a run: the first SIGINT/SIGTERM sets ``flag`` (the run stops at its next safe
    point); a second one stops at once, but only once the file write in progress has completed."""
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {}

    def abort(signum: int) -> None:
        name = signal.Signals(signum).name
        text = abort_message(name) if abort_message else f"{name} received twice: stopped at once"
        raise TrainingAborted(text, signum)

    def handler(signum, frame):
        if flag.signum is not None:  # a second signal: stop now, but never in the middle of a file write
            defer_until_safe(lambda: abort(signum))
            return
        flag.signum = signum

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# -- the trainer -------------------------------------------------------------------------


def build_callback(item: dict[str, Any], registry: Registry) -> Callback:
    """A registry callback of a run's config (``{"name", "plugin", "params"}``), built."""
    entry = registry.get("callback", f"{item['plugin']}:{item['name']}" if item.get("plugin") else item["name"])
    try:
        cb = entry.load()(**(item.get("params") or {}))
    except ZooError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin factory's own complaint
        raise ZooError(f"callback '{entry.name}' from plugin '{entry.plugin.name}' could not be built with "
                       f"{item.get('params') or {}}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(cb, Callback):
        raise ZooError(f"callback '{entry.name}' from plugin '{entry.plugin.name}' returned {type(cb).__name__}, "
                       "not a zoo.callbacks.Callback")
    if cb.state_key is None:
        cb.state_key = entry.name
    return cb


class Trainer:
    """One run: its parts built from a resolved config (or a run directory to resume), then trained.

    Attributes callbacks may read: ``cfg`` (the run's config), ``settings`` (typed, see
    :mod:`zoo.settings`), ``combo`` (the chosen parts), ``strategy``, ``procedure``, ``model`` (the
    :class:`~zoo.parts.RunModel` being trained), ``splits``, ``epoch`` (epochs done), ``epochs``
    (the total this call trains to), ``history``, ``run_dir``, ``best`` (the :class:`BestWeights`).
    """

    def __init__(self, cfg: dict[str, Any], run_dir: Path | None, *, registry: Registry | None = None,
                 reporter: Reporter | None = None, out: str | Path | None = None, lock: RunLock | None = None,
                 flag: _StopFlag | None = None, callbacks: Iterable[Callback] = ()) -> None:
        self.reporter = reporter or Reporter()
        self.flag = flag or _StopFlag()
        self.lock = lock
        self.registry = registry or get_registry()
        # the config's callbacks are built first: one that cannot be (a tracker whose library is not installed) is
        # one error before any data is loaded or any file is made
        self._config_callbacks = [build_callback(item, self.registry) for item in cfg.get("callbacks") or []]
        self.combo = combo = entries_for(cfg, self.registry)
        self.strategy = self._build_strategy(cfg)
        #: Whether this process writes the run's files and reports (with several processes, the first alone).
        self.is_writer = self.strategy.is_writer
        if not self.is_writer:
            self.reporter = Reporter()
        seed = cfg["seed"]
        torch.manual_seed(seed)
        self.splits = load_data(combo, cfg)
        meta = self.splits.meta
        cfg = {**cfg, "task": meta.task, "target": combo.loss.spec.target, "meta": meta.to_json(),
               "zoo_version": __version__}
        cfg["out_features"] = out_features(meta, cfg["target"])
        processes = self.strategy.describe()
        if processes is not None:
            cfg["distributed"] = processes
        else:
            cfg.pop("distributed", None)
        self.cfg = cfg
        torch.manual_seed(seed)
        model = build_model(combo, cfg, meta)
        note = fit_scales(model, self.splits, cfg, combo)
        if note:
            self.reporter.message(note)
        self._fine_tune(model, cfg, meta, fresh=run_dir is None)
        self.model: RunModel = model.to(self.strategy.device)
        if not cfg.get("threads"):
            cfg["threads"] = choose_threads(0, model.net, meta.input_shape, cfg["batch_size"], self.strategy.device)
        self.settings = settings_of(cfg)
        self.strategy.settings = self.settings
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        metrics = MetricSet(cfg["metrics"], self.registry) if cfg.get("metrics") else MetricSet.for_config(
            cfg, self.registry)
        self.lower_is_better = minimize(self.settings.monitor, self.registry)
        ctx = RunContext(cfg=cfg, settings=self.settings, combo=combo, splits=self.splits, model=self.model,
                         strategy=self.strategy, metrics=metrics, generator=self.gen, note=self.reporter.message,
                         lower_is_better=self.lower_is_better, registry=self.registry)
        self.procedure = self._build_procedure(ctx)
        self.history = History()
        self.epoch = 0
        self.epochs = self.settings.epochs
        self.should_stop = False
        self.stop_reason: str | None = None
        self.saved_epoch = 0  # the epoch of the newest resumable checkpoint on disk
        self.saved_at = time.perf_counter()
        self.published_best: int | None = None  # the best epoch whose weights model.safetensors holds
        if run_dir is None:
            with intra_op_threads(self.settings.threads):  # as the run will: a tiny forward on spinning threads can take ms
                self.procedure.probe()  # parts that do not fit fail here, before any file is made
            self._stop_if_asked("before training started: nothing was saved")
            run_dir = self._claim_run_dir(out)
            self.run_dir, self.files = Path(run_dir), RunDir(run_dir)
            if self.is_writer and self.strategy.distributed:
                note_run_dir(run_dir)
            record = {"status": "running", "started": now(), "zoo_version": __version__}
            if processes is not None:
                record["distributed"] = processes
            self.status = StatusFile(self.files.status if self.is_writer else None, record, self.reporter.message)
            if self.is_writer:
                try:
                    write_json(self.files.status, self.status.status)
                    self.files.write_config(cfg)
                    if self.splits.state:
                        write_json(self.files.preprocess_state, self.splits.state)
                except BaseException:
                    self.status.write("failed")
                    self.close()
                    raise
        else:
            self.run_dir, self.files = Path(run_dir), RunDir(run_dir)
            if self.is_writer and self.strategy.distributed:
                note_run_dir(run_dir)
            record = self.files.read_status()
            if processes is not None:
                record["distributed"] = processes
            else:
                record.pop("distributed", None)
            self.status = StatusFile(self.files.status if self.is_writer else None, record, self.reporter.message)
            self._stop_if_asked("before training resumed: the run is unchanged")
        self.store = self.files.checkpoints()
        self.callbacks = self._callbacks(list(callbacks))

    # -- building ------------------------------------------------------------------------

    def _fine_tune(self, model: RunModel, cfg: dict[str, Any], meta: Any, fresh: bool) -> None:
        """``init``: a fresh run starts from another run's network weights (see :mod:`zoo.finetune`; a resumed
        one continues from its checkpoint instead, its ``init_source`` kept); ``freeze``: the matching
        parameters are not trained (before the procedure builds its optimizers, which leave them out)."""
        from .finetune import freeze, start_from

        if fresh:
            cfg.pop("init_source", None)
            if cfg.get("init"):
                cfg["init_source"], text = start_from(model, cfg, self.combo, meta, self.registry)
                self.reporter.message(text)
        if cfg.get("freeze"):
            text = freeze(model, tuple(cfg["freeze"]), cfg["model"])
            if fresh:
                self.reporter.message(text)

    def _claim_run_dir(self, out: str | Path | None) -> Path:
        """A new run directory: made by the writer; with several processes, its path (or the one-line reason
        it could not be made) shared with the others."""
        stem = self.cfg["recipe"] or f"{self.cfg['dataset']}-{self.cfg['model']}-{self.cfg['loss']}"
        made: tuple[str, str] | None = None
        if self.is_writer:
            try:
                run_dir, self.lock = runs.create_run_dir(stem, out)
                made = ("ok", str(run_dir))
            except ZooError as exc:
                made = ("error", str(exc))
                self.strategy.broadcast(made)
                raise
        kind, text = self.strategy.broadcast(made)
        if kind == "error":
            err = ZooError(text)
            err.shared = True  # the writer reports it
            raise err
        return Path(text)

    def _build_strategy(self, cfg: dict[str, Any]) -> Strategy:
        entry = self.combo.strategy
        try:
            strategy = entry.load()(settings_of(cfg), **(cfg.get("strategy_params") or {}))
        except ZooError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ZooError(f"strategy '{entry.name}' from plugin '{entry.plugin.name}' could not be built: "
                           f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(strategy, Strategy):
            raise ZooError(f"strategy '{entry.name}' from plugin '{entry.plugin.name}' returned "
                           f"{type(strategy).__name__}, not a zoo.strategies.Strategy")
        strategy.setup()
        return strategy

    def _build_procedure(self, ctx: RunContext) -> Procedure:
        entry = self.combo.procedure
        proc = entry.load()(ctx, **(self.cfg.get("procedure_params") or {}))
        if not isinstance(proc, Procedure):
            raise ZooError(f"procedure '{entry.name}' from plugin '{entry.plugin.name}' returned "
                           f"{type(proc).__name__}, not a zoo.procedures.Procedure")
        return proc

    def _callbacks(self, extra: list[Callback]) -> list[Callback]:
        """The built-ins (best weights, early stopping, plateau, progress), the run's own (its config's, then
        objects given), then the timed checkpoints and the status file."""
        s = self.settings
        lower = self.lower_is_better
        self.best = BestWeights(s.monitor, lower, s.min_delta)
        out: list[Callback] = [self.best]
        if s.patience:
            out.append(EarlyStopping(s.monitor, lower, s.min_delta, s.patience))
        schedules = self.procedure.epoch_schedules()
        if schedules:
            out.append(PlateauSchedule(s.monitor, schedules))
        shown = progress(self.reporter)
        if shown is not None:
            out.append(shown)
        out += self._config_callbacks
        keys = {cb.state_key for cb in out if cb.state_key}
        for cb in extra:
            if not isinstance(cb, Callback):
                raise UsageError(f"callbacks must be zoo.callbacks.Callback objects, not {type(cb).__name__}")
            key = cb.state_key or type(cb).__qualname__
            if key in keys:
                raise UsageError(f"two callbacks of the run have the state key '{key}'; give one a state_key of "
                                 "its own")
            keys.add(key)
            cb.state_key = key
            out.append(cb)
        out += [Checkpointing(s.checkpoint_every), self.status]
        return out

    # -- housekeeping --------------------------------------------------------------------

    def close(self) -> None:
        """Release the run directory (its lock) for other processes."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def stop(self, reason: str, early: bool = True) -> None:  # noqa: ARG002 - the one kind of stop today
        """Ask the loop to stop after this epoch (from a callback); ``reason`` is reported."""
        self.should_stop = True
        self.stop_reason = reason

    def _stop_if_asked(self, when: str) -> None:
        if self.flag.signum is not None:
            name = signal.Signals(self.flag.signum).name
            raise TrainingInterrupted(f"{name} received {when}", self.flag.signum)

    def _emit(self, event: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(self, *args)

    # -- checkpoint -------------------------------------------------------------------

    def save_checkpoint(self) -> None:
        """Commit a new checkpoint generation (see :mod:`zoo.resumable`), then publish the derived files
        (``history.csv``, and ``model.safetensors`` when the best epoch changed) from what was committed.
        Only the writer writes; every process holds the same state."""
        if not self.is_writer:
            self.saved_epoch, self.saved_at = self.epoch, time.perf_counter()
            return
        tag = {"epoch": str(self.epoch)}
        proc_tensors, proc_plain = pack(self.procedure.state_dict())
        states = {}
        for cb in self.callbacks:
            state = cb.on_save_checkpoint(self)
            if state is not None:
                states[cb.state_key or type(cb).__qualname__] = state
        cb_tensors, cb_plain = pack(states)

        def write(d: Path) -> None:  # into the new generation's directory, renamed into place as a whole
            def save(state, name, meta):
                checkpoint.save_weights(state, d / name, meta, fsync=False, atomic=False)

            save(self.model, CKPT_MODEL, {**self._weights_meta(), **tag})
            save(proc_tensors, CKPT_PROCEDURE, tag)
            save(cb_tensors, CKPT_CALLBACKS, tag)
            save(_rng_tensors(self.gen), CKPT_RNG, tag)
            state = {"epoch": self.epoch, "history": list(self.history), "procedure": proc_plain,
                     "callbacks": cb_plain}
            (d / CKPT_STATE).write_text(_json(state), encoding="utf-8")

        self.store.commit(self.epoch, write)
        self.saved_epoch, self.saved_at = self.epoch, time.perf_counter()
        self._publish()

    def _publish(self) -> None:
        """The run's readable files that follow the committed checkpoint: history and the best weights so far.
        They are copies: a resume rebuilds them from the checkpoint, so they may lag it but never disagree."""
        if not self.is_writer:
            return
        write_text(self.files.history, _history_csv(self.history), fsync=False)
        if self.best.weights is not None and self.best.epoch != self.published_best:
            checkpoint.save_weights(self.best.weights, self.files.weights,
                                    {**self._weights_meta(), "epoch": str(self.best.epoch)}, fsync=False)
            self.published_best = self.best.epoch

    def restore_checkpoint(self) -> None:
        """Continue from the current checkpoint generation; debris of an interrupted write is removed first (by
        the writer; every process reads the same generation)."""
        if self.is_writer:
            removed = self.store.clean()
            if removed:
                self.reporter.message(f"removed what an interrupted write left behind: {', '.join(removed)}")
        self.strategy.barrier()
        epoch, d = self.store.current()
        state = read_state(d)
        if state["epoch"] != epoch:
            raise CheckpointError(f"{d / CKPT_STATE} is from epoch {state['epoch']} but its generation from epoch "
                                  f"{epoch}: the checkpoint is inconsistent")
        meta = checkpoint.read_metadata(d / CKPT_MODEL)
        if meta.get("format") != WEIGHTS_FORMAT:
            raise UsageError(f"{self.run_dir} was saved in the weights format {meta.get('format')!r}, which zoo "
                             f"{__version__} cannot resume")
        checkpoint.load_weights(self.model, d / CKPT_MODEL)
        files = {name: checkpoint.read_weights(d / name) for name in (CKPT_PROCEDURE, CKPT_CALLBACKS, CKPT_RNG)}
        for name, (_, m) in {CKPT_MODEL: (None, meta), **files}.items():
            if m.get("epoch") != str(epoch):
                raise CheckpointError(f"{d / name} is from epoch {m.get('epoch')} but {d / CKPT_STATE} from epoch "
                                      f"{epoch}: the checkpoint is inconsistent")
        states = unpack(files[CKPT_CALLBACKS][0], state["callbacks"])
        where = "the procedure"
        try:
            self.procedure.load_state_dict(unpack(files[CKPT_PROCEDURE][0], state["procedure"]))
            _restore_rng(files[CKPT_RNG][0], self.gen)
            for cb in self.callbacks:
                key = cb.state_key or type(cb).__qualname__
                if key in states:
                    where = f"callback '{key}'"
                    cb.on_load_checkpoint(self, states[key])
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"the checkpoint in {d} cannot be restored into {where} ({type(exc).__name__}: "
                                  f"{str(exc)[:200]})") from None
        self.epoch, self.history = state["epoch"], History(state["history"])
        self.saved_epoch = self.epoch
        self._publish()  # the readable copies catch up with the checkpoint (they may lag after a kill)

    def _weights_meta(self) -> dict[str, str]:
        c = self.cfg
        return {"format": WEIGHTS_FORMAT, "zoo_version": __version__, "recipe": c["recipe"] or "",
                "dataset": c["dataset"], "model": c["model"], "loss": c["loss"]}

    # -- the loop ---------------------------------------------------------------------

    def run(self, epochs: int | None = None) -> Run:
        """Train up to ``epochs`` (the total), checkpointing as configured, then finish the run. The run
        directory's lock is released at the end, whatever happens."""
        try:
            return _on_own_stack(self._run, epochs)
        finally:
            self.close()

    def _run(self, epochs: int | None) -> Run:
        self.epochs = epochs = epochs or self.settings.epochs
        flag, proc = self.flag, self.procedure
        on_batch = self._batch_event()
        stopped_early = False
        t0 = time.perf_counter() - (self.history[-1]["time"] if self.history else 0.0)
        where = (f"{self.strategy.world_size} processes ({self.cfg['distributed']['backend']}, "
                 f"{self.strategy.device.type})" if self.strategy.world_size > 1 else str(self.strategy.device))
        data = (f"{split_len(self.splits.train)} train / {split_len(self.splits.val)} val samples"
                if self.splits.environment is None else f"environment of dataset '{self.cfg['dataset']}'")
        self.reporter.message(
            f"training {self.run_dir.name} on {where} ({data}, epochs {self.epoch + 1}-{epochs}) -> {self.run_dir}")
        threads_before = torch.get_num_threads()
        try:
            self._emit("on_fit_start")
            torch.set_num_threads(self.settings.threads)
            while self.epoch < epochs:
                if self._agreed_signal() is not None:  # asked to stop before this process trained an epoch
                    self._interrupted(epochs)
                if self.should_stop:
                    stopped_early = True
                    break
                self._emit("on_epoch_start", self.epoch + 1)
                try:
                    train = proc.train_epoch(self.epoch, on_batch)
                except NonFiniteLoss as exc:
                    kept = (f"; the last good checkpoint (epoch {self.saved_epoch}) is kept in {self.run_dir}"
                            if self.saved_epoch else "")
                    raise NonFiniteLoss(f"{exc}{kept}") from None
                self.epoch += 1
                val = proc.evaluate("val", fast=True)
                row = {"epoch": self.epoch, **train, **{f"val_{k}": v for k, v in val.items()},
                       **proc.learning_rates(), "time": round(time.perf_counter() - t0, 4)}
                self.history.append(row)
                self._emit("on_epoch_end", row)
                if self._agreed_signal() is not None:
                    if self.saved_epoch != self.epoch:
                        self.save_checkpoint()
                    self._interrupted(epochs)
            if self.saved_epoch != self.epoch:
                self.save_checkpoint()
            result = self.finish(stopped_early)
            self._emit("on_fit_end", result)
            self.strategy.barrier()  # every process leaves the group together, once the writer has saved
            return result
        except BaseException as exc:
            failure = self.strategy.explain(exc) if isinstance(exc, Exception) else None
            if failure is not None:
                exc = failure
            for cb in self.callbacks:
                try:
                    cb.on_exception(self, exc)
                except Exception as inner:  # noqa: BLE001 - never hide the error being reported
                    self.reporter.message(f"warning: callback {cb.state_key or type(cb).__name__} failed while the "
                                          f"run stopped: {type(inner).__name__}: {inner}")
            if isinstance(exc, TrainingAborted):
                kept = (f"the last complete checkpoint (epoch {self.saved_epoch}) is kept; resume with 'zoo train "
                        f"--resume {self.run_dir}'" if self.saved_epoch else "no epoch was saved")
                raise TrainingAborted(f"{exc}; {kept}", exc.signum) from None
            if failure is not None:
                raise failure from None
            raise
        finally:
            torch.set_num_threads(threads_before)
            self.reporter.close()
            self.strategy.teardown()

    def _agreed_signal(self) -> int | None:
        """The stop signal received (SIGINT/SIGTERM), agreed by every process (each stops at the same epoch,
        whichever of them the signal reached first, and with what it asked: an early stop too)."""
        if self.strategy.world_size == 1:
            return self.flag.signum
        signum, stop = self.strategy.agree([float(self.flag.signum or 0), float(self.should_stop)])
        if stop and not self.should_stop:
            self.stop(self.stop_reason or "another process asked to stop")
        if signum and self.flag.signum is None:
            self.flag.signum = int(signum)
        return int(signum) or None

    def _batch_event(self) -> Callable[[int, Any], None] | None:
        """What the procedure calls after each step: None when no callback implements ``on_batch_end`` (then
        a step costs nothing extra), else a function calling those that do."""
        batch_events = [cb for cb in self.callbacks if overrides(cb, "on_batch_end")]
        if not batch_events:
            return None

        def on_batch(batch: int, loss: Any) -> None:
            for cb in batch_events:
                cb.on_batch_end(self, batch, loss)

        return on_batch

    def _interrupted(self, epochs: int) -> None:
        name = signal.Signals(self.flag.signum).name
        if self.saved_epoch:
            where = f"stopped cleanly after epoch {self.saved_epoch}/{epochs}"
        else:
            where = "stopped before the first epoch ended, nothing to resume from"
        raise TrainingInterrupted(f"{name} received: {where}; resume with 'zoo train --resume {self.run_dir}'"
                                  if self.saved_epoch else f"{name} received: {where}", self.flag.signum)

    def finish(self, stopped_early: bool) -> Run:
        """Score the best epoch's weights on every split, save them, check they reload exactly, write the
        run's metrics, history and status."""
        cfg, dev = self.cfg, self.strategy.device
        final = self.model
        if self.best.weights is not None:
            final = copy.deepcopy(self.model)
            final.load_state_dict(self.best.weights)
        results = {split: self.procedure.evaluate(split, fast=False, model=final) for split in ("train", "val", "test")}
        best_epoch = self.best.epoch
        if self.is_writer:
            checkpoint.save_weights(final, self.files.weights, {**self._weights_meta(), "epoch": str(best_epoch)})
            reload_check(final, self.run_dir, self.combo, cfg,
                         raw_inputs(final, head_inputs(self.splits.test, RELOAD_CHECK_SAMPLES).to(dev)))
            write_json(self.files.metrics, {"best_epoch": best_epoch, "monitor": self.settings.monitor, **results})
            write_text(self.files.history, _history_csv(self.history))
        status = "stopped early" if stopped_early else "finished"
        run = Run(self.run_dir, cfg, self.history, results, final, status, best_epoch)
        self.status.finished(self, run)
        if self.flag.signum is not None:  # asked to stop while the run was saving its results: they are complete
            self.reporter.message(f"{signal.Signals(self.flag.signum).name} received while the results were being "
                                  "saved: the run finished first")
        if stopped_early:
            self.reporter.message(f"{self.stop_reason}; keeping epoch {best_epoch}")
        final.eval()
        return run


def _json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2) + "\n"


def fit(cfg: dict[str, Any], *, registry: Registry | None = None, out: str | Path | None = None,
        log: Callable[[str], None] | None = None, reporter: Reporter | None = None,
        callbacks: Iterable[Callback] = ()) -> Run:
    """Train the resolved config ``cfg`` (see :func:`zoo.config.resolve`) and save a run; ``callbacks`` are
    :class:`zoo.callbacks.Callback` objects called besides the run's own.

    SIGINT and SIGTERM are handled for the whole call: the first stops the run at its next
    safe point (before the run directory is made, or after the current epoch, checkpointed);
    a second stops it at once, once the file write in progress has completed.
    """
    if reporter is None:
        reporter = LineReporter(log) if log else Reporter()
    with _graceful_signals(_StopFlag()) as flag:
        return _on_own_stack(lambda: Trainer(cfg, None, registry=registry, reporter=reporter, out=out, flag=flag,
                                             callbacks=callbacks).run())


def resume(run_dir: str | Path, *, epochs: int | None = None, device: str | None = None,
           registry: Registry | None = None, reporter: Reporter | None = None,
           callbacks: Iterable[Callback] = ()) -> Run:
    """Continue a run in its own directory up to ``epochs`` in total (default: its planned total).

    The run's lock is taken first: a run another process is still training is refused. The
    newest complete checkpoint is restored (debris of an interrupted write is removed), so a
    run killed at any instant continues exactly as if it had not been interrupted, its callbacks
    included (``callbacks``: objects given to the first call, given again to continue their state).
    """
    from .config import strategy_for_launch
    from .launch import is_writer

    cfg = RunDir(run_dir).read_config(registry)
    if epochs is not None:
        cfg["epochs"] = TRAIN_PARAMS["epochs"].check("--epochs", epochs)
    if device is not None:
        cfg["device"] = device
    cfg.update(strategy_for_launch(cfg, registry))  # the processes it runs on now, not the ones it ran on
    lock = RunLock(run_dir).acquire("resume") if is_writer() else None
    try:
        with _graceful_signals(_StopFlag()) as flag:
            def go() -> Run:
                trainer = Trainer(cfg, Path(run_dir), registry=registry, reporter=reporter, lock=lock, flag=flag,
                                  callbacks=callbacks)
                trainer.restore_checkpoint()
                if trainer.epoch > trainer.settings.epochs:
                    raise UsageError(f"{run_dir} has already trained {trainer.epoch} epochs; --epochs is the total "
                                     f"and must be >= {trainer.epoch}")
                if trainer.is_writer:
                    trainer.files.write_config(trainer.cfg)
                return trainer.run()

            return _on_own_stack(go)
    finally:
        if lock is not None:
            lock.release()


def _history_csv(history: list[dict[str, float]]) -> str:
    if not history:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


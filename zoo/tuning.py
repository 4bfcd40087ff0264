"""Hyperparameter search on Optuna: ``zoo tune`` and :func:`zoo.tune`.

A study searches a recipe's settings and hyperparameters (any key ``zoo train --set`` takes).
Every trial is a real zoo run (``STUDY_DIR/trial-0007``: weights, config, history, metrics),
trained with a callback that reports the monitored validation figure to Optuna after each
epoch and stops the run when the pruner says so (the run is then "stopped early" and its
trial PRUNED). A trial's value is its run's best monitored validation figure (the value at the
best epoch, the one whose weights the run keeps); the direction follows the monitor (``val_loss``
is minimised, ``val_accuracy`` maximised, as the metric declares).

Space syntax, one ``--space KEY=DIST`` per dimension::

    lr=log(1e-4,1e-1)           log-uniform float (an int setting: log-uniform int)
    dropout=float(0,0.5)        uniform float; float(0,0.5,0.1) on a grid of 0.1
    batch_size=int(16,128)      uniform int (inclusive); int(16,128,16) with a step
    model.hidden=choice(32;64,64)   categorical: ';' separates the values (values may hold commas)

Every end and every choice is checked before the first trial by resolving the run config with
it, exactly as ``zoo train --set KEY=VALUE`` would (the parameter's declared type, bounds and
choices, and the checks across settings); a problem is one line naming the key and the value.

Without ``--space``, the space comes from the declarations (:func:`default_space`). Nothing here
imports optuna, torch or matplotlib at module level: ``zoo --help`` and ``zoo list`` stay fast.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .callbacks import Callback
from .errors import TrainingAborted, TrainingInterrupted, UsageError, ZooError, one_line
from .spec import Param, shown

INSTALL_HINT = "pip install 'zoo[tune]'"
PRUNERS = ("hyperband", "median", "none")
KINDS = ("log", "float", "int", "choice")
#: Keys a search may not vary: they define the problem or the objective, not the model.
NOT_SEARCHED = {"seed": "every trial trains with --seed, so that trials are compared on the same split",
                "monitor": "it is the objective; fix it with --set monitor=...",
                "device": "it does not change the model", "threads": "it does not change the model",
                "metrics": "it does not change the model"}
#: Seconds between a worker's heartbeats; a RUNNING trial without one for GRACE seconds (a killed worker)
#: is marked FAIL by the next worker that starts a trial, and its slot is trained again.
HEARTBEAT, GRACE = 20, 90
JOB_ENV = "ZOO_TUNE_JOB"
#: A worker gives up after this many trials in a row failed (a search that cannot train at all).
MAX_FAILS_IN_A_ROW = 5


class MissingOptuna(ZooError):
    """optuna is not installed."""


def require_optuna(who: str = "zoo tune"):
    try:
        import optuna
    except ImportError:
        raise MissingOptuna(f"{who} needs optuna, which is not installed: {INSTALL_HINT}") from None
    return optuna


# -- the search space ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched key: ``kind`` is ``log``, ``float``, ``int`` or ``choice``. ``int`` marks a numeric
    dimension over an integer parameter (``log`` over an int is a log-uniform int)."""

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple = ()
    integer: bool = False

    @property
    def text(self) -> str:
        """The dimension as ``--space`` spells it (``lr=log(0.001,0.1)``)."""
        if self.kind == "choice":
            return f"{self.key}=choice({';'.join(_fmt(c) for c in self.choices)})"
        args = [_fmt(self.low), _fmt(self.high)] + ([_fmt(self.step)] if self.step is not None else [])
        return f"{self.key}={self.kind}({','.join(args)})"

    def suggest(self, trial: Any) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1),
                                     log=self.kind == "log")
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step,
                                   log=self.kind == "log")


def _short(value: Any) -> str:
    """A value for people: floats to 4 significant digits (the exact values are in trials.csv)."""
    return f"{value:.4g}" if isinstance(value, float) else _fmt(value)


def _shown_path(path: Any) -> str:
    if not path:
        return "-"
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


_DIST = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$", re.S)


def parse_dimension(item: str) -> tuple[str, str, list[str]]:
    """``"lr=log(1e-4,1e-1)"`` -> ``("lr", "log", ["1e-4", "1e-1"])``; the shape only (values are checked
    against the parameter by :func:`build_space`)."""
    key, sep, dist = str(item).partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--space expects KEY=DIST such as lr=log(1e-4,1e-1), got {shown(item)}")
    m = _DIST.match(dist)
    if not m or m.group(1) not in KINDS:
        raise UsageError(f"--space {shown(item)}: write {key}=log(a,b), float(a,b), int(a,b) or choice(v1;v2;...)")
    kind, inner = m.group(1), m.group(2)
    if kind == "choice":
        args = [v.strip() for v in inner.split(";")]
        if not inner.strip() or not all(args):
            raise UsageError(f"--space {shown(item)}: choice needs values separated by ';' (an empty one was given)")
        if len(set(args)) != len(args):
            raise UsageError(f"--space {shown(item)}: a value is given twice")
    else:
        args = [v.strip() for v in inner.split(",")]
        if len(args) not in (2, 3) or not all(args) or (kind == "log" and len(args) != 2):
            form = "log(low,high)" if kind == "log" else f"{kind}(low,high) or {kind}(low,high,step)"
            raise UsageError(f"--space {shown(item)}: write {key}={form}")
    return key, kind, args


class Problem:
    """What a search is about: the run config every trial starts from (a recipe, a config document and
    fixed ``--set`` values), resolved as ``zoo train`` resolves it."""

    def __init__(self, recipe: str | None, base: Mapping[str, Any] | None, fixed: Mapping[str, Any],
                 seed: int, registry: Any = None) -> None:
        self.recipe, self.base, self.fixed, self.seed, self.registry = recipe, base, dict(fixed), seed, registry
        for key in self.fixed:
            bare = key.removeprefix("train.")
            if bare == "seed":
                raise UsageError("--set seed: every trial trains with --seed (which also seeds the sampler)")
        self.cfg = self.resolve({})

    def resolve(self, sampled: Mapping[str, Any]) -> dict[str, Any]:
        from .config import resolve

        return resolve(self.recipe, base=self.base, sets={**self.fixed, **sampled} or None, seed=self.seed,
                       registry=self.registry)

    def param(self, key: str) -> tuple[str, Param | None]:
        """The part a key belongs to (``train`` for a setting) and its declaration (None for a part's name:
        ``optimizer=choice(adam;sgd)``). An unknown key is the error ``zoo train --set`` gives."""
        from .config import entries_for
        from .kinds import PARTS
        from .settings import TRAIN_PARAMS

        head, dot, tail = key.partition(".")
        combo = entries_for(self.cfg, self.registry)
        if dot and head == "train":
            if tail in PARTS:
                return tail, None
            if tail in TRAIN_PARAMS:
                return "train", TRAIN_PARAMS[tail]
        elif dot and head in PARTS and tail in combo.part(head).spec.params:
            return head, combo.part(head).spec.params[tail]
        elif not dot:
            if key in PARTS:
                return key, None
            owners = [p for p in PARTS if key in combo.part(p).spec.params]
            if key in TRAIN_PARAMS:
                owners.append("train")
            if len(owners) == 1:
                part = owners[0]
                return part, TRAIN_PARAMS[key] if part == "train" else combo.part(part).spec.params[key]
        try:
            self.resolve({key: "0"})  # zoo train's own error for this key (unknown, ambiguous, no effect)
        except UsageError as exc:
            raise UsageError(f"--space {key}: {exc}") from None
        raise UsageError(f"--space {key}: not a key zoo train --set takes")

    def check(self, dim_text: str, key: str, value: Any, what: str) -> Any:
        """Resolve the config with ``key=value`` (as ``zoo train --set`` would) and return it; a problem is a
        UsageError naming the dimension and ``what`` was checked (``high end``, ``choice 64,64``)."""
        try:
            cfg = self.resolve({key: value})
        except UsageError as exc:
            raise UsageError(f"--space {dim_text}: {what}: {exc}") from None
        return cfg


def build_space(items: Iterable[str], problem: Problem) -> list[Dimension]:
    """``--space`` items -> dimensions, each end and choice checked against the parameter's declaration and
    the run's other settings (a one-line UsageError naming the key and the value)."""
    dims: list[Dimension] = []

    def identity(key: str) -> tuple[str, str]:  # dropout and model.dropout, lr and train.lr: the same key
        part, prm = problem.param(key)
        return (part, key.rpartition(".")[2]) if prm is not None else (part, "")

    fixed: dict[tuple[str, str], str] = {}
    for k in problem.fixed:
        try:
            fixed[identity(k)] = k
        except UsageError:
            fixed[("", k)] = k
    seen: dict[tuple[str, str], str] = {}
    for item in items:
        key, kind, args = parse_dimension(item)
        bare = key.removeprefix("train.")
        if bare in NOT_SEARCHED:
            raise UsageError(f"--space {shown(item)}: {bare} is not searched ({NOT_SEARCHED[bare]})")
        part, prm = problem.param(key)
        ident = identity(key)
        if ident in seen:
            raise UsageError(f"--space {key}: {seen[ident]} is given twice; give it once")
        if ident in fixed:
            raise UsageError(f"--space {key} and --set {fixed[ident]} both set it; give it once")
        seen[ident] = key
        text = item.strip()
        if kind == "choice":
            values = []
            for raw in args:
                problem.check(text, key, raw, f"choice {raw}")
                value = prm.check(key, raw) if prm is not None else raw
                if isinstance(value, tuple):
                    value = _fmt(value)  # optuna's choices are plain values: the list as --set spells it
                values.append(value)
            if len(set(map(str, values))) != len(values):
                raise UsageError(f"--space {text}: two choices are the same value")
            dims.append(Dimension(key, "choice", choices=tuple(values)))
            continue
        if prm is None or prm.type not in ("int", "float"):
            what = f"{'an' if prm.type[0] in 'aeiou' else 'a'} {prm.type}" if prm is not None else f"the {part}'s name"
            raise UsageError(f"--space {text}: {key} is {what}; search it with {key}=choice(v1;v2;...)")
        integer = prm.type == "int"
        nums = []
        for name, raw in zip(("low", "high", "step"), args):
            try:
                num = float(raw)
            except ValueError:
                raise UsageError(f"--space {text}: {name} end {shown(raw)} is not a number") from None
            if not math.isfinite(num):
                raise UsageError(f"--space {text}: {name} {shown(raw)} is not a finite number")
            if integer and not num.is_integer():
                raise UsageError(f"--space {text}: {key} is an integer setting; {name} {shown(raw)} is not whole")
            nums.append(int(num) if integer else num)
        low, high = nums[0], nums[1]
        step = nums[2] if len(nums) > 2 else None
        if not low < high:
            raise UsageError(f"--space {text}: low {_fmt(low)} must be below high {_fmt(high)}")
        if kind == "log" and low <= 0:
            raise UsageError(f"--space {text}: a log range needs low > 0, not {_fmt(low)}")
        if step is not None and (step <= 0 or step > high - low):
            raise UsageError(f"--space {text}: step {_fmt(step)} must be > 0 and at most high - low")
        if kind == "int" and not integer:
            raise UsageError(f"--space {text}: {key} is a float; search it with float(a,b) or log(a,b)")
        for name, value in (("low", low), ("high", high)):
            problem.check(text, key, value, f"{name} end")
        dims.append(Dimension(key, kind, low, high, step, integer=integer))
    return dims


# -- the default space ------------------------------------------------------------------------------


def default_space(problem: Problem) -> list[Dimension]:
    """The space searched without ``--space``, from the declarations of the run's parts and the recipe's
    values (``v``), each dimension kept only when its ends resolve:

    - ``lr``: log-uniform over [v/10, 10 v] (within the setting's bounds);
    - ``batch_size``: a choice of v/4, v/2, v, 2 v, 4 v (whole, at least 1, within bounds);
    - the optimizer's ``weight_decay`` (when it declares one): log-uniform over [1e-6, max(0.1, 10 v)];
    - every model hyperparameter with declared ``choices``: a choice of them all; a ``bool``: true or false;
    - every model ``int``/``float`` hyperparameter with both bounds declared: uniform over them (an
      exclusive end moved in by 1% of the range);
    - every model ``int-list`` (layer sizes): a choice of the recipe's list with every size halved, kept
      and doubled, and, when all its sizes are equal, with one layer fewer (if any remain) and one more.

    Not searched: the dataset's and the loss's parameters (they define the problem and the validation
    loss), the schedule's, ``epochs`` (the pruner spends the budget), keys fixed with ``--set``, and
    parameters that require another (``nesterov``). Use ``--space`` for anything else.
    """
    cfg = problem.cfg
    from .config import entries_for
    from .settings import TRAIN_PARAMS

    combo = entries_for(cfg, problem.registry)
    fixed = {k.removeprefix("train.") for k in problem.fixed} | set(problem.fixed)
    dims: list[Dimension] = []

    lr = float(cfg["lr"])
    lo, hi = _within(TRAIN_PARAMS["lr"], lr / 10, lr * 10)
    dims.append(Dimension("lr", "log", lo, hi))
    bs = int(cfg["batch_size"])
    sizes = sorted({max(1, round(bs * 2.0 ** k)) for k in (-2, -1, 0, 1, 2)})
    sizes = [s for s in sizes if _ok(TRAIN_PARAMS["batch_size"], s)]
    if len(sizes) > 1:
        dims.append(Dimension("batch_size", "choice", choices=tuple(sizes)))
    opt = combo.optimizer.spec.params
    if "weight_decay" in opt:
        wd = float(cfg["optimizer_params"].get("weight_decay") or 0.0)
        lo, hi = _within(opt["weight_decay"], 1e-6, max(0.1, wd * 10))
        if lo > 0 and lo < hi:
            dims.append(Dimension("optimizer.weight_decay", "log", lo, hi))
    for name, prm in combo.model.spec.params.items():
        key = f"model.{name}"
        value = cfg["model_params"].get(name)
        if prm.requires:
            continue
        if prm.choices is not None and len(prm.choices) > 1:
            dims.append(Dimension(key, "choice", choices=tuple(prm.choices)))
        elif prm.type == "bool":
            dims.append(Dimension(key, "choice", choices=(False, True)))
        elif prm.type in ("int", "float") and prm.min is not None and prm.max is not None:
            lo, hi = float(prm.min), float(prm.max)
            width = hi - lo
            lo, hi = lo + (0.01 * width if prm.min_exclusive else 0), hi - (0.01 * width if prm.max_exclusive else 0)
            if prm.type == "int":
                lo, hi = math.ceil(lo), math.floor(hi)
                if lo < hi:
                    dims.append(Dimension(key, "int", lo, hi, integer=True))
            elif lo < hi:
                dims.append(Dimension(key, "float", lo, hi))
        elif prm.type == "int-list" and value:
            dims.append(Dimension(key, "choice", choices=tuple(_fmt(v) for v in _layer_variants(tuple(value), prm))))
    dims = [d for d in dims if d.key not in fixed and d.key.split(".", 1)[-1] not in fixed
            and not (d.kind == "choice" and len(d.choices) < 2)]
    out = []
    for d in dims:  # keep what resolves at its ends (a model whose declarations allow less than the rule)
        try:
            for value in (d.choices if d.kind == "choice" else (d.low, d.high)):
                problem.resolve({d.key: value})
        except UsageError:
            continue
        out.append(d)
    return out


def _within(prm: Param, lo: float, hi: float) -> tuple[float, float]:
    if prm.min is not None:
        lo = max(lo, prm.min * (1.0001 if prm.min_exclusive and prm.min > 0 else 1.0))
    if prm.max is not None:
        hi = min(hi, prm.max * (0.9999 if prm.max_exclusive else 1.0))
    return float(f"{lo:.6g}"), float(f"{hi:.6g}")


def _ok(prm: Param, value: Any) -> bool:
    try:
        prm.check("value", value)
    except UsageError:
        return False
    return True


def _layer_variants(sizes: tuple[int, ...], prm: Param) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = []
    uniform = len(set(sizes)) == 1
    for factor in (0.5, 1.0, 2.0):
        scaled = tuple(max(1, round(s * factor)) for s in sizes)
        shapes = [scaled]
        if uniform:
            shapes = ([scaled[:-1]] if len(scaled) > 1 else []) + [scaled, scaled + scaled[-1:]]
        out += [s for s in shapes if s not in out and _ok(prm, s)]
    return out


# -- the objective ------------------------------------------------------------------------------------


class OptunaPruning(Callback):
    """Reports the monitored validation figure to an Optuna trial after every epoch
    (``trial.report(value, epoch)``) and stops the run after an epoch its pruner judges unpromising
    (``trial.should_prune()``): the run ends "stopped early", its directory complete, and ``pruned_at``
    says after which epoch (the objective then marks the trial PRUNED)."""

    state_key = "optuna_pruning"

    def __init__(self, trial: Any, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor
        self.pruned_at: int | None = None

    def on_epoch_end(self, trainer: Any, row: dict[str, float]) -> None:
        value, epoch = float(row[self.monitor]), int(row["epoch"])
        if not math.isfinite(value):
            return
        self.trial.report(value, epoch)
        if self.pruned_at is None and self.trial.should_prune():
            self.pruned_at = epoch
            trainer.stop(f"pruned by the Optuna study after epoch {epoch} ({self.monitor} {value:.4g})")


class _SlotLock:
    """An exclusive ``flock`` on a file of the study directory, held by a worker from counting the study's
    trials until its new trial exists, so that two workers of one machine never both take the last slot
    (workers on other machines may, rarely: the later trial then sees it is surplus and does not train)."""

    def __init__(self, path: Path) -> None:
        self.path, self.fd = path, None

    def acquire(self) -> None:
        import fcntl

        if self.fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)  # closing the descriptor drops the lock


class TrialFailed(Exception):
    """A trial that could not train (its error is in the trial's user attributes); the search goes on."""


class _Surplus(Exception):
    """Another worker took the study's last slot at the same moment: this trial does not train."""


@dataclasses.dataclass
class Job:
    """Everything a worker needs (JSON: it travels to worker processes)."""

    recipe: str | None
    base: dict | None
    fixed: dict
    space: list[str]
    study: str
    storage: str
    dir: str
    trials: int
    pruner: str
    seed: int
    monitor: str
    minimize: bool
    epochs: int
    quiet: bool = False

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls(**json.loads(text))


def _storage(url: str):
    """Optuna's RDB storage: SQLite waits for a lock up to 60 s (a few local workers share one file); a
    heartbeat lets a killed worker's trial be marked FAIL (and its slot trained again)."""
    import warnings

    optuna = require_optuna()
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}
    else:
        kwargs["pool_pre_ping"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT,
                                              grace_period=GRACE)
        except ImportError as exc:
            raise ZooError(f"--storage {_hide_password(url)}: its database driver is not installed ({exc}); "
                           "PostgreSQL needs psycopg2 (pip install psycopg2-binary), MySQL needs PyMySQL "
                           "(pip install PyMySQL)") from None
        except Exception as exc:  # noqa: BLE001 - a bad URL, a database that cannot be reached
            raise ZooError(f"--storage {_hide_password(url)}: {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:300]}") from None


def _hide_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def _pruner(job: Job):
    optuna = require_optuna()
    if job.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, job.epochs // 10))
    if job.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, job.epochs // 10), max_resource=job.epochs,
                                              reduction_factor=3)
    return optuna.pruners.NopPruner()


def _sampler(job: Job, worker: int, existing: int):
    """TPE, seeded with ``--seed`` in a new study's first (or only) worker; any other worker, or a worker
    joining a study that already has ``existing`` trials, gets a seed derived from all three, so that it
    does not repeat the random start-up draws of the workers before it."""
    optuna = require_optuna()
    seed = job.seed
    if worker or existing:
        import numpy as np

        seed = int(np.random.SeedSequence([job.seed, worker, existing]).generate_state(1)[0])
    # constant_liar: workers sharing a study do not propose what a running trial already tries
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _quiet_optuna() -> None:
    import warnings

    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # zoo reports each trial itself, without tracebacks
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _counts(study: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def work(job: Job, worker: int = 0, log: Callable[[str], None] | None = None) -> None:
    """Train trials of the study until it holds ``job.trials`` complete and pruned trials (one worker;
    several run this against the same storage)."""
    optuna = require_optuna()
    from . import engine
    from .configfile import to_document
    from .progress import Reporter

    _quiet_optuna()
    log = log or (lambda text: None)
    storage = _storage(job.storage)
    existing = len(optuna.load_study(study_name=job.study, storage=storage).get_trials(deepcopy=False))
    study = optuna.load_study(study_name=job.study, storage=storage, sampler=_sampler(job, worker, existing),
                              pruner=_pruner(job))
    study.set_user_attr(f"worker:{socket.gethostname()}:{os.getpid()}",  # who worked on the study, and when
                        {"worker": worker, "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    problem = Problem(job.recipe, job.base, job.fixed, job.seed)
    dims = build_space(job.space, problem)
    run_root = Path(job.dir)
    fails = 0
    outcome: dict[str, str] = {}
    active = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING,
              optuna.trial.TrialState.WAITING)

    slot = _SlotLock(Path(job.dir) / ".slots.lock")

    def objective(trial: Any) -> float:
        slot.release()  # the trial exists: other workers of this machine may count it now
        earlier = [t for t in study.get_trials(deepcopy=False, states=active) if t.number < trial.number]
        if len(earlier) >= job.trials:
            trial.set_user_attr("zoo_surplus", True)
            raise _Surplus()
        sampled = {d.key: d.suggest(trial) for d in dims}
        out = run_root / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(out.resolve()))
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("worker", worker)
        shown_params = " ".join(f"{k}={_short(v)}" for k, v in sampled.items())
        try:
            cfg = problem.resolve(sampled)
            trial.set_user_attr("config", json.loads(json.dumps(to_document(cfg))))
            trial.set_user_attr("planned_epochs", int(cfg["epochs"]))
            pruning = OptunaPruning(trial, job.monitor)
            run = engine.fit(cfg, out=out, reporter=Reporter(), callbacks=[pruning])
        except (TrainingInterrupted, TrainingAborted, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - one trial's failure (a diverged run) is recorded, not fatal
            message = one_line(f"{type(exc).__name__}: {exc}" if not isinstance(exc, ZooError) else exc, 300)
            trial.set_user_attr("error", message)
            outcome["failed"] = message
            log(f"trial {trial.number} failed: {message} [{shown_params}]")
            raise TrialFailed(message) from None
        epochs = len(run.history)
        best = run.best_epoch
        value = float(run.history[best - 1][job.monitor]) if best else float("nan")
        trial.set_user_attr("epochs", epochs)
        trial.set_user_attr("best_epoch", best)
        trial.set_user_attr("value", value)
        trial.set_user_attr("status", run.status)
        trial.set_user_attr("val", {k: float(v) for k, v in run.metrics["val"].items()})
        state = f"pruned after epoch {pruning.pruned_at}" if pruning.pruned_at else "complete"
        log(f"trial {trial.number} {state}: {job.monitor} {value:.5g} (best epoch {best} of {epochs}) "
            f"[{shown_params}] -> {_shown_path(out)}")
        if not math.isfinite(value):
            trial.set_user_attr("error", f"{job.monitor} is not finite")
            outcome["failed"] = f"{job.monitor} is not finite"
            raise TrialFailed(f"{job.monitor} is not finite")
        if pruning.pruned_at is not None:
            raise optuna.TrialPruned(f"after epoch {pruning.pruned_at}")
        return value

    waiting_since: float | None = None
    while True:
        slot.acquire()  # counting and taking a slot is one step for the workers of this machine
        try:
            counts = _counts(study)
            done = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
            running = counts.get("RUNNING", 0) + counts.get("WAITING", 0)
            if done >= job.trials:
                return
            if done + running >= job.trials:  # the last trials run elsewhere: wait for them
                slot.release()
                if waiting_since is None:
                    waiting_since = time.monotonic()
                elif waiting_since > 0 and time.monotonic() - waiting_since > 30:
                    log(f"waiting for {running} trial{'s' if running != 1 else ''} running elsewhere (a killed "
                        f"worker's trial is marked failed after {GRACE} s without a heartbeat, and trained again)")
                    waiting_since = -1.0
                time.sleep(1.0)
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
                continue
            waiting_since = None
            outcome.clear()
            study.optimize(objective, n_trials=1, catch=(TrialFailed, _Surplus))
        except (TrainingInterrupted, TrainingAborted) as exc:
            name = signal.Signals(exc.signum).name
            raise type(exc)(f"{name} received: the study stopped (the trial in progress is marked failed; its slot "
                            "is trained again when the study resumes); run the same command to resume it",
                            exc.signum) from None
        finally:
            slot.release()
        fails = fails + 1 if outcome.get("failed") else 0
        if fails >= MAX_FAILS_IN_A_ROW:
            raise ZooError(f"{fails} trials in a row failed; the last: {outcome['failed']}")


# -- the study ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TrialRow:
    """One trial as the report shows it."""

    number: int
    state: str
    value: float | None
    epochs: int | None
    best_epoch: int | None
    params: dict[str, Any]
    run_dir: str | None
    host: str | None = None
    error: str | None = None


@dataclasses.dataclass
class StudySummary:
    """What :func:`tune` returns (and ``summary.json`` holds): the study, its trials (by number), the best
    one, the total epochs trained and the files written."""

    study: str
    storage: str
    dir: Path
    recipe: str | None
    monitor: str
    direction: str
    pruner: str
    space: list[str]
    trials: list[TrialRow]
    best: TrialRow | None
    counts: dict[str, int]
    epochs_trained: int
    epochs_planned: int
    files: dict[str, Path]
    seconds: float = 0.0

    def top(self, n: int = 10) -> list[TrialRow]:
        """The ``n`` best complete trials, best first."""
        done = [t for t in self.trials if t.state == "COMPLETE" and t.value is not None]
        return sorted(done, key=lambda t: (t.value if self.direction == "minimize" else -t.value, t.number))[:n]

    @property
    def best_config(self) -> Path | None:
        return self.files.get("best_config")

    @property
    def best_params(self) -> dict[str, Any] | None:
        return None if self.best is None else dict(self.best.params)

    @property
    def best_value(self) -> float | None:
        return None if self.best is None else self.best.value

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["dir"] = str(self.dir)
        d["files"] = {k: str(v) for k, v in self.files.items()}
        return d

    def table(self, n: int = 10, max_width: int = 100) -> str:
        from .tables import format_table

        rows = [(i, t.number, f"{t.value:.5g}", f"{t.best_epoch}/{t.epochs}",
                 " ".join(f"{k}={_short(v)}" for k, v in t.params.items()), _shown_path(t.run_dir))
                for i, t in enumerate(self.top(n), 1)]
        head = ("#", "TRIAL", self.monitor.upper(), "BEST/EPOCHS", "PARAMS", "RUN")
        return format_table(head, rows, align=">>>><<", max_width=max_width, shrink=(4, 5))

    def counts_line(self) -> str:
        n = sum(self.counts.get(s, 0) for s in ("COMPLETE", "PRUNED"))
        parts = [f"{self.counts[s]} {word}" for s, word in (("COMPLETE", "complete"), ("PRUNED", "pruned"),
                                                               ("FAIL", "failed")) if self.counts.get(s)]
        saved = (f"; pruning saved {1 - self.epochs_trained / self.epochs_planned:.0%} of the "
                 f"{self.epochs_planned} planned" if self.epochs_planned and self.pruner != "none" else "")
        return (f"study '{self.study}': {n} trials ({', '.join(parts) or 'none yet'}); "
                f"{self.epochs_trained} epochs trained{saved}")


def _rows(study: Any) -> list[TrialRow]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("zoo_surplus"):
            continue
        value = t.value if t.state.name == "COMPLETE" else t.user_attrs.get("value")
        rows.append(TrialRow(t.number, t.state.name, value, t.user_attrs.get("epochs"), t.user_attrs.get("best_epoch"),
                             dict(t.params), t.user_attrs.get("run_dir"), t.user_attrs.get("host"),
                             t.user_attrs.get("error")))
    return rows


def summarize(job: Job, write: bool = True, plots: bool = True, warn: Callable[[str], None] | None = None,
              seconds: float = 0.0) -> StudySummary:
    """Read the study back and write its outputs into the study directory: ``best.toml`` (the best trial's
    config: ``zoo train --config best.toml`` re-trains it), ``trials.csv``, ``summary.json`` and the
    pictures ``history.png``, ``importances.png`` and ``intermediate.png``."""
    optuna = require_optuna()
    from .configfile import dump
    from .files import write_json, write_text

    _quiet_optuna()
    warn = warn or (lambda text: None)
    study = optuna.load_study(study_name=job.study, storage=_storage(job.storage))
    rows = _rows(study)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    complete = [r for r in rows if r.state == "COMPLETE"]
    best = None
    if complete:
        bt = study.best_trial
        best = next(r for r in rows if r.number == bt.number)
    trained = sum(r.epochs or 0 for r in rows if r.state in ("COMPLETE", "PRUNED"))
    planned = sum(t.user_attrs.get("planned_epochs", job.epochs) for t in study.get_trials(deepcopy=False)
                  if t.state.name in ("COMPLETE", "PRUNED") and not t.user_attrs.get("zoo_surplus"))
    root = Path(job.dir)
    files: dict[str, Path] = {}
    summary = StudySummary(job.study, _hide_password(job.storage), root, job.recipe, job.monitor,
                           "minimize" if job.minimize else "maximize", job.pruner, list(job.space), rows, best,
                           counts, trained, planned, files, round(seconds, 1))
    if not write:
        return summary
    root.mkdir(parents=True, exist_ok=True)
    if best is not None:
        doc = study.best_trial.user_attrs.get("config")
        if doc:
            head = (f"# zoo tune: study '{job.study}', trial {best.number}: {job.monitor} {best.value:.6g} "
                    f"(best of {counts.get('COMPLETE', 0)} complete trials, {summary.direction})\n"
                    f"# re-train it: zoo train --config {root / 'best.toml'}\n")
            files["best_config"] = root / "best.toml"
            write_text(files["best_config"], head + dump(doc, "toml"))
    files["trials"] = root / "trials.csv"
    write_text(files["trials"], _trials_csv(rows))
    if plots:
        files.update(_plots(study, root, job, warn))
    files["summary"] = root / "summary.json"
    write_json(files["summary"], summary.to_json())
    return summary


def _trials_csv(rows: list[TrialRow]) -> str:
    import csv
    import io

    keys = sorted({k for r in rows for k in r.params})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["number", "state", "value", "epochs", "best_epoch", *keys, "run_dir", "host", "error"])
    for r in rows:
        w.writerow([r.number, r.state.lower(), "" if r.value is None else repr(float(r.value)), r.epochs or "",
                    r.best_epoch or "", *(_fmt(r.params[k]) if k in r.params else "" for k in keys), r.run_dir or "",
                    r.host or "", r.error or ""])
    return buf.getvalue()


def _plots(study: Any, root: Path, job: Job, warn: Callable[[str], None]) -> dict[str, Path]:
    """Optuna's matplotlib pictures; each one that cannot be drawn is a one-line warning."""
    try:
        import matplotlib
        import matplotlib.pyplot as plt
    except ImportError:
        warn(f"no pictures: matplotlib is not installed ({INSTALL_HINT})")
        return {}
    import warnings

    from .files import atomic_path

    optuna = require_optuna()
    import optuna.visualization.matplotlib as ovm

    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    out = {}
    pictures = [("history", "history.png", lambda: ovm.plot_optimization_history(study, target_name=job.monitor)),
                ("intermediate", "intermediate.png", lambda: ovm.plot_intermediate_values(study)),
                ("importances", "importances.png", lambda: ovm.plot_param_importances(
                    study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=job.seed),
                    target_name=job.monitor))]
    for name, filename, draw in pictures:
        if name == "importances" and (len(done) < 2 or not any(t.params for t in done)):
            warn(f"no {filename}: parameter importances need at least 2 complete trials ({len(done)} so far)")
            continue
        try:
            # Optuna's functions set a global style (ggplot): keep it to these pictures
            with matplotlib.rc_context(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = draw()
                fig = ax.figure if not hasattr(ax, "flat") else ax.flat[0].figure
                try:
                    with atomic_path(root / filename) as tmp:
                        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
                finally:
                    plt.close(fig)
            out[name] = root / filename
        except ZooError:
            raise
        except Exception as exc:  # noqa: BLE001 - a picture that fails is a warning, never a failed search
            warn(f"no {filename}: {one_line(f'{type(exc).__name__}: {exc}', 200)}")
    return out


# -- starting a search -----------------------------------------------------------------------------------


def prepare(recipe: str | None = None, *, config: Mapping[str, Any] | None = None, trials: int = 50,
            space: Iterable[str] | Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None,
            storage: str | None = None, study: str | None = None, dir: str | Path | None = None,  # noqa: A002
            pruner: str = "hyperband", seed: int = 0, quiet: bool = False,
            **settings: Any) -> tuple[Job, list[Dimension]]:
    """Check everything (before any trial): the base config, the space, the storage and the study (created, or
    loaded and checked to be the same search). Returns the job and its dimensions."""
    from .rundir import default_root

    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= 1_000_000:
        raise UsageError(f"--trials {shown(trials)}: the study's total must be a whole number from 1 to 1000000")
    if pruner not in PRUNERS:
        raise UsageError(f"--pruner {shown(pruner)}: choose {', '.join(PRUNERS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1:
        raise UsageError(f"--seed {shown(seed)}: a whole number from 0 to 4294967295")
    if recipe is None and not config:
        raise UsageError("give a recipe to tune (zoo list recipes), or --config FILE")
    fixed = dict(params or {})
    for key, value in settings.items():
        if value is None:
            continue
        if key in fixed:
            raise UsageError(f"{key} is given twice; give it once")
        fixed[key] = value
    if isinstance(space, Mapping):
        space = [f"{k}={v}" for k, v in space.items()]
    items = [str(s) for s in (space or [])]
    problem = Problem(recipe, dict(config) if config else None, fixed, seed)
    dims = build_space(items, problem) if items else default_space(problem)
    if not dims:
        raise UsageError("the search space is empty: give --space KEY=DIST (see zoo tune --help)")
    from .config import minimize

    cfg = problem.cfg
    name = study or f"{cfg.get('recipe') or cfg['dataset'] + '-' + cfg['model']}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        raise UsageError(f"--study {shown(name)}: letters, digits, '.', '_' and '-' only (at most 100)")
    root = Path(dir) if dir is not None else default_root() / f"tune-{name}"
    storage = storage or f"sqlite:///{(root / 'study.db').absolute()}"
    job = Job(recipe=recipe, base=dict(config) if config else None, fixed=_jsonable(fixed),
              space=[d.text for d in dims], study=name, storage=storage, dir=str(root.absolute()), trials=trials,
              pruner=pruner, seed=seed, monitor=cfg["monitor"], minimize=minimize(cfg["monitor"]),
              epochs=int(cfg["epochs"]), quiet=quiet)
    return job, dims


def _jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def open_study(job: Job, note: Callable[[str], None] | None = None) -> Any:
    """Create the study (or load it and check it is this search); make the study directory."""
    optuna = require_optuna()
    _quiet_optuna()
    root = Path(job.dir)
    if root.exists() and not root.is_dir():
        raise UsageError(f"--dir {root}: not a directory")
    identity = {"recipe": job.recipe, "base": job.base, "fixed": job.fixed, "space": job.space, "seed": job.seed,
                "monitor": job.monitor}
    if job.storage.startswith("sqlite:///"):  # the default storage lives in the study directory
        Path(job.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    storage = _storage(job.storage)
    root.mkdir(parents=True, exist_ok=True)
    try:
        existing = optuna.load_study(study_name=job.study, storage=storage)
    except KeyError:
        existing = None
    if existing is None:
        leftovers = sorted(p.name for p in root.glob("trial-*"))
        if leftovers:
            raise UsageError(f"{root} holds trial directories ({leftovers[0]}, ...) but storage "
                             f"{_hide_password(job.storage)} has no study '{job.study}': remove them, or give "
                             "another --dir or the storage that holds them")
        study = optuna.create_study(study_name=job.study, storage=storage, load_if_exists=True,
                                    direction="minimize" if job.minimize else "maximize")
        if "zoo" not in study.user_attrs:
            study.set_user_attr("zoo", identity)
        return study
    stored = existing.user_attrs.get("zoo")
    if stored is None:
        raise UsageError(f"study '{job.study}' in {_hide_password(job.storage)} was not made by zoo tune; give "
                         "another --study")
    for key, value in identity.items():
        if stored.get(key) != value:
            raise UsageError(f"study '{job.study}' was made with {key} {_show_identity(stored.get(key))}, not "
                             f"{_show_identity(value)}: resume it with the same recipe, --set, --space and --seed, "
                             "or give another --study")
    if note is not None:
        c = _counts(existing)
        done = c.get("COMPLETE", 0) + c.get("PRUNED", 0)
        left = max(0, job.trials - done)
        running = c.get("RUNNING", 0)
        also = (f" ({running} marked running: another worker's, or a killed one's, which is marked failed "
                f"{GRACE} s after its last heartbeat and trained again)" if running else "")
        note(f"resuming study '{job.study}': {done} trials done, {left} to go for a total of {job.trials}{also}")
    return existing


def _show_identity(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return shown(value, 200)


def run_workers(job: Job, jobs: int, log: Callable[[str], None]) -> None:
    """Train the study's remaining trials: in this process (``jobs == 1``) or in ``jobs`` worker processes
    of this machine sharing the storage."""
    if jobs <= 1:
        work(job, 0, log)
        return
    env = {**os.environ, JOB_ENV: job.to_json(), "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen] = []

    def forward(signum: int, frame: Any) -> None:  # SIGTERM to this process: the workers stop after their epoch
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        for i in range(jobs):
            procs.append(subprocess.Popen([sys.executable, "-m", "zoo.tuning", str(i)], env=env))
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:  # Ctrl-C reached the workers too (one process group): each stops after its epoch
            p.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    stopped = [c for c in codes if c in (128 + signal.SIGINT, 128 + signal.SIGTERM)]
    if stopped:
        error = ZooError("the worker processes were stopped by a signal: the study stopped (a trial in progress is "
                         "marked failed and trained again); run the same command to resume it")
        error.exit_code = stopped[0]
        raise error
    bad = [(i, c) for i, c in enumerate(codes) if c != 0]
    if bad:
        raise ZooError(f"{len(bad)} of {jobs} worker processes failed ("
                       f"{', '.join(f'worker {i}: exit {c}' for i, c in bad)}; their errors are above); run the same "
                       "command again to resume the study")


def tune(recipe: str | None = None, *, trials: int = 50, space: Iterable[str] | Mapping[str, str] | None = None,
         params: Mapping[str, Any] | None = None, config: Mapping[str, Any] | str | Path | None = None,
         storage: str | None = None, study: str | None = None, dir: str | Path | None = None,  # noqa: A002
         jobs: int = 1, pruner: str = "hyperband", seed: int = 0, plots: bool = True, quiet: bool = False,
         **settings: Any) -> StudySummary:
    """Search a recipe's settings with Optuna; every trial is a zoo run in ``dir`` (default
    ``runs/tune-STUDY``). Returns the :class:`StudySummary` (best trial, its config file, all trials).

    ``space``: ``["lr=log(1e-4,1e-1)", "model.hidden=choice(32;64,64)"]`` or ``{"lr": "log(1e-4,1e-1)"}``
    (default: :func:`default_space`); ``params`` and ``settings`` fix values for every trial, as
    ``zoo.train`` takes them (``params={"dataset.n_samples": 500}``, ``epochs=5``). ``trials`` is the study's
    total of complete and pruned trials: a study that already has some (same ``study`` and ``storage``)
    resumes and trains only the rest. ``storage``: an Optuna database URL (default ``sqlite:///DIR/study.db``;
    PostgreSQL or MySQL for several machines). ``jobs``: worker processes on this machine. ``pruner``:
    ``hyperband`` (default: Optuna's advice with its TPE sampler), ``median`` or ``none``; ``seed`` seeds the
    TPE sampler and is every trial's training seed.
    """
    t0 = time.perf_counter()
    say = (lambda text: None) if quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= 256:
        raise UsageError(f"--jobs {shown(jobs)}: a whole number from 1 to 256")
    if isinstance(config, (str, Path)):
        from .configfile import load

        config = load(str(config))
    job, _ = prepare(recipe, config=config, trials=trials, space=space, params=params, storage=storage,
                     study=study, dir=dir, pruner=pruner, seed=seed, quiet=quiet, **settings)
    optuna = require_optuna()
    import warnings

    verbosity = optuna.logging.get_verbosity()
    try:  # the caller's Optuna logging and warning filters are theirs: restored after
        with warnings.catch_warnings():
            open_study(job, note=None if quiet else (lambda text: say(f"note: {text}")))
            run_workers(job, jobs, say)
            return summarize(job, plots=plots, warn=lambda text: say(f"warning: {text}"),
                             seconds=time.perf_counter() - t0)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _worker_main() -> int:
    """``python -m zoo.tuning WORKER`` with the job in ``ZOO_TUNE_JOB``: one worker process of ``--jobs N``."""
    worker = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    job = Job.from_json(os.environ[JOB_ENV])
    say = (lambda text: None) if job.quiet else (lambda text: print(f"[worker {worker}] {text}", file=sys.stderr,
                                                                     flush=True))
    try:
        work(job, worker, say)
    except ZooError as exc:
        print(f"error: [worker {worker}] {one_line(exc, 2000)}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - as the zoo command does: one line, the traceback on demand
        if os.environ.get("ZOO_DEBUG", "").strip().lower() in ("1", "true", "yes", "on"):
            raise
        print(f"error: [worker {worker}] unexpected {type(exc).__name__}: {one_line(exc, 500)}; this is a bug in zoo "
              "or in a plugin: run again with ZOO_DEBUG=1 for the traceback, and please report it", file=sys.stderr,
              flush=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - a worker process
    sys.exit(_worker_main())

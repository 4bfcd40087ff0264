"""Training procedures: what one training step is.

A procedure is a plugin kind (``zoo_procedures``). The trainer builds the run's parts (the
data, the :class:`~zoo.parts.RunModel` whose weights the run saves, the strategy), then
calls the procedure's factory with a :class:`RunContext`; the procedure builds what its step
needs (optimizers, schedules, a loss, further models) and the trainer drives it:

- ``train_epoch(epoch, on_batch)``: one pass of training; returns the epoch's training
  figures (``{"train_loss": ...}``), calling ``on_batch(batch, loss)`` after every step when
  it is not None;
- ``learning_rates()``: the history's learning-rate columns (``{"lr": ...}``);
- ``evaluate(split, fast, model=None)``: ``{"loss": ..., metric: ...}`` on ``"train"``,
  ``"val"`` or ``"test"`` (``model``: other weights to score, such as the best epoch's);
- ``state_dict()`` / ``load_state_dict()``: everything a resume needs beyond the model's
  weights and the trainer's random generators (optimizer and schedule states, further
  models), as JSON values and tensors;
- ``probe()``: a quick check, before the run directory is made, that the parts fit.

The supervised procedure (``zoo_training.supervised``) is forward, loss, backward and an
optimizer step per batch; a GAN would own two models and two optimizers, a deep-Q learner
an environment and a replay buffer instead of batches of a dataset. :class:`Procedure`
holds what they share: building optimizers and schedules from the run's chosen parts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .config import Combination
from .data import Splits
from .errors import ZooError
from .evaluation import MetricSet
from .parts import RunModel


def backward(loss: torch.Tensor) -> None:
    """``loss.backward()`` for a scalar loss, straight into the autograd engine.

    ``Tensor.backward`` spends a small model's step in Python before the engine starts: the
    override checks, argument normalisation, validating and building the seed gradient, and
    keeping the caller's context for the engine's device threads. For a plain scalar tensor
    on the CPU (whose backward runs on the calling thread) those decide nothing, so the
    call goes to the engine with the seed gradient ``torch.autograd.backward`` would make
    (ones): the gradients are the same bits. On another device the call keeps the context
    (torch's own ``_engine_run_backward``); anything else (a tensor subclass, a non-scalar,
    autograd's debug logging on) takes the public path, as does every call when torch lacks
    these functions."""
    if type(loss) is torch.Tensor and loss.dim() == 0 and _engine is not None \
            and not _autograd_log.isEnabledFor(logging.DEBUG):
        run = _engine.run_backward if loss.device.type == "cpu" else _run_backward
        run((loss,), (torch.ones_like(loss),), False, False, (), allow_unreachable=True, accumulate_grad=True)
    else:
        loss.backward()


try:  # torch >= 2.3 (zoo's floor) has them; the fallbacks keep zoo working if they move
    from torch.autograd.graph import _engine_run_backward as _run_backward
    from torch.autograd.graph import log as _autograd_log
    from torch.autograd.variable import Variable as _Variable

    _engine = _Variable._execution_engine
except (ImportError, AttributeError):  # pragma: no cover
    _run_backward = _engine = None
    _autograd_log = logging.getLogger("torch.autograd.graph")


class NonFiniteLoss(ZooError):
    """The training loss became NaN or infinite (with several processes, all of them agree to stop)."""

    shared = True


@dataclass(frozen=True)
class SchedulePlan:
    """What a learning-rate schedule is told about the run: steps per epoch, the planned total of steps,
    the warm-up steps, and whether a smaller monitored figure is better (for plateau schedules)."""

    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    lower_is_better: bool = True


@dataclass
class RunContext:
    """What a procedure is built from: the run's resolved config and typed settings, its chosen parts
    (``combo``), the data, the model the run saves, the strategy (device, batching), the metrics to
    report, the generator that shuffles (seeded, checkpointed by the trainer), whether a smaller monitored
    figure is better, and ``note`` for one-line messages to the user."""

    cfg: dict[str, Any]
    settings: Any
    combo: Combination
    splits: Splits | None
    model: RunModel
    strategy: Any
    metrics: MetricSet
    generator: torch.Generator
    note: Callable[[str], None]
    lower_is_better: bool = True
    registry: Any = None


def _trainable(params) -> list:
    """``params`` (tensors, or param-group dicts) without the frozen ones (``requires_grad=False``, see
    ``--freeze``): an optimizer never holds them, so no update, momentum or decoupled weight decay moves them."""
    out = []
    for item in params:
        if isinstance(item, dict):
            group = dict(item)
            group["params"] = [p for p in (list(item["params"]) if not isinstance(item["params"], torch.Tensor)
                                           else [item["params"]]) if p.requires_grad]
            if group["params"]:
                out.append(group)
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], torch.Tensor):  # (name, param)
            if item[1].requires_grad:
                out.append(item)
        elif not isinstance(item, torch.Tensor) or item.requires_grad:
            out.append(item)
    if not out:
        raise ZooError("every parameter given to the optimizer is frozen (--freeze): nothing would train")
    return out


class Procedure:
    """Base of training procedures (see the module's description). Subclasses implement
    :meth:`train_epoch` and :meth:`evaluate`, and extend :meth:`state_dict` / :meth:`load_state_dict`
    with what they add."""

    #: Optimizer steps in one epoch (the progress bar's length; schedules' unit).
    steps_per_epoch: int = 1

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedules: dict[str, Any] = {}

    # -- building -----------------------------------------------------------------------

    def build_optimizer(self, params, name: str = "optimizer", lr: float | None = None) -> torch.optim.Optimizer:
        """The run's chosen optimizer (``--optimizer``, with its hyperparameters) over ``params``, kept under
        ``name`` (its state is checkpointed)."""
        entry = self.ctx.combo.optimizer
        hyper = self.ctx.cfg.get("optimizer_params") or {}
        params = _trainable(params)
        try:
            opt = entry.load()(params, lr=self.settings.lr if lr is None else lr, **hyper)
        except ZooError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin factory's own complaint
            raise ZooError(f"optimizer '{entry.name}' from plugin '{entry.plugin.name}' could not be built with "
                           f"{hyper}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(opt, torch.optim.Optimizer):
            raise ZooError(f"optimizer '{entry.name}' from plugin '{entry.plugin.name}' returned "
                           f"{type(opt).__name__}, not a torch.optim.Optimizer")
        self.optimizers[name] = opt
        return opt

    def plan(self, steps_per_epoch: int) -> SchedulePlan:
        s = self.settings
        return SchedulePlan(steps_per_epoch=steps_per_epoch, total_steps=s.epochs * steps_per_epoch,
                            warmup_steps=int(round(s.warmup_epochs * steps_per_epoch)),
                            lower_is_better=self.ctx.lower_is_better)

    def build_schedule(self, optimizer: torch.optim.Optimizer, steps_per_epoch: int, name: str = "schedule"):
        """The run's chosen learning-rate schedule for ``optimizer``, kept under ``name``; None when it is
        constant (``constant = True``: nothing to call per step)."""
        entry = self.ctx.combo.schedule
        hyper = self.ctx.cfg.get("schedule_params") or {}
        try:
            sched = entry.load()(optimizer, plan=self.plan(steps_per_epoch), **hyper)
        except ZooError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ZooError(f"schedule '{entry.name}' from plugin '{entry.plugin.name}' could not be built with "
                           f"{hyper}: {type(exc).__name__}: {exc}") from exc
        for method in ("step", "state_dict", "load_state_dict"):
            if not callable(getattr(sched, method, None)):
                raise ZooError(f"schedule '{entry.name}' from plugin '{entry.plugin.name}' returned "
                               f"{type(sched).__name__}, which has no {method}()")
        self.schedules[name] = sched
        return None if getattr(sched, "constant", False) else sched

    def epoch_schedules(self) -> list[Any]:
        """The schedules that act on the monitored figure after each epoch (``epoch_end(value)``)."""
        return [s for s in self.schedules.values() if callable(getattr(s, "epoch_end", None))]

    def require_one_process_fp32(self, name: str) -> None:
        """For a procedure that trains on one process, in 32-bit precision, without an L1 penalty (a GAN, a
        deep-Q learner): a one-line ZooError naming the first of the run's settings that asks otherwise."""
        s = self.settings
        if self.ctx.strategy.world_size > 1:
            raise ZooError(f"procedure '{name}' trains on one process; run it without --nproc or a distributed "
                           "strategy")
        if s.l1:
            raise ZooError(f"procedure '{name}' does not apply an L1 penalty (l1); leave it at 0")
        if s.precision != "32":
            raise ZooError(f"procedure '{name}' trains in 32-bit precision (precision={s.precision} is not "
                           "supported)")

    # -- the contract -----------------------------------------------------------------------

    def probe(self) -> None:
        """Check, before any file is made, that the parts fit (e.g. one forward pass); raise ZooError."""

    def train_epoch(self, epoch: int, on_batch: Callable[[int, Any], None] | None) -> dict[str, float]:
        """Train one epoch (``epoch`` epochs are done before it); return its figures (``train_loss``, ...)."""
        raise NotImplementedError

    def learning_rates(self) -> dict[str, float]:
        """The history's learning-rate columns after an epoch."""
        return {f"lr_{k}" if k != "optimizer" else "lr": float(o.param_groups[0]["lr"])
                for k, o in self.optimizers.items()}

    def evaluate(self, split: str, fast: bool, model: RunModel | None = None) -> dict[str, float]:
        """``{"loss": ..., metric: ...}`` on a split (``fast``: the torch metrics of the history)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The resumable state: every optimizer's and schedule's (JSON values and tensors)."""
        return {"optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedules": {k: s.state_dict() for k, s in self.schedules.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for group in ("optimizers", "schedules"):
            mine, saved = getattr(self, group), state[group]
            if set(mine) != set(saved):
                raise ValueError(f"{group} {sorted(saved)} in the checkpoint, {sorted(mine)} in the run")
            for key, obj in mine.items():
                obj.load_state_dict(saved[key])

"""Learning-rate schedules on ``torch.optim.lr_scheduler``: ``factory(optimizer, *, plan, **params)``.

Each returns a ``LambdaLR`` whose factor per optimizer step is the schedule's closed form
times a linear warm-up over ``plan.warmup_steps`` (so the learning rate of step ``k`` is
exactly ``lr * factor(k)``, whatever the history, and a resumed run continues it
exactly). ``step()`` is called after every optimizer step. The plateau schedule also has
``epoch_end(value)``, called with the monitored validation figure after every epoch, and
keeps its state (the current scale, the best value, the bad epochs) in ``state_dict()``.
A constant schedule without warm-up is :class:`Constant`, which the training step skips.
"""

from __future__ import annotations

import math
from typing import Any

from torch.optim.lr_scheduler import LambdaLR


class Constant:
    """No schedule: the learning rate stays as set. ``constant`` tells the step it need not call it."""

    constant = True

    def step(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class Lambda(LambdaLR):
    """``LambdaLR`` whose state is JSON (the factor is rebuilt from the plan, so it is not saved), with a
    lean ``step()``: the same learning rates, without the per-call bookkeeping and the wrapper
    ``LRScheduler`` puts around ``optimizer.step`` (for small models a step costs microseconds)."""

    def __init__(self, optimizer, lr_lambda) -> None:
        super().__init__(optimizer, lr_lambda)
        if getattr(optimizer.__dict__.get("step"), "_wrapped_by_lr_sched", False):
            del optimizer.step  # the class's own step again

    def step(self, epoch: None = None) -> None:  # noqa: ARG002 - the LRScheduler signature
        self.last_epoch += 1
        self._step_count += 1
        self.apply()

    def apply(self) -> None:
        """Set every group's learning rate for step ``last_epoch``."""
        lrs = [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict({**state, "lr_lambdas": [None] * len(self.lr_lambdas)})


class _Factor:
    """A schedule's factor for a step, times the linear warm-up."""

    def __init__(self, plan, fn) -> None:
        self.warmup, self.fn = int(plan.warmup_steps), fn

    def __call__(self, step: int) -> float:
        f = self.fn(step)
        if self.warmup and step < self.warmup:
            f *= (step + 1) / self.warmup
        return f


def none(optimizer, *, plan):
    if not plan.warmup_steps:
        return Constant()
    return Lambda(optimizer, _Factor(plan, lambda step: 1.0))


def cosine(optimizer, *, plan):
    """Half a cosine from 1 to 0 over the run's planned steps after the warm-up."""
    span = max(1, plan.total_steps - plan.warmup_steps)

    def f(step: int) -> float:
        t = min(max(step - plan.warmup_steps, 0), span)
        return 0.5 * (1.0 + math.cos(math.pi * t / span))

    return Lambda(optimizer, _Factor(plan, f))


def step(optimizer, *, plan, step_size: int = 10, gamma: float = 0.1):
    """Multiply by ``gamma`` every ``step_size`` epochs."""
    spe = plan.steps_per_epoch
    return Lambda(optimizer, _Factor(plan, lambda s: gamma ** (s // spe // step_size)))


class Plateau(Lambda):
    """Multiply by ``gamma`` after ``plateau_patience`` epochs without improvement of the monitored figure."""

    def __init__(self, optimizer, plan, gamma: float, patience: int) -> None:
        self.scale, self.best, self.bad = 1.0, None, 0
        self.gamma, self.patience, self.lower_is_better = gamma, patience, plan.lower_is_better
        super().__init__(optimizer, _Factor(plan, lambda s: self.scale))

    def epoch_end(self, value: float) -> None:
        better = self.best is None or (value < self.best if self.lower_is_better else value > self.best)
        if better:
            self.best, self.bad = value, 0
        else:
            self.bad += 1
            if self.bad >= self.patience:
                self.scale *= self.gamma
                self.bad = 0
                self.apply()  # the next step already runs at the new scale

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in super().state_dict().items() if k not in ("scale", "best", "bad", "gamma",
                                                                         "patience", "lower_is_better")}
        return {**state, "plateau": {"scale": self.scale, "best": self.best, "bad": self.bad}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        plateau = state.pop("plateau")
        super().load_state_dict(state)
        self.scale, self.best, self.bad = plateau["scale"], plateau["best"], plateau["bad"]


def plateau(optimizer, *, plan, gamma: float = 0.1, plateau_patience: int = 5):
    return Plateau(optimizer, plan, gamma, plateau_patience)

"""The learning-rate schedules: their factors, warm-up, the plateau's state, and a lean step that sets
exactly the learning rates torch's own LambdaLR would."""

from __future__ import annotations

import json

import pytest
import torch

from zoo.procedures import SchedulePlan
from zoo_training import schedules


def _opt(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _lrs(sched, opt, steps):
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


PLAN = SchedulePlan(steps_per_epoch=10, total_steps=100, warmup_steps=0)


def test_cosine_step_and_warmup_factors():
    opt = _opt()
    lrs = _lrs(schedules.cosine(opt, plan=PLAN), opt, 101)
    assert lrs[0] == 1.0 and lrs[50] == pytest.approx(0.5) and lrs[100] == pytest.approx(0.0)
    opt = _opt()
    lrs = _lrs(schedules.step(opt, plan=PLAN, step_size=3, gamma=0.1), opt, 61)
    assert [round(lrs[e * 10], 6) for e in (0, 2, 3, 6)] == [1.0, 1.0, 0.1, 0.01]
    opt = _opt()
    warm = SchedulePlan(steps_per_epoch=10, total_steps=100, warmup_steps=10)
    lrs = _lrs(schedules.none(opt, plan=warm), opt, 12)
    assert [lrs[s] for s in (0, 4, 9, 10, 11)] == [0.1, 0.5, 1.0, 1.0, 1.0]


def test_a_constant_schedule_without_warmup_is_skipped():
    assert schedules.none(_opt(), plan=PLAN).constant is True


def test_the_lean_step_sets_what_lambdalr_sets_and_leaves_optimizer_step_unwrapped():
    def factor(s):
        return 0.5 ** (s // 7) * min(1.0, (s + 1) / 5)

    a, b = _opt(0.3), _opt(0.3)
    ours, theirs = schedules.Lambda(a, factor), torch.optim.lr_scheduler.LambdaLR(b, factor)
    assert "step" not in vars(a)  # torch's bookkeeping wrapper around optimizer.step is removed
    for _ in range(30):
        assert a.param_groups[0]["lr"] == b.param_groups[0]["lr"]
        a.step(), b.step(), ours.step(), theirs.step()
    assert ours.get_last_lr() == theirs.get_last_lr()


def test_plateau_drops_at_once_and_its_state_round_trips_as_json():
    opt = _opt()
    plateau = schedules.plateau(opt, plan=PLAN, gamma=0.5, plateau_patience=2)
    for v in (1.0, 0.9, 0.95, 0.93):  # improves, then two bad epochs
        _lrs(plateau, opt, 10)
        plateau.epoch_end(v)
    assert opt.param_groups[0]["lr"] == 0.5  # the next step already runs at the new scale
    opt2 = _opt()
    restored = schedules.plateau(opt2, plan=PLAN, gamma=0.5, plateau_patience=2)
    restored.load_state_dict(json.loads(json.dumps(plateau.state_dict())))
    opt2.load_state_dict(opt.state_dict())
    assert _lrs(restored, opt2, 5) == _lrs(plateau, opt, 5)
    for v in (0.99, 0.98):  # two more bad epochs: a second drop, in both
        restored.epoch_end(v)
        plateau.epoch_end(v)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == 0.25

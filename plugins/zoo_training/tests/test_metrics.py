"""The per-epoch (torch) metrics equal scikit-learn's, which the final metrics use: every metric the plugin
declares, on every task it serves."""

from __future__ import annotations

import pytest
import torch

from zoo.evaluation import MetricSet
from zoo.registry import get_registry


def _names(task):
    return [e.name for e in get_registry().declared("metric") if task in e.spec.tasks and e.plugin.name == "training"]


def compute(task, output, y, layout):
    return MetricSet(_names(task)).compute(output, y, layout)


def compute_fast(task, output, y, layout):
    return MetricSet(_names(task)).compute(output, y, layout, fast=True)


def _cases():
    g = torch.Generator().manual_seed(0)
    yield "regression", torch.randn(200, 1, generator=g), torch.randn(200, 1, generator=g), "value"
    yield "regression", torch.randn(50, 3, generator=g), torch.randn(50, 3, generator=g), "value"
    yield "reconstruction", torch.randn(40, 6, generator=g), torch.randn(40, 6, generator=g), "value"
    y = torch.randint(0, 2, (300,), generator=g)
    yield "binary", torch.randn(300, 2, generator=g) + y[:, None] * torch.tensor([0.0, 1.0]), y, "index"
    yield "binary", torch.randn(300, 1, generator=g) + y[:, None].float(), y, "binary"
    yield "binary", torch.round(torch.randn(300, 1, generator=g)), y, "binary"  # many tied scores
    yield "binary", -torch.ones(20, 1), torch.randint(0, 2, (20,), generator=g), "binary"  # nothing predicted positive
    yc = torch.randint(0, 5, (400,), generator=g)
    yield "multiclass", torch.randn(400, 5, generator=g) + torch.nn.functional.one_hot(yc, 5), yc, "index"
    yield "multiclass", torch.randn(30, 7, generator=g), torch.randint(0, 7, (30,), generator=g), "index"


@pytest.mark.parametrize("task, output, y, layout", list(_cases()))
def test_fast_metrics_match_scikit_learn(task, output, y, layout):
    fast, ref = compute_fast(task, output, y, layout), compute(task, output, y, layout)
    assert fast.keys() == ref.keys() and len(ref) >= 2
    for k in ref:
        assert fast[k] == pytest.approx(ref[k], abs=1e-9), k

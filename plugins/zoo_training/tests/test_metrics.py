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


def _exact_cases():
    yield from _cases()
    g = torch.Generator().manual_seed(1)
    yield "regression", torch.zeros(10, 1), torch.full((10, 1), 3.0), "value"  # constant targets, imperfect fit
    yield "regression", torch.full((10, 2), 3.0), torch.full((10, 2), 3.0), "value"  # constant targets, perfect fit
    yield "regression", torch.randn(1, 1, generator=g), torch.randn(1, 1, generator=g), "value"  # one sample
    yield "regression", torch.randn(1000, 1, generator=g) * 1e4, torch.randn(1000, generator=g) * 1e4, "value"
    yield "binary", torch.ones(9, 1), torch.zeros(9, dtype=torch.long), "binary"  # no positives at all: 0/0
    yield "binary", -torch.ones(9, 1), torch.ones(9, dtype=torch.long), "binary"  # none predicted positive
    yield "multiclass", torch.randn(50, 6, generator=g) * torch.tensor([1.0, 1, 1, 0, 0, 0]), \
        torch.randint(2, 6, (50,), generator=g), "index"  # classes only predicted, others only true
    yb = torch.randint(0, 2, (997,), generator=g)
    yield "binary", torch.randn(997, 2, generator=g) + yb[:, None] * torch.tensor([0.0, 0.7]), yb, "index"


@pytest.mark.parametrize("task, output, y, layout", list(_exact_cases()))
def test_exact_metrics_written_in_numpy_are_scikit_learns_bits(task, output, y, layout):
    """mse, mae, r2, accuracy, the binary f1, precision and recall and the macro f1 do not call scikit-learn (a regression
    run is scored without importing it): they must give scikit-learn's figures exactly, not nearly."""
    import warnings

    import numpy as np
    from sklearn import metrics as skm

    from zoo_training import metrics as m

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns that R² is undefined on one sample
        labels = ("accuracy", "f1", "precision", "recall")
        for name in ("mse", "mae", "r2", *labels, "f1_macro"):
            if name == "f1_macro":
                if task in ("binary", "multiclass"):
                    ours = m.f1_macro(output, y, target=layout)
                    ref = skm.f1_score(*m._labels(output, y, layout), average="macro", zero_division=0)
                    assert ours == ref, (name, ours, ref)
                continue
            if (name in labels) != (task in ("binary", "multiclass")) or (name in labels[1:] and task != "binary"):
                continue
            ours = getattr(m, name)(output, y, target=layout)
            if name in labels:
                fn = {"accuracy": skm.accuracy_score, "f1": skm.f1_score, "precision": skm.precision_score,
                      "recall": skm.recall_score}[name]
                ref = fn(*m._labels(output, y, layout), **({} if name == "accuracy" else {"zero_division": 0}))
            else:
                fn = {"mse": skm.mean_squared_error, "mae": skm.mean_absolute_error, "r2": skm.r2_score}[name]
                ref = fn(*m._values(output, y, layout))
            assert (np.isnan(ours) and np.isnan(ref)) or ours == ref, (name, ours, ref)

"""Metrics of a control run: ``metric(returns, lengths, *, target)`` over a split's evaluation episodes (the
returns of the greedy policy and the episodes' lengths, see :func:`zoo.episodes.evaluate_policy`)."""

from __future__ import annotations

import torch


def mean_return(pred, y=None, *, target="value") -> float:
    """Mean return over the episodes."""
    return float(torch.as_tensor(pred, dtype=torch.float64).mean())


def min_return(pred, y=None, *, target="value") -> float:
    """The worst episode's return."""
    return float(torch.as_tensor(pred, dtype=torch.float64).min())


"""Loss factories: ``factory(**params)`` returns ``(output, target) -> scalar``."""

from __future__ import annotations

import torch
from torch import nn


def mse() -> nn.Module:
    return nn.MSELoss()


def l1() -> nn.Module:
    return nn.L1Loss()


def huber(*, delta: float = 1.0) -> nn.Module:
    if delta <= 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    return nn.HuberLoss(delta=delta)


def cross_entropy(*, label_smoothing: float = 0.0) -> nn.Module:
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)


def bce_with_logits(*, pos_weight: float = 1.0) -> nn.Module:
    return nn.BCEWithLogitsLoss(pos_weight=None if pos_weight == 1.0 else torch.tensor([pos_weight]))

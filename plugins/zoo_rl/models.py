"""Q-networks: an observation in, one value per action out."""

from __future__ import annotations

import math

import torch
from torch import nn


class QMLP(nn.Module):
    """An MLP with ReLU hidden layers; with ``dueling``, a state-value head and an advantage head combined as
    ``V + A - mean(A)``."""

    def __init__(self, input_shape, n_actions: int, hidden=(256, 256), dueling: bool = False) -> None:
        super().__init__()
        d = int(math.prod(input_shape))
        layers: list[nn.Module] = [nn.Flatten()]
        for h in hidden:
            layers += [nn.Linear(d, int(h)), nn.ReLU()]
            d = int(h)
        self.body = nn.Sequential(*layers)
        self.dueling = bool(dueling)
        self.head = nn.Linear(d, n_actions)
        self.value = nn.Linear(d, 1) if self.dueling else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        a = self.head(h)
        if self.value is None:
            return a
        return self.value(h) + a - a.mean(1, keepdim=True)


def q_mlp(input_shape, out_features: int, hidden=(256, 256), dueling: bool = False) -> nn.Module:
    return QMLP(input_shape, out_features, hidden, dueling)

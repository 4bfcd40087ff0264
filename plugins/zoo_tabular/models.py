"""Tabular models. Each factory takes ``(input_shape, out_features, **params)``."""

from __future__ import annotations

import math

from torch import nn

_ACT = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
    "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "silu": nn.SiLU,
}


def linear(input_shape, out_features: int, *, bias: bool = True) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), out_features, bias=bias))


def mlp(input_shape, out_features: int, *, hidden=(64, 64), activation: str = "relu",
        dropout: float = 0.0) -> nn.Module:
    if activation not in _ACT:
        raise ValueError(f"unknown activation {activation!r}")
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, int(h)), _ACT[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)

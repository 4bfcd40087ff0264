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


_NORM = ("layer", "batch", "none")


def _norm(kind: str, width: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(width)
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use one of {', '.join(_NORM)}")


class ResidualBlock(nn.Module):
    """``x + dropout(activation(norm(linear(x))))``: the skip path carries ``x`` unchanged."""

    def __init__(self, width: int, activation: str, dropout: float, norm: str) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.norm = _norm(norm, width)
        self.act = _ACT[activation]()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x):
        return x + self.drop(self.act(self.norm(self.linear(x))))


class ResMLP(nn.Module):
    """Flatten, project to ``width``, ``blocks`` residual blocks, a linear head."""

    def __init__(self, in_features: int, out_features: int, width: int, blocks: int, activation: str,
                 dropout: float, norm: str) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.input = nn.Linear(in_features, width)
        self.blocks = nn.Sequential(*(ResidualBlock(width, activation, dropout, norm) for _ in range(blocks)))
        self.head = nn.Linear(width, out_features)

    def forward(self, x):
        return self.head(self.blocks(self.input(self.flatten(x))))


def resmlp(input_shape, out_features: int, *, width: int = 64, blocks: int = 2, activation: str = "relu",
           dropout: float = 0.0, norm: str = "layer") -> nn.Module:
    if activation not in _ACT:
        raise ValueError(f"unknown activation {activation!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if width < 1 or blocks < 0:
        raise ValueError(f"width must be >= 1 and blocks >= 0, got width={width}, blocks={blocks}")
    return ResMLP(math.prod(input_shape), out_features, int(width), int(blocks), activation, float(dropout), norm)

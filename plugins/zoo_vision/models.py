"""Convolutional models. Each factory takes ``(input_shape, out_features, **params)``."""

from __future__ import annotations

from torch import nn


def cnn(input_shape, out_features: int, *, channels=(32, 64), kernel_size: int = 3, pool: str = "max",
        dropout: float = 0.25) -> nn.Module:
    if len(input_shape) != 3:
        raise ValueError(f"cnn needs (channels, height, width) input, got shape {tuple(input_shape)}")
    if len(channels) != 2:
        raise ValueError(f"cnn has two conv layers; give two channel counts, not {len(channels)}")
    c, h, w = input_shape
    if h < 4 or w < 4:
        raise ValueError(f"cnn pools twice and needs images of at least 4x4, got {h}x{w}")
    Pool = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
    c1, c2 = (int(x) for x in channels)
    pad = kernel_size // 2
    return nn.Sequential(
        nn.Conv2d(c, c1, kernel_size, padding=pad), nn.ReLU(), Pool(2),
        nn.Conv2d(c1, c2, kernel_size, padding=pad), nn.ReLU(), Pool(2),
        nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(c2 * (h // 2 // 2) * (w // 2 // 2), out_features),
    )

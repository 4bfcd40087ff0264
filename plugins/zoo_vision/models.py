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
    return nn.Sequential(
        *_same_conv(c, c1, kernel_size), nn.ReLU(), Pool(2),
        *_same_conv(c1, c2, kernel_size), nn.ReLU(), Pool(2),
        nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(c2 * (h // 2 // 2) * (w // 2 // 2), out_features),
    )


def _same_conv(cin: int, cout: int, k: int) -> list[nn.Module]:
    """A convolution that keeps the image size; even kernels get explicit asymmetric padding."""
    if k % 2:
        return [nn.Conv2d(cin, cout, k, padding=k // 2)]
    lo, hi = (k - 1) // 2, k // 2
    return [nn.ZeroPad2d((lo, hi, lo, hi)), nn.Conv2d(cin, cout, k)]

"""The ring of Gaussians: a mixture whose modes a generator must all find."""

from __future__ import annotations

import math

from zoo.data import Splits, split_arrays

#: The ring's geometry (the metrics in ``zoo_gan.metrics`` score samples against it).
MODES = 8
RADIUS = 2.0
STD = 0.02


def centres():
    """The ``(MODES, 2)`` float64 mode centres, evenly spaced on the circle, the first at angle 0."""
    import numpy as np

    angle = np.arange(MODES) * (2 * math.pi / MODES)
    return np.stack([RADIUS * np.cos(angle), RADIUS * np.sin(angle)], 1)


def ring_of_gaussians(*, seed: int, n_samples: int = 10000) -> Splits:
    """``n_samples`` points, each from a mode chosen uniformly: the centre plus N(0, STD^2) per coordinate.
    The points are drawn once (generator seed 0, so every run sees the same data); the run's seed picks the
    60/20/20 split, and the features are standardised with the training split's statistics."""
    import numpy as np

    rng = np.random.default_rng(0)
    k = rng.integers(0, MODES, n_samples)
    X = centres()[k] + STD * rng.standard_normal((n_samples, 2))
    return split_arrays(X.astype(np.float32), task="generation", seed=seed)


#: The 8x8 digits' pixels run from 0 to 16; ``digits_images`` maps them to [-1, 1] (a tanh generator's range).
PIXEL_MAX = 16.0


def digits_images(*, seed: int, val_size: float = 0.15, test_size: float = 0.2) -> Splits:
    """scikit-learn's bundled 1797 8x8 digits as ``(1, 8, 8)`` images to learn to sample (no labels), split by the
    run's seed (not stratified: the task has no classes). The data's units are the raw pixels (0..16); the run sees
    ``pixel / 8 - 1``, in [-1, 1], the same fixed scale for every split (``preprocess`` mean 8, std 8), so a
    generator with a tanh output covers exactly the pixels' range and ``zoo sample`` returns 0..16 pixels."""
    import dataclasses

    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    half = PIXEL_MAX / 2
    X = load_digits().data.astype(np.float32).reshape(-1, 1, 8, 8)
    s = split_arrays(X / half - 1.0, task="generation", seed=seed, val_size=val_size, test_size=test_size,
                     standardize=None)
    scale = torch.full((1, 8, 8), half)
    return dataclasses.replace(s, preprocess={"mean": scale, "std": scale.clone()})

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

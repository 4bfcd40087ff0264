"""Reconstruction datasets: the target is the standardised, flattened input itself."""

from __future__ import annotations

from zoo.data import Splits, split_arrays


def digits_reconstruction(*, seed: int, standardize: str, val_size: float, test_size: float) -> Splits:
    """scikit-learn's bundled 8x8 digits as 64-value vectors, split by the run's seed.

    ``split_arrays`` makes the target of each sample its own (standardised) input, so the
    splits hold ``X`` float32 ``(N, 64)`` and ``y`` the same values. The splits are not
    stratified (the task has no classes), and the digit labels are not used.
    """
    from sklearn.datasets import load_digits

    if standardize not in ("global", "feature", "none"):
        raise ValueError(f"standardize must be global, feature or none, not {standardize!r}")
    d = load_digits()
    return split_arrays(d.data, None, task="reconstruction", seed=seed, val_size=val_size, test_size=test_size,
                        standardize=None if standardize == "none" else standardize)

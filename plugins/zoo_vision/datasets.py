"""Image datasets that ship inside a package (no downloads)."""

from __future__ import annotations

from zoo.data import Splits, split_arrays


def digits(*, seed: int, val_size: float, test_size: float) -> Splits:
    from sklearn.datasets import load_digits

    d = load_digits()
    return split_arrays(d.data, d.target, task="multiclass", seed=seed, val_size=val_size, test_size=test_size,
                        standardize="global", input_shape=(1, 8, 8),
                        class_names=tuple(str(c) for c in d.target_names))

"""Image datasets that ship inside a package (no downloads)."""

from __future__ import annotations

from zoo.data import Splits, split_arrays


def digits(*, seed: int, val_size: float, test_size: float, classes: tuple[int, ...] = ()) -> Splits:
    """scikit-learn's digits; ``classes``: only these digits, as classes 0..k-1 in increasing order (named by
    their digit), e.g. to pretrain on 0-4 and fine-tune on 5-9."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    X, y, names = d.data, d.target, tuple(str(c) for c in d.target_names)
    if classes:
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes={','.join(map(str, classes))} names a digit twice")
        if len(classes) < 2:
            raise ValueError(f"classes={','.join(map(str, classes))}: a classifier needs at least two digits")
        keep = sorted(int(c) for c in classes)
        mask = np.isin(y, keep)
        X, y = X[mask], np.searchsorted(keep, y[mask])
        names = tuple(str(c) for c in keep)
    return split_arrays(X, y, task="multiclass", seed=seed, val_size=val_size, test_size=test_size,
                        standardize="global", input_shape=(1, 8, 8), class_names=names)

"""Tabular datasets: generated with a seed, split by the run's seed."""

from __future__ import annotations

import numpy as np

from zoo.data import Splits, split_arrays


def _split(X, y, task, seed, val_size, test_size, standardize) -> Splits:
    return split_arrays(X, y, task=task, seed=seed, val_size=val_size, test_size=test_size,
                        standardize="feature" if standardize else None)


def sine(*, seed: int, n_samples: int, noise: float, x_max: float, data_seed: int,
         val_size: float, test_size: float, standardize: bool) -> Splits:
    rng = np.random.default_rng(data_seed)
    x = np.linspace(0.0, x_max, n_samples)
    y = x + 2.0 * np.sin(x) + rng.normal(0.0, noise, size=n_samples)
    return _split(x.reshape(-1, 1), y.reshape(-1, 1), "regression", seed, val_size, test_size, standardize)


def moons(*, seed: int, n_samples: int, noise: float, data_seed: int,
          val_size: float, test_size: float, standardize: bool) -> Splits:
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=n_samples, noise=noise, random_state=data_seed)
    return _split(X, y, "binary", seed, val_size, test_size, standardize)


def blobs(*, seed: int, n_samples: int, cluster_std: float, n_features: int, data_seed: int,
          val_size: float, test_size: float, standardize: bool) -> Splits:
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=n_samples, centers=2, n_features=n_features, cluster_std=cluster_std,
                      random_state=data_seed)
    return _split(X, y, "binary", seed, val_size, test_size, standardize)


# -- real data sets bundled with scikit-learn (no downloads) ------------------------------


def _bundled(loader, task: str, seed: int, val_size: float, test_size: float, standardize: bool, **kwargs) -> Splits:
    d = loader(**kwargs)
    names = tuple(str(c) for c in d.target_names) if task != "regression" else None
    return split_arrays(d.data, d.target, task=task, seed=seed, val_size=val_size, test_size=test_size,
                        standardize="feature" if standardize else None, class_names=names)


def iris(*, seed: int, val_size: float, test_size: float, standardize: bool) -> Splits:
    from sklearn.datasets import load_iris

    return _bundled(load_iris, "multiclass", seed, val_size, test_size, standardize)


def wine(*, seed: int, val_size: float, test_size: float, standardize: bool) -> Splits:
    from sklearn.datasets import load_wine

    return _bundled(load_wine, "multiclass", seed, val_size, test_size, standardize)


def breast_cancer(*, seed: int, val_size: float, test_size: float, standardize: bool) -> Splits:
    from sklearn.datasets import load_breast_cancer

    return _bundled(load_breast_cancer, "binary", seed, val_size, test_size, standardize)


def diabetes(*, seed: int, val_size: float, test_size: float, standardize: bool) -> Splits:
    from sklearn.datasets import load_diabetes

    # the raw units (age in years, sex 1/2, ...) so that `zoo predict` takes the values people have
    return _bundled(load_diabetes, "regression", seed, val_size, test_size, standardize, scaled=False)

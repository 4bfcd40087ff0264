"""The ``arrays`` dataset: arrays ``X`` and ``y`` from an ``.npz`` file, what the scikit-learn estimators of
:mod:`zoo.sklearn` train on (they write the arrays they are given to such a file).

The file holds ``X`` (``(N, features)``, or ``(N, *shape)``), ``y`` (class labels or indices, or numbers
``(N,)``/``(N, k)`` for regression) and optionally ``classes`` (the class names, in the order of the
indices in ``y``). Pickled arrays are refused. The task is a parameter; ``auto`` takes text, boolean or
integer labels (or a ``classes`` array) as classes and other numbers as regression targets.

Splits are seeded by the run's seed (stratified for classes when every class has two samples in what is
split). ``val_size=0`` trains on every sample and validates on the training samples; ``test_size=0`` keeps
no test split (the test figures are then the validation split's). Features are standardised with the
training split's statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _read(path: str) -> dict[str, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{path} does not exist (an .npz file with arrays X and y)")
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path} is not a plain .npz archive of arrays ({exc})") from None
    missing = [k for k in ("X", "y") if k not in arrays]
    if missing:
        raise ValueError(f"{path} lacks array {', '.join(missing)} (it holds {', '.join(arrays) or 'nothing'})")
    if len(arrays["X"]) != len(arrays["y"]):
        raise ValueError(f"{path} holds {len(arrays['X'])} samples in X but {len(arrays['y'])} in y")
    return arrays


def _auto_task(arrays: dict[str, np.ndarray]) -> tuple[str, str]:
    """``(task, reason)`` from the arrays: class names, or labels that are text, booleans or integers, are
    classes (two of them binary, more multiclass); other numbers are regression."""
    y = np.asarray(arrays["y"])
    if "classes" not in arrays and (y.dtype.kind not in "USbiu" or (y.ndim > 1 and y.shape[1] > 1)):
        return "regression", f"y holds {y.dtype} numbers"
    k = len(arrays["classes"]) if "classes" in arrays else len(np.unique(y))
    return ("binary" if k == 2 else "multiclass"), f"y holds {k} classes"


def infer(params: dict[str, Any]) -> tuple[str, str]:
    """``DatasetSpec.infer_task``: the ``task`` parameter, or with ``task=auto`` what the file's ``y`` holds."""
    if params.get("task", "auto") != "auto":
        return params["task"], ""
    return _auto_task(_read(params["path"]))


def _split(idx: np.ndarray, size: float, seed: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``(rest, held)`` of the indices ``idx``: ``size`` of them held out, stratified when every class has
    at least two samples among them."""
    from sklearn.model_selection import train_test_split

    strat = None
    if labels is not None:
        _, counts = np.unique(labels[idx], return_counts=True)
        if len(counts) > 1 and counts.min() >= 2:
            strat = labels[idx]
    try:
        return train_test_split(idx, test_size=size, random_state=seed, stratify=strat)
    except ValueError:
        if strat is None:
            raise
        return train_test_split(idx, test_size=size, random_state=seed)


def load(*, seed: int, path: str, task: str = "auto", val_size: float = 0.1, test_size: float = 0.0,
         standardize: bool = True):
    import torch

    from zoo.data import DataMeta, Splits, class_indices

    arrays = _read(path)
    if task == "auto":
        task = _auto_task(arrays)[0]
    X = np.asarray(arrays["X"], dtype=np.float32)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    n = len(X)
    if n < 2:
        raise ValueError(f"{path} holds {n} sample(s); at least 2 are needed to train and validate")
    if val_size + test_size >= 1:
        raise ValueError(f"val_size ({val_size}) and test_size ({test_size}) must add up to less than 1")
    classification = task in ("binary", "multiclass")
    if classification:
        names = arrays.get("classes")
        y, class_names = class_indices(np.asarray(arrays["y"]).reshape(n),
                                       None if names is None else [str(c) for c in names.tolist()])
        if len(class_names) < 2:
            raise ValueError(f"{path}: a {task} task needs at least 2 classes, y holds 1")
        if task == "binary" and len(class_names) != 2:
            raise ValueError(f"{path}: a binary task has 2 classes, y holds {len(class_names)}")
        labels = y
    else:
        y = np.asarray(arrays["y"], dtype=np.float32).reshape(n, -1)
        labels = None
    idx = np.arange(n)
    rest, test_idx = _split(idx, test_size, seed, labels) if test_size > 0 else (idx, None)
    if val_size > 0:
        train_idx, val_idx = _split(rest, val_size / (1.0 - test_size), seed, labels)
    else:
        train_idx = val_idx = rest
    train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)
    test_idx = val_idx if test_idx is None else np.sort(test_idx)
    preprocess: dict[str, torch.Tensor] = {}
    if standardize:
        # in float32, as the run's model applies them to raw inputs
        mean, std = X[train_idx].mean(axis=0), X[train_idx].std(axis=0)
        std = np.where(std > 0, std, 1.0).astype(np.float32)
        X = (X - mean) / std
        preprocess = {"mean": torch.from_numpy(np.ascontiguousarray(mean, dtype=np.float32)),
                      "std": torch.from_numpy(np.ascontiguousarray(std, dtype=np.float32))}

    def part(ix: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(X[ix])), torch.from_numpy(np.ascontiguousarray(y[ix]))

    meta = DataMeta(task=task, input_shape=tuple(int(d) for d in X.shape[1:]),
                    num_classes=len(class_names) if classification else None,
                    num_targets=1 if classification else int(y.shape[1]),
                    class_names=tuple(class_names) if classification else None)
    return Splits(part(train_idx), part(val_idx), part(test_idx), meta, preprocess)


def example(directory: Path) -> dict[str, Any]:
    """``DatasetSpec.example``: ``example.npz`` in ``directory``, three classes of 4 features."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["a", "b", "c"]), 30)
    X = rng.normal(size=(90, 4)) + np.repeat(np.arange(3), 30)[:, None]
    path = Path(directory) / "example.npz"
    np.savez(path, X=X, y=y)
    return {"path": str(path), "test_size": 0.2}

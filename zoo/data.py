"""What a dataset implementation returns, and helpers to build it.

A dataset implementation is a callable ``load(*, seed, **params) -> Splits``.
Most plugins produce arrays and call :func:`split_arrays`, which makes seeded,
stratified train/validation/test splits and standardises features with
statistics from the training split only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .spec import TASKS


@dataclass(frozen=True)
class DataMeta:
    """What a model needs to know about a dataset to be built for it."""

    task: str
    input_shape: tuple[int, ...]
    num_classes: int | None = None  # binary and multiclass
    num_targets: int = 1  # regression
    class_names: tuple[str, ...] | None = None

    def to_json(self) -> dict:
        return {
            "task": self.task,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "num_targets": self.num_targets,
            "class_names": list(self.class_names) if self.class_names is not None else None,
        }

    @classmethod
    def from_json(cls, d: dict) -> "DataMeta":
        return cls(
            task=d["task"],
            input_shape=tuple(d["input_shape"]),
            num_classes=d.get("num_classes"),
            num_targets=d.get("num_targets", 1),
            class_names=tuple(d["class_names"]) if d.get("class_names") is not None else None,
        )


@dataclass
class Splits:
    """Train, validation and test splits plus metadata.

    Each split is either an ``(X, y)`` pair of tensors (the fast path: the engine keeps
    them on the device and batches by index) or any ``torch.utils.data.Dataset`` of
    ``(x, y)`` samples (for data larger than memory: the engine uses a DataLoader).
    ``X`` is float32 ``(N, *input_shape)``. ``y`` is int64 ``(N,)`` class indices for
    classification and float32 ``(N, num_targets)`` for regression and reconstruction.
    ``preprocess`` holds fitted tensors (e.g. ``mean``/``std``) already applied to
    ``X``, and ``state`` any JSON-able fitted state (e.g. category lists), so that a
    saved run can prepare new inputs the same way.
    """

    train: Any
    val: Any
    test: Any
    meta: DataMeta
    preprocess: dict[str, torch.Tensor] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str):
        return {"train": self.train, "val": self.val, "test": self.test}[name]


def is_tensor_split(split) -> bool:
    return isinstance(split, tuple) and len(split) == 2 and all(isinstance(t, torch.Tensor) for t in split)


def split_arrays(
    X,
    y=None,
    *,
    task: str,
    seed: int,
    val_size: float = 0.2,
    test_size: float = 0.2,
    standardize: str | None = "feature",
    input_shape: tuple[int, ...] | None = None,
    class_names: tuple[str, ...] | None = None,
) -> Splits:
    """Split arrays into seeded (stratified for classification) splits.

    ``standardize``: ``"feature"`` (per-feature mean/std), ``"global"`` (one
    mean/std for all values, for images) or ``None``. Statistics come from the
    training split only.
    """
    from sklearn.model_selection import train_test_split

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    if not (0 < val_size < 1 and 0 < test_size < 1 and val_size + test_size < 1):
        raise ValueError(f"val_size ({val_size}) and test_size ({test_size}) must each be above 0 and add up to "
                         "less than 1, so that every split gets samples")
    X = np.asarray(X, dtype=np.float32)
    n = len(X)
    reconstruction = task == "reconstruction"
    y = np.zeros(n, dtype=np.float32) if reconstruction else np.asarray(y)
    if input_shape is None:
        input_shape = tuple(X.shape[1:])
    X = X.reshape(n, *input_shape)
    classification = task in ("binary", "multiclass")
    if classification:
        classes, y = np.unique(y, return_inverse=True)
        if class_names is None:
            class_names = tuple(str(c) for c in classes)
        y = y.astype(np.int64)
    else:
        y = y.astype(np.float32).reshape(n, -1)
    strat = y if classification else None
    idx = np.arange(n)
    rest, test_idx = train_test_split(idx, test_size=test_size, random_state=seed, stratify=strat)
    train_idx, val_idx = train_test_split(
        rest,
        test_size=val_size / (1.0 - test_size),
        random_state=seed,
        stratify=strat[rest] if strat is not None else None,
    )
    preprocess: dict[str, torch.Tensor] = {}
    if standardize:
        Xtr = X[train_idx]
        if standardize == "feature":
            mean, std = Xtr.mean(axis=0), Xtr.std(axis=0)
        elif standardize == "global":
            mean = np.full(input_shape, Xtr.mean(), dtype=np.float32)
            std = np.full(input_shape, Xtr.std(), dtype=np.float32)
        else:
            raise ValueError(f"standardize must be 'feature', 'global' or None, not {standardize!r}")
        std = np.where(std > 0, std, 1.0).astype(np.float32)
        X = (X - mean) / std
        preprocess = {"mean": torch.from_numpy(np.ascontiguousarray(mean, dtype=np.float32)),
                      "std": torch.from_numpy(np.ascontiguousarray(std, dtype=np.float32))}

    if reconstruction:
        y = X.reshape(n, -1)

    def part(ix):
        ix = np.sort(ix)
        return torch.from_numpy(np.ascontiguousarray(X[ix])), torch.from_numpy(np.ascontiguousarray(y[ix]))

    meta = DataMeta(
        task=task,
        input_shape=tuple(int(d) for d in input_shape),
        num_classes=len(class_names) if classification else None,
        num_targets=1 if classification else int(y.shape[1]),
        class_names=tuple(class_names) if classification else None,
    )
    return Splits(part(train_idx), part(val_idx), part(test_idx), meta, preprocess)

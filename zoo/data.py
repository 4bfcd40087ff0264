"""What a dataset implementation returns, and helpers to build it.

A dataset implementation is a callable ``load(*, seed, **params) -> Splits``.
Most plugins produce arrays and call :func:`split_arrays`, which makes seeded,
stratified train/validation/test splits and standardises features with
statistics from the training split only.
"""

from __future__ import annotations

import math
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
    classification and float32 ``(N, num_targets)`` for regression and reconstruction (``(N, 1)`` ones for
    generation: every sample is real).
    ``preprocess`` holds fitted tensors (e.g. ``mean``/``std``) already applied to
    ``X``, and ``state`` any JSON-able fitted state (e.g. category lists), so that a
    saved run can prepare new inputs the same way.
    ``environment`` (a ``control`` task only) is a callable ``make() -> env`` giving a fresh environment of
    the gymnasium API (``reset(seed=...)``, ``step(action)``, a discrete ``action_space``), see
    :mod:`zoo.episodes`.
    """

    train: Any
    val: Any
    test: Any
    meta: DataMeta
    preprocess: dict[str, torch.Tensor] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    environment: Any = None

    def split(self, name: str):
        return {"train": self.train, "val": self.val, "test": self.test}[name]


def is_tensor_split(split) -> bool:
    return isinstance(split, tuple) and len(split) == 2 and all(isinstance(t, torch.Tensor) for t in split)


def class_indices(labels, class_names=None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class labels -> ``(int64 indices 0..k-1, class names)``, one documented mapping.

    - Without ``class_names``: the distinct labels (numbers or text), sorted, become classes
      0..k-1 and their text the class names. Labels {0, 1, 2, 7} are four classes named
      "0", "1", "2", "7": output 3 of the model is class "7", and ``zoo predict`` labels it
      "7" (``RunModel.classes`` and ``meta.class_names`` hold the mapping).
    - With ``class_names``: every label is an index into them (or one of the names), and a
      class keeps its index even when no sample has it; any other label is a ValueError.
    """
    labels = np.asarray(labels)
    if class_names is None:
        classes, y = np.unique(labels, return_inverse=True)
        return y.astype(np.int64).reshape(-1), tuple(str(c) for c in classes)
    names = tuple(str(c) for c in class_names)
    k = len(names)
    if labels.dtype.kind in "iub" or (labels.dtype.kind == "f" and np.all(np.mod(labels, 1) == 0)):
        y = labels.astype(np.int64).reshape(-1)
        bad = y[(y < 0) | (y >= k)]
        if len(bad):
            raise ValueError(f"label {bad[0]} is not a class index: with {k} class names, labels must be 0..{k - 1}")
        return y, names
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted({str(v) for v in labels.reshape(-1)} - set(index))
    if unknown:
        raise ValueError(f"label {unknown[0]!r} is not one of the class names ({', '.join(names)})")
    return np.array([index[str(v)] for v in labels.reshape(-1)], dtype=np.int64), names


def check_splits(splits: "Splits") -> str | None:
    """The first way ``splits`` breaks the dataset contract (None when it holds): shapes, dtypes,
    finite values and class indices within ``meta.num_classes``. Lazy splits are checked on
    their first sample here; their labels are checked batch by batch as they are read."""
    meta = splits.meta
    if meta.task not in TASKS:
        return f"its metadata names an unknown task {meta.task!r}"
    shape = tuple(meta.input_shape)
    if not shape or any(int(d) < 1 for d in shape):
        return f"its metadata declares input shape {shape}"
    classification = meta.task in ("binary", "multiclass")
    if classification:
        k = meta.num_classes or 0
        if k < 2 or (meta.task == "binary" and k != 2):
            return f"it is a {meta.task} task with {k} classes in its metadata"
        if meta.class_names is not None and len(meta.class_names) != k:
            return f"its metadata names {len(meta.class_names)} classes but declares num_classes={k}"
    if meta.task == "control" and not callable(splits.environment):
        return "it is a control task but its splits name no environment (Splits.environment)"
    for name in ("train", "val", "test"):
        split = splits.split(name)
        if not is_tensor_split(split):
            try:
                if len(split) == 0:
                    return f"its {name} split is empty"
                x, t = split[0]
            except Exception as exc:  # noqa: BLE001 - a broken Dataset
                return f"its {name} split cannot be read ({type(exc).__name__}: {exc})"
            if tuple(torch.as_tensor(x).shape) != shape:
                return f"its {name} samples have shape {tuple(torch.as_tensor(x).shape)}, not the input shape {shape}"
            continue
        X, y = split
        if len(X) == 0:
            return f"its {name} split is empty"
        if len(X) != len(y):
            return f"its {name} split has {len(X)} inputs but {len(y)} targets"
        if not X.is_floating_point() or tuple(X.shape[1:]) != shape:
            return f"its {name} inputs are {X.dtype} {tuple(X.shape)}, not floats of shape (N, *{shape})"
        if not torch.isfinite(X).all():
            return f"its {name} inputs hold values that are not finite"
        if classification:
            if y.is_floating_point() or y.dim() != 1:
                return f"its {name} targets are {y.dtype} {tuple(y.shape)}, not integer class indices (N,)"
            problem = label_problem(y, meta.num_classes)
            if problem:
                return f"its {name} split {problem}"
        else:
            if not y.is_floating_point() or y.dim() != 2 or y.shape[1] != meta.num_targets:
                return (f"its {name} targets are {y.dtype} {tuple(y.shape)}, not floats of shape "
                        f"(N, {meta.num_targets})")
            if not torch.isfinite(y).all():
                return f"its {name} targets hold values that are not finite"
    return None


def label_problem(y: torch.Tensor, num_classes: int) -> str | None:
    """``"holds class index 5, outside ..."`` when a label is not in 0..num_classes-1."""
    if not len(y):
        return None
    lo, hi = int(y.min()), int(y.max())
    if lo >= 0 and hi < num_classes:
        return None
    bad = lo if lo < 0 else hi
    return (f"holds class index {bad}, outside the {num_classes} classes of its metadata (0..{num_classes - 1}); "
            "labels must be mapped to 0..num_classes-1 and named in class_names (zoo.data.split_arrays does it)")


def _train_test_split(idx: np.ndarray, test_size: float, seed: int, stratify: np.ndarray | None):
    """scikit-learn's ``train_test_split(idx, test_size=..., random_state=seed, stratify=...)``: the same
    indices. Unstratified, it is scikit-learn's shuffle split written out (a seeded ``RandomState``
    permutation, the first ``ceil(test_size * n)`` for the test part), so that a regression data set
    is split without importing scikit-learn; stratified splits are scikit-learn's own."""
    if stratify is not None:
        from sklearn.model_selection import train_test_split

        return train_test_split(idx, test_size=test_size, random_state=seed, stratify=stratify)
    n = len(idx)
    n_test = math.ceil(test_size * n)
    if not 0 < n_test < n:
        raise ValueError(f"a test share of {test_size} of {n} samples leaves one part empty")
    perm = np.random.RandomState(seed).permutation(n)
    return idx[perm[n_test:]], idx[perm[:n_test]]


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
    training split only. Class labels are mapped to indices by :func:`class_indices`.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    if not (0 < val_size < 1 and 0 < test_size < 1 and val_size + test_size < 1):
        raise ValueError(f"val_size ({val_size}) and test_size ({test_size}) must each be above 0 and add up to "
                         "less than 1, so that every split gets samples")
    X = np.asarray(X, dtype=np.float32)
    n = len(X)
    reconstruction = task == "reconstruction"
    if task == "generation":  # no labels: every sample is real
        y = np.ones(n, dtype=np.float32)
    y = np.zeros(n, dtype=np.float32) if reconstruction else np.asarray(y)
    if input_shape is None:
        input_shape = tuple(X.shape[1:])
    X = X.reshape(n, *input_shape)
    classification = task in ("binary", "multiclass")
    if classification:
        y, class_names = class_indices(y.reshape(n), class_names)
    else:
        y = y.astype(np.float32).reshape(n, -1)
    strat = y if classification else None
    idx = np.arange(n)
    rest, test_idx = _train_test_split(idx, test_size, seed, strat)
    train_idx, val_idx = _train_test_split(rest, val_size / (1.0 - test_size), seed,
                                           strat[rest] if strat is not None else None)
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

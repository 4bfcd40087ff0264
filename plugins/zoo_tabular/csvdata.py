"""The ``csv`` datasets: a local CSV file with a header, one sample a row, one column the target.

The plugin declares three: ``csv`` (its ``task`` parameter: ``auto``, ``regression``,
``binary`` or ``multiclass``; ``auto`` reads the target column before training, see
:mod:`zoo_tabular.csvinfer`), and the fixed-task ``csv-binary`` (exactly two classes)
and ``csv-regression`` (a numeric target). All are loaded by :func:`load`.

Missing values (the cells in :data:`MISSING`) follow the ``impute`` parameter: ``none``
(the default) refuses one, naming the file, line and column; ``mean``, ``median`` and
``most_frequent`` fill each feature column with scikit-learn's ``SimpleImputer`` fitted
on the training split only (after the split). Text columns always take their most
frequent training value (with ``mean`` and ``median`` too), as does a numeric column
under ``most_frequent`` (the smallest value on a tie). A missing target value is never
imputed: it is refused with its line and column whatever ``impute`` says.

Numeric feature columns are standardised with training-split statistics (after
imputation; stored as ``Splits.preprocess``: ``mean``/``std``, with 0/1 for one-hot
features); non-numeric columns are one-hot encoded over the categories seen in the
training split (a category first seen later encodes as all zeros). Everything fitted
that is not a tensor goes into ``Splits.state`` (JSON; a run keeps it as
``preprocess.json``):

``{"format", "target", "task", "columns", "numeric", "categories", "features",
"classes", "delimiter", "impute", "fill"}``

(``fill``: the fitted value of every feature column, empty with ``impute=none``) so
that :func:`encode` turns raw rows of a new file into the same features, missing cells
filled with the same values; ``zoo predict`` then standardises them with the stored
mean/std.

Problems with the file raise ``ValueError`` with a one-line message that names the
file, line and column (the engine reports them as the dataset failing to load).
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from zoo.data import Splits, split_arrays

from .csvinfer import (
    MAX_AUTO_CLASSES,
    MIN_ROWS,
    MISSING,
    TASKS,
    TargetColumn,
    delimiter_char as _delimiter,
    infer_task,
    is_missing as _is_missing,
    iter_table,
    missing_target,
    number as _number,
    shown as _shown,
    target_index,
    too_few_rows,
)

__all__ = ["FORMAT", "IMPUTE", "MAX_AUTO_CLASSES", "MIN_PER_CLASS", "MIN_ROWS", "MISSING", "TASKS", "binary",
           "encode", "example", "example_binary", "example_regression", "infer_task", "load", "read_table",
           "regression", "write_example"]

FORMAT = "zoo-csv/1"
#: The values of the ``impute`` parameter (``none``: refuse missing values).
IMPUTE = ("none", "mean", "median", "most_frequent")
#: Stratified train/validation/test splits need this many samples of every class.
MIN_PER_CLASS = 3


# -- reading the file ---------------------------------------------------------------------


def read_table(path: str | Path, delimiter: str = ",") -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the ``(line number, cells)`` of every non-blank data row; cells stripped.

    Raises ``ValueError`` (one line) for a missing or unreadable file, a bad header or a
    row whose width differs from the header's.
    """
    rows = list(iter_table(path, delimiter))
    _, header = rows.pop(0)
    return header, rows


# -- the dataset ----------------------------------------------------------------------------


def load(*, seed: int, path: str | None = None, target: str | None = None, task: str = "auto",
         impute: str = "none", val_size: float = 0.2, test_size: float = 0.2, delimiter: str = ",") -> Splits:
    """Read ``path``, encode it, split it (seeded, stratified for classification), impute, standardise.

    The ``csv`` dataset. ``task``: ``regression``, ``binary``, ``multiclass`` (two or more
    classes) or ``auto`` (:func:`infer_task`); an explicit task is checked against the
    target column. ``impute``: ``none``, ``mean``, ``median`` or ``most_frequent`` (see the
    module's docstring).
    """
    if not isinstance(path, str) or not path.strip():
        raise ValueError("no CSV file given: set the dataset's path and target column "
                         "(--set path=FILE.csv --set target=COLUMN)")
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    if impute not in IMPUTE:
        raise ValueError(f"impute must be one of {', '.join(IMPUTE)}, not {impute!r}")
    sep = _delimiter(delimiter)
    p = Path(path).expanduser()
    header, rows = read_table(p, sep)
    target = header[target_index(p, header, target, sep)]
    features = [h for h in header if h != target]
    if not features:
        raise ValueError(f"{p} has no feature columns besides the target '{target}'")
    n = len(rows)
    if n < MIN_ROWS:
        raise ValueError(too_few_rows(p, n))
    j = header.index(target)
    for line, cells in rows:  # a missing target first: no impute setting helps with it
        if _is_missing(cells[j]):
            raise ValueError(missing_target(p, line, target, cells[j]))
    for line, cells in rows if impute == "none" else ():
        for name, cell in zip(header, cells):
            if _is_missing(cell):
                raise ValueError(f"{p} line {line}: missing value in column '{name}' ({_shown(cell)}); fill it "
                                 "in or drop the row, or set impute=mean, median or most_frequent")
    columns = {name: [cells[j] for _, cells in rows] for j, name in enumerate(header)}
    lines = [line for line, _ in rows]
    holes = {name: [_is_missing(c) for c in columns[name]] for name in features}

    numeric = []
    for name in features:
        present = [i for i, hole in enumerate(holes[name]) if not hole]
        if not present:
            raise ValueError(f"{p}: every cell of column '{name}' is missing; drop the column")
        values = {i: _number(columns[name][i]) for i in present}
        if all(v is not None for v in values.values()):
            bad = next((i for i, v in values.items() if not math.isfinite(v)), None)
            if bad is not None:
                raise ValueError(f"{p} line {lines[bad]}, column '{name}': {columns[name][bad]!r} is not a finite "
                                 "number")
            numeric.append(name)

    task, y, classes = _target(p, target, columns[target], lines, task)
    classification = task != "regression"

    # Split row numbers with the core's splitter (the same seeded, stratified splits as every dataset);
    # the imputation and the encoding are then fitted on the training rows only.
    if n >= 2**24:
        raise ValueError(f"{p} has {n} rows; the csv dataset handles fewer than {2**24}")
    index = np.arange(n, dtype=np.float32).reshape(n, 1)
    try:
        parts = split_arrays(index, y, task=task, seed=seed, val_size=val_size, test_size=test_size,
                             standardize=None, class_names=tuple(classes) if classification else None)
    except ValueError as exc:
        what = f"{n} rows" + (f", {len(classes)} classes" if classification else "")
        raise ValueError(f"cannot split {p} ({what}) with val_size={val_size} and test_size={test_size}: "
                         f"{' '.join(str(exc).split())}") from None
    order = {name: parts.split(name)[0][:, 0].long().numpy() for name in ("train", "val", "test")}
    train = order["train"]

    fill = _fit_fill(p, columns, holes, features, numeric, train, impute) if impute != "none" else {}
    categories = {name: sorted({columns[name][i] for i in train if not holes[name][i]})
                  for name in features if name not in numeric}
    feature_names: list[str] = []
    numeric_mask: list[bool] = []
    for name in features:
        block = [name] if name in numeric else [f"{name}={c}" for c in categories[name]]
        feature_names += block
        numeric_mask += [name in numeric] * len(block)
    state = {
        "format": FORMAT,
        "target": target,
        "task": task,
        "columns": features,
        "numeric": numeric,
        "categories": categories,
        "features": feature_names,
        "classes": list(classes) if classification else None,
        "delimiter": sep,
        "impute": impute,
        "fill": fill,
    }
    X = _encode_columns([columns[name] for name in features], state)
    width = X.shape[1]
    if width == 0:
        raise ValueError(f"{p}: the feature columns give no features")
    mean = np.zeros(width, dtype=np.float32)
    std = np.ones(width, dtype=np.float32)
    is_numeric = np.array(numeric_mask, dtype=bool)
    Xtr = X[train].astype(np.float64)
    mean[is_numeric] = Xtr.mean(axis=0)[is_numeric]
    sd = Xtr.std(axis=0)[is_numeric]
    std[is_numeric] = np.where(sd > 0, sd, 1.0)
    Xs = ((X - mean) / std).astype(np.float32)

    def part(name):
        ix = order[name]
        return torch.from_numpy(np.ascontiguousarray(Xs[ix])), parts.split(name)[1]

    meta = dataclasses.replace(parts.meta, input_shape=(width,))
    return Splits(part("train"), part("val"), part("test"), meta,
                  {"mean": torch.from_numpy(mean), "std": torch.from_numpy(std)}, state)


def _fit_fill(p: Path, columns: Mapping[str, list[str]], holes: Mapping[str, list[bool]], features: list[str],
              numeric: list[str], train: np.ndarray, impute: str) -> dict[str, float | str]:
    """The fill value of every feature column: scikit-learn's ``SimpleImputer`` fitted on the training rows.

    Numeric columns use ``impute`` (mean, median or most_frequent); text columns most_frequent.
    """
    from sklearn.impute import SimpleImputer

    for name in features:
        if all(holes[name][i] for i in train):
            raise ValueError(f"{p}: column '{name}' has no value in the training split, so impute={impute} has "
                             "nothing to fit; drop the column or fill it in")
    fill: dict[str, float | str] = {}
    num = [name for name in features if name in numeric]
    if num:
        A = np.array([[math.nan if holes[name][i] else float(columns[name][i]) for name in num] for i in train],
                     dtype=np.float64)
        stats = SimpleImputer(strategy=impute).fit(A).statistics_
        fill.update({name: float(v) for name, v in zip(num, stats)})
    text = [name for name in features if name not in numeric]
    if text:
        B = np.array([[None if holes[name][i] else columns[name][i] for name in text] for i in train], dtype=object)
        stats = SimpleImputer(strategy="most_frequent", missing_values=None).fit(B).statistics_
        fill.update({name: str(v) for name, v in zip(text, stats)})
    return {name: fill[name] for name in features}


#: Where to point someone whose target does not fit the task they chose.
TRAIN_AS = {"regression": "the dataset csv with task=regression, or csv-regression",
            "binary": "the dataset csv with task=binary, or csv-binary",
            "multiclass": "the dataset csv with task=multiclass"}


def _target(p: Path, target: str, cells: list[str], lines: list[int], task: str):
    """(task, y, class names): y holds class indices for classification, floats for regression."""
    column = TargetColumn(target, str(p))
    for cell, line in zip(cells, lines):
        column.add(cell, line)
    if task == "auto":
        task = column.task()  # refuses a numeric target with an infinite value
    numbers = [_number(c) for c in cells]
    numeric = column.numeric
    looks_like = column.task() if numeric else "multiclass"
    if task == "regression":
        if not numeric:
            bad = next(i for i, v in enumerate(numbers) if v is None or not math.isfinite(v))
            raise ValueError(f"the target column '{target}' is not numeric ({p} line {lines[bad]}: "
                             f"{cells[bad]!r}), so it cannot be a regression target; train it as classification "
                             f"({TRAIN_AS['multiclass']}, or task=binary for two classes)")
        return task, np.asarray(numbers, dtype=np.float64).reshape(-1, 1), None
    if numeric:
        bad = next((i for i, v in enumerate(numbers) if not float(v).is_integer()), None)
        if bad is not None:
            raise ValueError(f"the target column '{target}' holds numbers that are not class labels ({p} line "
                             f"{lines[bad]}: {cells[bad]!r}); train it as regression ({TRAIN_AS['regression']})")
        distinct = sorted(set(numbers))
        names = [str(int(v)) for v in distinct]
        code = {v: i for i, v in enumerate(distinct)}
        y = np.array([code[v] for v in numbers], dtype=np.int64)
    else:
        names = sorted(set(cells))
        code = {v: i for i, v in enumerate(names)}
        y = np.array([code[c] for c in cells], dtype=np.int64)
    k = len(names)
    if k < 2:
        raise ValueError(f"the target column '{target}' holds a single value ({names[0]!r}); there is nothing "
                         "to learn")
    if task == "binary" and k != 2:
        shown = ", ".join(repr(c) for c in names[:5]) + (", ..." if k > 5 else "")
        raise ValueError(f"the target column '{target}' has {k} classes ({shown}), not the 2 of a binary task; "
                         f"train it as multiclass ({TRAIN_AS['multiclass']})")
    hint = (f"; with {k} distinct numbers it looks like a regression target ({TRAIN_AS['regression']})"
            if looks_like == "regression" else "")
    counts = np.bincount(y, minlength=k)
    for i in np.argsort(counts, kind="stable"):
        if counts[i] >= MIN_PER_CLASS:
            break
        if counts[i] == 1:
            line = lines[int(np.flatnonzero(y == i)[0])]
            raise ValueError(f"class {names[i]!r} of the target '{target}' has a single sample ({p} line {line}): "
                             "a stratified split cannot put it in train, validation and test; add samples of it "
                             f"or drop the row{hint}")
        raise ValueError(f"class {names[i]!r} of the target '{target}' has only {counts[i]} samples; stratified "
                         f"train/validation/test splits need at least {MIN_PER_CLASS} of every class{hint}")
    return task, y, names


# -- the fixed-task datasets (csv-binary, csv-regression) ------------------------------------


def binary(*, seed: int, path: str | None = None, target: str | None = None, impute: str = "none",
           val_size: float = 0.2, test_size: float = 0.2, delimiter: str = ",") -> Splits:
    """``csv-binary``: exactly two classes (binary metrics; trains with bce-with-logits or cross-entropy)."""
    return load(seed=seed, path=path, target=target, task="binary", impute=impute, val_size=val_size,
                test_size=test_size, delimiter=delimiter)


def regression(*, seed: int, path: str | None = None, target: str | None = None, impute: str = "none",
               val_size: float = 0.2, test_size: float = 0.2, delimiter: str = ",") -> Splits:
    """``csv-regression``: a numeric target."""
    return load(seed=seed, path=path, target=target, task="regression", impute=impute, val_size=val_size,
                test_size=test_size, delimiter=delimiter)


def write_example(path: str | Path, n: int = 90, seed: int = 0) -> Path:
    """A small mixed CSV: numeric ``size`` and ``weight``, text ``colour``; targets ``grade`` (a/b/c),
    ``passed`` (yes/no) and ``price`` (a number). Deterministic."""
    rng = np.random.default_rng(seed)
    size = rng.normal(10.0, 3.0, n)
    weight = rng.normal(50.0, 10.0, n)
    colour = np.array(["red", "green", "blue"])[np.arange(n) % 3]
    bonus = np.where(colour == "red", 2.0, np.where(colour == "green", 0.0, -2.0))
    score = (size - 10.0) / 3.0 + (weight - 50.0) / 10.0 + bonus / 2.0 + rng.normal(0.0, 0.3, n)
    grade = np.where(score > 0.6, "a", np.where(score > -0.6, "b", "c"))
    passed = np.where(score > 0.0, "yes", "no")
    price = 3.0 * size + 0.5 * weight + 4.0 * bonus + rng.normal(0.0, 1.0, n)
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["size", "weight", "colour", "grade", "passed", "price"])
        for row in zip(size, weight, colour, grade, passed, price):
            w.writerow([f"{row[0]:.3f}", f"{row[1]:.2f}", row[2], row[3], row[4], f"{row[5]:.2f}"])
    return path


def example(directory: Path) -> dict[str, Any]:
    """``DatasetSpec.example`` of ``csv``: writes ``example.csv`` into ``directory``; target ``grade``."""
    return {"path": str(write_example(Path(directory) / "example.csv")), "target": "grade"}


def example_binary(directory: Path) -> dict[str, Any]:
    """``DatasetSpec.example`` of ``csv-binary``: the example file with target ``passed``."""
    return {"path": str(write_example(Path(directory) / "example.csv")), "target": "passed"}


def example_regression(directory: Path) -> dict[str, Any]:
    """``DatasetSpec.example`` of ``csv-regression``: the example file with target ``price``."""
    return {"path": str(write_example(Path(directory) / "example.csv")), "target": "price"}


# -- encoding raw rows (training and zoo predict) ---------------------------------------------


def _encode_columns(values: Sequence[Sequence[str]], state: Mapping[str, Any]) -> np.ndarray:
    """Cells of the feature columns (in ``state['columns']`` order) -> un-standardised features.

    A missing cell takes the column's stored fill value (``state['fill']``); without one
    (``impute=none``, or a state written before imputation existed) it is refused.
    """
    cols = state["columns"]
    numeric = set(state["numeric"])
    fill = state.get("fill") or {}
    n = len(values[0]) if values else 0

    def filled(i: int, name: str) -> Any:
        if name not in fill:
            raise ValueError(f"data row {i + 1}, column '{name}': missing value (the model was trained with "
                             f"impute={state.get('impute') or 'none'}, which refuses them)")
        return fill[name]

    blocks = []
    for name, cells in zip(cols, values):
        if name in numeric:
            out = np.empty((n, 1), dtype=np.float32)
            for i, cell in enumerate(cells):
                v = float(filled(i, name)) if _is_missing(cell) else _number(cell.strip())
                if v is None or not math.isfinite(v):
                    raise ValueError(f"data row {i + 1}, column '{name}': {cell.strip()!r} is not a number")
                out[i, 0] = v
        else:
            cats = state["categories"][name]
            index = {c: j for j, c in enumerate(cats)}
            out = np.zeros((n, len(cats)), dtype=np.float32)
            for i, cell in enumerate(cells):
                j = index.get(str(filled(i, name)) if _is_missing(cell) else cell.strip())
                if j is not None:  # a category not seen in training stays all zeros
                    out[i, j] = 1.0
        blocks.append(out)
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0), dtype=np.float32)


def encode(rows: Sequence[Mapping[str, str]], state: Mapping[str, Any]) -> np.ndarray:
    """Raw rows (dicts keyed by the header, string cells) -> float32 ``(N, features)``, NOT standardised.

    Uses the fitted ``state`` the dataset stored with the run: the trained column order,
    which columns are numeric, the categories of each categorical column and the fill
    value of each column (missing cells take it; with ``impute=none`` they are refused).
    Extra columns (such as the target) are ignored. A missing column or a bad cell raises
    ``ValueError`` with a one-line message (data rows are counted from 1, after the header).
    """
    if state.get("format") != FORMAT:
        raise ValueError(f"this preprocessing state is {state.get('format')!r}, not {FORMAT!r}")
    cols = list(state["columns"])
    if not rows:
        raise ValueError("no data rows")
    present = [k for k in rows[0].keys() if isinstance(k, str)]
    missing = [c for c in cols if c not in present]
    if missing:
        unknown = [k for k in present if k not in cols and k != state.get("target")]
        close = difflib.get_close_matches(missing[0], unknown, n=1, cutoff=0.6)
        hint = f" (is '{close[0]}' meant to be '{missing[0]}'?)" if close else ""
        raise ValueError(f"missing column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(repr(c) for c in missing)}{hint}; the model was trained on the columns "
                         f"{', '.join(cols)}, and the first line must be a header naming them")
    return _encode_columns([[row.get(c) or "" for row in rows] for c in cols], state)

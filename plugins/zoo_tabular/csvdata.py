"""The ``csv`` datasets: a local CSV file with a header, one sample a row, one column the target.

A zoo dataset declares its one task before any data is read, so the plugin declares
three: ``csv`` (classification: two or more classes, text or integer labels),
``csv-binary`` (exactly two classes) and ``csv-regression`` (a numeric target), all
loaded by :func:`load`, whose ``task="auto"`` infers the task from the target column.

Numeric feature columns are standardised with training-split statistics (stored as
``Splits.preprocess``: ``mean``/``std``, with 0/1 for one-hot features); non-numeric
columns are one-hot encoded over the categories seen in the training split (a
category first seen later encodes as all zeros). Everything fitted that is not a
tensor goes into ``Splits.state`` (JSON; a run keeps it as ``preprocess.json``):

``{"format", "target", "task", "columns", "numeric", "categories", "features",
"classes", "delimiter"}``

so that :func:`encode` turns raw rows of a new file into the same features; ``zoo
predict`` then standardises them with the stored mean/std.

Problems with the file raise ``ValueError`` with a one-line message that names the
file, line and column (the engine reports them as the dataset failing to load).
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from zoo.data import Splits, split_arrays
from zoo.errors import did_you_mean

FORMAT = "zoo-csv/1"
TASKS = ("auto", "regression", "binary", "multiclass")
#: Cells read as missing values (compared lower-cased, after stripping blanks).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "?"})
#: Fewer data rows than this cannot give three useful splits.
MIN_ROWS = 10
#: Stratified train/validation/test splits need this many samples of every class.
MIN_PER_CLASS = 3
#: task=auto: an integer target with at most this many distinct values holds class labels.
MAX_AUTO_CLASSES = 20


# -- reading the file ---------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _delimiter(delimiter: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "space": " ", "pipe": "|"}
    d = named.get(delimiter.lower(), delimiter) if isinstance(delimiter, str) else delimiter
    if not isinstance(d, str) or len(d) != 1:
        raise ValueError(f"delimiter must be one character (or tab, comma, semicolon, space, pipe), not {delimiter!r}")
    return d


def read_table(path: str | Path, delimiter: str = ",") -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the ``(line number, cells)`` of every non-blank data row; cells stripped.

    Raises ``ValueError`` (one line) for a missing or unreadable file, a bad header or a
    row whose width differs from the header's.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError(f"CSV file {p} does not exist")
    if not p.is_file():
        raise ValueError(f"{p} is not a file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{p} is not a UTF-8 text file") from None
    except OSError as exc:
        raise ValueError(f"cannot read {p}: {exc.strerror}") from None
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            cells = [c.strip() for c in cells]
            if any(cells):
                rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise ValueError(f"{p} is not a valid CSV file (line {reader.line_num}: {exc})") from None
    if not rows:
        raise ValueError(f"{p} is empty: it needs a header row naming the columns, then the data")
    _, header = rows.pop(0)
    for j, name in enumerate(header):
        if not name:
            raise ValueError(f"{p}: column {j + 1} of the header has no name")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ValueError(f"{p}: the header names {', '.join(repr(d) for d in dupes)} more than once")
    for line, cells in rows:
        if len(cells) != len(header):
            raise ValueError(f"{p} line {line} has {_plural(len(cells), 'value')} but the header names "
                             f"{_plural(len(header), 'column')}{_delimiter_hint(header, delimiter)}")
    return header, rows


def _delimiter_hint(header: Sequence[str], delimiter: str) -> str:
    if len(header) == 1:
        for d in (";", "\t", "|", ","):
            if d != delimiter and d in header[0]:
                shown = "tab" if d == "\t" else d
                return f" (is the delimiter {shown!r}? set delimiter={shown})"
    return ""


def _number(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return v


def _is_missing(cell: str | None) -> bool:
    return cell is None or cell.strip().lower() in MISSING


# -- the dataset ----------------------------------------------------------------------------


def load(*, seed: int, path: str = "", target: str = "", task: str = "auto", val_size: float = 0.2,
         test_size: float = 0.2, delimiter: str = ",") -> Splits:
    """Read ``path``, encode it, split it (seeded, stratified for classification), standardise.

    ``task``: ``regression``, ``binary``, ``multiclass`` (two or more classes) or ``auto``
    (:func:`infer_task`). The declared datasets fix it, because a zoo dataset declares its one
    task before any data is read: ``csv`` is ``multiclass``, ``csv-binary`` and
    ``csv-regression`` the others.
    """
    if not isinstance(path, str) or not path.strip():
        raise ValueError("no CSV file given: set the dataset's path and target column "
                         "(--set path=FILE.csv --set target=COLUMN)")
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    sep = _delimiter(delimiter)
    p = Path(path).expanduser()
    header, rows = read_table(p, sep)
    if not target:
        raise ValueError(f"no target column given: set target=COLUMN (the columns of {p}: {', '.join(header)})")
    if target not in header:
        raise ValueError(f"{p} has no column '{target}' (its columns: {', '.join(header)})"
                         f"{_delimiter_hint(header, sep)}{did_you_mean(target, header)}")
    features = [h for h in header if h != target]
    if not features:
        raise ValueError(f"{p} has no feature columns besides the target '{target}'")
    n = len(rows)
    if n < MIN_ROWS:
        raise ValueError(f"{p} has only {_plural(n, 'data row')}; at least {MIN_ROWS} are needed to make "
                         "train, validation and test splits")
    for line, cells in rows:
        for name, cell in zip(header, cells):
            if _is_missing(cell):
                shown = f"{cell!r}" if cell else "an empty cell"
                raise ValueError(f"{p} line {line}: missing value in column '{name}' ({shown}); fill it in or "
                                 "drop the row")
    columns = {name: [cells[j] for _, cells in rows] for j, name in enumerate(header)}
    lines = [line for line, _ in rows]

    numeric = []
    for name in features:
        values = [_number(c) for c in columns[name]]
        if all(v is not None for v in values):
            bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
            if bad is not None:
                raise ValueError(f"{p} line {lines[bad]}, column '{name}': {columns[name][bad]!r} is not a finite "
                                 "number")
            numeric.append(name)

    task, y, classes = _target(p, target, columns[target], lines, task)
    classification = task != "regression"

    # Split row numbers with the core's splitter (the same seeded, stratified splits as every dataset);
    # the encoding is then fitted on the training rows only.
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

    categories = {name: sorted({columns[name][i] for i in train}) for name in features if name not in numeric}
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


def infer_task(cells: Sequence[str]) -> str:
    """``task=auto``: text labels or a few distinct integers -> classification (two -> binary), else regression.

    "A few" is at most 20 distinct values, and at most half as many as there are rows.
    """
    numbers = [_number(c) for c in cells]
    if all(v is not None and math.isfinite(v) for v in numbers):
        distinct: set = set(numbers)
        integral = all(float(v).is_integer() for v in distinct)
        if not (integral and len(distinct) <= min(MAX_AUTO_CLASSES, len(cells) // 2)):
            return "regression"
    else:
        distinct = set(cells)
    return "binary" if len(distinct) == 2 else "multiclass"


#: Where to point someone whose target does not fit the dataset's task.
TRAIN_AS = {"regression": "the dataset csv-regression", "binary": "the dataset csv-binary",
            "multiclass": "the dataset csv"}


def _target(p: Path, target: str, cells: list[str], lines: list[int], task: str):
    """(task, y, class names): y holds class indices for classification, floats for regression."""
    numbers = [_number(c) for c in cells]
    numeric = all(v is not None and math.isfinite(v) for v in numbers)
    looks_like = infer_task(cells)
    if task == "auto":
        task = looks_like
    if task == "regression":
        if not numeric:
            bad = next(i for i, v in enumerate(numbers) if v is None or not math.isfinite(v))
            raise ValueError(f"the target column '{target}' is not numeric ({p} line {lines[bad]}: "
                             f"{cells[bad]!r}), so it cannot be a regression target; train it as classification "
                             f"({TRAIN_AS['multiclass']}, or {TRAIN_AS['binary']} for two classes)")
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


# -- the declared datasets: one task each ---------------------------------------------------


def classification(*, seed: int, path: str = "", target: str = "", val_size: float = 0.2, test_size: float = 0.2,
                   delimiter: str = ",") -> Splits:
    """``csv``: two or more classes (text or integer labels), for a class-index loss such as cross-entropy."""
    return load(seed=seed, path=path, target=target, task="multiclass", val_size=val_size, test_size=test_size,
                delimiter=delimiter)


def binary(*, seed: int, path: str = "", target: str = "", val_size: float = 0.2, test_size: float = 0.2,
           delimiter: str = ",") -> Splits:
    """``csv-binary``: exactly two classes (binary metrics; trains with bce-with-logits or cross-entropy)."""
    return load(seed=seed, path=path, target=target, task="binary", val_size=val_size, test_size=test_size,
                delimiter=delimiter)


def regression(*, seed: int, path: str = "", target: str = "", val_size: float = 0.2, test_size: float = 0.2,
               delimiter: str = ",") -> Splits:
    """``csv-regression``: a numeric target."""
    return load(seed=seed, path=path, target=target, task="regression", val_size=val_size, test_size=test_size,
                delimiter=delimiter)


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
    """Cells of the feature columns (in ``state['columns']`` order) -> un-standardised features."""
    cols = state["columns"]
    numeric = set(state["numeric"])
    n = len(values[0]) if values else 0
    blocks = []
    for name, cells in zip(cols, values):
        if name in numeric:
            out = np.empty((n, 1), dtype=np.float32)
            for i, cell in enumerate(cells):
                v = None if _is_missing(cell) else _number(cell.strip())
                if v is None or not math.isfinite(v):
                    what = "missing value" if _is_missing(cell) else f"{cell.strip()!r} is not a number"
                    raise ValueError(f"data row {i + 1}, column '{name}': {what}")
                out[i, 0] = v
        else:
            cats = state["categories"][name]
            index = {c: j for j, c in enumerate(cats)}
            out = np.zeros((n, len(cats)), dtype=np.float32)
            for i, cell in enumerate(cells):
                if _is_missing(cell):
                    raise ValueError(f"data row {i + 1}, column '{name}': missing value")
                j = index.get(cell.strip())
                if j is not None:  # a category not seen in training stays all zeros
                    out[i, j] = 1.0
        blocks.append(out)
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0), dtype=np.float32)


def encode(rows: Sequence[Mapping[str, str]], state: Mapping[str, Any]) -> np.ndarray:
    """Raw rows (dicts keyed by the header, string cells) -> float32 ``(N, features)``, NOT standardised.

    Uses the fitted ``state`` the dataset stored with the run: the trained column order,
    which columns are numeric, and the categories of each categorical column. Extra
    columns (such as the target) are ignored. A missing column or a bad cell raises
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

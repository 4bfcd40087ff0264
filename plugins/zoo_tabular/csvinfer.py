"""The light half of the ``csv`` datasets: reading a CSV file row by row and inferring the task.

``zoo train`` calls :func:`infer` (the ``csv`` dataset's ``infer_task``) with the resolved
dataset parameters before torch, numpy or scikit-learn are imported, so this module uses
the standard library only. It streams the file and looks at the target column only, and
it stops collecting distinct values after :data:`DISTINCT_BOUND`, so a large file costs
one pass and little memory.

The rule of ``task=auto`` (:class:`TargetColumn`, also used by :mod:`zoo_tabular.csvdata`
when it loads the file): text labels, or a few distinct integers, are classes (exactly
two: ``binary``, else ``multiclass``); any other numeric target is ``regression``. "A few"
is at most :data:`MAX_AUTO_CLASSES` distinct values and at most half as many as there are
rows.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from zoo.errors import did_you_mean

#: The values of the csv dataset's ``task`` parameter.
TASKS = ("auto", "regression", "binary", "multiclass")
#: Cells read as missing values (compared lower-cased, after stripping blanks).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "?"})
#: task=auto: an integer target with at most this many distinct values holds class labels.
MAX_AUTO_CLASSES = 20
#: Fewer data rows than this cannot give three useful splits.
MIN_ROWS = 10
#: Distinct target values are collected up to this many; beyond it only "more than" is known.
DISTINCT_BOUND = 1000
#: Where to point someone whose target does not fit the task.
TRAIN_AS = {"regression": "task=regression (or the dataset csv-regression)",
            "binary": "task=binary (or the dataset csv-binary)",
            "multiclass": "task=multiclass"}

_NAMED = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "space": " ", "pipe": "|"}


def delimiter_char(delimiter: Any) -> str:
    """The one-character field separator for ``delimiter`` (a character, or tab, comma, ...)."""
    d = _NAMED.get(delimiter.lower(), delimiter) if isinstance(delimiter, str) else delimiter
    if not isinstance(d, str) or len(d) != 1:
        raise ValueError(f"delimiter must be one character (or tab, comma, semicolon, space, pipe), not {delimiter!r}")
    return d


def number(cell: str) -> float | None:
    """The cell as a float, or None when it is not a number."""
    try:
        return float(cell)
    except ValueError:
        return None


def is_missing(cell: str | None) -> bool:
    return cell is None or cell.strip().lower() in MISSING


def shown(cell: str) -> str:
    """A cell as an error message quotes it."""
    return repr(cell) if cell else "an empty cell"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def missing_target(p: Path | str, line: int, target: str, cell: str) -> str:
    """The message for a missing target value (a target is never imputed)."""
    return (f"{p} line {line}: missing value in the target column '{target}' ({shown(cell)}); a target is never "
            "imputed: fill it in or drop the row")


def too_few_rows(p: Path | str, n: int) -> str:
    return (f"{p} has only {plural(n, 'data row')}; at least {MIN_ROWS} are needed to make train, validation "
            "and test splits")


def delimiter_hint(header: list[str], delimiter: str) -> str:
    if len(header) == 1:
        for d in (";", "\t", "|", ","):
            if d != delimiter and d in header[0]:
                name = "tab" if d == "\t" else d
                return f" (is the delimiter {name!r}? set delimiter={name})"
    return ""


# -- reading ------------------------------------------------------------------------------


def iter_table(path: str | Path, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Stream a CSV file: first ``(line, header)``, then ``(line number, cells)`` of every non-blank row.

    Cells are stripped. Raises ``ValueError`` (one line) for a missing or unreadable file,
    an empty file, a bad header, or a row whose width differs from the header's.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError(f"CSV file {p} does not exist")
    if not p.is_file():
        raise ValueError(f"{p} is not a file")
    header: list[str] | None = None
    try:
        with open(p, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            try:
                for cells in reader:
                    cells = [c.strip() for c in cells]
                    if not any(cells):
                        continue
                    if header is None:
                        header = cells
                        _check_header(p, header)
                    elif len(cells) != len(header):
                        raise ValueError(f"{p} line {reader.line_num} has {plural(len(cells), 'value')} but the "
                                         f"header names {plural(len(header), 'column')}"
                                         f"{delimiter_hint(header, delimiter)}")
                    yield reader.line_num, cells
            except csv.Error as exc:
                raise ValueError(f"{p} is not a valid CSV file (line {reader.line_num}: {exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{p} is not a UTF-8 text file") from None
    except OSError as exc:
        raise ValueError(f"cannot read {p}: {exc.strerror}") from None
    if header is None:
        raise ValueError(f"{p} is empty: it needs a header row naming the columns, then the data")


def _check_header(p: Path, header: list[str]) -> None:
    for j, name in enumerate(header):
        if not name:
            raise ValueError(f"{p}: column {j + 1} of the header has no name")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ValueError(f"{p}: the header names {', '.join(repr(d) for d in dupes)} more than once")


def target_index(p: Path, header: list[str], target: str | None, delimiter: str) -> int:
    """The position of the target column in ``header``, or a one-line ``ValueError``."""
    if not target:
        raise ValueError(f"no target column given: set target=COLUMN (the columns of {p}: {', '.join(header)})")
    if target not in header:
        raise ValueError(f"{p} has no column '{target}' (its columns: {', '.join(header)})"
                         f"{delimiter_hint(header, delimiter)}{did_you_mean(target, header)}")
    return header.index(target)


# -- the rule -----------------------------------------------------------------------------


class TargetColumn:
    """The target column's cells, added one by one, and the task they look like (``task=auto``).

    Keeps counts and at most :data:`DISTINCT_BOUND` distinct values, not the cells.
    """

    def __init__(self, target: str = "target", where: str = "") -> None:
        self.target = target
        self.where = where
        self.rows = 0
        self.text: tuple[int | None, str] | None = None  # the first cell that is not a number
        self.not_finite: tuple[int | None, str] | None = None  # the first inf (nan is a missing marker)
        self.integral = True
        self.numbers: set[float] = set()
        self.labels: set[str] = set()

    def add(self, cell: str, line: int | None = None) -> None:
        self.rows += 1
        if len(self.labels) <= DISTINCT_BOUND:
            self.labels.add(cell)
        if self.text is not None:
            return
        v = number(cell)
        if v is None:
            self.text = (line, cell)
        elif not math.isfinite(v):
            if self.not_finite is None:
                self.not_finite = (line, cell)
        else:
            if self.integral and not v.is_integer():
                self.integral = False
            if len(self.numbers) <= DISTINCT_BOUND:
                self.numbers.add(v)

    @property
    def numeric(self) -> bool:
        """Every cell is a finite number."""
        return self.text is None and self.not_finite is None

    @staticmethod
    def _count(values: set) -> str:
        return f"more than {DISTINCT_BOUND}" if len(values) > DISTINCT_BOUND else str(len(values))

    @staticmethod
    def _some(values: Iterable[str], n: int = 5) -> str:
        values = list(values)
        return ", ".join(values[:n]) + (", ..." if len(values) > n else "")

    def task(self) -> str:
        """The task the column looks like (``regression``, ``binary`` or ``multiclass``)."""
        return self.decide()[0]

    def decide(self) -> tuple[str, str]:
        """``(task, reason)``: the task the column looks like and what was seen, in a few words.

        A numeric column with an infinite value is refused (``ValueError``): it is neither a
        usable regression target nor a set of labels.
        """
        t = self.target
        if self.text is None and self.not_finite is not None:
            line, cell = self.not_finite
            where = f"{self.where} line {line}: " if self.where and line is not None else ""
            raise ValueError(f"{where}the target '{t}' holds {cell!r}, which is not a finite number")
        if self.text is None:
            limit = min(MAX_AUTO_CLASSES, self.rows // 2)
            k = len(self.numbers)
            if not self.integral:
                return "regression", f"target '{t}' holds {self._count(self.numbers)} distinct numbers, not all " \
                                     "integers"
            if k > limit:
                return "regression", (f"target '{t}' holds {self._count(self.numbers)} distinct integers in "
                                      f"{plural(self.rows, 'row')}, more than the {limit} that auto reads as "
                                      f"classes; set task=multiclass to train them as classes")
            task = "binary" if k == 2 else "multiclass"
            names = self._some(str(int(v)) for v in sorted(self.numbers))
            return task, (f"target '{t}' holds {k} distinct integers ({names}) in {plural(self.rows, 'row')}; "
                          "set task=regression to train them as numbers")
        k = len(self.labels)
        task = "binary" if k == 2 else "multiclass"
        names = self._some(sorted(self.labels)) if k <= DISTINCT_BOUND else "..."
        return task, f"target '{t}' holds {self._count(self.labels)} text labels ({names})"


def infer_task(cells: Iterable[str]) -> str:
    """``task=auto`` for a list of target cells: ``regression``, ``binary`` or ``multiclass``."""
    column = TargetColumn()
    for cell in cells:
        column.add(cell)
    return column.task()


# -- the dataset's infer_task -------------------------------------------------------------


def infer(params: Mapping[str, Any]) -> tuple[str, str]:
    """The ``csv`` dataset's ``infer_task``: ``(task, reason)`` from its resolved parameters.

    An explicit ``task`` is returned as given (the dataset checks it against the data when
    it loads). ``task=auto`` streams the file once, reading the header and the target
    column; a missing file or column, a ragged row or a missing target value raises a
    one-line ``ValueError``.
    """
    task = params.get("task", "auto")
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    if task != "auto":
        return task, ""
    path = params.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ValueError("no CSV file given: set the dataset's path and target column "
                         "(--set path=FILE.csv --set target=COLUMN)")
    sep = delimiter_char(params.get("delimiter", ","))
    p = Path(path).expanduser()
    rows = iter_table(p, sep)
    _, header = next(rows)
    target = params.get("target")
    j = target_index(p, header, target, sep)
    column = TargetColumn(str(target), str(p))
    for line, cells in rows:
        cell = cells[j]
        if is_missing(cell):
            raise ValueError(missing_target(p, line, str(target), cell))
        column.add(cell, line)
    if column.rows < MIN_ROWS:
        raise ValueError(too_few_rows(p, column.rows))
    return column.decide()

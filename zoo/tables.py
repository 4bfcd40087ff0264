"""Plain-text tables that fit the screen: what ``zoo list`` and ``zoo runs`` print.

Light on purpose (only the standard library): ``zoo list`` must start without torch,
numpy or scikit-learn.
"""

from __future__ import annotations

import shutil
import textwrap
import sys
from collections.abc import Iterable, Sequence

#: The widest a table gets, also when the output is not a terminal.
MAX_WIDTH = 100

#: Marks a shortened cell (ASCII, so any terminal or file encoding can show it).
ELLIPSIS = "..."


def output_width(limit: int = MAX_WIDTH) -> int:
    """Columns a table may use: the terminal's width, at most ``limit``.

    Output that is not a terminal (a pipe, a file) always gets ``limit``, so what
    scripts and tests read does not depend on the window it was started from.
    """
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        return limit
    return max(20, min(limit, shutil.get_terminal_size((limit, 24)).columns))


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in :data:`ELLIPSIS` when cut."""
    if len(text) <= width:
        return text
    if width <= len(ELLIPSIS):
        return text[:max(width, 0)]
    return text[:width - len(ELLIPSIS)] + ELLIPSIS


def _cell(value: object) -> str:
    return "-" if value is None else str(value).replace("\r", " ").replace("\n", " ").replace("\t", " ")


def format_table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None,
                 max_width: int = MAX_WIDTH, shrink: Sequence[int] | None = None, min_width: int = 8,
                 indent: str = "", gap: int = 2, wrap: Sequence[int] = ()) -> str:
    """Lay ``rows`` out under ``header`` in aligned columns, each line at most ``max_width`` characters.

    ``align`` holds one character per column: ``<`` (left, for text) or ``>`` (right,
    for numbers, so their digits line up); all left by default. ``None`` cells show as
    ``-``. When the table is too wide, the widest of the ``shrink`` columns (default:
    every left-aligned column) is shortened, one character at a time, down to
    ``min_width`` (never narrower than its header); if that is not enough, any
    left-aligned column is shortened down to its header's width. A shortened cell ends
    in :data:`ELLIPSIS`. Right-aligned columns are never shortened, so a table whose
    numbers and headers alone are wider than ``max_width`` overflows rather than lie.
    ``indent`` starts every line and counts toward ``max_width``. Trailing spaces are
    stripped. A column in ``wrap`` is never cut: its text continues on the next lines,
    within the column (for prose such as help texts).
    """
    n = len(header)
    align = align or "<" * n
    if len(align) != n or set(align) - {"<", ">"}:
        raise ValueError(f"align must be {n} characters of '<' or '>', not {align!r}")
    table = [[_cell(c) for c in header]]
    for row in rows:
        if len(row) != n:
            raise ValueError(f"a row has {len(row)} cells, the header {n}")
        table.append([_cell(c) for c in row])
    widths = [max(len(r[i]) for r in table) for i in range(n)]
    budget = max_width - len(indent) - gap * (n - 1)
    text_cols = [i for i in range(n) if align[i] == "<"]
    first = list(shrink) if shrink is not None else text_cols
    for cols, floor in ((first, min_width), (text_cols, 0)):
        floors = {i: min(widths[i], max(floor, len(table[0][i]), len(ELLIPSIS) + 1)) for i in cols}
        excess = sum(widths) - budget
        while excess > 0:
            candidates = [i for i in cols if widths[i] > floors[i]]
            if not candidates:
                break
            widest = max(candidates, key=lambda i: widths[i])  # the leftmost of equals
            widths[widest] -= 1
            excess -= 1
    sep = " " * gap
    lines = []
    for row in table:
        parts = [textwrap.wrap(c, w) or [""] if i in wrap else [shorten(c, w)] for i, (c, w) in
                 enumerate(zip(row, widths))]
        for k in range(max(len(p) for p in parts)):
            cells = ((p[k] if k < len(p) else "").rjust(w) if a == ">" else (p[k] if k < len(p) else "").ljust(w)
                     for p, w, a in zip(parts, widths, align))
            lines.append((indent + sep.join(cells)).rstrip())
    return "\n".join(lines)

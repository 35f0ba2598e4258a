"""Tables as kubectl prints them (upper-case headers; columns two spaces apart, as in
`sla-operator report`), fitted to a width by shortening the columns that may give way, and
coloured only for a terminal."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

DEFAULT_WIDTH = 100
GAP = "  "
ELLIPSIS = "…"

_CODES = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "bold": "1", "dim": "2"}


def use_colour(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colours for a terminal only; never with NO_COLOR set (https://no-color.org) or TERM=dumb."""
    if "NO_COLOR" in environ or environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def output_width(stream: TextIO, environ: Mapping[str, str]) -> int:
    """A terminal's width; 100 columns for a pipe or a file (COLUMNS overrides both)."""
    if environ.get("COLUMNS", "").isdigit():
        return max(40, int(environ["COLUMNS"]))
    isatty = getattr(stream, "isatty", None)
    if isatty and isatty():
        return max(40, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)
    return DEFAULT_WIDTH


@dataclass(frozen=True)
class Cell:
    text: str
    colour: str | None = None  # one of _CODES


def paint(text: str, colour: str | None, enabled: bool) -> str:
    if not enabled or colour is None or not text:
        return text
    return f"\x1b[{_CODES[colour]}m{text}\x1b[0m"


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(0, width - 1)] + ELLIPSIS


def render(headers: Sequence[str], rows: Sequence[Sequence[Cell | str]], width: int = DEFAULT_WIDTH,
           colour: bool = False, shrink: Sequence[tuple[str, int]] = ()) -> str:
    """The table as text, lines at most ``width`` columns wide.

    ``shrink`` lists (column, narrowest) in the order columns give way when the table is too
    wide (e.g. TITLE down to 24, then AGREEMENT down to 8, then TITLE down to 8). Columns not
    listed, such as names a person copies into the next command, are never cut."""
    cells = [[c if isinstance(c, Cell) else Cell(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i].text) for r in cells]) for i, h in enumerate(headers)]
    limits = _fit(list(headers), widths, width, shrink)
    lines = [GAP.join(shorten(h, w).ljust(w) for h, w in zip(headers, limits, strict=True))]
    for row in cells:
        parts = []
        for cell, limit in zip(row, limits, strict=True):
            shown = shorten(cell.text, limit)
            parts.append(paint(shown, cell.colour, colour) + " " * (limit - len(shown)))
        lines.append(GAP.join(parts))
    return "".join(line.rstrip() + "\n" for line in lines)


def _fit(headers: list[str], widths: list[int], width: int,
         shrink: Sequence[tuple[str, int]]) -> list[int]:
    limits = list(widths)
    excess = sum(limits) + len(GAP) * (len(limits) - 1) - width
    for column, narrowest in shrink:
        if excess <= 0:
            break
        if column in headers:
            index = headers.index(column)
            cut = min(excess, max(0, limits[index] - max(narrowest, len(column))))
            limits[index] -= cut
            excess -= cut
    return limits


def terminal(stream: TextIO) -> tuple[int, bool]:
    """Width and colour for ``stream`` under the current environment."""
    return output_width(stream, os.environ), use_colour(stream, os.environ)

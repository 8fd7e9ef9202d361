"""Shared helpers for the vendor-page importers: table parsing and row building.

Pure text functions (no file access): markdown pipe tables, CSV text, numbers with thousands
separators, and the layout/notes conventions of SCHEMA.md that every importer repeats.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

from . import Row

_NUM = re.compile(r"^-?[0-9][0-9,]*(\.[0-9]+)?$")


def num(cell: str) -> float | None:
    """A table cell as a number ('12,345' -> 12345.0); None when empty or not a plain number."""
    c = cell.strip().replace("\u202f", "").replace(" ", "")
    if not c or not _NUM.match(c):
        return None
    return float(c.replace(",", ""))


def fmt(x: float) -> str:
    """A number as plain decimal text: integers without '.0', others with up to 10 significant digits."""
    if float(x).is_integer() and abs(x) < 1e18:
        return str(int(x))
    return f"{x:.10g}"


def md_tables(text: str) -> list[tuple[int, list[list[str]]]]:
    """Markdown pipe tables in ``text``: (line index of the header, rows of cells incl. header).

    Leading/trailing pipes are optional (page text extracts omit them). The separator row
    (``|---|``) is dropped; cells are stripped; ``<br/>`` becomes a space.
    """
    out: list[tuple[int, list[list[str]]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if "|" in lines[i] and i + 1 < len(lines) and _is_sep(lines[i + 1]):
            start = i
            rows = [_cells(lines[i])]
            i += 2
            while i < len(lines) and "|" in lines[i]:
                if i + 1 < len(lines) and _is_sep(lines[i + 1]):
                    break  # a new table's header line
                rows.append(_cells(lines[i]))
                i += 1
            out.append((start, rows))
        else:
            i += 1
    return out


def _is_sep(line: str) -> bool:
    s = line.strip()
    return "|" in s and set(s) <= set("|-: ") and "-" in s


def _cells(line: str) -> list[str]:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|"):
        s = s[:-1]
    return [re.sub(r"<br\s*/?>", " ", c, flags=re.I).strip() for c in s.split("|")]


def headings_before(text: str, line_no: int) -> list[str]:
    """Markdown headings ('#'...) above a line, nearest last."""
    return [ln.strip() for ln in text.splitlines()[:line_no] if ln.lstrip().startswith("#")]


def csv_rows(text: str) -> list[dict[str, str]]:
    """CSV text as dicts with stripped header names and cells."""
    reader = csv.reader(io.StringIO(text))
    rows = list(reader)
    if not rows:
        return []
    head = [h.strip() for h in rows[0]]
    return [
        {h: (r[i].strip() if i < len(r) else "") for i, h in enumerate(head)} for r in rows[1:] if r
    ]


def layout(**kw: int) -> dict[str, str]:
    """Parallel-degree cells (tp, pp, ep, cp, dp, replicas, n_chips) as text."""
    return {k: str(v) for k, v in kw.items()}


def notes(
    *parts: str, normalized: Iterable[str] = (), conversion: str = "", unusable: str = ""
) -> str:
    """The ``notes`` cell: original notes, then NORMALIZED / CONVERSION / UNUSABLE sections."""
    s = " ".join(p for p in parts if p).strip()
    norm = " ".join(n for n in normalized if n)
    if unusable:
        s += f" | UNUSABLE: {unusable}"
    if norm:
        s += f" | NORMALIZED: {norm}"
    if conversion:
        s += f" | CONVERSION: {conversion}"
    return s


def slug(text: str) -> str:
    """An id fragment: upper-case letters, digits and dots, other runs become '-'."""
    return re.sub(r"[^A-Z0-9.]+", "-", text.upper()).strip("-")


def dedupe(rows: list[Row]) -> list[Row]:
    """Rows with unique ids: a repeated id gets a -2, -3 ... suffix (order kept)."""
    seen: dict[str, int] = {}
    out = []
    for r in rows:
        n = seen.get(r["id"], 0) + 1
        seen[r["id"]] = n
        out.append(r if n == 1 else {**r, "id": f"{r['id']}-{n}"})
    return out

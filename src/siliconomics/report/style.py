"""Shared table style: compact enough for an 80-column terminal (thin header rule, no box)."""

from __future__ import annotations

from rich import box
from rich.table import Table


def compact_table(title: str) -> Table:
    """A table with a header rule only and one space between columns."""
    return Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )

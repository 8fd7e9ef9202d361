"""The training columns of measured rows (``kind=training``, SCHEMA.md)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path

from .rows import MeasuredRow, read_measured


@dataclass(frozen=True, kw_only=True)
class TrainRow:
    """The training columns of one measured row (SCHEMA.md)."""

    row: MeasuredRow
    cp: int | None
    fsdp: str
    zero_stage: int | None
    virtual_pp: int | None
    micro_batch: int | None
    global_batch_seqs: int | None
    recompute: str
    train_method: str
    seq_len: int | None
    notes: str
    software: str


def _int(v: str | None, key: str, problems: list[str]) -> int | None:
    v = (v or "").strip()
    if not v:
        return None
    try:
        x = float(v)
    except ValueError:
        problems.append(f"column '{key}' must be a number, got '{v}'")
        return None
    if not math.isfinite(x):
        problems.append(f"column '{key}' must be a finite number, got '{v}'")
        return None
    return int(x)


def read_training_rows(path: Path) -> list[TrainRow]:
    """Training rows of a measured file with their training-only columns; a malformed
    training column is added to the row's ``problem`` (the row is then reported as not run)."""
    base = {r.id: r for r in read_measured(path) if r.kind == "training"}
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for i, r in enumerate(csv.DictReader(fh), start=2):
            rid = (r.get("id") or "").strip()
            if rid not in base:
                continue
            bad: list[str] = []

            def n(key: str, r: dict[str, str] = r, bad: list[str] = bad) -> int | None:
                return _int(r.get(key), key, bad)

            row = base[rid]
            tr = TrainRow(
                row=row,
                cp=n("cp"),
                fsdp=(r.get("fsdp") or "").strip().lower(),
                zero_stage=n("zero_stage"),
                virtual_pp=n("virtual_pp"),
                micro_batch=n("micro_batch"),
                global_batch_seqs=n("global_batch_seqs"),
                recompute=(r.get("recompute") or "").strip(),
                train_method=(r.get("train_method") or "full").strip() or "full",
                seq_len=n("seq_len"),
                notes=r.get("notes") or "",
                software=r.get("software") or "",
            )
            if bad:
                where = f"{path.name} line {i} (id {rid})"
                said = "; ".join(f"{where}: {b}" for b in bad)
                problem = f"{row.problem}; {said}" if row.problem else said
                tr = replace(tr, row=replace(row, problem=problem))
            out.append(tr)
    return out

"""The training columns of measured rows (``kind=training``, SCHEMA.md)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
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


def _int(v: str | None) -> int | None:
    v = (v or "").strip()
    return int(float(v)) if v else None


def read_training_rows(path: Path) -> list[TrainRow]:
    """Training rows of a measured file with their training-only columns."""
    base = {r.id: r for r in read_measured(path) if r.kind == "training"}
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r.get("id") not in base:
                continue
            out.append(
                TrainRow(
                    row=base[r["id"]],
                    cp=_int(r.get("cp")),
                    fsdp=(r.get("fsdp") or "").strip().lower(),
                    zero_stage=_int(r.get("zero_stage")),
                    virtual_pp=_int(r.get("virtual_pp")),
                    micro_batch=_int(r.get("micro_batch")),
                    global_batch_seqs=_int(r.get("global_batch_seqs")),
                    recompute=(r.get("recompute") or "").strip(),
                    train_method=(r.get("train_method") or "full").strip() or "full",
                    seq_len=_int(r.get("seq_len")),
                    notes=r.get("notes") or "",
                    software=r.get("software") or "",
                )
            )
    return out

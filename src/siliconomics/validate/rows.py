"""What every validation path shares: a row's result, the report, its summaries, and how a
measured row's layout and chip become a plan and a :class:`~siliconomics.ops.device.Device`.

Rows name chips and models by id; they resolve through the :class:`Catalog` the edge passes in
(the packaged catalog, the file's ``models.csv``, a calibration's trial profiles).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..catalog.catalog import Catalog
from ..measured.rows import MeasuredRow
from ..ops.device import Device
from ..parallel.plan import InferencePlan

if TYPE_CHECKING:
    from .banded import RowBand


@dataclass(frozen=True, kw_only=True)
class RowResult:
    row: MeasuredRow
    family: str
    predicted: float
    bound: str
    assumptions: tuple[str, ...] = ()
    simulated: float | None = None
    """offline rows: the serving simulator's steady-state prediction, shown beside
    ``predicted`` (the static max-throughput estimate), see serve_rows.py"""

    band: RowBand | None = None
    """the row's software stack and the error band of ``predicted`` (validate/banded.py)"""

    @property
    def signed_pct(self) -> float:
        return 100.0 * (self.predicted - self.row.value) / self.row.value

    @property
    def abs_pct(self) -> float:
        return abs(self.signed_pct)


@dataclass(frozen=True, kw_only=True)
class Skipped:
    row: MeasuredRow
    reason: str


@dataclass(frozen=True, kw_only=True)
class Summary:
    group: str
    n: int
    median_abs_pct: float
    median_signed_pct: float
    max_abs_pct: float


@dataclass(frozen=True, kw_only=True)
class ValidationReport:
    results: tuple[RowResult, ...]
    skipped: tuple[Skipped, ...]
    not_inference: int = 0
    by_family: tuple[Summary, ...] = field(default=())
    by_metric: tuple[Summary, ...] = field(default=())
    by_chip: tuple[Summary, ...] = field(default=())
    training: ValidationReport | None = None
    """the training rows (kind=training), validated by :mod:`.train_rows`"""

    @property
    def median_abs_pct(self) -> float:
        if not self.results:
            return math.nan
        return float(np.median([r.abs_pct for r in self.results]))


def summaries(results: Iterable[RowResult], key: str) -> tuple[Summary, ...]:
    groups: dict[str, list[RowResult]] = {}
    for r in results:
        g = r.family if key == "family" else (r.row.metric if key == "metric" else r.row.chip)
        groups.setdefault(g, []).append(r)
    out = []
    for g, rs in sorted(groups.items()):
        abs_ = [x.abs_pct for x in rs]
        out.append(
            Summary(
                group=g,
                n=len(rs),
                median_abs_pct=float(np.median(abs_)),
                median_signed_pct=float(np.median([x.signed_pct for x in rs])),
                max_abs_pct=float(np.max(abs_)),
            )
        )
    return tuple(out)


def candidate_plans(row: MeasuredRow) -> list[tuple[InferencePlan, list[str]]]:
    """The row's layout; an empty KV dtype yields candidates in order of preference."""
    notes: list[str] = []
    act = row.act_dtype or "bf16"
    if not row.act_dtype:
        notes.append("act_dtype empty -> bf16")
    weight = row.weight_dtype or act
    kvs: list[tuple[str, list[str]]] = [(row.kv_dtype, [])] if row.kv_dtype else []
    if not row.kv_dtype:
        wide = act if act in ("bf16", "fp16", "fp32") else "bf16"
        kvs.append((wide, [f"kv_dtype empty -> {wide} (framework default)"]))
        if act != wide and act in ("fp8", "int8"):
            kvs.append(
                (
                    act,
                    [
                        f"kv_dtype empty -> {act}: a {wide} cache cannot hold the "
                        "measured batch, so the run must have used this"
                    ],
                )
            )
    return [
        (
            InferencePlan(
                tp=row.tp or 1,
                pp=row.pp or 1,
                ep=row.ep or 1,
                dp=row.dp or 1,
                replicas=row.replicas or 1,
                weight_dtype=weight,
                act_dtype=act,
                kv_dtype=kv,
            ),
            notes + extra,
        )
        for kv, extra in kvs
    ]


def row_device(row: MeasuredRow, catalog: Catalog) -> Device:
    """The row's chip with its family's efficiency profile, both from ``catalog``."""
    chip = catalog.chip(row.chip)
    return Device(chip=chip, eff=catalog.profile_of(chip))

"""Measured rows made ready for calibration and cross-validation.

A :class:`Sample` is one usable measured row with its model, chip family, software stack
(inferred from the ``software`` column, :mod:`siliconomics.catalog.stacks`), source group
(leave-one-source-out folds), regime, model class and compute format: the keys of every
grouped error report and of the error-band cells (:mod:`.bands`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..catalog.schema import ModelSpec
from ..catalog.stacks import StackSpec, Workload, row_stack
from ..measured.rows import MeasuredRow

if TYPE_CHECKING:  # validate builds on this module
    from ..validate.train_rows import TrainRow

LATENCY_METRICS = ("ttft_s", "tpot_s", "e2e_latency_s")


def source_group(source: str) -> str:
    """The document a row comes from: its ``source`` without the parenthesised locator inside
    the document (``(table row: ...)``) and, for MLPerf-style ``.../results/<system>/...``
    trees, cut after the system (one submission = one source)."""
    s = source.strip()
    s = re.split(r"\s\(|\s#|#", s, maxsplit=1)[0].strip()
    m = re.search(r"^(.*?/results/[^/]+)/", s)
    if m:
        s = m.group(1)
    return s or "(no source)"


def regime(row: MeasuredRow) -> str:
    """``training``, ``latency-target`` (a per-user latency limit or a latency metric:
    ``latency``/``server`` scenarios) or ``max-throughput``."""
    if row.kind == "training":
        return "training"
    if row.scenario in ("latency", "server") or row.metric in LATENCY_METRICS:
        return "latency-target"
    return "max-throughput"


def model_class(model: ModelSpec | None) -> str:
    """``dense`` or ``moe``; ``+gdn`` for Gated DeltaNet hybrids (Qwen3-Next, Qwen3.5) and
    ``+ssm`` for Mamba-2 ones (Nemotron-H), a class of its own in the band cells: no calibration row is of that architecture, so its
    bands fall back to the family's and widen (calibrate/bands.py, ``WIDEN_CLASS``)."""
    base = "moe" if model is not None and model.moe is not None else "dense"
    if model is None or model.linear_attention is None:
        return base
    return base + ("+gdn" if model.linear_attention.kind == "gated-deltanet" else "+ssm")


def dtype_of(row: MeasuredRow) -> str:
    """The GEMM format the row ran (act dtype; weights for weight-only quantisation)."""
    act = row.act_dtype or "bf16"
    w = row.weight_dtype or act
    return act if w == act else f"{w}/{act}"


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One usable row, keyed for calibration, cross-validation and bands."""

    row: MeasuredRow
    model: ModelSpec
    family: str
    stack: str
    stack_note: str
    group: str
    train: TrainRow | None = None
    """the training columns (training rows only)"""

    @property
    def workload(self) -> Workload:
        return "training" if self.row.kind == "training" else "inference"

    @property
    def regime(self) -> str:
        return regime(self.row)

    @property
    def model_class(self) -> str:
        return model_class(self.model)

    @property
    def dtype(self) -> str:
        return dtype_of(self.row)


def make_sample(
    row: MeasuredRow,
    model: ModelSpec,
    family: str,
    table: Mapping[str, StackSpec],
    train: TrainRow | None = None,
) -> Sample:
    wl: Workload = "training" if row.kind == "training" else "inference"
    stack, note = row_stack(row.software, family, wl, table)
    return Sample(
        row=row,
        model=model,
        family=family,
        stack=stack,
        stack_note=note,
        group=source_group(row.source),
        train=train,
    )


def by_key(samples: Sequence[Sample], key: str) -> dict[str, list[Sample]]:
    """Samples grouped by one of family, stack, regime, model_class, dtype, group, kind."""
    out: dict[str, list[Sample]] = {}
    for s in samples:
        k = s.row.kind if key == "kind" else str(getattr(s, key))
        out.setdefault(k, []).append(s)
    return out

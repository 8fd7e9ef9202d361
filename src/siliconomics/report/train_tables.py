"""Rendering of training studies (``siliconomics train``) and training validation rows."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from ..training.estimate import TrainCost, TrainEstimate
from ..training.study import TrainingStudy
from ..units import fmt_time
from ..validate.run import ValidationReport
from .style import compact_table
from .tables import validation_rows


def _gib(b: float) -> str:
    return f"{b / 2**30:.1f}"


def _usd(x: float) -> str:
    return "-" if not math.isfinite(x) else f"${x:,.0f}"


def _usd_short(x: float) -> str:
    return "-" if not math.isfinite(x) else "$" + _count(x)


def _count(x: float) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if x >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:,.0f}"


def render_study(con: Console, s: TrainingStudy) -> None:
    e0 = s.estimates[0]
    con.print(
        f"[bold]{e0.model.id}[/] training on [bold]{e0.chips} x {e0.device.id}[/]: "
        f"{e0.global_batch_seqs} sequences x {e0.seq_len} tokens per step, "
        f"{e0.plan.dtype} GEMMs, {e0.plan.method} training, budget "
        f"{_count(s.tokens)} tokens"
    )
    t = compact_table("Best plans (searched)" if s.searched else "Plan")
    # Narrow enough for an 80-column terminal with the plan on one line; HFU and energy go in
    # the per-plan lines below the table.
    for col in ("plan", "step", "tok/s", "MFU", "GiB", "days", "cost"):
        t.add_column(col, justify="left" if col == "plan" else "right", no_wrap=True)
    for k, (e, c) in enumerate(zip(s.estimates, s.costs, strict=True), start=1):
        t.add_row(
            f"{k}. {e.plan.short_label()}",
            fmt_time(e.step_time_s),
            f"{e.tokens_per_s:,.0f}",
            f"{e.mfu:.1%}",
            _gib(e.memory_total),
            f"{c.time_s / 86400:,.1f}",
            _usd_short(c.cost_usd),
        )
    con.print(t)
    if s.searched:
        for k, (e, c) in enumerate(zip(s.estimates, s.costs, strict=True), start=1):
            energy = "" if not math.isfinite(c.energy_j) else f", {c.energy_j / 3.6e9:,.0f} MWh"
            con.print(f"  {k}. HFU {e.hfu:.1%}{energy}; " + "; ".join(e.why), highlight=False)
    render_breakdown(con, e0, s.costs[0])
    if s.price:
        con.print(
            f"[dim]price ${s.price.usd_per_chip_hour:.2f}/chip-h via {s.price.system} "
            f"({s.price.region}, as of {s.price.as_of}); override with --price[/]"
        )
    else:
        con.print("[dim]no catalog price for this chip; pass --price CHIP=USD[/]")


def render_breakdown(con: Console, e: TrainEstimate, c: TrainCost) -> None:
    t = Table(title=f"Step time of plan 1 ({e.plan.short_label()})")
    t.add_column("component")
    t.add_column("s/step", justify="right")
    t.add_column("share", justify="right")
    for k, v in e.breakdown.items():
        if v > 0:
            t.add_row(k, f"{v:.4g}", f"{v / e.step_time_s:.1%}")
    m = Table(title="Memory per chip")
    m.add_column("part")
    m.add_column("GiB", justify="right")
    for k, v in e.memory.items():
        m.add_row(k, _gib(v))
    m.add_row("capacity", _gib(e.memory_capacity))
    con.print(t)
    con.print(m)
    power = "-" if not math.isfinite(c.power_w_per_chip) else f"{c.power_w_per_chip:.0f} W"
    con.print(
        f"micro-batches per step {e.microbatches}; schedule {e.plan.schedule}; power per chip "
        f"incl. host {power}" + (" (estimated TDP)" if c.power and c.power.estimated else "")
    )
    for a in e.assumptions:
        con.print(f"[dim]assumption: {a}[/]", highlight=False)


def estimate_dict(e: TrainEstimate, c: TrainCost) -> dict[str, Any]:
    def fin(x: float) -> float | None:
        return x if math.isfinite(x) else None

    return {
        "model": e.model.id,
        "chip": e.device.id,
        "chips": e.chips,
        "plan": {**e.plan.__dict__, "schedule": e.plan.schedule, "label": e.plan.label()},
        "seq_len": e.seq_len,
        "global_batch_seqs": e.global_batch_seqs,
        "microbatches": e.microbatches,
        "step_time_s": e.step_time_s,
        "tokens_per_s": e.tokens_per_s,
        "tokens_per_s_per_chip": e.tokens_per_s_per_chip,
        "mfu": e.mfu,
        "hfu": e.hfu,
        "model_flops_per_s_per_chip": e.model_flops_per_s_per_chip,
        "step_breakdown_s": e.breakdown,
        "memory_bytes": e.memory,
        "memory_capacity_bytes": e.memory_capacity,
        "time_to_train_s": c.time_s,
        "chip_hours": c.chip_hours,
        "cost_usd": fin(c.cost_usd),
        "energy_j": fin(c.energy_j),
        "power_w_per_chip": fin(c.power_w_per_chip),
        "why": list(e.why),
        "assumptions": list(e.assumptions),
    }


def study_dict(s: TrainingStudy) -> dict[str, Any]:
    return {
        "tokens": s.tokens,
        "searched": s.searched,
        "usd_per_chip_hour": s.price.usd_per_chip_hour if s.price else None,
        "price_system": s.price.system if s.price else None,
        "plans": [estimate_dict(e, c) for e, c in zip(s.estimates, s.costs, strict=True)],
    }


def render_training_validation(con: Console, r: ValidationReport, *, rows: bool = True) -> None:
    """The training rows of ``siliconomics validate``."""
    if rows:
        con.print(validation_rows(con, r.results, "Training: predicted vs measured"))
    t = compact_table("Training error by chip family")
    for col in ("family", "rows", "median |err|", "median signed", "max |err|"):
        t.add_column(col, justify="left" if col == "family" else "right")
    for s in r.by_family:
        t.add_row(
            s.group,
            str(s.n),
            f"{s.median_abs_pct:.1f}%",
            f"{s.median_signed_pct:+.1f}%",
            f"{s.max_abs_pct:.1f}%",
        )
    con.print(t)
    for sk in r.skipped:
        con.print(f"  training row not run: {sk.row.id}: {sk.reason}", highlight=False)
    con.print(
        f"train_median_abs_pct_error={r.median_abs_pct:.2f} rows={len(r.results)}",
        highlight=False,
    )

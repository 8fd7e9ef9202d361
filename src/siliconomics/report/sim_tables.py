"""Tables and JSON for ``siliconomics simulate`` (serving simulator results)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..serving.capacity import CapacityResult
from ..serving.config import ServingConfig
from ..serving.metrics import Dist, PoolStats, SimResult
from ..units import fmt_si, fmt_time
from .style import compact_table


def _f(v: float) -> float | None:
    return v if isinstance(v, int | float) and math.isfinite(v) else None


def _money(v: float) -> str:
    return "-" if not math.isfinite(v) else f"${v:,.4g}"


def dist_dict(d: Dist) -> dict[str, float | None]:
    return {k: _f(getattr(d, k)) for k in ("mean", "p50", "p90", "p99", "max")}


def pool_dict(p: PoolStats) -> dict[str, Any]:
    out = {k: getattr(p, k) for k in PoolStats.__dataclass_fields__ if k != "batch_hist"}
    out["batch_hist"] = [list(x) for x in p.batch_hist]
    return {k: (_f(v) if isinstance(v, float) else v) for k, v in out.items()}


def sim_dict(r: SimResult) -> dict[str, Any]:
    slo = r.slo
    return {
        "requests": r.n_requests,
        "duration_s": _f(r.duration_s),
        "ttft_s": dist_dict(r.ttft),
        "tpot_s": dist_dict(r.tpot),
        "e2e_s": dist_dict(r.e2e),
        "queue_s": dist_dict(r.queue),
        "requests_per_s": _f(r.requests_per_s),
        "output_tokens_per_s": _f(r.output_tokens_per_s),
        "input_tokens_per_s": _f(r.input_tokens_per_s),
        "steady_output_tokens_per_s": _f(r.steady_output_tokens_per_s),
        "goodput_requests_per_s": _f(r.goodput_rps),
        "goodput_fraction": _f(r.goodput_fraction),
        "slo": None if slo is None else {k: getattr(slo, k) for k in slo.__dataclass_fields__},
        "slo_met": r.slo_met,
        "preemptions": r.preemptions,
        "energy_j": _f(r.energy_j),
        "cost_usd": _f(r.cost_usd),
        "usd_per_million_output_tokens": _f(r.usd_per_million_output),
        "joules_per_output_token": _f(r.joules_per_output_token),
        "kv_transfer_bytes": r.kv_transfer_bytes,
        "pools": [pool_dict(p) for p in r.pools],
        "assumptions": list(r.assumptions),
    }


def capacity_dict(c: CapacityResult) -> dict[str, Any]:
    return {
        "rate_requests_per_s": _f(c.rate),
        "replicas": c.replicas,
        "output_tokens_per_s": _f(c.output_tokens_per_s),
        "saturation_requests_per_s": _f(c.saturation_rps),
        "binding": c.binding,
        "note": c.note,
        "trials": [{"rate": r, "replicas": n, "slo_met": ok} for r, n, ok in c.trials],
        "result": sim_dict(c.result) if c.result is not None else None,
    }


def _setup(cfg: ServingConfig) -> str:
    parts = []
    for p, role in zip(
        cfg.pools, ("prefill", "decode") if cfg.disaggregated else ("",), strict=False
    ):
        pl = p.plan
        layout = (
            f"{pl.replicas} x ("
            + (f"dp{pl.dp} " if pl.dp > 1 else "")
            + f"tp{pl.tp}"
            + (f" pp{pl.pp}" if pl.pp > 1 else "")
            + (f" ep{pl.ep}" if pl.ep > 1 else "")
            + ")"
        )
        mtp = "" if p.spec is None else f", MTP {p.spec.draft_tokens} @ {p.spec.accepted:g}"
        parts.append(f"{role + ': ' if role else ''}{layout} {p.chip.id}, {p.scheduler}{mtp}")
    return f"{cfg.model.id}: " + "; ".join(parts) + f"; router {cfg.router}"


def render_sim(con: Console, cfg: ServingConfig, r: SimResult) -> None:
    con.print(f"[bold]{_setup(cfg)}[/bold]", highlight=False)
    lat = compact_table(f"Latency over {r.n_requests - r.measured_from:,} requests")
    for col in ("metric", "mean", "p50", "p90", "p99", "max"):
        lat.add_column(col, justify="left" if col == "metric" else "right")
    for name, d in (
        ("TTFT", r.ttft),
        ("TPOT", r.tpot),
        ("end-to-end", r.e2e),
        ("queueing", r.queue),
    ):
        lat.add_row(name, *(fmt_time(getattr(d, k)) for k in ("mean", "p50", "p90", "p99", "max")))
    con.print(lat)
    t = Table(title="Run", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("duration (first arrival to last token)", fmt_time(r.duration_s))
    t.add_row(
        "throughput", f"{r.requests_per_s:,.3g} req/s, {r.output_tokens_per_s:,.0f} output tok/s"
    )
    t.add_row(
        "steady-state output (10-90% of finishes)", f"{r.steady_output_tokens_per_s:,.0f} tok/s"
    )
    if r.slo is not None and not r.slo.empty:
        ok = "met" if r.slo_met else "NOT met"
        t.add_row(f"SLO at p{r.slo.percentile:g} ({r.binding()} binds)", ok)
        t.add_row(
            "goodput (requests meeting every limit)",
            f"{r.goodput_rps:,.3g} req/s ({r.goodput_fraction:.1%})",
        )
    t.add_row("preemptions (recomputation)", f"{r.preemptions:,}")
    t.add_row(
        "cost of the run",
        f"{_money(r.cost_usd)} ({_money(r.usd_per_million_output)} per M output tokens)",
    )
    t.add_row(
        "energy", f"{fmt_si(r.energy_j, 'J')} ({r.joules_per_output_token:.3g} J per output token)"
    )
    if r.kv_transfer_bytes:
        t.add_row("KV transferred prefill -> decode", fmt_si(r.kv_transfer_bytes, "B"))
    con.print(t)
    pt = compact_table("Pools (batch: mean sequences per step / admission limit)")
    for col in (
        "role",
        "chip",
        "chips",
        "busy",
        "MFU",
        "KV",
        "batch",
        "steps",
        "W/chip",
        "$/chip-h",
    ):
        pt.add_column(col, justify="left" if col in ("role", "chip") else "right", no_wrap=True)
    for p in r.pools:
        pt.add_row(
            p.role,
            p.chip,
            str(p.chips),
            f"{p.utilisation:.0%}",
            f"{p.mfu:.1%}",
            f"{p.kv_utilisation:.0%}",
            f"{p.mean_batch:.1f} / {p.max_seqs:,}",
            f"{p.steps:,}",
            f"{p.watts_per_chip:,.0f}" if math.isfinite(p.watts_per_chip) else "-",
            _money(p.usd_per_chip_hour),
        )
    con.print(pt)
    for a in r.assumptions:
        con.print(f"assumption: {a}", highlight=False)


def render_capacity(con: Console, cfg: ServingConfig, c: CapacityResult, what: str) -> None:
    con.print(f"[bold]{_setup(cfg)}[/bold]", highlight=False)
    if c.result is None:
        con.print(f"{what}: none. {c.note}", highlight=False)
        return
    if what == "max rate":
        con.print(
            f"max rate within the SLO: {c.rate:,.4g} req/s = {c.output_tokens_per_s:,.0f} output "
            f"tok/s ({c.binding} binds; saturation {c.saturation_rps:,.4g} req/s; "
            f"{len(c.trials)} simulations)",
            highlight=False,
        )
    else:
        con.print(
            f"fewest replicas for {c.rate:,.4g} req/s within the SLO: {c.replicas} "
            f"({c.binding} binds; {len(c.trials)} simulations)",
            highlight=False,
        )
    render_sim(con, cfg if what == "max rate" else _scaled(cfg, c.replicas), c.result)


def _scaled(cfg: ServingConfig, n: int) -> ServingConfig:
    from dataclasses import replace

    return replace(cfg, pool=replace(cfg.pool, plan=replace(cfg.pool.plan, replicas=n)))


@contextmanager
def progress_bar(con: Console, *, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on ``con`` (stderr) fed by the simulator's callback."""
    if not enabled:
        yield lambda done, total: None
        return
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=con,
        transient=True,
    ) as bar:
        task = bar.add_task("requests", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update

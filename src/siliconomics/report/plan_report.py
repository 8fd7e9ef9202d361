"""Rendering of ``siliconomics plan``: rich tables, JSON and the self-contained HTML report."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from ..economics.sensitivity import SensitivityBar
from ..fleet import PlanOutcome
from ..fleet.result import Alternative, FleetResult
from ..fleet.training import TrainingResult
from ..units import fmt_count, fmt_time
from .html import Section
from .style import compact_table


def _t(s: float) -> str:
    return "-" if not math.isfinite(s) else fmt_time(s)


def _chips(d: dict[str, int]) -> str:
    return " + ".join(f"{n} x {c}" for c, n in sorted(d.items(), key=lambda kv: -kv[1])) or "-"


def takeaway(o: PlanOutcome) -> str:
    """One plain-language sentence per plan part."""
    parts = []
    f = o.fleet
    if f is not None:
        runner = next((a for a in f.alternatives if a.ratio is not None and a.ratio > 1.005), None)
        s = (
            f"Cheapest fleet: {_chips(f.chips)} at ${f.usd_per_hour:,.2f}/h "
            f"(${f.usd_per_million_output:,.3f} per million output tokens, "
            f"{f.power_w / 1e3:,.1f} kW)"
        )
        if f.disaggregated:
            s += ", prompts and generation on separate pools"
        if runner is not None:
            s += f"; {runner.sentence.split(' ($')[0]}"
        parts.append(s + ".")
    t = o.training
    if t is not None:
        b = t.best
        parts.append(
            f"Training {fmt_count(t.tokens)} tokens of {t.model}: {b.chips} x {b.chip} for "
            f"{b.days:.1f} days, ${b.usd_total:,.0f} in total."
        )
    return " ".join(parts)


def render(con: Console, o: PlanOutcome) -> None:
    con.print(f"[bold]{o.spec.name}[/bold] ({o.spec.pricing} prices)")
    if o.fleet is not None:
        _render_fleet(con, o.fleet)
    if o.training is not None:
        _render_training(con, o.training)
    con.print(takeaway(o), highlight=False)


def _render_fleet(con: Console, f: FleetResult) -> None:
    t = compact_table("Chosen fleet (pools of identical replicas)")
    for c in ("#", "workload", "replicas", "node", "batch", "busy", "$/h"):
        t.add_column(c, justify="left" if c in ("workload", "replicas", "node") else "right")
    for k, p in enumerate(f.pools, start=1):
        layout = f"tp{p.tp}" + (f" pp{p.pp}" if p.pp > 1 else "")
        t.add_row(
            str(k),
            p.workload + ("" if p.role == "both" else f" ({p.role})"),
            f"{p.replicas} x {layout} {p.chip}",
            p.system,
            f"{p.batch_limit:g}",
            f"{p.utilisation:.0%}",
            f"{p.chips * p.usd_per_chip_hour:,.2f}",
        )
    con.print(t)
    for k, p in enumerate(f.pools, start=1):
        shares = ", ".join(f"{b} {v:.0%}" for b, v in p.buckets.items())
        con.print(f"  pool {k} serves (share of each length bucket): {shares}", highlight=False)
    con.print(
        f"total: {_chips(f.chips)} on {', '.join(f'{n} x {s}' for s, n in f.nodes.items())}; "
        f"${f.usd_per_hour:,.2f}/h; ${f.usd_per_million_output:,.3f}/M output tokens "
        f"(${f.usd_per_million_tokens:,.3f}/M input+output); {f.power_w / 1e3:,.1f} kW"
        + (
            f"; KV transfer ${f.kv_transfer_usd_per_hour:,.2f}/h"
            if f.kv_transfer_usd_per_hour
            else ""
        ),
        highlight=False,
    )
    lt = compact_table("Predicted latency")
    for c in ("workload", "TTFT p50 / tail", "TPOT p50 / tail", "target", "source"):
        lt.add_column(c)
    for la in f.latency:
        tgt = []
        if la.slo_ttft_s is not None:
            tgt.append(f"TTFT {_t(la.slo_ttft_s)}")
        if la.slo_tpot_s is not None:
            tgt.append(f"TPOT {_t(la.slo_tpot_s)}")
        lt.add_row(
            la.workload,
            f"{_t(la.ttft_p50_s)} / {_t(la.ttft_p_s)} (p{la.percentile:g})",
            f"{_t(la.tpot_p50_s)} / {_t(la.tpot_p_s)} (p{la.percentile:g})",
            ", ".join(tgt) + (" ok" if la.meets_slo else " MISSED"),
            la.source,
        )
    con.print(lt)
    at = compact_table("Runner-ups (re-planned with fewer choices)")
    for c in ("fleet", "$/h", "vs chosen", "chips"):
        at.add_column(c)
    for a in f.alternatives:
        at.add_row(
            a.label,
            "-" if a.usd_per_hour is None else f"{a.usd_per_hour:,.2f}",
            "infeasible" if a.ratio is None else f"{(a.ratio - 1) * 100:+.0f}%",
            _chips(a.chips) if a.chips else a.reason,
        )
    con.print(at)
    pt = compact_table("Cost-latency frontier (targets scaled)")
    for c in ("targets x", "$/h", "worst TPOT", "worst TTFT", "chips"):
        pt.add_column(c)
    for pp in f.pareto:
        pt.add_row(
            f"{pp.slo_scale:g}",
            f"{pp.usd_per_hour:,.2f}",
            _t(pp.tpot_s),
            _t(pp.ttft_s),
            _chips(pp.chips),
        )
    con.print(pt)
    con.print(solver_line(f), highlight=False)
    for w in f.warnings:
        con.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
    for c, why in f.excluded.items():
        con.print(f"not considered: {c}: {why}", highlight=False)


def solver_line(f: FleetResult) -> str:
    """How the MILP solves ended: the chosen fleet's gap, and any runner-up or frontier solve
    that stopped at its time limit (its best fleet so far, with the gap left)."""
    others = [(a.label, a.solver, a.optimality_gap) for a in f.alternatives if a.solver]
    others += [(f"frontier x{p.slo_scale:g}", p.solver, p.optimality_gap) for p in f.pareto]
    cut = [f"{label}: {s}" for label, s, _ in others if s.startswith("time limit")]
    text = f"solver: chosen fleet {f.solver or 'not solved'}"
    if cut:
        return text + "; " + "; ".join(cut)
    if others:
        text += f"; runner-ups and frontier optimal (largest gap {max(g for *_, g in others):.2%})"
    return text


def _render_training(con: Console, tr: TrainingResult) -> None:
    t = Table(
        title=f"Training {fmt_count(tr.tokens)} tokens of {tr.model} within "
        f"{tr.deadline_days:g} days (cheapest per chip)"
    )
    for c in ("chip", "chips", "layout", "tokens/s", "MFU", "days", "$/h", "total $"):
        t.add_column(c)
    for o in tr.per_chip:
        t.add_row(
            o.chip,
            str(o.chips),
            o.layout,
            f"{o.tokens_per_s:,.0f}",
            f"{o.mfu:.0%}",
            f"{o.days:.1f}",
            f"{o.usd_per_hour:,.0f}",
            f"{o.usd_total:,.0f}",
        )
    con.print(t)
    for c, why in tr.excluded.items():
        con.print(f"not chosen: {c}: {why}", highlight=False)


def _plain(x: Any) -> Any:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        d = {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
        for name in (
            "usd_per_million_output",
            "usd_per_million_tokens",
            "meets_slo",
            "disaggregated",
            "mixed",
            "sentence",
        ):
            if hasattr(type(x), name):
                d[name] = _plain(getattr(x, name))
        return d
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def outcome_dict(o: PlanOutcome) -> dict[str, Any]:
    return {
        "name": o.spec.name,
        "pricing": o.spec.pricing,
        "takeaway": takeaway(o),
        "fleet": _plain(o.fleet),
        "training": _plain(o.training),
    } | _profile(o)


def _profile(o: PlanOutcome) -> dict[str, Any]:
    """The multi-period plan and its replay, when the spec has a traffic profile."""
    if o.profile is None:
        return {}
    from .profile_report import profile_dict, takeaway

    return {"takeaway": takeaway(o.profile), "profile": profile_dict(o.profile, o.replay)}


def plan_html(o: PlanOutcome, extra: Sequence[Section] = ()) -> str:
    """The self-contained HTML report (plotly charts inline). Renders only: the sensitivity
    tornado is computed by the planner (``run_plan(..., sensitivity=True)``)."""
    from .html import render_html

    sections: list[Section] = []
    f = o.fleet
    if f is not None:
        alts = [a for a in f.alternatives if a.usd_per_hour is not None]
        sections += [_chip_section(f, alts), _pareto_section(f), _breakdown_section(f, alts)]
        if o.sensitivity:
            sections.append(_tornado_section(o.sensitivity))
        sections.append(_fleet_section(f))
    if o.training is not None:
        sections.append(_training_section(o.training))
    sections += list(extra)  # e.g. the migration payback (report/port_report.py)
    return render_html(o.spec.name, takeaway(o), sections)


def _chip_section(f: FleetResult, alts: list[Alternative]) -> Section:
    from . import charts

    singles = [a for a in alts if a.label.startswith("all-")]
    labels = ["chosen fleet", *(a.label for a in singles)]
    vals = [f.usd_per_hour, *(a.usd_per_hour or 0.0 for a in singles)]
    return Section(
        "Chip comparison",
        [
            charts.bar_chart(
                labels,
                vals,
                title="Cheapest fleet per choice of chips",
                y_label="USD per hour",
                text_format="${:,.2f}",
            )
        ],
        note="Each bar re-plans the fleet restricted to one vendor or one chip type.",
    )


def _pareto_section(f: FleetResult) -> Section:
    from . import charts

    pts = [(f"x{p.slo_scale:g}", p.usd_per_hour, p.tpot_s * 1e3) for p in f.pareto]
    return Section(
        "Cost vs latency",
        [
            charts.pareto_scatter(
                pts,
                title="Cheapest fleet as the latency targets tighten",
                x_label="USD per hour",
                y_label="worst TPOT (ms)",
                frontier=[p[0] for p in pts],
            )
        ],
        note="Each point scales both TTFT and TPOT targets by the factor shown.",
    )


def _breakdown_section(f: FleetResult, alts: list[Alternative]) -> Section:
    from . import charts

    cats = ["chosen fleet", *(a.label for a in alts[:5])]
    chips = sorted({*f.usd_by_chip, *(c for a in alts[:5] for c in a.usd_by_chip)})
    items = {
        c: [f.usd_by_chip.get(c, 0.0), *(a.usd_by_chip.get(c, 0.0) for a in alts[:5])]
        for c in chips
    }
    if f.kv_transfer_usd_per_hour:
        items["KV transfer"] = [f.kv_transfer_usd_per_hour, *([0.0] * len(alts[:5]))]
    return Section(
        "Cost breakdown",
        [
            charts.stacked_cost_breakdown(
                cats, items, title="USD per hour by chip type", y_label="USD per hour"
            )
        ],
    )


def _tornado_section(bars: Sequence[SensitivityBar]) -> Section:
    from . import charts

    return Section(
        "Sensitivity",
        [
            charts.tornado_chart(
                [b.label for b in bars],
                [b.low_output for b in bars],
                [b.high_output for b in bars],
                bars[0].base_output,
                title="Fleet cost with one input at each end",
                x_label="USD per hour",
                low_text=[f"{b.low_input:g}" for b in bars],
                high_text=[f"{b.high_input:g}" for b in bars],
            )
        ],
        note="Each end re-plans the fleet; a missing bar end means no fleet is feasible there.",
    )


def _fleet_section(f: FleetResult) -> Section:
    from . import charts

    rows = [
        [
            p.workload,
            p.chip,
            p.system,
            p.role,
            f"tp{p.tp} pp{p.pp}",
            p.batch_limit,
            p.replicas,
            p.chips,
            f"{p.utilisation:.0%}",
            round(p.chips * p.usd_per_chip_hour, 2),
        ]
        for p in f.pools
    ]
    lat = [
        [
            la.workload,
            _t(la.ttft_p50_s),
            _t(la.ttft_p_s),
            _t(la.tpot_p50_s),
            _t(la.tpot_p_s),
            f"p{la.percentile:g}",
            la.source,
        ]
        for la in f.latency
    ]
    pool_cols = ["workload", "chip", "node", "role", "layout", "batch", "replicas", "chips"]
    lat_cols = [
        "workload", "TTFT p50", "TTFT tail", "TPOT p50", "TPOT tail", "tail percentile", "source",
    ]  # fmt: skip
    return Section(
        "Fleet",
        [
            charts.html_table([*pool_cols, "busy", "USD/h"], rows),
            charts.html_table(lat_cols, lat, caption="Predicted latency"),
        ],
        note="; ".join(f.warnings + f.assumptions),
    )


def _training_section(t: TrainingResult) -> Section:
    from . import charts

    rows = [[x.chip, x.chips, x.layout, round(x.days, 2), round(x.usd_total)] for x in t.per_chip]
    return Section(
        "Training",
        [
            charts.bar_chart(
                [x.chip for x in t.per_chip],
                [x.usd_total for x in t.per_chip],
                title="Cheapest run per chip within the deadline",
                y_label="USD",
                text_format="${:,.0f}",
            ),
            charts.html_table(["chip", "chips", "layout", "days", "USD"], rows),
        ],
    )


@contextmanager
def progress_bar(con: Console) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback for the planner: a transient rich bar on a terminal, silent
    otherwise (pipes, tests)."""
    if not con.is_terminal:
        yield lambda stage, done, total: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=con,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update

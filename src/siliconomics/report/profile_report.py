"""Terminal, JSON and HTML views of a multi-period (traffic profile) plan and its replay."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from ..fleet.multiplan import ProfilePlan
from ..fleet.replay import Replay
from .html import Section
from .style import compact_table

if TYPE_CHECKING:
    import plotly.graph_objects as go


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:,.0f}"


def saving(p: ProfilePlan) -> float | None:
    """Share the hybrid plan saves over the best single-mode plan."""
    best = p.best_single
    if best is None or not best.usd:
        return None
    return 1.0 - p.solution.usd / best.usd


def owned_price_to_win(p: ProfilePlan) -> dict[str, float]:
    """Per chip without an owned source: the owned USD per chip-hour (all-in) at which it
    would carry traffic as cheaply as the cheapest owned chip that has a price."""
    owned = [s for s in p.sources if s.kind == "owned"]
    if not owned:
        return {}
    best = min(
        (s.usd_per_chip_hour + s.usd_per_busy_chip_hour) / p.units[s.chip].kappa for s in owned
    )
    have = {s.chip for s in owned}
    return {c: best * u.kappa for c, u in p.units.items() if c not in have}


def takeaway(p: ProfilePlan) -> str:
    sol = p.solution
    best = p.best_single
    last = p.months - 1
    held = {
        s.label: int(sol.held[j, last]) * s.node_chips
        for j, s in enumerate(p.sources)
        if s.monthly and sol.held[j, last] > 0
    }
    commit = ", ".join(f"{n} x {k}" for k, n in held.items()) or "nothing committed"
    sv = saving(p)
    vs = ""
    if best is not None and sv is not None:
        vs = (
            f"; {sv:.1%} less than the best single-mode plan ({best.label}, {_usd(best.usd)})"
            if sv >= 0.0005
            else f"; the same as the best single-mode plan ({best.label})"
        )
    rents = any(not s.monthly and u > 0 for s, u in zip(p.sources, sol.usd_by_source, strict=True))
    return (
        f"{_usd(sol.usd)} over {p.months} months: commit {commit} by the last month"
        f"{' and rent the peaks' if rents else ', rent nothing'}{vs}."
    )


def profile_dict(p: ProfilePlan, r: Replay | None) -> dict[str, Any]:
    sol = p.solution
    srcs = []
    for j, s in enumerate(p.sources):
        srcs.append(
            {
                "source": s.label,
                "kind": s.kind,
                "chip": s.chip,
                "where": s.where,
                "node_chips": s.node_chips,
                "usd_per_chip_hour": s.usd_per_chip_hour,
                "usd_per_busy_chip_hour": s.usd_per_busy_chip_hour,
                "chips_held_by_month": (sol.held[j] * s.node_chips).tolist() if s.monthly else None,
                "peak_chips_rented_by_month": None
                if s.monthly
                else (sol.burst[j].max(axis=1) * s.node_chips).tolist(),
                "usd": float(sol.usd_by_source[j]),
                "price": s.note,
            }
        )
    return {
        "name": p.name,
        "takeaway": takeaway(p),
        "usd_total": sol.usd,
        "usd_by_kind": p.usd_by_kind(),
        "saving_vs_best_single_mode": saving(p),
        "alternatives": [{"label": a.label, "usd": a.usd, "note": a.note} for a in p.alternatives],
        "growth_scenarios": [{"label": a.label, "usd": a.usd} for a in p.scenarios],
        "sources": srcs,
        "chips": {
            c: {
                "traffic_units_per_chip": u.kappa,
                "scale_up_s": u.load_s,
                "reference_fleet": u.describe,
            }
            for c, u in p.units.items()
        },
        "committed_utilisation": p.committed_utilisation(),
        "breakeven_utilisation": p.breakeven(),
        "owned_usd_per_chip_hour_to_win": owned_price_to_win(p),
        "milp": {
            "variables": sol.variables,
            "integers": sol.integers,
            "constraints": sol.constraints,
            "solve_s": sol.solve_s,
            "months": p.months,
            "levels": len(p.levels.need),
        },
        "excluded": p.excluded,
        "assumptions": list(p.assumptions),
        "replay": None
        if r is None
        else {
            "month": r.month,
            "hours": len(r.hours),
            "planned_slo_attainment": r.planned_attainment,
            "simulated_slo_attainment": r.attainment,
            "planned_usd": sum(h.planned_usd for h in r.hours),
            "simulated_usd": sum(h.simulated_usd for h in r.hours),
            "per_hour": [
                {
                    "hour": h.hour,
                    "rate": h.rate,
                    "chips": h.chips,
                    "planned_usd": h.planned_usd,
                    "simulated_usd": h.simulated_usd,
                    "meets_slo": h.meets_slo,
                    "ttft_p_s": h.ttft_p_s,
                    "tpot_p_s": h.tpot_p_s,
                }
                for h in r.hours
            ],
        },
    }


def render(con: Console, p: ProfilePlan, r: Replay | None) -> None:
    con.print(f"[bold]{p.name}[/bold]: {takeaway(p)}", highlight=False)
    t: Table = compact_table("Sources over the horizon")
    for col in ("source", "USD/chip-h", "chips (last month)", "total USD"):
        t.add_column(col)
    sol = p.solution
    for j, s in enumerate(p.sources):
        if sol.usd_by_source[j] <= 0:
            continue
        n = sol.held[j, -1] if s.monthly else sol.burst[j, -1].max()
        t.add_row(
            s.label,
            f"{s.usd_per_chip_hour + s.usd_per_busy_chip_hour:.2f}",
            f"{int(n) * s.node_chips}{'' if s.monthly else ' (peak)'}",
            _usd(float(sol.usd_by_source[j])),
        )
    con.print(t)
    for a in (*p.alternatives, *p.scenarios):
        con.print(f"  {a.label}: {_usd(a.usd)} {a.note}", highlight=False, markup=False)
    for c, usd in owned_price_to_win(p).items():
        con.print(
            f"  {c} owned would win the base below ${usd:.2f} per chip-hour (all-in)",
            highlight=False,
            markup=False,
        )
    con.print(
        f"MILP: {sol.variables} variables ({sol.integers} integer), {sol.constraints} "
        f"constraints, solved in {sol.solve_s:.2f} s",
        highlight=False,
    )
    if r is not None:
        con.print(
            f"replay (month {r.month + 1}, {len(r.hours)} hours): targets met in "
            f"{r.attainment:.0%} of hours (plan: {r.planned_attainment:.0%}); cost "
            f"{_usd(sum(h.simulated_usd for h in r.hours))} simulated vs "
            f"{_usd(sum(h.planned_usd for h in r.hours))} planned",
            highlight=False,
        )
    for note in p.assumptions:
        con.print(f"  assumption: {note}", highlight=False, markup=False)
    for k, why in p.excluded.items():
        con.print(f"  not considered: {k}: {why}", highlight=False, markup=False)


def _area(p: ProfilePlan) -> go.Figure:
    import plotly.graph_objects as go

    from .charts import PALETTE, _layout

    m = p.months - 1
    cap = p.capacity_week(m)
    fig = go.Figure()
    for j, s in enumerate(p.sources):
        if cap[j].any():
            fig.add_trace(
                go.Scatter(
                    x=list(range(168)),
                    y=cap[j].tolist(),
                    name=s.label,
                    stackgroup="one",
                    line={"color": PALETTE[j % len(PALETTE)]},
                )
            )
    return _layout(fig, f"Chips by source over a week of month {m + 1}", "hour of week", "chips")


def _held(p: ProfilePlan) -> go.Figure:
    """Committed chips per month (they grow with the traffic, never shrink)."""
    import plotly.graph_objects as go

    from .charts import PALETTE, _layout

    fig = go.Figure()
    months = list(range(1, p.months + 1))
    for j, s in enumerate(p.sources):
        if s.monthly and p.solution.held[j].any():
            fig.add_trace(
                go.Bar(
                    x=months,
                    y=(p.solution.held[j] * s.node_chips).tolist(),
                    name=s.label,
                    marker_color=PALETTE[j % len(PALETTE)],
                )
            )
    fig.update_layout(barmode="stack")
    return _layout(fig, "Committed chips per month", "month", "chips")


def _replay_fig(r: Replay) -> go.Figure:
    import plotly.graph_objects as go

    from .charts import _layout

    hrs = [h.hour for h in r.hours]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=hrs, y=[h.planned_usd for h in r.hours], name="planned USD/h"))
    fig.add_trace(go.Scatter(x=hrs, y=[h.simulated_usd for h in r.hours], name="simulated USD/h"))
    fig.add_trace(
        go.Scatter(
            x=hrs,
            y=[100.0 if h.meets_slo else 0.0 for h in r.hours],
            name="targets met (simulated, %)",
            yaxis="y2",
            mode="markers",
        )
    )
    fig.update_layout(
        yaxis2={
            "overlaying": "y",
            "side": "right",
            "range": [-5, 105],
            "tickvals": [0, 50, 100],
            "title": "% of hour's targets met",
        }
    )
    return _layout(fig, f"Replay of month {r.month + 1}", "hour of week", "USD per hour")


def profile_sections(p: ProfilePlan, r: Replay | None) -> list[Section]:
    from . import charts

    kinds = {k: v for k, v in p.usd_by_kind().items() if v > 0}
    util = p.committed_utilisation()
    be = p.breakeven()
    alts = [a for a in (*p.alternatives,) if a.usd is not None]
    scen = [a for a in p.scenarios if a.usd is not None]
    rows = [
        [k, f"{util.get(k, float('nan')):.0%}", "never" if v is None else f"{v:.0%}"]
        for k, v in be.items()
    ]
    out = [
        Section("Capacity by source", [_area(p), _held(p)], note="; ".join(p.assumptions)),
        Section(
            "Cost by source",
            [
                charts.bar_chart(
                    list(kinds),
                    list(kinds.values()),
                    title="Total USD by source",
                    y_label="USD",
                    text_format="${:,.0f}",
                ),
                charts.bar_chart(
                    ["hybrid plan", *(a.label for a in alts)],
                    [p.solution.usd, *(a.usd or 0.0 for a in alts)],
                    title="Hybrid against single-mode plans",
                    y_label="USD over the horizon",
                    text_format="${:,.0f}",
                ),
            ],
        ),
        Section(
            "Committed capacity: utilisation and break-even",
            [charts.html_table(["source", "utilisation", "break-even utilisation"], rows)],
            note="Break-even: the utilisation above which the commitment costs less than "
            "renting the same traffic capacity at the cheapest on-demand price.",
        ),
        Section(
            "Growth scenarios",
            [
                charts.bar_chart(
                    [a.label for a in scen],
                    [a.usd or 0.0 for a in scen],
                    title="Total USD if growth differs",
                    y_label="USD",
                    text_format="${:,.0f}",
                )
            ],
        ),
    ]
    if r is not None:
        out.append(
            Section(
                "Simulator replay",
                [_replay_fig(r)],
                note=f"targets met in {r.attainment:.0%} of replayed hours",
            )
        )
    return out


def profile_html(p: ProfilePlan, r: Replay | None) -> str:
    from .html import render_html

    return render_html(p.name, takeaway(p), profile_sections(p, r))


__all__ = ["profile_dict", "profile_html", "render", "takeaway"]

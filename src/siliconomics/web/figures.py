"""Plotly figures of the pages, built from the API's JSON (what a client of the API gets), with
the report's chart builders (:mod:`siliconomics.report.charts`) where one fits.

Error bands appear wherever the JSON carries them (``<key>_low``/``<key>_high``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from ..report import charts


def to_json(fig: go.Figure) -> str:
    """The figure as JSON safe to place inside a ``<script>`` element."""
    text: str = fig.to_json()
    return text.replace("</", "<\\/")


def _band(row: Mapping[str, Any], key: str) -> tuple[float | None, float | None]:
    return row.get(f"{key}_low"), row.get(f"{key}_high")


def compare_chart(d: Mapping[str, Any]) -> go.Figure | None:
    """Feasible chips ranked by USD per million output tokens, with the error band."""
    rows = [r for r in d.get("chips", []) if r.get("feasible") and r.get("usd_per_m_output")]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: r["usd_per_m_output"])
    vals = [r["usd_per_m_output"] for r in rows]
    fig = charts.bar_chart(
        [r["chip"] for r in rows],
        vals,
        title="USD per million output tokens (cheapest first)",
        y_label="USD per million output tokens",
        text_format="${:,.3f}",
    )
    bands = [_band(r, "usd_per_m_output") for r in rows]
    if all(lo is not None and hi is not None for lo, hi in bands):
        fig.update_traces(
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [hi - v for (_, hi), v in zip(bands, vals, strict=True)],
                "arrayminus": [v - lo for (lo, _), v in zip(bands, vals, strict=True)],
            }
        )
    return fig


def ops_chart(d: Mapping[str, Any]) -> go.Figure | None:
    """Time per operator and phase, split into compute, memory, communication and overhead
    time (the roofline's components; the op's time is the bound one plus overhead)."""
    ops = d.get("ops") or []
    if not ops:
        return None
    labels = [f"{o['phase']}: {o['op']}" for o in ops]
    fig = go.Figure()
    for key, name, colour in (
        ("t_compute_s", "compute", charts.PALETTE[0]),
        ("t_memory_s", "memory", charts.PALETTE[1]),
        ("t_comm_s", "communication", charts.PALETTE[2]),
        ("t_overhead_s", "overhead", charts.PALETTE[3]),
    ):
        fig.add_trace(
            go.Bar(
                name=name,
                y=labels,
                x=[(o.get(key) or 0.0) * 1e3 for o in ops],
                orientation="h",
                marker_color=colour,
            )
        )
    fig.update_layout(barmode="group")
    return charts._layout(
        fig, "Per-op time by roofline component", "ms", "", height=max(360, 60 + 26 * len(ops))
    )


def tco_chart(d: Mapping[str, Any]) -> go.Figure | None:
    """USD per chip-hour of every pricing mode with a price, split into its items."""
    modes = [m for m in d.get("modes", []) if m.get("known") and m.get("items_usd_per_chip_hour")]
    if not modes:
        return None
    names = sorted({k for m in modes for k in m["items_usd_per_chip_hour"]})
    items = {n: [m["items_usd_per_chip_hour"].get(n, 0.0) for m in modes] for n in names}
    return charts.stacked_cost_breakdown(
        [m["mode"] for m in modes], items, title="USD per chip-hour by pricing mode", y_label="USD"
    )


def pareto_chart(fleet: Mapping[str, Any]) -> go.Figure | None:
    pts = [
        (f"x{p['slo_scale']:g}", p["usd_per_hour"], p["tpot_s"] * 1e3)
        for p in fleet.get("pareto") or []
        if p.get("usd_per_hour") is not None and p.get("tpot_s") is not None
    ]
    if not pts:
        return None
    return charts.pareto_scatter(
        pts,
        title="Cost-latency frontier: cheapest fleet as the targets scale",
        x_label="USD per hour",
        y_label="worst TPOT (ms)",
        frontier=[p[0] for p in pts],
    )


def tornado(bars: Sequence[Mapping[str, Any]]) -> go.Figure | None:
    ok = [b for b in bars if b.get("base_output") is not None]
    if not ok:
        return None
    return charts.tornado_chart(
        [b["label"] for b in ok],
        [b["low_output"] if b["low_output"] is not None else b["base_output"] for b in ok],
        [b["high_output"] if b["high_output"] is not None else b["base_output"] for b in ok],
        ok[0]["base_output"],
        title="Fleet cost with one input at each end",
        x_label="USD per hour",
        low_text=[f"{b['low_input']:g}" for b in ok],
        high_text=[f"{b['high_input']:g}" for b in ok],
    )


def validation_chart(d: Mapping[str, Any]) -> go.Figure | None:
    """Predicted against measured, one colour per chip family, log axes, y = x drawn."""
    rows = [r for r in d.get("results", []) if r.get("measured") and r.get("predicted")]
    if not rows:
        return None
    fig = go.Figure()
    fams = sorted({r["family"] for r in rows})
    for i, fam in enumerate(fams):
        mine = [r for r in rows if r["family"] == fam]
        fig.add_trace(
            go.Scatter(
                x=[r["measured"] for r in mine],
                y=[r["predicted"] for r in mine],
                mode="markers",
                name=fam,
                text=[f"{r['id']} ({r['metric']})" for r in mine],
                marker={"color": charts.PALETTE[i % len(charts.PALETTE)], "size": 8},
            )
        )
    lo = min(min(r["measured"], r["predicted"]) for r in rows)
    hi = max(max(r["measured"], r["predicted"]) for r in rows)
    fig.add_trace(
        go.Scatter(
            x=[lo, hi],
            y=[lo, hi],
            mode="lines",
            name="predicted = measured",
            line={"dash": "dot", "color": "#555"},
        )
    )
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return charts._layout(
        fig, "Predicted vs measured (each metric in its unit)", "measured", "predicted", height=520
    )


def figures(**figs: go.Figure | None) -> dict[str, str]:
    """Name -> figure JSON, for the figures that exist."""
    return {k: to_json(f) for k, f in figs.items() if f is not None}


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2).replace("</", "<\\/")

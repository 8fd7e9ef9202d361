"""The summary HTML report of one sweep run: what ran, the objective's best points, the
distribution of each output across the first varied input, and the failed points.

Built from :mod:`siliconomics.sweep.query` tables (DuckDB over the run's Parquet parts);
plotly.js is embedded inline once (no network needed to view it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..sweep import query
from ..sweep.study import Objective
from .charts import PALETTE, _layout, html_table
from .html import Section, render_html

if TYPE_CHECKING:
    import plotly.graph_objects as go

MAX_CHARTS = 6
MAX_ERRORS = 50


def _fmt(v: Any) -> Any:
    return "-" if v is None else v


def _objective_section(con: Any, run_id: str, obj: Objective) -> Section:
    import plotly.graph_objects as go

    t = query.summary(con, "objective", run_id=run_id, objective=obj)
    rows = t.dicts()
    label_keys = list(obj.per)
    headers = [c for c in t.columns if c not in ("run_id", "point_id")]
    table = html_table(headers, [[_fmt(r[c]) for c in headers] for r in rows])
    blocks: list[str | go.Figure] = [table]
    if rows:
        labels = [" / ".join(str(r[k]) for k in label_keys) or "all" for r in rows]
        vals = [r[obj.metric] for r in rows]
        bar = go.Bar(x=labels, y=vals, marker_color=PALETTE[0])
        if all(r["low"] is not None and r["high"] is not None for r in rows):
            bar.error_y = {
                "type": "data",
                "symmetric": False,
                "array": [r["high"] - r[obj.metric] for r in rows],
                "arrayminus": [r[obj.metric] - r["low"] for r in rows],
            }
        blocks.append(
            _layout(go.Figure(bar), f"Best {obj.metric}", ", ".join(label_keys), obj.metric)
        )
    cons = ", ".join(
        f"{k} {'<= ' + format(b.max, 'g') if b.max is not None else ''}"
        f"{' >= ' + format(b.min, 'g') if b.min is not None else ''}"
        for k, b in obj.subject_to.items()
    )
    note = (
        f"{'Maximise' if obj.descending else 'Minimise'} {obj.metric}"
        f"{' per ' + ', '.join(obj.per) if obj.per else ''}"
        f"{' subject to ' + cons if cons else ''}; a group with no row has no point that meets "
        "the constraints."
    )
    return Section("Objective", blocks, note=note)


def _box(con: Any, run_id: str, by: str, output: str) -> go.Figure:
    import plotly.graph_objects as go

    t = query.sql(
        con,
        f"SELECT inputs[{query.lit(by)}] AS k, value FROM outputs WHERE run_id = "
        f"{query.lit(run_id)} AND output = {query.lit(output)} AND value IS NOT NULL "
        "ORDER BY point_id",
    )
    groups: dict[str, list[float]] = {}
    for k, v in t.rows:
        groups.setdefault(str(k), []).append(v)
    fig = go.Figure()
    for j, (k, vs) in enumerate(groups.items()):
        fig.add_trace(
            go.Box(
                y=vs, name=k, marker_color=PALETTE[j % len(PALETTE)], boxpoints="all", jitter=0.3
            )
        )
    fig.update_layout(showlegend=False)
    return _layout(fig, f"{output} by {by}", by, output)


def _distribution_section(con: Any, run_id: str, by: str | None, outputs: Sequence[str]) -> Section:
    if by is None:
        return Section("Outputs", [], note="No varied input to group by.")
    figs: list[str | go.Figure] = [_box(con, run_id, by, o) for o in outputs[:MAX_CHARTS]]
    return Section(
        f"Outputs by {by}",
        figs,
        note="Every ok point (a dot); boxes show the quartiles across the other inputs.",
    )


def _errors_section(con: Any, run_id: str) -> Section:
    t = query.summary(con, "errors", run_id=run_id)
    rows = [[r["point_id"], r["inputs"], r["error"]] for r in t.dicts()[:MAX_ERRORS]]
    note = f"{len(t.rows)} point(s) failed" + (
        f"; the first {MAX_ERRORS} are listed" if len(t.rows) > MAX_ERRORS else ""
    )
    return Section(
        "Failed points", [html_table(["point", "inputs", "error"], rows)] if rows else [], note=note
    )


def _best_line(con: Any, run_id: str, raw: Mapping[str, Any]) -> str:
    """' Best <metric>: <group> <varied inputs> (<value>); ...' for the takeaway."""
    obj = Objective.model_validate(raw)
    rows = query.summary(con, "objective", run_id=run_id, objective=obj).dicts()
    if not rows:
        return f" No point meets the objective's constraints ({obj.metric})."
    skip = {"run_id", "point_id", "low", "high", obj.metric, *obj.per}
    parts = [
        " ".join(str(row[k]) for k in obj.per)
        + (": " if obj.per else "")
        + " ".join(f"{k}={v}" for k, v in row.items() if k not in skip)
        + f" ({row[obj.metric]:.4g})"
        for row in rows
    ]
    return f" Best {obj.metric}: " + "; ".join(parts) + "."


def sweep_html(con: Any, manifest: Mapping[str, Any]) -> str:
    """The report of the run described by ``manifest`` (see :func:`..sweep.runner.run_study`)."""
    run_id = str(manifest["run_id"])
    runs = query.summary(con, "runs", run_id=run_id).dicts()
    r = runs[0] if runs else {"points": 0, "ok": 0, "errors": 0}
    raw = manifest.get("study_file") or {}
    varied = list(raw.get("grid") or {}) + list((raw.get("sample") or {}).get("over") or {})
    by = next((k for k in ("chip", "model") if k in varied), varied[0] if varied else None)
    numeric = [
        o
        for o in manifest.get("outputs", [])
        if query.sql(
            con,
            f"SELECT count(*) FROM outputs WHERE run_id = {query.lit(run_id)} AND output = {query.lit(o)} AND value IS NOT NULL",
        ).rows[0][0]
    ]
    facts = html_table(
        ["run", "command", "points", "ok", "errors", "executor", "workers", "seed", "calibration"],
        [
            [
                run_id,
                manifest.get("command"),
                r["points"],
                r["ok"],
                r["errors"],
                manifest.get("executor"),
                _fmt(manifest.get("workers")),
                manifest.get("seed"),
                manifest.get("calibration"),
            ]
        ],
    )
    sections = [Section("Run", [facts], note=f"Versions: {manifest.get('versions')}")]
    obj = manifest.get("objective")
    if obj:
        sections.append(_objective_section(con, run_id, Objective.model_validate(obj)))
    sections.append(_distribution_section(con, run_id, by, numeric))
    sections.append(_errors_section(con, run_id))
    takeaway = (
        f"{r['ok']} of {r['points']} points computed ({r['errors']} failed) for study "
        f"'{manifest.get('study')}'." + (_best_line(con, run_id, obj) if obj else "")
    )
    return render_html(f"Sweep: {manifest.get('study')}", takeaway, sections)

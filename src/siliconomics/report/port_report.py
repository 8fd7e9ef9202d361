"""Rendering of ``port-check`` results (terminal, JSON, HTML) and of the migration payback
that ``tco`` adds. Tables are laid out to fit an 80-column terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from ..porting.assess import KindAssessment, TargetReport
from ..porting.findings import Finding, ScanResult
from ..porting.payback import Payback
from .charts import html_table
from .html import Section, render_html

STATE_LABEL = {"supported": "ok", "replacement": "swap", "blocker": "REWR", "unknown": "?"}
LEGEND = "ok supported, swap named replacement, REWR blocker to rewrite, ? unknown"


def _w(x: float) -> str:
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"


def _weeks(lo: float, hi: float) -> str:
    return f"{_w(lo)}-{_w(hi)}"


def _cell(item: KindAssessment) -> str:
    return f"{STATE_LABEL[item.entry.state]} {_weeks(item.weeks_low, item.weeks_high)}"


def headline(scan: ScanResult, reports: Sequence[TargetReport]) -> str:
    kinds = len(scan.by_kind())
    parts = [
        f"{len(scan.findings)} CUDA ties of {kinds} kinds in {scan.files_scanned} files "
        f"({scan.python_files} Python)"
    ]
    for r in reports:
        parts.append(f"{r.stack.stack}: {r.verdict}, {_weeks(r.weeks_low, r.weeks_high)} eng-weeks")
    return "; ".join(parts) + "."


def matrix_table(reports: Sequence[TargetReport]) -> Table:
    """One row per kind found, one column per target: status and engineer-weeks."""
    t = Table(
        title="Port effort per kind of finding (engineer-weeks, low-high)",
        caption=LEGEND,
        box=None,
    )
    t.add_column("kind", no_wrap=True)
    t.add_column("#", justify="right")
    for r in reports:
        t.add_column(r.stack.stack, justify="right", no_wrap=True)
    if not reports:
        return t
    for i, item in enumerate(reports[0].items):
        t.add_row(item.kind, str(item.count), *(_cell(r.items[i]) for r in reports))
    t.add_row("total", "", *(_weeks(r.weeks_low, r.weeks_high) for r in reports), style="bold")
    t.add_row("verdict", "", *(r.verdict for r in reports), style="bold")
    return t


def detail_table(report: TargetReport) -> Table:
    t = Table(title=f"{report.stack.title}: what to do", box=None, show_lines=False)
    t.add_column("kind", max_width=16, overflow="fold")
    t.add_column("status", max_width=18, overflow="fold")
    t.add_column("what to do", overflow="fold", ratio=1)
    t.add_column("conf", no_wrap=True)
    for item in report.items:
        e = item.entry
        status = e.replacement or e.state
        t.add_row(item.kind, status, e.action, e.confidence)
    return t


def _finding_lines(findings: Sequence[Finding], show: int) -> list[str]:
    out = [f"  {f.where}  {f.text}" for f in findings[:show]]
    if len(findings) > show:
        out.append(f"  ... and {len(findings) - show} more")
    return out


def render_port_check(
    console: Console,
    scan: ScanResult,
    reports: Sequence[TargetReport],
    *,
    show: int = 3,
) -> None:
    console.print(headline(scan, reports), highlight=False)
    if not scan.findings:
        console.print("No CUDA-specific code or dependency found.", highlight=False)
        return
    console.print(matrix_table(reports))
    for r in reports:
        console.print(f"{r.stack.stack}: {r.summary}", highlight=False, soft_wrap=False)
        if r.model is not None:
            m = r.model
            console.print(
                f"  model family {m.family}: {m.status} {m.via}".rstrip(), highlight=False
            )
    if len(reports) == 1:
        console.print(detail_table(reports[0]))
    console.print("Where:", highlight=False)
    for kind, found in sorted(scan.by_kind().items()):
        console.print(f"{kind} ({len(found)})", highlight=False)
        for line in _finding_lines(found, show):
            console.print(line, highlight=False, markup=False, overflow="ellipsis", no_wrap=True)
    if scan.unparsable:
        console.print(f"{len(scan.unparsable)} Python files did not parse (text rules only).")


# ---------------------------------------------------------------- JSON


def finding_dict(f: Finding) -> dict[str, Any]:
    return {"file": f.file, "line": f.line, "kind": f.kind, "text": f.text, "loc": f.loc}


def _item_dict(item: KindAssessment) -> dict[str, Any]:
    e = item.entry
    return {
        "kind": item.kind,
        "count": item.count,
        "loc": item.loc,
        "status": e.state,
        "replacement": e.replacement or None,
        "action": e.action,
        "source": e.source or None,
        "source_date": e.date or None,
        "confidence": e.confidence,
        "weeks_low": item.weeks_low,
        "weeks_high": item.weeks_high,
        "findings": [f"{f.where}" for f in item.findings],
    }


def report_dict(r: TargetReport) -> dict[str, Any]:
    model = r.model.model_dump() if r.model is not None else None
    return {
        "stack": r.stack.stack,
        "title": r.stack.title,
        "verdict": r.verdict,
        "summary": r.summary,
        "weeks_low": r.weeks_low,
        "weeks_high": r.weeks_high,
        "blockers": r.count("blocker"),
        "unknown": r.count("unknown"),
        "model": model,
        "items": [_item_dict(i) for i in r.items],
    }


def port_check_dict(path: str, scan: ScanResult, reports: Sequence[TargetReport]) -> dict[str, Any]:
    return {
        "path": path,
        "files_scanned": scan.files_scanned,
        "python_files": scan.python_files,
        "unparsable": list(scan.unparsable),
        "findings": [finding_dict(f) for f in scan.findings],
        "targets": {r.stack.stack: report_dict(r) for r in reports},
    }


# ---------------------------------------------------------------- HTML


def port_sections(scan: ScanResult, reports: Sequence[TargetReport]) -> list[Section]:
    """HTML sections: the effort matrix, then what to do per target with sources."""
    heads = ["kind", "findings", *(r.stack.stack for r in reports)]
    rows: list[list[object]] = []
    if reports:
        for i, item in enumerate(reports[0].items):
            rows.append([item.kind, item.count, *(_cell(r.items[i]) for r in reports)])
        rows.append(["total", "", *(_weeks(r.weeks_low, r.weeks_high) for r in reports)])
    sections = [
        Section(
            "Port effort (engineer-weeks, low-high)",
            [html_table(heads, rows)],
            note=headline(scan, reports),
        )
    ]
    for r in reports:
        body = [
            [i.kind, i.count, i.entry.replacement or i.entry.state, i.entry.action,
             i.entry.source or "-", i.entry.date or "-", i.entry.confidence]
            for i in r.items
        ]  # fmt: skip
        cols = ["kind", "#", "status", "what to do", "source", "date", "confidence"]
        sections.append(Section(f"{r.stack.title}", [html_table(cols, body)], note=r.summary))
    return sections


def port_html(path: str, scan: ScanResult, reports: Sequence[TargetReport]) -> str:
    return render_html(f"Port check: {path}", headline(scan, reports), port_sections(scan, reports))


# ---------------------------------------------------------------- payback (tco)


def _months(v: float | None) -> str:
    return "never" if v is None else f"{v:.1f}"


def payback_lines(p: Payback) -> list[str]:
    return [
        f"migration: {_weeks(p.weeks_low, p.weeks_high)} engineer-weeks x "
        f"{p.eng_rate_usd_per_week:,.0f} USD/week = "
        f"{p.cost_low_usd:,.0f}-{p.cost_high_usd:,.0f} USD one-off",
        f"monthly saving of the cheaper option: {p.monthly_saving_usd:,.0f} USD",
        "payback: "
        + (
            "never (no saving)"
            if p.payback_months_low is None
            else f"{_months(p.payback_months_low)}-{_months(p.payback_months_high)} months"
        ),
        f"saving net of migration over {p.horizon_months:g} months: "
        f"{p.net_saving_low_usd:,.0f} to {p.net_saving_high_usd:,.0f} USD",
    ]


def payback_dict(p: Payback) -> dict[str, Any]:
    return {
        "weeks_low": p.weeks_low,
        "weeks_high": p.weeks_high,
        "eng_rate_usd_per_week": p.eng_rate_usd_per_week,
        "migration_cost_low_usd": p.cost_low_usd,
        "migration_cost_high_usd": p.cost_high_usd,
        "monthly_saving_usd": p.monthly_saving_usd,
        "payback_months_low": p.payback_months_low,
        "payback_months_high": p.payback_months_high,
        "horizon_months": p.horizon_months,
        "net_saving_low_usd": p.net_saving_low_usd,
        "net_saving_high_usd": p.net_saving_high_usd,
    }


def payback_section(p: Payback) -> Section:
    return Section("Migration payback", [html_table(["item"], [[s] for s in payback_lines(p)])])


def payback_json(p: Payback | None) -> dict[str, Any]:
    """The key ``tco --json`` adds (nothing without a migration estimate)."""
    return {} if p is None else {"migration_payback": payback_dict(p)}


def render_payback(console: Console, p: Payback | None) -> None:
    if p is None:
        return
    console.print("Migration payback", style="bold")
    for line in payback_lines(p):
        console.print(f"  {line}", highlight=False)

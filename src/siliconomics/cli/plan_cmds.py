"""plan: fleet planning from a spec file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .. import api, resolve
from ..economics.pricebook import MODES, Pricing
from ..errors import SiliconomicsError
from ..fleet.spec import PlanSpec
from ..report.html import write_html
from .bands_opts import LevelOpt, ProfileOpt, StackOpt
from .common import JsonOpt, app, emit_json, err, library_output_silenced, out
from .inputs import text_file_cb, writable_cb
from .prices_cmds import PricesOpt, ProviderOpt, RegionOpt, load_book


@app.command("plan")
def plan_cmd(
    spec: Annotated[
        Path,
        typer.Argument(
            help="plan spec, YAML or TOML (see docs/PLANNING.md)", callback=text_file_cb
        ),
    ],
    html: Annotated[
        Path | None,
        typer.Option(help="also write a self-contained HTML report", callback=writable_cb),
    ] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="pricing mode (overrides the spec's 'pricing')")
    ] = None,
    prices: PricesOpt = None,
    region: RegionOpt = None,
    provider: ProviderOpt = None,
    stack: StackOpt = None,
    profile: ProfileOpt = None,
    level: LevelOpt = 0.8,
    robust: Annotated[
        bool,
        typer.Option(
            "--robust",
            help="plan on the pessimistic end of each chip's error band (every chip as slow "
            "as its band's low end)",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Cheapest fleet (GPUs and ASICs, possibly mixed or prefill/decode split) that serves the
    spec's traffic within its latency targets, and the cheapest cluster for its training job."""
    from ..porting.payback import plan_payback
    from ..report import plan_report, port_report

    plan_spec = resolve.load_spec(spec)
    plan_spec = _migration_weeks(plan_spec, spec.parent)
    with plan_report.progress_bar(err) as progress, library_output_silenced():
        if mode is not None and mode not in MODES:
            raise SiliconomicsError(f"--mode '{mode}': allowed: {', '.join(MODES)}")
        book = load_book(prices, region, provider)
        r = api.plan(
            plan_spec,
            base_dir=spec.parent,
            sensitivity=html is not None,
            pricing=Pricing(book=book, mode=mode or plan_spec.pricing),
            stack=stack,
            profile=profile,
            level=level,
            robust=robust,
            progress=progress,
        )
    outcome = r.value
    if outcome.profile is not None:
        _profile_out(r, html, as_json)
        return
    pb = plan_payback(outcome)
    if html:
        extra = [port_report.payback_section(pb)] if pb else []
        write_html(html, plan_report.plan_html(outcome, extra))
        err.print(f"wrote {html}", highlight=False)
    if as_json:
        emit_json(r.to_dict() | port_report.payback_json(pb))
    else:
        plan_report.render(out, outcome)
        out.print(r.to_dict()["robust"]["text"], highlight=False, markup=False)
        port_report.render_payback(out, pb)


def _migration_weeks(plan_spec: PlanSpec, base: Path) -> PlanSpec:
    """A spec whose ``migration`` names a project to port-check gets its weeks from the scan
    (the edge reads the project; the planner only sees the weeks)."""
    from .port_cmds import _weeks

    mig = plan_spec.migration
    if mig is None or mig.port_check is None:
        return plan_spec
    path = Path(mig.port_check)
    lo, hi = _weeks(None, path if path.is_absolute() else base / path, mig.port_target)
    return plan_spec.model_copy(
        update={"migration": mig.model_copy(update={"weeks": f"{lo:g}-{hi:g}"})}
    )


def _profile_out(r: Any, html: Path | None, as_json: bool) -> None:
    """A spec with a traffic profile: the committed + burst plan and its replay."""
    from ..report import profile_report

    outcome = r.value
    if html:
        write_html(html, profile_report.profile_html(outcome.profile, outcome.replay))
        err.print(f"wrote {html}", highlight=False)
    if as_json:
        emit_json(r.to_dict())
    else:
        profile_report.render(out, outcome.profile, outcome.replay)
        out.print(r.to_dict()["robust"]["text"], highlight=False, markup=False)

"""plan: fleet planning from a spec file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import resolve
from ..economics.pricebook import MODES
from ..errors import SiliconomicsError
from ..fleet.spec import PlanSpec
from ..report.html import write_html
from .bands_opts import LevelOpt, ProfileOpt, StackOpt, band, setup
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
    from ..fleet import run_plan
    from ..porting.payback import plan_payback
    from ..report import plan_report, port_report

    plan_spec, catalog = resolve.plan_spec(spec)
    plan_spec = _migration_weeks(plan_spec, spec.parent)
    with plan_report.progress_bar(err) as progress, library_output_silenced():
        if mode is not None:
            if mode not in MODES:
                raise SiliconomicsError(f"--mode '{mode}': allowed: {', '.join(MODES)}")
            plan_spec = plan_spec.model_copy(update={"pricing": mode})
        robust_note = robust_profiles(plan_spec, stack, profile, level, robust)
        catalog = resolve.plan_spec(spec)[1]  # again: with the profiles robust_profiles installed
        outcome = run_plan(
            plan_spec,
            catalog,
            progress,
            book=load_book(prices, region, provider),
            traces=resolve.traces(plan_spec),
            sensitivity=html is not None,
            arrivals=_profile_arrivals(plan_spec),
        )
    if outcome.profile is not None:
        _profile_out(outcome, html, as_json)
        return
    pb = plan_payback(outcome)
    if html:
        extra = [port_report.payback_section(pb)] if pb else []
        write_html(html, plan_report.plan_html(outcome, extra))
        err.print(f"wrote {html}", highlight=False)
    if as_json:
        d = plan_report.outcome_dict(outcome) | port_report.payback_json(pb)
        d["robust"] = robust_note
        emit_json(d)
    else:
        plan_report.render(out, outcome)
        out.print(robust_note["text"], highlight=False, markup=False)
        port_report.render_payback(out, pb)


def robust_profiles(
    spec: PlanSpec, stack: str | None, profile: Path | None, level: float, robust: bool
) -> dict[str, Any]:
    """Install the stack's profiles; with ``robust``, each family's profile derated to the
    low end of its band (:func:`siliconomics.calibrate.bands.derate`)."""
    from ..calibrate.bands import derate
    from ..catalog.registry import get_model, override_efficiency

    calib = setup(stack or spec.stack, profile, level, "inference", None)
    model = get_model(spec.workloads[0].model) if spec.workloads else None
    factors: dict[str, float] = {}
    if robust:
        derated = {}
        for fam, rp in calib.resolved.items():
            b, _ = band(calib, fam, model, "latency-target")
            factors[fam] = min(1.0, math.exp(b.lo))
            derated[fam] = derate(rp.profile, factors[fam])
        override_efficiency(derated)
    text = (
        f"robust: planned at the low end of each chip's {level:.0%} band (speed x "
        + ", ".join(f"{f} {v:.2f}" for f, v in sorted(factors.items()))
        + ")"
        if robust
        else f"planned at the central prediction ({level:.0%} bands: --robust plans on their "
        "low end)"
    )
    used = sorted({f"{f}: {rp.stack} ({rp.basis})" for f, rp in calib.resolved.items()})
    return {
        "enabled": robust,
        "level": level,
        "speed_factor_by_family": factors,
        "stacks": {f: rp.stack for f, rp in calib.resolved.items()},
        "text": text + "; stacks: " + ", ".join(used),
    }


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


def _profile_arrivals(plan_spec: PlanSpec) -> Any:
    """Arrival times of the profile's trace (the edge reads the file)."""
    from ..serving.traces import parse_trace_csv

    prof = plan_spec.profile
    if prof is None or prof.trace is None:
        return None
    p = Path(prof.trace)
    if not p.is_file():
        raise SiliconomicsError(f"spec field 'profile.trace': '{p}' does not exist")
    req = parse_trace_csv(p.read_text(encoding="utf-8").splitlines(), where=p.name)
    return req.arrival_s


def _profile_out(outcome: Any, html: Path | None, as_json: bool) -> None:
    from ..report import profile_report

    if html:
        write_html(html, profile_report.profile_html(outcome.profile, outcome.replay))
        err.print(f"wrote {html}", highlight=False)
    if as_json:
        emit_json(profile_report.profile_dict(outcome.profile, outcome.replay))
    else:
        profile_report.render(out, outcome.profile, outcome.replay)

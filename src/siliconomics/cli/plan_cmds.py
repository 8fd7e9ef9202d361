"""plan: fleet planning from a spec file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..economics.pricebook import MODES
from ..errors import SiliconomicsError
from ..report.html import write_html
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
    as_json: JsonOpt = False,
) -> None:
    """Cheapest fleet (GPUs and ASICs, possibly mixed or prefill/decode split) that serves the
    spec's traffic within its latency targets, and the cheapest cluster for its training job."""
    from ..fleet import load_spec, run_plan
    from ..report import plan_report

    with plan_report.progress_bar(err) as progress, library_output_silenced():
        s = load_spec(spec)
        if mode is not None:
            if mode not in MODES:
                raise SiliconomicsError(f"--mode '{mode}': allowed: {', '.join(MODES)}")
            s = s.model_copy(update={"pricing": mode})
        outcome = run_plan(s, progress, book=load_book(prices, region, provider))
    if html:
        write_html(html, plan_report.plan_html(outcome))
        err.print(f"wrote {html}", highlight=False)
    if as_json:
        emit_json(plan_report.outcome_dict(outcome))
    else:
        plan_report.render(out, outcome)

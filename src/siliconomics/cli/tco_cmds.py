"""tco: rent or buy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import api, resolve
from ..economics.pricebook import MODES, Pricing
from ..porting.payback import DEFAULT_ENG_RATE_USD_PER_WEEK, DEFAULT_HORIZON_MONTHS
from ..report import port_report
from ..report import tco as tco_report
from ..report.html import write_html
from . import port_cmds as port
from .bands_opts import LevelOpt, ProfileOpt, StackOpt
from .common import (
    DTYPE_HELP,
    AcceptedOpt,
    JsonOpt,
    MtpOpt,
    app,
    check_dtype,
    emit_json,
    err,
    out,
)
from .inputs import duration, text_file_cb, writable_cb
from .prices_cmds import PricesOpt, ProviderOpt, RegionOpt


@app.command("tco")
def tco_cmd(
    chip: Annotated[
        str,
        typer.Option(
            help="chip id (see 'siliconomics chips') or a chip file (TOML/JSON, see docs/API.md)"
        ),
    ],
    model: Annotated[
        str | None, typer.Option(help="model id or config.json: adds $/M tokens and J/token")
    ] = None,
    input_len: Annotated[int, typer.Option("--input", min=1, help="prompt tokens")] = 1024,
    output_len: Annotated[int, typer.Option("--output", min=1, help="generated tokens")] = 256,
    ttft: Annotated[str | None, typer.Option(help="time-to-first-token target, e.g. 2s")] = None,
    tpot: Annotated[str | None, typer.Option(help="time-per-output-token target")] = None,
    mode: Annotated[str, typer.Option(help=f"pricing mode: {', '.join(MODES)}")] = "owned",
    utilisation: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="fraction of hours the chips are busy")
    ] = 0.6,
    prices: PricesOpt = None,
    region: RegionOpt = None,
    provider: ProviderOpt = None,
    chip_price: Annotated[
        list[str] | None,
        typer.Option(help="CHIP=USD purchase price per chip (needed to own a chip not sold)"),
    ] = None,
    breakeven_price: Annotated[
        bool,
        typer.Option(
            "--breakeven-price",
            help="what the chip would have to cost to beat renting it and owning H100/B200",
        ),
    ] = False,
    assumptions: Annotated[
        Path | None,
        typer.Option(
            help="TOML overriding owned-TCO defaults (docs/ECONOMICS.md)", callback=text_file_cb
        ),
    ] = None,
    weights_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    act_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    kv_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    html: Annotated[
        Path | None,
        typer.Option(help="also write a self-contained HTML report", callback=writable_cb),
    ] = None,
    stack: StackOpt = None,
    profile: ProfileOpt = None,
    level: LevelOpt = 0.8,
    mtp: MtpOpt = None,
    accepted: AcceptedOpt = None,
    as_json: JsonOpt = False,
    migration_weeks: port.WeeksOpt = None,
    port_check: port.PortCheckOpt = None,
    port_target: port.PortTargetOpt = None,
    eng_rate: port.EngRateOpt = DEFAULT_ENG_RATE_USD_PER_WEEK,
    baseline_chip: port.BaselineOpt = None,
    monthly_tokens: port.MonthlyTokensOpt = None,
    monthly_saving: port.MonthlySavingOpt = None,
    horizon: port.HorizonOpt = DEFAULT_HORIZON_MONTHS,
) -> None:
    """Rent or buy: itemised owned vs cloud USD per chip-hour, break-even utilisation,
    USD per million tokens and J/token for a model, and what moves the cost most (per-token
    figures with their error band)."""
    cat = resolve.catalog_with([chip])  # a chip file's id may be priced (--prices, --chip-price)
    kw = dict(
        mode=mode,
        utilisation=utilisation,
        input_len=input_len,
        output_len=output_len,
        ttft=duration(ttft, "--ttft"),
        tpot=duration(tpot, "--tpot"),
        weights_dtype=check_dtype("weights-dtype", weights_dtype),
        act_dtype=check_dtype("act-dtype", act_dtype),
        kv_dtype=check_dtype("kv-dtype", kv_dtype),
        pricing=Pricing(book=resolve.price_book(prices, region, provider, cat), mode=mode),
        assumptions=resolve.owned_assumptions(assumptions, chip_price, cat),
        profile=profile,
        level=level,
        mtp=mtp,
        accepted=accepted,
    )
    r = api.tco(chip, model, breakeven_price=breakeven_price, stack=stack, **kw)  # type: ignore[arg-type]
    study = r.value
    pb = port.tco_payback(
        study,
        lambda c: api.tco(c, model, **kw).value,  # type: ignore[arg-type]
        weeks=migration_weeks,
        port_check=port_check,
        target=port_target,
        eng_rate=eng_rate,
        baseline_chip=baseline_chip,
        monthly_output_tokens=monthly_tokens,
        monthly_saving=monthly_saving,
        horizon_months=horizon,
    )
    if html:
        extra = [port_report.payback_section(pb)] if pb else []
        write_html(html, tco_report.tco_html(study, extra))
        err.print(f"wrote {html}", highlight=False)
    if as_json:
        emit_json(r.to_dict() | port_report.payback_json(pb))
    else:
        tco_report.render_tco(out, study)
        if model and r.band is not None:
            out.print(r.band.line(), highlight=False, markup=False)
        port_report.render_payback(out, pb)

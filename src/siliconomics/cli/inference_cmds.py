"""Inference commands: estimate (one configuration), compare (every chip)."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import resolve
from ..errors import SiliconomicsError
from ..inference.estimate import estimate_max_throughput, estimate_static
from ..parallel.plan import InferencePlan
from ..report import serialize, tables
from ..search.assess import assess
from ..search.compare import compare_chips
from .common import DTYPE_HELP, JsonOpt, app, check_dtype, emit_json, out
from .inputs import check_context, duration
from .prices_cmds import ModeOpt, PriceOpt, PricesOpt, ProviderOpt, RegionOpt, build_pricing


@app.command("estimate")
def estimate_cmd(
    model: Annotated[
        str, typer.Option(help="model id, a model file (TOML/JSON) or a HF config.json")
    ],
    chip: Annotated[
        str,
        typer.Option(
            help="chip id (see 'siliconomics chips') or a chip file (TOML/JSON, see docs/API.md)"
        ),
    ],
    tp: Annotated[int, typer.Option(min=1, help="tensor-parallel degree (chips)")] = 1,
    pp: Annotated[int, typer.Option(min=1, help="pipeline stages")] = 1,
    ep: Annotated[int, typer.Option(min=1, help="expert-parallel degree (MoE), divides dp*tp")] = 1,
    dp: Annotated[
        int,
        typer.Option(
            min=1,
            help="attention data-parallel degree inside one replica (DP-attention; "
            "the replica has dp*tp*pp chips, experts spread over dp*tp)",
        ),
    ] = 1,
    replicas: Annotated[int, typer.Option(min=1, help="independent model copies")] = 1,
    batch: Annotated[
        int,
        typer.Option(
            min=1,
            help="sequences per batch (static mode), or "
            "the engine's batch limit (max-throughput mode)",
        ),
    ] = 1,
    input_len: Annotated[int, typer.Option("--input", min=1, help="prompt tokens")] = 1024,
    output_len: Annotated[int, typer.Option("--output", min=1, help="generated tokens")] = 256,
    weights_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    act_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    kv_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    mode: Annotated[
        str,
        typer.Option(
            help="'static' (one fixed batch) or 'max-throughput' "
            "(continuous batching, batch as a limit)"
        ),
    ] = "static",
    pricing: Annotated[str, typer.Option(help="pricing mode (see 'compare --mode')")] = "on-demand",
    prices: PricesOpt = None,
    region: RegionOpt = None,
    provider: ProviderOpt = None,
    price: PriceOpt = None,
    beyond_context: Annotated[
        bool, typer.Option("--beyond-context", help="allow input+output past the model's context")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """One configuration: latency, throughput, memory, cost, energy and a per-op breakdown."""
    m = resolve.model(model)
    check_context(m, input_len, output_len, allow=beyond_context)
    dev = resolve.device(chip)
    plan = InferencePlan(
        tp=tp,
        pp=pp,
        ep=ep,
        dp=dp,
        replicas=replicas,
        weight_dtype=check_dtype("weights-dtype", weights_dtype),
        act_dtype=check_dtype("act-dtype", act_dtype),
        kv_dtype=check_dtype("kv-dtype", kv_dtype),
    )
    if mode == "static":
        est = estimate_static(m, dev, plan, batch, input_len, output_len)
    elif mode == "max-throughput":
        est = estimate_max_throughput(m, dev, plan, input_len, output_len, batch_limit=batch)
    else:
        raise SiliconomicsError(f"--mode '{mode}': allowed: static, max-throughput")
    a = assess(est, build_pricing(pricing, prices, region, price, provider=provider))
    emit_json(serialize.assessment_dict(a)) if as_json else tables.render_assessment(out, a)


@app.command("compare")
def compare_cmd(
    model: Annotated[
        str, typer.Option(help="model id, a model file (TOML/JSON) or a HF config.json")
    ],
    input_len: Annotated[int, typer.Option("--input", min=1, help="prompt tokens")] = 1024,
    output_len: Annotated[int, typer.Option("--output", min=1, help="generated tokens")] = 256,
    ttft: Annotated[str | None, typer.Option(help="time-to-first-token target, e.g. 2s")] = None,
    tpot: Annotated[
        str | None, typer.Option(help="time-per-output-token target, e.g. 50ms")
    ] = None,
    chip: Annotated[
        list[str] | None,
        typer.Option(help="limit to these chips: ids or chip files (repeat)"),
    ] = None,
    weights_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    act_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    kv_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    mode: ModeOpt = "on-demand",
    prices: PricesOpt = None,
    region: RegionOpt = None,
    provider: ProviderOpt = None,
    price: PriceOpt = None,
    beyond_context: Annotated[
        bool, typer.Option("--beyond-context", help="allow input+output past the model's context")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Rank every chip by $ per million output tokens at its best layout within the targets."""
    m = resolve.model(model)
    check_context(m, input_len, output_len, allow=beyond_context)
    cmp = compare_chips(
        m,
        resolve.devices(chip),
        input_len=input_len,
        output_len=output_len,
        ttft_s=duration(ttft, "--ttft"),
        tpot_s=duration(tpot, "--tpot"),
        weight_dtype=check_dtype("weights-dtype", weights_dtype),
        act_dtype=check_dtype("act-dtype", act_dtype),
        kv_dtype=check_dtype("kv-dtype", kv_dtype),
        price_overrides=build_pricing(mode, prices, region, price, provider=provider),
    )
    emit_json(serialize.comparison_dict(cmp)) if as_json else tables.render_comparison(out, cmp)

"""Inference commands: estimate (one configuration), compare (every chip)."""

from __future__ import annotations

import math
from typing import Annotated

import typer

from .. import api, resolve
from ..report import tables
from ..report.bands import distinguishable as distinguishable
from .bands_opts import LevelOpt, ProfileOpt, StackOpt
from .common import (
    DTYPE_HELP,
    AcceptedOpt,
    JsonOpt,
    MtpOpt,
    app,
    check_dtype,
    emit_json,
    out,
)
from .inputs import check_context, duration, parse_buckets, share_cb
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
    stack: StackOpt = None,
    profile: ProfileOpt = None,
    level: LevelOpt = 0.8,
    buckets: Annotated[
        str | None,
        typer.Option(
            help="compiled sequence buckets of a static-shape stack (AWS Neuron), "
            "CONTEXT/GENERATION, e.g. 2048,4096,8192,12288/12800; default: the stack's "
            "automatic buckets (powers of two from 128 up to input + output)"
        ),
    ] = None,
    memory_fraction: Annotated[
        float | None,
        typer.Option(
            callback=share_cb,
            help="share of device memory the engine may fill with weights, activations and "
            "KV cache (vLLM --gpu-memory-utilization, SGLang --mem-fraction-static); "
            "default: 1 - the profile's runtime reserve (0.92)",
        ),
    ] = None,
    mtp: MtpOpt = None,
    accepted: AcceptedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One configuration: latency, throughput, memory, cost, energy and a per-op breakdown,
    each predicted value with its error band (from cross-validated residuals)."""
    check_context(resolve.model(model), input_len, output_len, allow=beyond_context)
    r = api.estimate(
        model,
        chip,
        tp=tp,
        pp=pp,
        ep=ep,
        dp=dp,
        replicas=replicas,
        batch=batch,
        input_len=input_len,
        output_len=output_len,
        weights_dtype=check_dtype("weights-dtype", weights_dtype),
        act_dtype=check_dtype("act-dtype", act_dtype),
        kv_dtype=check_dtype("kv-dtype", kv_dtype),
        mode=mode,
        pricing=build_pricing(pricing, prices, region, price, provider=provider),
        stack=stack,
        profile=profile,
        level=level,
        buckets=parse_buckets(buckets),
        memory_fraction=memory_fraction,
        mtp=mtp,
        accepted=accepted,
    )
    if as_json:
        emit_json(r.to_dict())
        return
    a, est = r.value, r.value.estimate
    tables.render_assessment(out, a)
    values = {
        "tokens/s": (float(est.output_tokens_per_s), "", False),
        "TTFT": (float(est.ttft_s), " s", True),
        "TPOT": (float(est.tpot_s), " s", True),
    }
    if a.usd_per_million_output is not None and math.isfinite(float(a.usd_per_million_output)):
        values["$/M output"] = (float(a.usd_per_million_output), "", True)
    assert r.band is not None
    out.print(r.band.line(values), highlight=False, markup=False)


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
    stack: StackOpt = None,
    profile: ProfileOpt = None,
    level: LevelOpt = 0.8,
    mtp: MtpOpt = None,
    accepted: AcceptedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rank every chip by $ per million output tokens at its best layout within the targets;
    chips whose cost bands overlap the cheapest chip's are marked not distinguishable."""
    check_context(resolve.model(model), input_len, output_len, allow=beyond_context)
    r = api.compare(
        model,
        chip,
        input_len=input_len,
        output_len=output_len,
        ttft=duration(ttft, "--ttft"),
        tpot=duration(tpot, "--tpot"),
        weights_dtype=check_dtype("weights-dtype", weights_dtype),
        act_dtype=check_dtype("act-dtype", act_dtype),
        kv_dtype=check_dtype("kv-dtype", kv_dtype),
        pricing=build_pricing(mode, prices, region, price, provider=provider),
        stack=stack,
        profile=profile,
        level=level,
        mtp=mtp,
        accepted=accepted,
    )
    if as_json:
        emit_json(r.to_dict())
        return
    cmp, calib = r.value, r.calibration
    assert calib is not None
    tables.render_comparison(out, cmp)
    used = sorted(
        {
            f"{rp.stack}" + ("" if rp.basis == "default" else f" ({rp.basis})")
            for rp in (
                calib.resolved[ch.chip.family]
                for ch in cmp.choices
                if ch.feasible and ch.chip.family in calib.resolved
            )
        }
    )
    out.print(f"Software stacks: {', '.join(used)} (per chip in --json)", highlight=False)
    same = [c for c, ok in r.distinguishable.items() if ok is False]
    if same:
        out.print(
            f"Not distinguishable from the cheapest ({level:.0%} cost bands overlap): "
            + ", ".join(same),
            highlight=False,
        )

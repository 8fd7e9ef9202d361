"""Inference commands: estimate (one configuration), compare (every chip)."""

from __future__ import annotations

import math
from typing import Annotated

import typer

from .. import resolve
from ..errors import SiliconomicsError
from ..inference.estimate import estimate_max_throughput, estimate_static
from ..parallel.plan import InferencePlan
from ..report import serialize, tables
from ..search.assess import assess
from ..search.compare import Comparison, compare_chips
from .bands_opts import Calib, LevelOpt, ProfileOpt, StackOpt, add_bands, band, band_line, setup
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
    stack: StackOpt = None,
    profile: ProfileOpt = None,
    level: LevelOpt = 0.8,
    as_json: JsonOpt = False,
) -> None:
    """One configuration: latency, throughput, memory, cost, energy and a per-op breakdown,
    each predicted value with its error band (from cross-validated residuals)."""
    m = resolve.model(model)
    check_context(m, input_len, output_len, allow=beyond_context)
    c = resolve.device(chip).chip
    calib = setup(stack, profile, level, "inference", [c.family])
    dev = resolve.device(chip)  # after setup: the --stack/--profile efficiency profile
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
    regime = "latency-target" if mode == "static" and batch == 1 else "max-throughput"
    b, rp = band(calib, c.family, m, regime)
    if as_json:
        d = serialize.assessment_dict(a)
        add_bands(d, b, rp)
        emit_json(d)
        return
    tables.render_assessment(out, a)
    values = {
        "tokens/s": (float(est.output_tokens_per_s), "", False),
        "TTFT": (float(est.ttft_s), " s", True),
        "TPOT": (float(est.tpot_s), " s", True),
    }
    if a.usd_per_million_output is not None and math.isfinite(float(a.usd_per_million_output)):
        values["$/M output"] = (float(a.usd_per_million_output), "", True)
    out.print(band_line(b, rp, values), highlight=False, markup=False)


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
    as_json: JsonOpt = False,
) -> None:
    """Rank every chip by $ per million output tokens at its best layout within the targets;
    chips whose cost bands overlap the cheapest chip's are marked not distinguishable."""
    m = resolve.model(model)
    check_context(m, input_len, output_len, allow=beyond_context)
    calib = setup(stack, profile, level, "inference", None)
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
    regime = "latency-target" if ttft or tpot else "max-throughput"
    marks = distinguishable(cmp, calib, regime)
    if as_json:
        d = serialize.comparison_dict(cmp)
        fam = {ch.chip.id: ch.chip.family for ch in cmp.choices}
        for row in d["chips"]:
            if row["feasible"]:
                b, rp = band(calib, fam[row["chip"]], m, regime)
                add_bands(row, b, rp)
                row["distinguishable_from_cheapest"] = marks.get(row["chip"])
        emit_json(d)
        return
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
    same = [c for c, ok in marks.items() if ok is False]
    if same:
        out.print(
            f"Not distinguishable from the cheapest ({level:.0%} cost bands overlap): "
            + ", ".join(same),
            highlight=False,
        )


def distinguishable(cmp: Comparison, calib: Calib, regime: str) -> dict[str, bool | None]:
    """Chip -> whether its $/M-output band lies wholly above the cheapest chip's (None: the
    cheapest itself or unpriced)."""
    cost: dict[str, tuple[float, float, float]] = {}
    for ch in cmp.choices:
        if not ch.feasible:
            continue
        v = float(ch.value("usd_per_m_output"))
        if math.isfinite(v):
            b, _ = band(calib, ch.chip.family, cmp.model, regime)
            cost[ch.chip.id] = (*b.time(v), v)
    if not cost:
        return {}
    best = min(cost, key=lambda c: cost[c][2])
    return {c: (None if c == best else lo > cost[best][1]) for c, (lo, _, _) in cost.items()}

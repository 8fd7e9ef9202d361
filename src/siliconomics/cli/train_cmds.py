"""train: training step time, MFU, memory, cost and energy."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import api, resolve
from ..economics.pricebook import MODES
from ..report import train_tables
from ..training.precision import recipe
from ..units import parse_positive
from .bands_opts import LevelOpt, ProfileOpt, StackOpt
from .common import JsonOpt, app, emit_json, out
from .prices_cmds import PricesOpt, ProviderOpt, RegionOpt, build_pricing


@app.command("train")
def train_cmd(
    model: Annotated[
        str, typer.Option(help="model id, a model file (TOML/JSON) or a HF config.json")
    ],
    chip: Annotated[
        str,
        typer.Option(
            help="chip id (see 'siliconomics chips') or a chip file (TOML/JSON, see docs/API.md)"
        ),
    ],
    n_chips: Annotated[int, typer.Option("--chips", min=1, help="chips in the job")],
    tokens: Annotated[str, typer.Option(help="training token budget, e.g. 1T, 15.6T")] = "1T",
    global_batch: Annotated[
        int, typer.Option(min=1, help="sequences per optimizer step (whole job)")
    ] = 1024,
    seq_len: Annotated[int, typer.Option(min=1, help="tokens per sequence")] = 4096,
    plan: Annotated[
        str | None,
        typer.Option(
            help="fixed plan, e.g. 'tp=8,pp=4,vpp=2,zero=1,mb=1,recompute=selective' "
            "(dp fills the remaining chips); without it the plan space is searched"
        ),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="plans to show when searching")] = 5,
    dtype: Annotated[
        str,
        typer.Option(
            help="training format (recipe): bf16, fp8 (per-tensor delayed), fp8-cs (current "
            "scaling), fp8-dpa (+ FP8 attention), mxfp8, nvfp4, mxfp4, int8"
        ),
    ] = "bf16",
    method: Annotated[
        str, typer.Option(help="'full', 'lora' (frozen base) or 'qlora' (frozen NF4 base)")
    ] = "full",
    lora_rank: Annotated[int, typer.Option(min=1, help="LoRA/QLoRA adapter rank r")] = 16,
    optimizer: Annotated[str, typer.Option(help="adam, adam-8bit, sgd, adafactor")] = "adam",
    price: Annotated[list[str] | None, typer.Option(help="CHIP=USD per chip-hour")] = None,
    mode: Annotated[str, typer.Option(help=f"pricing mode: {', '.join(MODES)}")] = "on-demand",
    prices: PricesOpt = None,
    region: RegionOpt = None,
    provider: ProviderOpt = None,
    utilisation: Annotated[
        float,
        typer.Option(
            min=0.01, max=1.0, help="owned: cluster's average busy fraction over its life"
        ),
    ] = 0.6,
    stack: StackOpt = None,
    profile: ProfileOpt = None,
    level: LevelOpt = 0.8,
    as_json: JsonOpt = False,
) -> None:
    """Training: step time, MFU, memory, and time, cost and energy to train a token budget,
    for a given plan or the fastest plans found by search, each with its error band."""
    r = api.train(
        model,
        chip,
        n_chips,
        tokens=parse_positive(tokens, "count", what="--tokens"),
        seq_len=seq_len,
        global_batch=global_batch,
        plan=plan,
        top=top,
        dtype=recipe(dtype).name,
        method=method,
        optimizer=optimizer,
        lora_rank=lora_rank,
        pricing=build_pricing(mode, prices, region, None, provider=provider),
        prices=resolve.chip_prices(price),
        utilisation=utilisation,
        stack=stack,
        profile=profile,
        level=level,
    )
    if as_json:
        emit_json(r.to_dict())
        return
    study = r.value
    train_tables.render_study(out, study)
    if study.estimates and r.band is not None:
        e, c = study.estimates[0], study.costs[0]
        values = {
            "step": (float(e.step_time_s), " s", True),
            "tokens/s": (float(e.tokens_per_s), "", False),
            "days": (float(c.time_s) / 86400.0, "", True),
        }
        out.print(r.band.line(values), highlight=False, markup=False)

"""Command-line interface: parse, call one library function, render. Nothing else."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .catalog.registry import chips, efficiency_profiles, get_chip, get_model, models
from .economics.cost import parse_price_overrides
from .errors import SiliconomicsError, UnknownIdError
from .inference.estimate import estimate_max_throughput, estimate_static
from .parallel.plan import InferencePlan
from .plan.assess import assess
from .plan.compare import compare_chips
from .report import serialize, tables
from .units import DTYPES, parse_positive
from .validate.run import validate_file

app = typer.Typer(
    name="siliconomics",
    help="Speed, cost and energy of LLM serving on GPUs and AI ASICs, from first principles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")]
DTYPE_HELP = f"one of {', '.join(DTYPES)}"


def _emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _dtype(name: str, v: str) -> str:
    if v not in DTYPES:
        raise SiliconomicsError(f"--{name} '{v}' is not a dtype; allowed: {', '.join(DTYPES)}")
    return v


@app.command("chips")
def chips_cmd(as_json: JsonOpt = False) -> None:
    """List every accelerator in the catalog."""
    if as_json:
        _emit_json([serialize.chip_dict(c) for c in chips().values()])
    else:
        out.print(tables.chips_table())


@app.command("models")
def models_cmd(as_json: JsonOpt = False) -> None:
    """List every model preset."""
    if as_json:
        _emit_json([serialize.model_dict(m) for m in models().values()])
    else:
        out.print(tables.models_table())


@app.command("show")
def show_cmd(
    item: Annotated[
        str,
        typer.Argument(help="a chip id, model id, efficiency-profile family, or config.json"),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Show one chip, model or efficiency profile with every number's source."""
    if item in efficiency_profiles():
        p = efficiency_profiles()[item]
        if as_json:
            _emit_json(p.model_dump(mode="json"))
        else:
            out.print(tables.profile_detail(p))
        return
    if item in chips():
        c = get_chip(item)
        _emit_json(serialize.chip_dict(c)) if as_json else out.print(tables.chip_detail(c))
        return
    if item not in models() and not item.endswith(".json") and not Path(item).is_dir():
        known = [*chips(), *models(), *efficiency_profiles()]
        raise UnknownIdError(
            "chip, model or profile",
            item,
            known,
            listing="see siliconomics chips / siliconomics models",
        )
    m = get_model(item)
    _emit_json(serialize.model_dict(m)) if as_json else out.print(tables.model_detail(m))


@app.command("estimate")
def estimate_cmd(
    model: Annotated[str, typer.Option(help="model id or path to a HF config.json")],
    chip: Annotated[str, typer.Option(help="chip id (see 'siliconomics chips')")],
    tp: Annotated[int, typer.Option(min=1, help="tensor-parallel degree (chips)")] = 1,
    pp: Annotated[int, typer.Option(min=1, help="pipeline stages")] = 1,
    ep: Annotated[int, typer.Option(min=1, help="expert-parallel degree (MoE)")] = 1,
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
    price: Annotated[list[str] | None, typer.Option(help="CHIP=USD per chip-hour")] = None,
    as_json: JsonOpt = False,
) -> None:
    """One configuration: latency, throughput, memory, cost, energy and a per-op breakdown."""
    m = get_model(model)
    c = get_chip(chip)
    plan = InferencePlan(
        tp=tp,
        pp=pp,
        ep=ep,
        replicas=replicas,
        weight_dtype=_dtype("weights-dtype", weights_dtype),
        act_dtype=_dtype("act-dtype", act_dtype),
        kv_dtype=_dtype("kv-dtype", kv_dtype),
    )
    if mode == "static":
        est = estimate_static(m, c, plan, batch, input_len, output_len)
    elif mode == "max-throughput":
        est = estimate_max_throughput(m, c, plan, input_len, output_len, batch_limit=batch)
    else:
        raise SiliconomicsError(f"--mode '{mode}': allowed: static, max-throughput")
    a = assess(est, parse_price_overrides(price))
    _emit_json(serialize.assessment_dict(a)) if as_json else tables.render_assessment(out, a)


@app.command("compare")
def compare_cmd(
    model: Annotated[str, typer.Option(help="model id or path to a HF config.json")],
    input_len: Annotated[int, typer.Option("--input", min=1, help="prompt tokens")] = 1024,
    output_len: Annotated[int, typer.Option("--output", min=1, help="generated tokens")] = 256,
    ttft: Annotated[str | None, typer.Option(help="time-to-first-token target, e.g. 2s")] = None,
    tpot: Annotated[
        str | None, typer.Option(help="time-per-output-token target, e.g. 50ms")
    ] = None,
    chip: Annotated[list[str] | None, typer.Option(help="limit to these chips (repeat)")] = None,
    weights_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    act_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    kv_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    price: Annotated[list[str] | None, typer.Option(help="CHIP=USD per chip-hour")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rank every chip by $ per million output tokens at its best layout within the targets."""
    m = get_model(model)
    for cid in chip or []:
        get_chip(cid)
    cmp = compare_chips(
        m,
        input_len=input_len,
        output_len=output_len,
        ttft_s=parse_positive(ttft, "seconds", what="--ttft") if ttft else None,
        tpot_s=parse_positive(tpot, "seconds", what="--tpot") if tpot else None,
        chip_ids=chip,
        weight_dtype=_dtype("weights-dtype", weights_dtype),
        act_dtype=_dtype("act-dtype", act_dtype),
        kv_dtype=_dtype("kv-dtype", kv_dtype),
        price_overrides=parse_price_overrides(price),
    )
    _emit_json(serialize.comparison_dict(cmp)) if as_json else tables.render_comparison(out, cmp)


@app.command("validate")
def validate_cmd(
    file: Annotated[Path, typer.Argument(help="measured results CSV (shared SCHEMA.md)")],
    models_csv: Annotated[
        Path | None, typer.Option(help="models.csv (default: beside FILE)")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="summaries only, no per-row table")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Predict every usable inference row of FILE and report the error per chip and metric."""
    r = validate_file(file, models_csv)
    if as_json:
        _emit_json(serialize.validation_dict(r))
        return
    tables.render_validation(out, r, rows=not quiet)
    out.print(f"median_abs_pct_error={r.median_abs_pct:.2f} rows={len(r.results)}", highlight=False)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2 (typer/click
    already report bad options that way)."""
    try:
        app()
    except SiliconomicsError as e:
        err.print(f"error: {e}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

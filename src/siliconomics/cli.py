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
from .economics.pricing import MODES, parse_price_overrides_toml
from .economics.tco import load_owned_assumptions, read_toml_file
from .errors import SiliconomicsError, UnknownIdError
from .inference.estimate import estimate_max_throughput, estimate_static
from .parallel.plan import InferencePlan
from .plan.assess import assess
from .plan.compare import compare_chips
from .plan.tco_study import study_tco
from .report import serialize, tables, train_tables
from .report import tco as tco_report
from .report.html import write_html, write_output
from .training.study import study_training
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
    """Predict every usable inference and training row of FILE and report the error per chip
    family, metric and chip (last line: the inference median)."""
    r = validate_file(file, models_csv)
    if as_json:
        _emit_json(serialize.validation_dict(r))
        return
    tables.render_validation(out, r, rows=not quiet)
    if r.training is not None:
        train_tables.render_training_validation(out, r.training, rows=not quiet)
    out.print(f"median_abs_pct_error={r.median_abs_pct:.2f} rows={len(r.results)}", highlight=False)


@app.command("train")
def train_cmd(
    model: Annotated[str, typer.Option(help="model id or path to a HF config.json")],
    chip: Annotated[str, typer.Option(help="chip id (see 'siliconomics chips')")],
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
    dtype: Annotated[str, typer.Option(help="GEMM format: bf16, fp8, int8")] = "bf16",
    method: Annotated[str, typer.Option(help="'full' or 'lora' (frozen base)")] = "full",
    optimizer: Annotated[str, typer.Option(help="adam, adam-8bit, sgd, adafactor")] = "adam",
    price: Annotated[list[str] | None, typer.Option(help="CHIP=USD per chip-hour")] = None,
    mode: Annotated[
        str, typer.Option(help="on-demand, reserved-1y, reserved-3y, spot or owned (TCO)")
    ] = "on-demand",
    prices: Annotated[
        Path | None, typer.Option(help="TOML of price overrides (see docs/ECONOMICS.md)")
    ] = None,
    utilisation: Annotated[
        float,
        typer.Option(
            min=0.01, max=1.0, help="owned: cluster's average busy fraction over its life"
        ),
    ] = 0.6,
    as_json: JsonOpt = False,
) -> None:
    """Training: step time, MFU, memory, and time, cost and energy to train a token budget,
    for a given plan or the fastest plans found by search."""
    study = study_training(
        get_model(model),
        get_chip(chip).id,
        n_chips,
        parse_positive(tokens, "count", what="--tokens"),
        seq_len=seq_len,
        global_batch_seqs=global_batch,
        plan_text=plan,
        top=top,
        dtype=_dtype("dtype", dtype),
        method=method,
        optimizer=optimizer,
        price_overrides=parse_price_overrides(price),
        pricing=mode,
        utilisation=utilisation,
        price_book=parse_price_overrides_toml(read_toml_file(prices, "--prices"))
        if prices
        else None,
    )
    _emit_json(train_tables.study_dict(study)) if as_json else train_tables.render_study(out, study)


@app.command("tco")
def tco_cmd(
    chip: Annotated[str, typer.Option(help="chip id (see 'siliconomics chips')")],
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
    prices: Annotated[
        Path | None, typer.Option(help="TOML of price overrides (see docs/ECONOMICS.md)")
    ] = None,
    assumptions: Annotated[
        Path | None, typer.Option(help="TOML overriding owned-TCO defaults (docs/ECONOMICS.md)")
    ] = None,
    weights_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    act_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    kv_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    html: Annotated[
        Path | None, typer.Option(help="also write a self-contained HTML report")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rent or buy: itemised owned vs cloud USD per chip-hour, break-even utilisation,
    USD per million tokens and J/token for a model, and what moves the cost most."""
    study = study_tco(
        chip,
        mode=mode,
        utilisation=utilisation,
        model=get_model(model) if model else None,
        input_len=input_len,
        output_len=output_len,
        ttft_s=parse_positive(ttft, "seconds", what="--ttft") if ttft else None,
        tpot_s=parse_positive(tpot, "seconds", what="--tpot") if tpot else None,
        weight_dtype=_dtype("weights-dtype", weights_dtype),
        act_dtype=_dtype("act-dtype", act_dtype),
        kv_dtype=_dtype("kv-dtype", kv_dtype),
        assumptions=load_owned_assumptions(read_toml_file(assumptions, "--assumptions"))
        if assumptions
        else None,
        overrides=parse_price_overrides_toml(read_toml_file(prices, "--prices"))
        if prices
        else None,
    )
    if html:
        write_html(html, tco_report.tco_html(study))
        err.print(f"wrote {html}", highlight=False)
    if as_json:
        _emit_json(tco_report.tco_dict(study))
    else:
        tco_report.render_tco(out, study)


@app.command("plan")
def plan_cmd(
    spec: Annotated[Path, typer.Argument(help="plan spec, YAML or TOML (see docs/PLANNING.md)")],
    html: Annotated[
        Path | None, typer.Option(help="also write a self-contained HTML report")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Cheapest fleet (GPUs and ASICs, possibly mixed or prefill/decode split) that serves the
    spec's traffic within its latency targets, and the cheapest cluster for its training job."""
    from .fleet import load_spec, run_plan
    from .report import plan_report

    with plan_report.progress_bar(err) as progress:
        outcome = run_plan(load_spec(spec), progress)
    if html:
        write_html(html, plan_report.plan_html(outcome))
        err.print(f"wrote {html}", highlight=False)
    if as_json:
        _emit_json(plan_report.outcome_dict(outcome))
    else:
        plan_report.render(out, outcome)


@app.command("simulate")
def simulate_cmd(
    model: Annotated[str, typer.Option(help="model id or path to a HF config.json")],
    chip: Annotated[str, typer.Option(help="chip id of the replicas")],
    tp: Annotated[int, typer.Option(min=1, help="tensor-parallel degree per replica")] = 1,
    pp: Annotated[int, typer.Option(min=1, help="pipeline stages per replica")] = 1,
    ep: Annotated[int, typer.Option(min=1, help="expert-parallel degree (MoE)")] = 1,
    replicas: Annotated[int, typer.Option(min=1, help="replicas of the pool")] = 1,
    rate: Annotated[
        float | None, typer.Option(min=0.0, help="arrival rate, requests/s (none: offline)")
    ] = None,
    arrival: Annotated[
        str, typer.Option(help="poisson | gamma:CV | constant | burst | piecewise:R@S,...")
    ] = "poisson",
    input_len: Annotated[
        str, typer.Option("--input", help="prompt tokens: N | uniform:A,B | lognormal:MEAN,SIGMA")
    ] = "1024",
    output_len: Annotated[str, typer.Option("--output", help="output tokens (as --input)")] = "256",
    trace: Annotated[
        str | None,
        typer.Option(help="CSV trace to replay, or azure-conv | azure-code | arxiv-summarization"),
    ] = None,
    requests: Annotated[int | None, typer.Option(min=1, help="simulate exactly N requests")] = None,
    ttft: Annotated[str | None, typer.Option(help="TTFT limit, e.g. 2s")] = None,
    tpot: Annotated[str | None, typer.Option(help="TPOT limit, e.g. 50ms")] = None,
    e2e: Annotated[str | None, typer.Option(help="end-to-end limit, e.g. 20s")] = None,
    percentile: Annotated[float, typer.Option(help="SLO percentile")] = 99.0,
    scheduler: Annotated[str, typer.Option(help="chunked | continuous | static")] = "chunked",
    router: Annotated[str, typer.Option(help="least-tokens | round-robin | jsq")] = "least-tokens",
    max_seqs: Annotated[
        int, typer.Option(min=0, help="max sequences per replica (0: KV memory decides)")
    ] = 256,
    max_batched_tokens: Annotated[int, typer.Option(min=1, help="tokens per step")] = 8192,
    block_size: Annotated[int, typer.Option(min=1, help="KV block, tokens")] = 16,
    prefill_chip: Annotated[str | None, typer.Option(help="disaggregated: prefill chip")] = None,
    prefill_tp: Annotated[int | None, typer.Option(min=1, help="prefill tp")] = None,
    prefill_replicas: Annotated[int | None, typer.Option(min=1, help="prefill replicas")] = None,
    decode_chip: Annotated[str | None, typer.Option(help="disaggregated: decode chip")] = None,
    decode_tp: Annotated[int | None, typer.Option(min=1, help="decode tp")] = None,
    decode_replicas: Annotated[int | None, typer.Option(min=1, help="decode replicas")] = None,
    weights_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    act_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    kv_dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "bf16",
    max_rate: Annotated[
        bool, typer.Option("--max-rate", help="find the highest rate meeting the SLO")
    ] = False,
    min_replicas_for: Annotated[
        float | None, typer.Option(min=0.0, help="fewest replicas serving RATE req/s in the SLO")
    ] = None,
    warmup: Annotated[float, typer.Option(help="fraction of first requests not measured")] = 0.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    trace_out: Annotated[
        Path | None, typer.Option(help="write a Chrome trace (chrome://tracing, Perfetto)")
    ] = None,
    price: Annotated[list[str] | None, typer.Option(help="CHIP=USD per chip-hour")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate serving request by request: latency percentiles, throughput, goodput, cost,
    energy; or search the max rate (--max-rate) or fewest replicas (--min-replicas-for)."""
    from .report import sim_tables
    from .serving import Slo, min_replicas, simulate
    from .serving import max_rate as find_max_rate
    from .serving.spec import make_config, make_workload

    disagg = any(v is not None for v in (prefill_chip, prefill_tp, prefill_replicas))
    disagg = disagg or any(v is not None for v in (decode_chip, decode_tp, decode_replicas))
    cfg = make_config(
        get_model(model),
        chip,
        tp=tp,
        pp=pp,
        ep=ep,
        replicas=replicas,
        weight_dtype=_dtype("weights-dtype", weights_dtype),
        act_dtype=_dtype("act-dtype", act_dtype),
        kv_dtype=_dtype("kv-dtype", kv_dtype),
        scheduler=scheduler,
        router=router,
        max_seqs=max_seqs or None,
        max_batched_tokens=max_batched_tokens,
        block_size=block_size,
        prefill=(prefill_chip or chip, prefill_tp or tp, prefill_replicas or replicas)
        if disagg
        else None,
        decode=(decode_chip or chip, decode_tp or tp, decode_replicas or replicas)
        if disagg
        else None,
        price_overrides=parse_price_overrides(price),
    )
    lines = None
    if trace is not None and Path(trace).is_file():
        lines = Path(trace).read_text(encoding="utf-8").splitlines()
    w = make_workload(
        rate=rate,
        arrival=arrival,
        input_len=input_len,
        output_len=output_len,
        n_requests=requests,
        trace=trace,
        trace_lines=lines,
    )
    lim = {
        k: parse_positive(v, "seconds", what=f"--{k}") if v else None
        for k, v in (("ttft", ttft), ("tpot", tpot), ("e2e", e2e))
    }
    slo = Slo(ttft_s=lim["ttft"], tpot_s=lim["tpot"], e2e_s=lim["e2e"], percentile=percentile)
    if max_rate or min_replicas_for is not None:
        if max_rate:
            cap = find_max_rate(cfg, w, slo, seed=seed)
        else:
            cap = min_replicas(cfg, w, slo, float(min_replicas_for or 0), seed=seed)
        what = "max rate" if max_rate else "min replicas"
        if as_json:
            _emit_json(sim_tables.capacity_dict(cap))
        else:
            sim_tables.render_capacity(out, cfg, cap, what)
        return
    events: list[dict[str, Any]] = []
    with sim_tables.progress_bar(err, enabled=not as_json) as progress:
        res = simulate(
            cfg,
            w,
            seed=seed,
            slo=None if slo.empty else slo,
            warmup=warmup,
            sink=events.append if trace_out else None,
            progress=progress,
        )
    if trace_out:
        write_output(trace_out, json.dumps({"traceEvents": events}), "--trace-out")
        err.print(f"wrote {trace_out} ({len(events)} events)", highlight=False)
    _emit_json(sim_tables.sim_dict(res)) if as_json else sim_tables.render_sim(out, cfg, res)


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

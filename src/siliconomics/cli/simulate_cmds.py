"""simulate: request-level serving simulation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..catalog.registry import get_chip, get_model
from ..economics.cost import parse_price_overrides
from ..report.html import write_output
from ..units import parse_positive
from .bands_opts import LevelOpt, ProfileOpt, StackOpt, add_bands, band, band_line, setup
from .common import DTYPE_HELP, JsonOpt, app, check_dtype, emit_json, err, out


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
    stack: StackOpt = None,
    profile: ProfileOpt = None,
    level: LevelOpt = 0.8,
    as_json: JsonOpt = False,
) -> None:
    """Simulate serving request by request: latency percentiles, throughput, goodput, cost,
    energy; or search the max rate (--max-rate) or fewest replicas (--min-replicas-for).
    Predicted values carry error bands (``_low``/``_high`` in --json)."""
    chip_ids = [c for c in (chip, prefill_chip, decode_chip) if c]
    fams = sorted({get_chip(c).family for c in chip_ids})
    calib = setup(stack, profile, level, "inference", fams)
    regime = "latency-target" if ttft or tpot or e2e else "max-throughput"
    b, rp = band(calib, get_chip(decode_chip or chip).family, get_model(model), regime)
    from ..report import sim_tables
    from ..serving import Slo, min_replicas, simulate
    from ..serving import max_rate as find_max_rate
    from ..serving.spec import make_config, make_workload

    disagg = any(v is not None for v in (prefill_chip, prefill_tp, prefill_replicas))
    disagg = disagg or any(v is not None for v in (decode_chip, decode_tp, decode_replicas))
    cfg = make_config(
        get_model(model),
        chip,
        tp=tp,
        pp=pp,
        ep=ep,
        replicas=replicas,
        weight_dtype=check_dtype("weights-dtype", weights_dtype),
        act_dtype=check_dtype("act-dtype", act_dtype),
        kv_dtype=check_dtype("kv-dtype", kv_dtype),
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
            d = sim_tables.capacity_dict(cap)
            add_bands(d, b, rp)
            emit_json(d)
        else:
            sim_tables.render_capacity(out, cfg, cap, what)
            out.print(band_line(b, rp, {}), highlight=False, markup=False)
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
    if as_json:
        d = sim_tables.sim_dict(res)
        add_bands(d, b, rp)
        emit_json(d)
        return
    sim_tables.render_sim(out, cfg, res)
    out.print(band_line(b, rp, {}), highlight=False, markup=False)

"""simulate: request-level serving simulation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import api
from ..errors import SiliconomicsError
from ..report import sim_tables
from ..report.html import write_output
from ..serving.router import ROUTERS
from ..serving.schedulers import SCHEDULERS
from ..units import parse_positive
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
from .inputs import duration, exclusive, finite_cb, text_file, writable_cb
from .prices_cmds import ModeOpt, PriceOpt, PricesOpt, ProviderOpt, RegionOpt, build_pricing


@app.command("simulate")
def simulate_cmd(
    model: Annotated[
        str, typer.Option(help="model id, a model file (TOML/JSON) or a HF config.json")
    ],
    chip: Annotated[str, typer.Option(help="chip id or chip file of the replicas")],
    tp: Annotated[int, typer.Option(min=1, help="tensor-parallel degree per replica")] = 1,
    pp: Annotated[int, typer.Option(min=1, help="pipeline stages per replica")] = 1,
    ep: Annotated[int, typer.Option(min=1, help="expert-parallel degree (MoE), divides dp*tp")] = 1,
    dp: Annotated[
        int, typer.Option(min=1, help="attention data-parallel degree inside one replica")
    ] = 1,
    replicas: Annotated[int, typer.Option(min=1, help="replicas of the pool")] = 1,
    rate: Annotated[
        float | None,
        typer.Option(help="arrival rate, requests/s > 0 (none: offline)", callback=finite_cb),
    ] = None,
    arrival: Annotated[
        str, typer.Option(help="poisson | gamma:CV | constant | burst | piecewise:R@S,...")
    ] = "poisson",
    input_len: Annotated[
        str | None,
        typer.Option(
            "--input", help="prompt tokens: N | uniform:A,B | lognormal:MEAN,SIGMA [1024]"
        ),
    ] = None,
    output_len: Annotated[
        str | None, typer.Option("--output", help="output tokens (as --input) [256]")
    ] = None,
    trace: Annotated[
        str | None,
        typer.Option(help="CSV trace to replay, or azure-conv | azure-code | arxiv-summarization"),
    ] = None,
    requests: Annotated[int | None, typer.Option(min=1, help="simulate exactly N requests")] = None,
    ttft: Annotated[str | None, typer.Option(help="TTFT limit, e.g. 2s")] = None,
    tpot: Annotated[str | None, typer.Option(help="TPOT limit, e.g. 50ms")] = None,
    e2e: Annotated[str | None, typer.Option(help="end-to-end limit, e.g. 20s")] = None,
    percentile: Annotated[
        float, typer.Option(min=0.0, max=100.0, help="SLO percentile", callback=finite_cb)
    ] = 99.0,
    scheduler: Annotated[str, typer.Option(help=" | ".join(SCHEDULERS))] = "chunked",
    router: Annotated[str, typer.Option(help=" | ".join(ROUTERS))] = "least-tokens",
    max_seqs: Annotated[
        int, typer.Option(min=0, help="max sequences per replica (0: KV memory decides)")
    ] = 256,
    max_batched_tokens: Annotated[int, typer.Option(min=1, help="tokens per step")] = 8192,
    block_size: Annotated[int, typer.Option(min=1, help="KV block, tokens")] = 16,
    multi_step: Annotated[
        int,
        typer.Option(
            min=1,
            help="continuous scheduler: decode steps per scheduler call (vLLM V0 "
            "num_scheduler_steps; prompts are admitted between rounds)",
        ),
    ] = 1,
    adp_balance: Annotated[
        str | None,
        typer.Option(
            help="chunked scheduler with --dp > 1: TensorRT-LLM attention-DP balancing "
            "TIMEOUT,WAIT (iterations a prompt may be held; extra iterations to batch)"
        ),
    ] = None,
    graph_sizes: Annotated[
        str | None,
        typer.Option(help="CUDA-graph batch sizes decode steps are padded up to, e.g. 1,2,4,8,16"),
    ] = None,
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
        float | None,
        typer.Option(help="fewest replicas serving RATE req/s in the SLO", callback=finite_cb),
    ] = None,
    warmup: Annotated[
        float,
        typer.Option(
            min=0.0, max=0.99, help="fraction of first requests not measured", callback=finite_cb
        ),
    ] = 0.0,
    seed: Annotated[int, typer.Option(min=0, max=2**63 - 1, help="random seed")] = 0,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="flat memory for any number of requests: percentiles from a sketch "
            "(0.5% relative error), no per-request log",
        ),
    ] = False,
    max_memory: Annotated[
        str, typer.Option(help="refuse runs whose request log would need more memory")
    ] = "4GiB",
    trace_out: Annotated[
        Path | None,
        typer.Option(
            help="write a Chrome trace (chrome://tracing, Perfetto)", callback=writable_cb
        ),
    ] = None,
    pricing_mode: ModeOpt = "on-demand",
    prices: PricesOpt = None,
    region: RegionOpt = None,
    provider: ProviderOpt = None,
    price: PriceOpt = None,
    stack: StackOpt = None,
    profile: ProfileOpt = None,
    level: LevelOpt = 0.8,
    mtp: MtpOpt = None,
    accepted: AcceptedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate serving request by request: latency percentiles, throughput, goodput, cost,
    energy; or search the max rate (--max-rate) or fewest replicas (--min-replicas-for).
    Predicted values carry error bands (``_low``/``_high`` in --json)."""
    check_simulate_inputs(
        rate=rate, trace=trace, input_len=input_len, output_len=output_len,
        max_rate=max_rate, min_replicas_for=min_replicas_for, requests=requests,
        max_memory=max_memory, stream=stream,
    )  # fmt: skip
    if trace is not None:
        trace_lines(trace)  # a trace file that is not readable text: one line naming --trace
    pre = (prefill_chip, prefill_tp, prefill_replicas)
    dec = (decode_chip, decode_tp, decode_replicas)
    disagg = any(v is not None for v in (*pre, *dec))
    lim = {k: duration(v, f"--{k}") for k, v in (("ttft", ttft), ("tpot", tpot), ("e2e", e2e))}
    events: list[dict[str, Any]] = []
    search = "max-rate" if max_rate else ("min-replicas" if min_replicas_for is not None else None)
    with sim_tables.progress_bar(err, enabled=not as_json and search is None) as progress:
        r = api.simulate(
            model, chip, tp=tp, pp=pp, ep=ep, dp=dp, replicas=replicas, rate=rate,
            arrival=arrival, input_len=input_len or "1024", output_len=output_len or "256",
            trace=trace, requests=requests, ttft=lim["ttft"], tpot=lim["tpot"], e2e=lim["e2e"],
            percentile=percentile, scheduler=scheduler, router=router, max_seqs=max_seqs,
            max_batched_tokens=max_batched_tokens, block_size=block_size,
            multi_step=multi_step,
            adp_balance=_int_pair(adp_balance, "--adp-balance"),
            graph_sizes=_int_list(graph_sizes, "--graph-sizes"),
            prefill=pre if disagg else None, decode=dec if disagg else None,
            weights_dtype=check_dtype("weights-dtype", weights_dtype),
            act_dtype=check_dtype("act-dtype", act_dtype),
            kv_dtype=check_dtype("kv-dtype", kv_dtype),
            search=search, target_rate=min_replicas_for, warmup=warmup, seed=seed,
            pricing=build_pricing(pricing_mode, prices, region, price, provider=provider),
            stack=stack, profile=profile, level=level,
            sink=events.append if trace_out and search is None else None,
            progress=progress if search is None else None, stream=stream,
            mtp=mtp, accepted=accepted,
        )  # fmt: skip
    assert r.band is not None
    if trace_out and search is None:
        write_output(trace_out, json.dumps({"traceEvents": events}), "--trace-out")
        err.print(f"wrote {trace_out} ({len(events)} events)", highlight=False)
    if as_json:
        emit_json(r.to_dict())
        return
    if search is not None:
        what = "max rate" if max_rate else "min replicas"
        sim_tables.render_capacity(out, r.config, r.value, what)
    else:
        sim_tables.render_sim(out, r.config, r.value)
    out.print(r.band.line(), highlight=False, markup=False)


BYTES_PER_REQUEST = 180
"""peak memory per simulated request (measured: 1.79 GB at 10^7 requests, 16 replicas)"""
BASE_BYTES = 200 * 2**20
"""the interpreter, numpy and the step-time tables"""
MAX_REQUESTS = 100_000_000
"""most requests one simulate call accepts (the simulator's memory grows with requests)"""


MAX_GRAPH_BATCH = 1 << 20
"""largest CUDA-graph batch size accepted (TensorRT-LLM captures up to 8,192 sequences)"""


def _int_list(text: str | None, opt: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers (``opt`` names the option in errors)."""
    if text is None:
        return ()
    try:
        vals = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise SiliconomicsError(
            f"{opt} must be comma-separated positive integers, e.g. 1,2,4; got {text!r}"
        ) from None
    if not vals or any(v < 1 or v > MAX_GRAPH_BATCH for v in vals):
        raise SiliconomicsError(
            f"{opt} must be comma-separated integers from 1 to {MAX_GRAPH_BATCH:,}; got {text!r}"
        )
    return vals


def _int_pair(text: str | None, opt: str) -> tuple[int, int] | None:
    """TIMEOUT,WAIT: two integers, TIMEOUT >= 1 and WAIT >= 0."""
    if text is None:
        return None
    try:
        a, b = (int(x) for x in text.split(","))
    except ValueError:
        raise SiliconomicsError(
            f"{opt} must be TIMEOUT,WAIT (two integers, e.g. 9,3); got {text!r}"
        ) from None
    if a < 1 or b < 0:
        raise SiliconomicsError(f"{opt}: TIMEOUT must be >= 1 and WAIT >= 0; got {text!r}")
    return a, b


def check_simulate_inputs(
    *,
    rate: float | None,
    trace: str | None,
    input_len: str | None,
    output_len: str | None,
    max_rate: bool,
    min_replicas_for: float | None,
    requests: int | None,
    max_memory: str = "4GiB",
    stream: bool = False,
) -> None:
    """Options that conflict or are out of range, refused before any work."""
    exclusive(max_rate=max_rate, min_replicas_for=min_replicas_for)
    if stream:
        exclusive(stream=stream, max_rate=max_rate)
        exclusive(stream=stream, min_replicas_for=min_replicas_for)
    if trace is not None:
        exclusive(trace=trace, input=input_len)
        exclusive(trace=trace, output=output_len)
    if rate is not None and rate <= 0:
        raise SiliconomicsError(f"--rate must be > 0 requests/s, got {rate:g}")
    if min_replicas_for is not None and min_replicas_for <= 0:
        raise SiliconomicsError(
            f"--min-replicas-for must be > 0 requests/s, got {min_replicas_for:g}"
        )
    if requests is not None and requests > MAX_REQUESTS:
        raise SiliconomicsError(
            f"--requests {requests:,}: at most {MAX_REQUESTS:,} per run; split a larger study "
            "into runs with different --seed values"
        )
    limit = parse_positive(max_memory, "bytes", what="--max-memory")
    need = BASE_BYTES + (0 if stream else BYTES_PER_REQUEST * (requests or 0))
    if need > limit:
        raise SiliconomicsError(
            f"--requests {requests:,} needs about {need / 2**30:.1f} GiB ({BYTES_PER_REQUEST} "
            f"bytes a request), more than --max-memory {limit / 2**30:.1f} GiB; use --stream "
            "(flat memory), raise --max-memory or split the run over several --seed values"
        )


def trace_lines(trace: str | None) -> list[str] | None:
    """The lines of a trace file, or None for a named trace (azure-conv, ...) or no trace."""
    if trace is None or not Path(trace).exists():
        return None
    return text_file(Path(trace), "--trace").splitlines()

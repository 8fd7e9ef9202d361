"""Measured ``server`` and ``offline`` rows through the serving simulator.

* ``server`` (MLPerf Server / Interactive): Poisson arrivals; the capacity search finds the
  highest rate, at most the saturation rate (a measured Server run lasts >= 600 s, long
  enough for any backlog above it to show; ``serving.capacity``), whose p99 TTFT and p99 TPOT
  meet the row's limits; the prediction is that rate times the mean output length (output
  tokens/s) or the rate itself (samples/s). The chip's profile is the one ``run_row`` uses
  (``engine_device``: no per-sequence host cost on the C++ TensorRT runtime).
* ``offline``: every request at t = 0 on one replica (replicas are identical and independent),
  steady-state output tokens/s (requests finishing between the 10th and 90th percentile of
  finish times) times the replicas. Reported beside the static max-throughput estimate, which
  stays the row's prediction.

Engine assumptions (the same for every row, never tuned per row): chunked-prefill scheduling
with decode-first mixed steps (TensorRT-LLM in-flight batching with chunked context; vLLM's
chunked prefill), a token budget of 8192 per step (TensorRT-LLM's default ``max_num_tokens``),
``batch`` as the per-replica sequence limit (empty: the KV cache decides), 16-token KV blocks,
least-outstanding-tokens routing.

Length distributions: the file gives means (and for some sets a median and range). Where the
dataset's per-sample prompt lengths are published (``mlperf_server.INPUT_QUANTILES``), inputs
follow them scaled to the row's mean; otherwise the shape is an assumption stated on each row. A
lognormal is fitted to mean and median where both are
known and the median is below the mean (sigma = sqrt(2 ln(mean / median))), clipped to the
stated range; otherwise a uniform from the stated minimum with the stated mean, or the mean
itself (fixed). Outputs follow the dataset's published per-sample output lengths scaled to the
row's mean where a table exists (``mlperf_server.OUTPUT_QUANTILES``), else the mean (fixed).

Harness settings (``mlperf_server.harness``): an MLPerf v5.1 Server/Interactive row whose
published harness config is known runs with that config's scheduler (chunked prefill on/off),
token budget per attention rank and CUDA-graph padding instead of the defaults above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..catalog.catalog import Catalog
from ..catalog.schema import ModelSpec
from ..errors import DoesNotFitError, SiliconomicsError
from ..measured.rows import MeasuredRow
from ..ops.device import Device
from ..parallel.plan import InferencePlan
from ..serving.capacity import SATURATION_GENERATIONS, concurrency, max_rate
from ..serving.config import PoolConfig, ServingConfig, Slo
from ..serving.simulate import simulate
from ..serving.workload import Arrival, Lengths, Workload
from .mlperf_server import INPUT_QUANTILES, OUTPUT_QUANTILES, Harness, harness
from .rows import RowResult, candidate_plans
from .run import engine_device, engine_settings, run_row

MAX_BATCHED_TOKENS = 8192
SERVER_REQUESTS = 2000
"""requests per capacity-search trial of a server row (``validate``; cross-validation may pass
fewer: the p99 limits are then estimated from fewer requests, a noisier but unbiased search)"""


@dataclass(frozen=True)
class Shape:
    """What the file states about a length distribution beyond its mean."""

    median_input: float | None = None
    min_input: float | None = None
    max_input: float | None = None
    source: str = ""


# Medians and ranges as stated in shared/validation/SCHEMA.md (length distributions).
SHAPES: dict[str, Shape] = {
    "openorca-mlperf": Shape(152.0, 48.0, 1021.0, "median 152, range 48-1021 (SCHEMA.md)"),
    "llama3.1-405b-mlperf": Shape(10112.0, 476.0, 19988.0, "median 10,112, range 476-19,988"),
    "mixtral-mlperf": Shape(source="mean only"),
    "deepseek-r1-mlperf": Shape(source="mean only"),
    "cnndm-mlperf-llama3.1-8b": Shape(None, 79.0, 2540.0, "range 79-2,540"),
}


SERVER_METRICS = ("output_tokens_per_s", "total_tokens_per_s", "samples_per_s")
"""what a server row may measure: the throughput at the highest rate meeting its limits"""


def input_lengths(row: MeasuredRow) -> tuple[Lengths, str]:
    """The prompt-length distribution assumed for ``row`` and a sentence saying so."""
    mean = row.input_len or 0.0
    table = INPUT_QUANTILES.get(row.length_dist)
    if table is not None and mean > 0:
        lengths, desc = _scaled(table, mean)
        return lengths, f"input: the dataset's 100 prompt-length quantiles {desc}"
    s = SHAPES.get(row.length_dist)
    if row.length_dist == "fixed" or s is None:
        return Lengths(params=(mean,)), f"input fixed at {mean:g} tokens"
    if s.median_input is not None and s.median_input < mean:
        sigma = math.sqrt(2.0 * math.log(mean / s.median_input))
        hi = s.max_input or math.inf
        params = (mean, sigma) if math.isinf(hi) else (mean, sigma, hi)
        return (
            Lengths(kind="lognormal", params=params),
            f"input lognormal with mean {mean:g} and sigma {sigma:.3f} fitted to the "
            f"{s.source}, clipped at {hi:g}",
        )
    if s.min_input is not None and 2 * mean - s.min_input > s.min_input:
        hi = 2 * mean - s.min_input
        return (
            Lengths(kind="uniform", params=(s.min_input, hi)),
            f"input uniform {s.min_input:g}-{hi:g} (stated minimum, stated mean {mean:g}; "
            "shape unpublished)",
        )
    return Lengths(params=(mean,)), f"input fixed at the mean {mean:g} (shape unpublished)"


def output_lengths(row: MeasuredRow) -> tuple[Lengths, str]:
    """The output-length distribution assumed for ``row`` and a sentence saying so: the
    dataset's published quantiles scaled to the row's mean, else the mean (fixed)."""
    mean = row.output_len or 1.0
    table = OUTPUT_QUANTILES.get(row.length_dist)
    if table is None:
        return Lengths(params=(mean,)), f"output fixed at the mean {mean:g} tokens"
    lengths, desc = _scaled(table, mean)
    return lengths, f"output: the dataset's 100 output-length quantiles {desc}"


def _scaled(table: tuple[tuple[int, ...], str], mean: float) -> tuple[Lengths, str]:
    """A quantile table scaled to ``mean`` (the shape the dataset's, the mean the row's)."""
    q, source = table
    scale = mean / (sum(q) / len(q))
    values = tuple(max(v * scale, 1.0) for v in q)
    return (
        Lengths(kind="empirical", params=values, rounding="nearest"),
        f"({source}) scaled x{scale:.3f} to the mean {mean:g} "
        f"(range {values[0]:.0f}-{values[-1]:.0f})",
    )


def _workload(row: MeasuredRow, n: int) -> tuple[Workload, list[str]]:
    inp, note = input_lengths(row)
    out, out_note = output_lengths(row)
    w = Workload(arrival=Arrival(), input=inp, output=out, n_requests=n)
    return w, [note, out_note]


def _config(
    model: ModelSpec,
    row: MeasuredRow,
    plan: InferencePlan,
    dev: Device,
    replicas: int,
    graph_sizes: tuple[float, ...] = (),
    engine: Harness | None = None,
) -> ServingConfig:
    p = InferencePlan(
        tp=plan.tp,
        pp=plan.pp,
        ep=plan.ep,
        dp=plan.dp,
        replicas=replicas,
        weight_dtype=plan.weight_dtype,
        act_dtype=plan.act_dtype,
        kv_dtype=plan.kv_dtype,
    )
    scheduler, tokens, steps = "chunked", MAX_BATCHED_TOKENS, 1
    adp = None
    if engine is not None:
        scheduler, tokens = engine.scheduler, engine.tokens_per_rank * plan.dp
        graph_sizes = graph_sizes or tuple(float(g) for g in engine.graph_sizes)
        steps = engine.multi_step
        adp = engine.adp_balance if plan.dp > 1 else None
    pool = PoolConfig(
        device=dev,
        plan=p,
        scheduler=scheduler,
        max_seqs=row.batch,
        max_batched_tokens=tokens,
        multi_step=steps,
        adp_balance=adp,
        graph_sizes=tuple(round(g) for g in graph_sizes),
    )
    return ServingConfig(model=model, pool=pool)


def _candidates(row: MeasuredRow) -> list[tuple[InferencePlan, list[str]]]:
    out = candidate_plans(row)
    for plan, _ in out:
        if row.n_chips is not None and plan.chips != row.n_chips:
            raise SiliconomicsError(
                f"layout {plan.replicas} x tp{plan.tp} x pp{plan.pp} != n_chips {row.n_chips}"
            )
    return out


def _engine_notes(h: Harness | None, plan: InferencePlan) -> tuple[str, ...]:
    if h is None:
        return (
            f"engine: chunked prefill, {MAX_BATCHED_TOKENS} tokens/step (defaults; harness "
            "config unknown)",
        )
    mode = "chunked prefill" if h.scheduler == "chunked" else "prefill-first, whole prompts"
    graphs = f", CUDA graphs padded to {list(h.graph_sizes)} per rank" if h.graph_sizes else ""
    if h.multi_step > 1:
        graphs += f", {h.multi_step} decode steps per scheduler call"
    if h.adp_balance is not None:
        graphs += (
            f", attention-DP balancing (prompts held up to {h.adp_balance[0]} iterations, "
            f"{h.adp_balance[1]} more to batch)"
        )
    return (
        f"engine from the harness config: {mode}, {h.tokens_per_rank} tokens/step per rank "
        f"x {plan.dp}{graphs} ({h.source})",
    )


def server_setup(
    row: MeasuredRow, model: ModelSpec, catalog: Catalog, *, n_requests: int = SERVER_REQUESTS
) -> tuple[ServingConfig, Workload]:
    """The serving config (first candidate layout, harness settings where known) and the
    Poisson workload (arrival rate 1 req/s: set ``arrival.rate``) that :func:`run_server_row`
    searches over for ``row``; for simulating a row at a given rate."""
    h = harness(row)
    plan = _candidates(row)[0][0]
    cfg = _config(model, row, plan, engine_device(row, catalog), plan.replicas, engine=h)
    return cfg, _workload(row, n_requests)[0]


def run_server_row(
    row: MeasuredRow, model: ModelSpec, catalog: Catalog, *, n_requests: int = SERVER_REQUESTS
) -> RowResult:
    """Capacity search for the highest Poisson rate meeting the row's p99 limits
    (``n_requests`` per trial)."""
    if row.slo_ttft_s is None and row.slo_tpot_s is None and row.slo_e2e_s is None:
        raise SiliconomicsError(
            "server row without slo_ttft_s/slo_tpot_s/slo_e2e_s: the serving simulator needs "
            "a limit"
        )
    if row.metric not in SERVER_METRICS:
        raise SiliconomicsError(
            f"server metric '{row.metric}' is not a throughput; allowed: "
            f"{', '.join(SERVER_METRICS)}"
        )
    if row.input_len is None or row.output_len is None:
        raise SiliconomicsError(
            f"mean input/output length unknown for length_dist '{row.length_dist}'"
        )
    dev = engine_device(row, catalog)
    slo = Slo(ttft_s=row.slo_ttft_s, tpot_s=row.slo_tpot_s, e2e_s=row.slo_e2e_s, percentile=99.0)
    cands = _candidates(row)
    h = harness(row)
    for k, (plan, notes) in enumerate(cands):
        w, wnotes = _workload(row, n_requests)
        try:
            cap = max_rate(_config(model, row, plan, dev, plan.replicas, engine=h), w, slo)
        except DoesNotFitError:
            if k == len(cands) - 1:
                raise
            continue
        if cap.result is None:
            raise SiliconomicsError(f"serving simulator: {cap.note}")
        value = {
            "output_tokens_per_s": cap.output_tokens_per_s,
            "total_tokens_per_s": cap.total_tokens_per_s,
            "samples_per_s": cap.rate,
        }[row.metric]
        return RowResult(
            row=row,
            family=dev.chip.family,
            predicted=value,
            bound=cap.binding,
            assumptions=(
                *notes,
                *wnotes,
                *_engine_notes(h, plan),
                f"simulated: Poisson arrivals, max rate {cap.rate:.3g} req/s "
                f"({len(cap.trials)} trials, "
                f"{cap.result.n_requests} requests at the answer)",
                *cap.result.assumptions,
            ),
        )
    raise AssertionError("no candidate plan")


def simulate_offline_row(row: MeasuredRow, model: ModelSpec, catalog: Catalog) -> float:
    """Steady-state output tokens/s of an offline run (all requests at t = 0), with the CUDA
    graphs the analytic estimate assumes for the row's engine (``engine_settings``)."""
    dev = engine_device(row, catalog)
    cands = _candidates(row)
    for k, (plan, _) in enumerate(cands):
        try:
            graphs = engine_settings(row, model, dev, plan).graph_batch_sizes
            cfg = _config(model, row, plan, dev, 1, graphs)
            w, _ = _workload(row, 1)
            n = min(max(2000, SATURATION_GENERATIONS * concurrency(cfg, w)), 100_000)
            burst = Workload(
                arrival=Arrival(kind="burst"), input=w.input, output=w.output, n_requests=n
            )
            r = simulate(cfg, burst)
        except DoesNotFitError:
            if k == len(cands) - 1:
                raise
            continue
        tok = r.steady_output_tokens_per_s * plan.replicas
        if row.metric == "total_tokens_per_s":
            return tok * (1.0 + (row.input_len or 0.0) / (row.output_len or 1.0))
        return tok if row.metric == "output_tokens_per_s" else tok / (row.output_len or 1.0)
    raise AssertionError("no candidate plan")


def run_with_simulator(row: MeasuredRow, model: ModelSpec, catalog: Catalog) -> RowResult:
    """``run_row``, plus the simulator: server rows are predicted by it, offline rows carry
    its value in ``simulated`` (None where it cannot run)."""
    if row.scenario == "server":
        return run_server_row(row, model, catalog)
    res = run_row(row, model, catalog)
    if row.scenario != "offline":
        return res
    try:
        return replace(res, simulated=simulate_offline_row(row, model, catalog))
    except SiliconomicsError:
        return res

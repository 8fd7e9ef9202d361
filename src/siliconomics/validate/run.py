"""Predict each usable measured inference row and compare (``siliconomics validate``).

Mapping of a row to a model run (SCHEMA.md scenarios):

* ``static_batch``, ``latency``: :func:`estimate_static` with the row's batch and lengths.
* ``offline``: :func:`estimate_max_throughput` with ``batch`` as the engine's limit per replica
  (empty = memory and the benchmark tool's own settings decide, :func:`engine_settings`) and
  the dataset's mean lengths.
* ``server``: the serving simulator's capacity search (max Poisson rate within the row's p99
  limits), run by :func:`.suite.validate_rows` through :mod:`.serve_rows`, which also reports the
  simulated value beside each offline row (``run_row`` itself stays analytic: calibration
  fits call it many times).

Row fields that are empty are filled by stated, documented defaults and listed per row in
``assumptions`` (an empty KV dtype becomes the 16-bit activation format: the frameworks'
default). A row that lacks something the model cannot assume (lengths, chip count) is
listed with the reason instead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from ..catalog.catalog import Catalog
from ..catalog.schema import ModelSpec
from ..catalog.stacks import row_stack, stacks
from ..errors import DoesNotFitError, SiliconomicsError
from ..inference.buckets import Buckets
from ..inference.estimate import (
    Estimate,
    estimate_max_throughput,
    estimate_static,
    max_batch,
)
from ..measured.rows import MeasuredRow
from ..ops.device import Device
from ..parallel.plan import InferencePlan
from .rows import RowResult, candidate_plans, row_device

METRICS = (
    "output_tokens_per_s",
    "total_tokens_per_s",
    "ttft_s",
    "tpot_s",
    "e2e_latency_s",
    "samples_per_s",
)


def _metric(est: Estimate, row: MeasuredRow) -> float:
    m = row.metric
    if m == "output_tokens_per_s":
        return float(est.output_tokens_per_s)
    if m == "total_tokens_per_s":
        return float(est.output_tokens_per_s * (est.input_len + est.output_len) / est.output_len)
    if m == "ttft_s":
        return float(est.ttft_s)
    if m == "tpot_s":
        return float(est.tpot_s)
    if m == "e2e_latency_s":
        return float(est.e2e_s)
    if m == "samples_per_s":
        return float(est.output_tokens_per_s / est.output_len)
    raise AssertionError(m)


# TensorRT-LLM's own benchmark tools (trtllm-bench, gptManagerBenchmark) run its executor with
# the default capacity scheduler, GUARANTEED_NO_EVICT: a request is admitted only when KV blocks
# for its whole input + output are free ("Useful Runtime Options", TensorRT-LLM docs,
# https://nvidia.github.io/TensorRT-LLM/performance/performance-tuning-guide/useful-runtime-flags.html).
# NVIDIA's MLPerf harness sets 'batch_scheduler_policy': 'max_util' for Offline
# (mlcommons/inference_results_v4.1 closed/NVIDIA/configs/<benchmark>/Offline/__init__.py):
# blocks are taken as tokens are generated, as in vLLM.
_TRTLLM = re.compile(r"tensorrt[- ]?llm|trt[- ]?llm|gptmanagerbenchmark", re.I)
_MAX_UTIL = re.compile(r"mlperf|harness", re.I)
# trtllm-bench sizes the engine itself when no limit is given (NVIDIA/TensorRT-LLM
# tensorrt_llm/bench/build/tuning.py, finetune_setting, same in every version since v0.15):
# max_batch_size = min(KV-cache requests, 4096) / pp rounded up, max_num_tokens =
# min(max_batch_size * (1 + ISL/OSL), 32768) rounded up (at least 2048). With attention data
# parallelism every rank admits up to max_batch_size requests (tensorrt_llm/_torch/pyexecutor/
# py_executor.py, _fetch_new_requests: total = tp_size * max_num_active_requests).
TRTLLM_BENCH_MAX_BATCH = 4096
# Rows run on TensorRT-LLM's retired C++ TensorRT-engine runtime (0.x engines, the gptManager /
# gptSession benchmarks, MLPerf harnesses built on TensorRT engines): the per-sequence host cost
# of the profile (measured on the PyTorch executor) does not apply.
_CPP_RUNTIME = re.compile(
    r"tensorrt engine|gptmanagerbenchmark|gptsessionbenchmark|mlperf|harness|^tensorrt \d", re.I
)
TRTLLM_BENCH_MAX_TOKENS = 32768
# The share of device memory an engine may fill with weights and KV cache, when a row's
# software text states the flag it was launched with: vLLM's --gpu-memory-utilization (weights,
# activations and KV cache; vllm/engine/arg_utils.py) and SGLang's / SGLang-JAX's
# --mem-fraction-static (weights and the KV pool; sgl_jax/srt/server_args.py). The rest is the
# runtime reserve (activations are still counted apart, a margin of under 1% of memory for
# SGLang's chunk sizes).
_MEMORY_FLAG = re.compile(
    r"(?:--gpu-memory-utilization|--mem-fraction-static|gpu_memory_utilization|"
    r"mem_fraction_static)[= ]\s*([0-9]*\.?[0-9]+)",
    re.I,
)
# TensorRT-LLM sizes its KV cache as a share of the memory left free after the model loads:
# trtllm-bench --kv_cache_free_gpu_mem_fraction, the LLM API's
# KvCacheConfig.free_gpu_memory_fraction.
_FREE_MEMORY_FLAG = re.compile(
    r"(?:kv_cache_free_gpu_mem_fraction|free_gpu_memory_fraction)[=: ]\s*([0-9]*\.?[0-9]+)",
    re.I,
)
# TensorRT-LLM's TensorRT-engine runtime (0.x) windows attention only when the run passes
# max_attention_window_size (default: max_seq_len, i.e. full attention; NVIDIA/TensorRT-LLM
# issue #1404: "Pass 4096 as max_attention_window_size" to run Mistral-7B-v0.1's window), and
# neither trtllm-bench nor gptManagerBenchmark set it in the published runs; the PyTorch
# backend did not pass Mistral/Mixtral's config.sliding_window to its attention kernel either
# until PR #12597 (2026-03-30: "full O(N^2) attention during prefill instead of O(N x W)").
_TRT_ENGINE_RUNTIME = re.compile(r"tensorrt engine|gptmanagerbenchmark", re.I)
FULL_ATTENTION_FAMILIES = ("mistral", "mixtral")
# The PyTorch-backend runs of TensorRT-LLM's performance overview capture CUDA graphs at these
# batch sizes with padding (docs/source/performance/perf-overview.md @00f37686, llm_options.yml:
# cuda_graph_config enable_padding: true, batch_sizes 1 ... 8192); generation-only steps run
# padded up to the next size (inference/graphs.py).
TRTLLM_BENCH_GRAPH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048, 4096, 8192)


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    """How the engine that produced an offline row limits its running batch."""

    batch_limit: float | None
    max_prefill_tokens: float = 8192.0
    reserve_full_length: bool = False
    graph_batch_sizes: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()


def _round_batch(raw: float) -> float:
    """trtllm-bench's optimistic rounding of its max_batch_size (tuning.py, finetune_setting)."""
    if raw < 256:
        return max(64.0, 32.0 * math.ceil(raw / 32))
    if raw < 1024:
        return 128.0 * math.ceil(raw / 128)
    return 256.0 * math.ceil(raw / 256)


def _round_tokens(raw: float) -> float:
    if raw < 4096:
        return max(2048.0, 256.0 * math.ceil(raw / 256.0))
    if raw < 8192:
        return 512.0 * math.ceil(raw / 512.0)
    return 1024.0 * math.ceil(raw / 1024.0)


def engine_settings(
    row: MeasuredRow, model: ModelSpec, dev: Device, plan: InferencePlan
) -> EngineSettings:
    """The running-batch limit, prefill token budget and KV admission policy of the engine
    behind an offline row: its published ``batch`` if any; TensorRT-LLM reserves each
    request's full length (C++ runtime rows, see below); trtllm-bench adds its own batch and
    token limits."""
    sw = row.software or ""
    # GUARANTEED_NO_EVICT is the default capacity scheduler of both TensorRT-LLM runtimes (the
    # C++ TensorRT-engine runtime of 0.x and the PyTorch executor of 1.0+, SchedulerConfig in
    # tensorrt_llm/llmapi/llm_args.py): each request is admitted with KV blocks for its whole
    # input + output. (Before trtllm-bench's max_batch_size was modelled, PyTorch rows came
    # out ~10% slow with it and were sized at the average context instead.)
    no_evict = bool(_TRTLLM.search(sw)) and not _MAX_UTIL.search(sw)
    notes = (
        ("TensorRT-LLM GUARANTEED_NO_EVICT: KV cache reserved for input + output per request",)
        if no_evict
        else ()
    )
    if row.batch is not None or "trtllm-bench" not in sw.lower():
        return EngineSettings(batch_limit=row.batch, reserve_full_length=no_evict, notes=notes)
    I, O = row.input_len or 1.0, row.output_len or 1.0
    fits = float(max_batch(model, dev, plan, I + O, 8192.0 * plan.dp)) / plan.dp
    raw_bs = min(fits, TRTLLM_BENCH_MAX_BATCH) / plan.pp
    tokens = _round_tokens(min(raw_bs * (1.0 + I / O), TRTLLM_BENCH_MAX_TOKENS))
    # max_batch_size caps the running requests of each attention rank: the requests whose
    # input + output fit the KV cache, not the 4096 ceiling (long outputs run far fewer).
    max_bs = _round_batch(raw_bs)
    limit = max_bs * plan.dp
    # The engine drops captured sizes above min(max_batch_size, max_num_tokens) and pads to that
    # cap instead (tensorrt_llm/_torch/pyexecutor/model_engine.py, _filter_cuda_graph_batch_sizes).
    top = float(min(max_bs, tokens))
    graphs = (
        ()
        if _CPP_RUNTIME.search(sw)
        else (*(float(x) for x in TRTLLM_BENCH_GRAPH_SIZES if x < top), top)
    )
    graph_note = (
        (f"CUDA graphs with padding: decode batches per attention rank rounded up to 1, 2, 4, "
         f"..., 256, 384, 512, 1024, ... capped at {top:g} (perf-overview llm_options.yml; "
         "model_engine._filter_cuda_graph_batch_sizes)",)
        if graphs
        else ()
    )  # fmt: skip
    return EngineSettings(
        batch_limit=limit,
        max_prefill_tokens=tokens,
        reserve_full_length=no_evict,
        graph_batch_sizes=graphs,
        notes=(
            *notes,
            f"trtllm-bench engine settings: max_batch_size {max_bs:g} running requests per "
            f"attention rank (KV-cache requests at input + output, at most "
            f"{TRTLLM_BENCH_MAX_BATCH}), max_num_tokens {tokens:g} "
            "(tensorrt_llm/bench/build/tuning.py)",
            *graph_note,
        ),
    )


# Deployments whose published recipe lists its compiled buckets (NxD Inference
# ``--context-encoding-buckets`` / ``--token-generation-buckets``); other static-shape rows get
# the family's automatic buckets (``shape_bucket_min``). Keyed by the row's source document.
_RECIPE_BUCKETS: dict[str, Buckets] = {
    # aws-neuron/aws-neuron-sdk@81ce03ae, inference_demo of scenario 1
    "trn2-llama3.1-405b-speculative-tutorial.rst": Buckets.explicit(
        (2048, 4096, 10240, 12288), (12800,)
    ),
    "trn2-llama3.3-70b-tutorial.rst": Buckets.explicit(
        (2048, 4096, 8192, 12288), (2048, 4096, 8192, 12800)
    ),
}


def engine_shapes(row: MeasuredRow) -> Buckets | None:
    """The compiled buckets the row's recipe states, if any (None: the profile's default)."""
    return next((b for k, b in _RECIPE_BUCKETS.items() if k in (row.source or "")), None)


def _run(
    row: MeasuredRow,
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    *,
    check_memory: bool = True,
) -> tuple[Estimate, str]:
    I, O = row.input_len or 0.0, row.output_len or 0.0
    if row.scenario in ("static_batch", "latency"):
        if row.batch is None:
            raise SiliconomicsError("static/latency row without a batch size")
        est = estimate_static(
            model, dev, plan, row.batch, I, O, shapes=engine_shapes(row), check_memory=check_memory
        )
        if not check_memory and not bool(np.all(est.memory.fits)):
            need, cap = float(np.max(est.memory.total)), est.memory.capacity
            note = (
                f"modelled memory {need / 2**30:.0f} GiB per chip exceeds {cap / 2**30:.0f} GiB "
                "(the run fit: the memory model is conservative here)"
            )
            est = replace(est, assumptions=(*est.assumptions, note))
        return est, str(est.decode_bound if row.metric != "ttft_s" else est.prefill_bound)
    if row.scenario == "offline":
        eng = engine_settings(row, model, dev, plan)
        est = estimate_max_throughput(
            model,
            dev,
            plan,
            I,
            O,
            batch_limit=eng.batch_limit,
            max_prefill_tokens=eng.max_prefill_tokens,
            reserve_full_length=eng.reserve_full_length,
            graph_batch_sizes=eng.graph_batch_sizes or None,
        )
        return replace(est, assumptions=(*est.assumptions, *eng.notes)), str(est.decode_bound)
    if row.scenario == "server":
        raise SiliconomicsError("server scenario needs the request-level serving simulator")
    raise SiliconomicsError(f"unknown scenario '{row.scenario}'")


def engine_memory_fraction(software: str | None) -> tuple[float, bool] | None:
    """The share of memory the row's engine was told to use and whether it is a share of the
    memory the weights leave free (TensorRT-LLM), when its software text states it
    (``_MEMORY_FLAG``, ``_FREE_MEMORY_FLAG``); else None (the stack's default stands)."""
    for pattern, of_free in ((_FREE_MEMORY_FLAG, True), (_MEMORY_FLAG, False)):
        m = pattern.search(software or "")
        if m is None:
            continue
        f = float(m.group(1))
        if not 0.0 < f <= 1.0:
            raise SiliconomicsError(
                f"software states an engine memory fraction of {m.group(1)}; allowed: (0, 1]"
            )
        return f, of_free
    return None


def engine_device(row: MeasuredRow, catalog: Catalog) -> Device:
    """The row's chip and profile as its engine runs them: rows of TensorRT-LLM's C++
    TensorRT-engine runtime carry no per-sequence host cost (``_CPP_RUNTIME``); the runtime
    reserve is what the engine leaves of device memory: the flag the row's software text
    states (``--gpu-memory-utilization``, ``--mem-fraction-static``,
    ``--kv_cache_free_gpu_mem_fraction``), else its stack's default (``stacks.toml``
    ``memory_fraction``), else the profile's."""
    dev = row_device(row, catalog)
    update: dict[str, float | bool | None] = {}
    if dev.eff.host_per_seq_s and _CPP_RUNTIME.search(row.software or ""):
        update["host_per_seq_s"] = None
    mem = engine_memory_fraction(row.software)
    if mem is None:  # the stack's default, as the row's profile resolves it
        table = stacks()
        spec = table.get(row_stack(row.software or "", dev.chip.family, "inference", table)[0])
        if spec is not None and spec.memory_fraction is not None:
            mem = spec.memory_fraction, spec.memory_basis == "free"
    if mem is not None:
        update["memory_reserve_fraction"] = 1.0 - mem[0]
        update["memory_reserve_of_free"] = mem[1]
    if update:
        dev = Device(chip=dev.chip, eff=dev.eff.model_copy(update=update))
    return dev


def engine_model(row: MeasuredRow, model: ModelSpec) -> tuple[ModelSpec, tuple[str, ...]]:
    """The model as the engine behind the row ran it (and a note when that differs): Mistral's
    sliding window ran as full attention on TensorRT-LLM's TensorRT-engine runtime (see
    ``_TRT_ENGINE_RUNTIME``)."""
    if (
        model.sliding_window
        and model.family in FULL_ATTENTION_FAMILIES
        and _TRT_ENGINE_RUNTIME.search(row.software or "")
    ):
        full = model.model_copy(update={"sliding_window": None, "sliding_window_every": 0})
        return full, (
            f"TensorRT-LLM TensorRT engine: {model.id}'s {model.sliding_window}-token sliding "
            "window ran as full attention (max_attention_window_size not set)",
        )
    return model, ()


def run_row(row: MeasuredRow, model: ModelSpec, catalog: Catalog) -> RowResult:
    """Predict one row (raises SiliconomicsError with the reason if it cannot); the row's chip
    and its family's efficiency profile come from ``catalog``."""
    dev = engine_device(row, catalog)
    model, model_notes = engine_model(row, model)
    if row.input_len is None or row.output_len is None:
        raise SiliconomicsError(
            f"mean input/output length unknown for length_dist '{row.length_dist}'"
        )
    if row.metric not in METRICS:
        raise SiliconomicsError(f"metric '{row.metric}' is not an inference metric")
    candidates = candidate_plans(row)
    for k, (plan, notes) in enumerate(candidates):
        if row.n_chips is not None and plan.chips != row.n_chips:
            raise SiliconomicsError(
                f"layout {plan.replicas} x tp{plan.tp} x pp{plan.pp} != n_chips {row.n_chips}"
            )
        try:
            est, bound = _run(row, model, dev, plan)
        except DoesNotFitError:
            if k < len(candidates) - 1:
                continue
            if row.scenario not in ("static_batch", "latency"):
                raise
            # A measured static batch ran, so it fit: the runtime reserve and the whole-batch
            # prefill activations are planning margins. Predict the preferred layout anyway
            # and say so (the training rows do the same, validate.train_rows).
            plan, notes = candidates[0]
            est, bound = _run(row, model, dev, plan, check_memory=False)
        return RowResult(
            row=row,
            family=dev.chip.family,
            predicted=_metric(est, row),
            bound=bound,
            assumptions=(*notes, *model_notes, *est.assumptions),
        )
    raise AssertionError("no candidate plan")

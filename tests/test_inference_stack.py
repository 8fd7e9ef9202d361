"""Engine and stack behaviour of inference predictions: KV admission policy, trtllm-bench's own
batch limits, 16-bit residual stream under FP8, PCIe all-reduce, per-sequence host time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from siliconomics.catalog.registry import (
    efficiency_profiles,
    get_chip,
    get_efficiency,
    get_model,
    packaged,
)
from siliconomics.catalog.stacks import (
    ProfileSet,
    packaged_stack_profiles,
    resolve_profile,
    stacks,
    with_stack_memory,
)
from siliconomics.errors import SiliconomicsError
from siliconomics.inference.estimate import estimate_max_throughput, max_batch
from siliconomics.inference.forward import forward_cost
from siliconomics.measured.rows import MeasuredRow, read_measured
from siliconomics.ops.device import Device
from siliconomics.parallel.collectives import PCIE_HOST_CHIPS, all_reduce, collective_domain
from siliconomics.parallel.plan import InferencePlan
from siliconomics.serving.steptime import StepTimeModel
from siliconomics.validate.run import (
    TRTLLM_BENCH_MAX_BATCH,
    engine_device,
    engine_memory_fraction,
    engine_settings,
    run_row,
)

CORPUS = Path(__file__).resolve().parents[1] / "src" / "siliconomics" / "measured" / "corpus"


def dev(chip_id: str, **eff: object) -> Device:
    chip = get_chip(chip_id)
    return Device(chip=chip, eff=get_efficiency(chip.family).model_copy(update=eff))


def row(file: str, row_id: str) -> MeasuredRow:
    return next(r for r in read_measured(CORPUS / file) if r.id == row_id)


FP8 = InferencePlan(tp=8, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")


# ---- KV admission and trtllm-bench engine settings ---------------------------------------------


def test_guaranteed_no_evict_sizes_the_batch_at_the_full_length() -> None:
    m, d = get_model("llama-3.1-70b"), dev("h100-sxm")
    kw = {"batch_limit": None}
    avg = estimate_max_throughput(m, d, FP8, 128, 2048, **kw)  # type: ignore[arg-type]
    full = estimate_max_throughput(m, d, FP8, 128, 2048, reserve_full_length=True, **kw)  # type: ignore[arg-type]
    assert float(full.batch) == float(max_batch(m, d, FP8, 128 + 2048, 8192.0))
    assert float(full.batch) < float(avg.batch)


def test_trtllm_bench_rows_get_its_batch_cap() -> None:
    r = row("trtllm.csv", "TRTLLM-1.0-B200-QWEN3-30B-A3B-TP1-FP4-128-128")
    p = InferencePlan(weight_dtype="fp4", act_dtype="fp4", kv_dtype="fp8")
    eng = engine_settings(r, get_model(r.model), dev("b200"), p)
    assert eng.batch_limit == TRTLLM_BENCH_MAX_BATCH
    assert eng.reserve_full_length  # PyTorch executor: GUARANTEED_NO_EVICT is its default too
    # max_num_tokens = min(max_batch x (1 + ISL/OSL), 32768) rounded: 4096 x 2 = 8192
    assert eng.max_prefill_tokens == 8192.0
    # attention data parallelism: every rank admits up to the cap
    eng_dp = engine_settings(r, get_model(r.model), dev("b200"), dataclasses.replace(p, dp=2))
    assert eng_dp.batch_limit == 2 * TRTLLM_BENCH_MAX_BATCH


def test_tensorrt_engine_rows_reserve_the_full_length() -> None:
    r = row("trtllm.csv", "TRTLLM-0.17.0-H100-SXM-LLAMA-3.1-70B-TP8-FP8-128-2048")
    eng = engine_settings(r, get_model(r.model), dev("h100-sxm"), FP8)
    assert eng.reserve_full_length and eng.batch_limit is not None
    assert eng.batch_limit <= TRTLLM_BENCH_MAX_BATCH


def test_trtllm_bench_caps_the_batch_at_the_kv_requests_of_the_full_length() -> None:
    # tensorrt_llm/bench/build/tuning.py: max_batch_size = the requests whose input + output
    # fit the KV cache (capped at 4096), rounded up to 32/128/256: far below 4096 for long
    # outputs, and the running batch never exceeds it
    r = row("trtllm.csv", "TRTLLM-1.0-B200-LLAMA-3.3-70B-TP1-FP4-128-4096")
    m, d = get_model(r.model), dev("b200")
    p = InferencePlan(weight_dtype="fp4", act_dtype="fp4", kv_dtype="fp8")
    eng = engine_settings(r, m, d, p)
    fits = float(max_batch(m, d, p, 128 + 4096, 8192.0))
    assert eng.batch_limit is not None and fits <= eng.batch_limit < fits + 256
    assert eng.batch_limit % 32 == 0 and eng.batch_limit < TRTLLM_BENCH_MAX_BATCH


def test_mlperf_harness_rows_keep_their_batch_and_max_utilization() -> None:
    r = next(
        x
        for x in read_measured(CORPUS / "mlperf-inference-v5.1.csv")
        if x.scenario == "offline" and x.usable and x.chip == "b200"
    )
    eng = engine_settings(r, get_model(r.model), dev("b200"), InferencePlan(tp=r.tp or 1))
    assert eng.batch_limit == r.batch
    assert not eng.reserve_full_length


# ---- residual stream and all-reduce format ------------------------------------------------------


def test_fp8_all_reduce_moves_16_bit_activations() -> None:
    m, d = get_model("llama-3.1-70b"), dev("h100-sxm")
    T = 512.0
    fc = forward_cost(m, d, FP8, T, 1.0, 1000.0)
    ar = next(op for op in fc.ops if op.name.startswith("tp_all_reduce"))
    assert float(ar.comm_bytes) == pytest.approx(2 * m.n_layers * T * m.d_model * 2.0)


def test_pcie_parts_all_reduce_over_pcie_inside_one_server() -> None:
    d = dev("l40s")
    assert collective_domain(d) == PCIE_HOST_CHIPS
    b = 8e6
    got = float(all_reduce(d, b, 4).time)
    e = d.eff
    pcie = d.scale_up_bytes_per_s_dir * e.collective_efficiency  # Gen4 x16, per direction
    assert got == pytest.approx(6 * e.collective_latency_s + 1.5 * b / pcie)
    # beyond one server the NIC is the bottleneck again
    assert float(all_reduce(d, b, 16).time) > got


# ---- per-sequence host time ---------------------------------------------------------------------


def test_host_time_floors_the_step_only_when_it_exceeds_the_device() -> None:
    m = get_model("qwen3-30b-a3b")
    p = InferencePlan(weight_dtype="fp4", act_dtype="fp4", kv_dtype="fp8")
    off, on = dev("b200", host_per_seq_s=None), dev("b200", host_per_seq_s=30e-6)
    B = np.array([8.0, 4096.0])
    t_off = forward_cost(m, off, p, B, 1.0, 200.0).time
    t_on = forward_cost(m, on, p, B, 1.0, 200.0).time
    assert t_on[0] == t_off[0]  # small batch: the device is slower than the host
    assert t_on[1] == pytest.approx(off.eff.step_overhead_s + 30e-6 * 4096)
    assert t_on[1] > t_off[1]


def test_host_time_is_per_attention_rank() -> None:
    m = get_model("qwen3-235b-a22b")
    p = InferencePlan(tp=1, dp=8, ep=8, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    fc = forward_cost(m, dev("h200-sxm", host_per_seq_s=30e-6), p, 4096.0, 1.0, 100.0)
    assert float(fc.host_seq_s) == pytest.approx(30e-6 * 4096 / 8)


def test_step_time_model_applies_the_host_floor() -> None:
    m = get_model("llama-3.1-8b")
    p = InferencePlan(weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    d = dev("h100-sxm", host_per_seq_s=50e-6)
    stm = StepTimeModel(m, d, p, max_tokens=8192, max_seqs=2048, max_ctx=4096)
    t = stm.decode_step(2048, 2048 * 100.0)
    assert t >= d.eff.step_overhead_s + 50e-6 * 2048
    assert t == pytest.approx(stm.exact([100.0] * 2048, [], 2048), rel=0.02)
    run = stm.decode_run_ends(2048, 2048 * 100.0, 3)
    assert run[0] == pytest.approx(t)


def test_cpp_runtime_rows_do_not_pay_the_python_host_time() -> None:
    r = row("trtllm.csv", "TRTLLM-0.17.0-H100-SXM-LLAMA-3.1-8B-TP1-FP8-128-128")
    cat = packaged()
    base = run_row(r, get_model(r.model), cat).predicted
    r2 = dataclasses.replace(r, software="TensorRT-LLM 1.0 (PyTorch backend, trtllm-bench)")
    assert run_row(r2, get_model(r.model), cat).predicted <= base


# ---- the engine's memory fraction ---------------------------------------------------------------


def test_memory_flag_in_the_software_text_sets_the_reserve() -> None:
    assert engine_memory_fraction("vLLM 0.9 --gpu-memory-utilization 0.95") == (0.95, False)
    assert engine_memory_fraction("SGLang-JAX main --mem-fraction-static=0.8") == (0.8, False)
    assert engine_memory_fraction("trtllm-bench --kv_cache_free_gpu_mem_fraction 0.95") == (
        0.95,
        True,
    )
    assert engine_memory_fraction("vLLM 0.9.1") is None
    with pytest.raises(SiliconomicsError, match=r"memory fraction of 1.5; allowed: \(0, 1\]"):
        engine_memory_fraction("sglang --mem-fraction-static 1.5")
    r = row("tpu-serving.csv", "SGLJAX-QWEN3BENCH-V6E4-QWEN3-32B-SGLJAX-1024-1024-C256")
    cat = packaged()
    assert engine_device(r, cat).eff.memory_reserve_fraction == pytest.approx(0.2)
    # no flag and no stack default: the family profile's reserve
    bare = dataclasses.replace(r, software="SGLang-JAX main")
    fam = get_efficiency("google-tpu").memory_reserve_fraction
    assert engine_device(bare, cat).eff.memory_reserve_fraction == pytest.approx(fam)


def test_a_smaller_memory_fraction_caps_a_kv_bound_batch() -> None:
    # Qwen3-32B on 4 x v6e (32 GiB each) at 256 concurrent 2k-token sequences is KV-bound: the
    # engine told to use 80% of memory holds fewer sequences than one using 95%.
    r = row("tpu-serving.csv", "SGLJAX-QWEN3BENCH-V6E4-QWEN3-32B-SGLJAX-1024-1024-C256")
    cat, m = packaged(), get_model(r.model)
    at_80 = run_row(r, m, cat).predicted
    at_95 = run_row(
        dataclasses.replace(r, software="SGLang-JAX main --mem-fraction-static 0.95"), m, cat
    ).predicted
    assert at_80 < 0.9 * at_95


def test_a_stack_memory_default_reserves_a_share_of_the_memory_the_weights_leave_free() -> None:
    # TensorRT-LLM's KvCacheConfig.free_gpu_memory_fraction is a share of what the weights
    # leave free; vLLM's gpu_memory_utilization a share of the device. stacks.toml states no
    # default today (it made cross-validation worse), so the specs here are built by hand.
    fam = get_efficiency("nvidia-hopper")
    assert not fam.memory_reserve_of_free
    trt_spec = stacks()["trtllm"].model_copy(
        update={"memory_fraction": 0.9, "memory_basis": "free"}
    )
    vllm_spec = stacks()["vllm"].model_copy(update={"memory_fraction": 0.9})
    trt = Device(chip=get_chip("h100-sxm"), eff=with_stack_memory(fam, trt_spec))
    vllm = Device(chip=get_chip("h100-sxm"), eff=with_stack_memory(fam, vllm_spec))
    assert trt.eff.memory_reserve_of_free
    w = 50e9  # heavy weights: 10% of what they leave free is less than 10% of the device
    assert trt.reserve_bytes(w) == pytest.approx(0.1 * (trt.hbm_bytes - w))
    assert vllm.reserve_bytes(w) == pytest.approx(0.1 * vllm.hbm_bytes)
    m = get_model("llama-3.1-70b")
    p = InferencePlan(tp=2, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    assert float(max_batch(m, trt, p, 4096, 8192.0)) > float(max_batch(m, vllm, p, 4096, 8192.0))
    # a stack stating none keeps the profile
    assert with_stack_memory(fam, stacks()["trtllm"]) is fam
    ps = ProfileSet(families=efficiency_profiles(), stacks=packaged_stack_profiles())
    res = resolve_profile(ps, "nvidia-hopper", "trtllm").profile
    assert res.memory_reserve_fraction == fam.memory_reserve_fraction


def test_estimate_takes_the_engine_memory_fraction() -> None:
    from siliconomics import api

    kw: dict[str, object] = {
        "tp": 2,
        "weights_dtype": "fp8",
        "kv_dtype": "fp8",
        "mode": "max-throughput",
        "batch": 512,
        "input_len": 2048,
        "output_len": 2048,
    }
    base = api.estimate("llama-3.1-70b", "h100-sxm", **kw)  # type: ignore[arg-type]
    low = api.estimate("llama-3.1-70b", "h100-sxm", memory_fraction=0.8, **kw)  # type: ignore[arg-type]
    assert float(low.value.estimate.batch) < float(base.value.estimate.batch)
    with pytest.raises(SiliconomicsError, match=r"memory_fraction 1.5: allowed"):
        api.estimate("llama-3.1-70b", "h100-sxm", memory_fraction=1.5)


@pytest.mark.parametrize("bad", ["nan", "inf", "-0.5", "0", "1.5"])
def test_cli_memory_fraction_refuses_what_is_not_a_share(bad: str) -> None:
    from typer.testing import CliRunner

    from siliconomics.cli import app

    r = CliRunner().invoke(
        app,
        ["estimate", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--memory-fraction", bad],
    )
    assert r.exit_code != 0
    assert "--memory-fraction" in r.output and "allowed: a share in [0.01, 1]" in r.output
    assert "Traceback" not in r.output

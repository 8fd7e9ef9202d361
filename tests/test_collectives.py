"""All-reduce algorithms per fabric and message size (parallel/collectives.py): selection,
measured latency tables, physical properties, and the chip orderings they decide."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siliconomics.calibrate.collective_fit import (
    CUSTOM,
    EFFICIENCY_FROM,
    LATENCY_ROWS_MAX_BYTES,
    TABLES,
    _rows_up_to,
    fit_custom_all_reduce,
    fit_family,
    measured,
    predict,
)
from siliconomics.calibrate.ops_fit import load_all_reduce, predict_all_reduce
from siliconomics.catalog.registry import get_chip, get_efficiency, get_model
from siliconomics.errors import SiliconomicsError
from siliconomics.inference.estimate import estimate_max_throughput
from siliconomics.inference.forward import forward_cost
from siliconomics.ops.device import Device
from siliconomics.parallel.collectives import ALGORITHMS, all_reduce
from siliconomics.parallel.plan import InferencePlan
from siliconomics.search.compare import BATCH_LADDER, candidate_plans

NET = Path(__file__).resolve().parents[2] / "shared" / "data" / "measured-ops" / "network"
needs_data = pytest.mark.skipif(not NET.is_dir(), reason="shared NCCL data not found")
SIZES = np.array([2e3, 16e3, 128e3, 1e6, 8e6, 64e6, 512e6])


def dev(chip_id: str, **eff: object) -> Device:
    chip = get_chip(chip_id)
    return Device(chip=chip, eff=get_efficiency(chip.family).model_copy(update=eff))


def names(r) -> list[str]:  # type: ignore[no-untyped-def]
    return [ALGORITHMS[a] for a in r.algorithm]


# ---- selection --------------------------------------------------------------------------------


def test_nvswitch_selection_follows_message_size() -> None:
    # The fastest available: one-shot for the smallest, two-shot (2(n-1)/n of the bytes) from
    # tens of KiB, then the library's NVLS (NVSwitch 3 reduces in the switch) where the custom
    # kernels' low bandwidth loses, well inside their 8 MiB limit.
    r = all_reduce(dev("h100-sxm"), SIZES, 8)
    got = names(r)
    assert got[0] == "one_shot" and got[1:3] == ["two_shot"] * 2 and got[-3:] == ["nvls"] * 3
    assert not r.fused_norm.any()  # the hopper profile does not fuse the norm
    b = all_reduce(dev("b200"), SIZES, 8)
    assert b.fused_norm[:4].all() and not b.fused_norm[4:].any()  # TRT-LLM fuses custom ARs


def test_two_gpus_always_one_shot_and_no_nvls() -> None:
    r = all_reduce(dev("h100-sxm"), SIZES[:4], 2)
    assert names(r) == ["one_shot"] * 4
    big = all_reduce(dev("h100-sxm"), np.array([256e6]), 2)
    assert names(big) == ["ring"]  # NVLS moves more than a direct exchange for a pair


def test_fabrics_without_switch_reduction_or_custom_kernels() -> None:
    a100 = all_reduce(dev("a100-sxm-80gb"), SIZES, 8)  # NVSwitch gen 2, no custom latency
    assert set(names(a100)) == {"ring"}
    mi = all_reduce(dev("mi300x"), SIZES, 8)  # xGMI mesh: custom kernels, then RCCL ring
    assert "nvls" not in names(mi) and names(mi)[-1] == "ring"
    tpu = all_reduce(dev("tpu-v6e"), SIZES, 8)  # ICI torus: dimension-wise rings
    assert set(names(tpu)) == {"ring"}
    cross = all_reduce(dev("h100-sxm"), np.array([1e3, 1e9]), 64)  # leaves the NVLink domain
    assert names(cross) == ["tree", "ring"]  # latency-bound -> tree, bandwidth-bound -> ring


def test_the_op_names_the_algorithm() -> None:
    m = get_model("llama-3.1-70b")
    plan = InferencePlan(tp=8, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    fc = forward_cost(m, dev("b200"), plan, np.array([1.0, 4096.0]), np.array([1.0, 8.0]))
    comm = [op.name for op in fc.ops if op.op_class == "comm"]
    assert len(comm) == 1 and comm[0].startswith("tp_all_reduce[")
    used = set(comm[0][len("tp_all_reduce[") : -1].split("|"))
    assert "nvls" in used and used & {"one_shot", "two_shot"}  # decode custom, prefill NVLS


def test_restricting_to_unavailable_algorithms_is_an_error() -> None:
    with pytest.raises(ValueError, match="no all-reduce algorithm"):
        all_reduce(dev("a100-sxm-80gb"), SIZES, 8, algorithms=("nvls",))
    assert issubclass(SiliconomicsError, ValueError)


# ---- measured latency -------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize(
    ("chip_id", "net"), [("h100-sxm", "h100_dgx"), ("a100-sxm-80gb", "a100_dgx")]
)
def test_nccl_ring_against_the_shared_tables(chip_id: str, net: str) -> None:
    """vidur's NCCL all-reduce timings (eager PyTorch, 2/4/8 GPUs in one node) under the
    library ring the measurement ran. Tolerances: median |err| <= 12% at >= 1 MiB, where the
    fit lives; <= 35% below 1 MiB, where eager timings scatter between 7 and 60 us."""
    d = dev(chip_id)
    s = load_all_reduce(NET / net / "all_reduce.csv")
    rel = np.abs(predict_all_reduce(d, s) / s.time_s - 1.0)
    big = s.nbytes >= 2**20
    assert float(np.median(rel[big])) < 0.12
    assert float(np.median(rel[~big])) < 0.35


@pytest.mark.parametrize("family", sorted(TABLES))
def test_custom_all_reduce_against_the_published_tables(family: str) -> None:
    """Each family's published custom all-reduce table (H100: sglang#2904, TP 2/4/8; MI300X:
    aiter#801 TP 2 and vllm#19744 TP 4; MI355X: vllm#39080 TP 8): the shipped factors are the
    fit's output and reproduce the table within a median |err| of 20% (no row off by 2x)."""
    table = TABLES[family]
    d = dev(table.chip_id)
    assert d.chip.family == family
    fit = fit_family(family, dev)
    assert d.eff.custom_allreduce_latency_s == pytest.approx(fit.latency_s, rel=0.01)
    assert d.eff.custom_allreduce_efficiency == pytest.approx(fit.efficiency, rel=0.01)
    if family in EFFICIENCY_FROM:  # own table: the latency floor from its small messages
        table = _rows_up_to(table, LATENCY_ROWS_MAX_BYTES)
    ratio = predict(d, table) / measured(table)
    assert float(np.median(np.abs(ratio - 1.0))) < 0.20
    assert ratio.max() < 2.0 and ratio.min() > 0.5


def test_nvls_gain_over_the_ring_is_what_nccl_measures() -> None:
    """nccl-tests#212: on 8 x H100 NCCL's NVLS peaks at ~480 GB/s bus bandwidth against ~370
    GB/s for the ring (1.30x). At a large message the model's NVLS/ring bus-bandwidth ratio is
    that cap at n = 8 (the traffic count alone gave 1.56x) and the traffic count at n = 4."""
    d = dev("h100-sxm")
    big = 4.0 * 2**30

    def gain(n: int) -> float:
        ring = float(all_reduce(d, big, n, algorithms=("ring",)).time)
        nvls = float(all_reduce(d, big, n, algorithms=("nvls",)).time)
        return ring / nvls

    assert gain(8) == pytest.approx(480.0 / 370.0, rel=0.01)
    assert gain(4) == pytest.approx(2.0 * 3 / 5, rel=0.01)


def test_custom_all_reduce_mesh_efficiency_falls_with_group_size() -> None:
    """Why MI300X takes the MI355X TP 8 bandwidth factor: fitted on MI300X's own TP 2/4 table,
    the factor is more than twice the TP 8 one and would price TP 8 on MI300X (slower links)
    faster than the measured TP 8 on MI355X at 1.5 MiB."""
    own = fit_custom_all_reduce(dev("mi300x"), TABLES["amd-cdna3"])
    tp8 = fit_family("amd-cdna4", dev)
    assert own.efficiency > 2.0 * tp8.efficiency
    d = dev("mi300x")
    fast = d.eff.model_copy(
        update={
            "custom_allreduce_latency_s": own.latency_s,
            "custom_allreduce_efficiency": own.efficiency,
        }
    )
    t300 = all_reduce(Device(chip=d.chip, eff=fast), 1.5 * 2**20, 8, algorithms=CUSTOM).time
    assert float(t300) < 24.2e-6  # MI355X, TP 8, 1.5 MiB: 24.2 us (vllm#39080)


# ---- properties -------------------------------------------------------------------------------


@pytest.mark.parametrize("chip_id", ["h100-sxm", "h200-sxm", "b200", "gb200", "gb300"])
@pytest.mark.parametrize("n", [4, 8])
def test_nvls_never_slower_than_ring_for_small_messages(chip_id: str, n: int) -> None:
    d = dev(chip_id)
    small = np.geomspace(64, 4e6, 30)
    nvls = all_reduce(d, small, n, algorithms=("nvls",)).time
    ring = all_reduce(d, small, n, algorithms=("ring",)).time
    assert np.all(nvls <= ring)


@pytest.mark.parametrize("chip_id", ["h100-sxm", "b200", "mi300x", "mi355x", "tpu-v6e", "trn2"])
@pytest.mark.parametrize("n", [2, 4, 8])
def test_more_scale_up_bandwidth_is_never_slower(chip_id: str, n: int) -> None:
    base = dev(chip_id)
    ic = base.chip.interconnect
    if ic.scale_up_bytes_per_s is None or n > ic.scale_up_domain:
        pytest.skip("no scale-up bandwidth or group leaves the domain")
    bw = ic.scale_up_bytes_per_s.model_copy(update={"value": ic.scale_up_bytes_per_s.value * 2})
    faster_chip = base.chip.model_copy(
        update={"interconnect": ic.model_copy(update={"scale_up_bytes_per_s": bw})}
    )
    faster = Device(chip=faster_chip, eff=base.eff)
    sizes = np.geomspace(64, 1e9, 40)
    assert np.all(all_reduce(faster, sizes, n).time <= all_reduce(base, sizes, n).time)


def test_all_reduce_time_grows_with_message_size() -> None:
    for chip_id in ("h100-sxm", "b200", "mi300x", "tpu-v5p", "gaudi3"):
        t = all_reduce(dev(chip_id), np.geomspace(64, 1e9, 60), 8).time
        assert np.all(np.diff(t) >= -1e-12), chip_id


# ---- orderings under a per-user speed target --------------------------------------------------


def best_per_chip(model_id: str, chip_id: str, tokens_per_s_per_user: float) -> tuple[float, int]:
    """(highest output tokens/s per chip with TPOT <= 1/target, its tp) over the compare
    search space: 1k input, 1k output, fp8 weights/activations/KV."""
    model, chip = get_model(model_id), dev(chip_id)
    best = (0.0, 0)
    for plan in candidate_plans(model, chip, "fp8", "fp8", "fp8"):
        try:
            e = estimate_max_throughput(model, chip, plan, 1024, 1024, batch_limit=BATCH_LADDER)
        except SiliconomicsError:
            continue
        tpot = np.broadcast_to(e.tpot_s, e.batch.shape)
        tps = np.broadcast_to(e.output_tokens_per_s_per_chip, e.batch.shape)
        ok = tpot <= 1.0 / tokens_per_s_per_user
        if ok.any() and float(tps[ok].max()) > best[0]:
            best = (float(tps[ok].max()), plan.tp)
    return best


@pytest.mark.parametrize("tp", [2, 4, 8])
def test_mi355x_decodes_faster_than_mi300x_at_every_tp(tp: int) -> None:
    """MI355X has 1.5x the HBM bandwidth and 1.2x the Infinity Fabric bandwidth of MI300X: at
    the same layout its decode step must be shorter (it used to be slower at tp >= 2, with no
    scale-up bandwidth entered)."""
    m = get_model("llama-3.1-70b")
    plan = InferencePlan(tp=tp, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    b = np.array([1.0, 16.0, 128.0])
    t355 = forward_cost(m, dev("mi355x"), plan, b, 1.0, 2048.0).time
    t300 = forward_cost(m, dev("mi300x"), plan, b, 1.0, 2048.0).time
    assert np.all(t355 < t300)


def test_gb200_nvl72_beats_b200_at_high_interactivity() -> None:
    """B200 is limited to its 8-GPU board: above ~180 tok/s/user no layout meets the target,
    while GB200 NVL72 keeps tp 16-64 on NVLink and still serves. Where both can, NVL72 is
    never worse; at a relaxed target they are about equal (the same GPU)."""
    assert best_per_chip("llama-3.3-70b", "b200", 190.0)[0] == 0.0
    fast, tp = best_per_chip("llama-3.3-70b", "gb200", 190.0)
    assert fast > 0.0 and tp > 8
    for per_user in (76.0, 150.0):
        gb = best_per_chip("llama-3.3-70b", "gb200", per_user)[0]
        assert gb >= 0.99 * best_per_chip("llama-3.3-70b", "b200", per_user)[0]
    lo_gb, _ = best_per_chip("llama-3.3-70b", "gb200", 40.0)
    lo_b, _ = best_per_chip("llama-3.3-70b", "b200", 40.0)
    assert lo_gb == pytest.approx(lo_b, rel=0.25)


# Published throughput-versus-interactivity points: SemiAnalysis InferenceX, Llama 3.3 70B
# FP8, 1k input / 1k output, best configuration per point ("tok/s/GPU" read as input + output
# tokens per second per GPU, InferenceMAX's throughput definition: an assumption, stated).
#   B200:   https://inferencex.semianalysis.com/compare-precision/llama-3-3-70b-b200-fp4-vs-fp8
#   MI355X: https://inferencex.semianalysis.com/compare-precision/llama-3-3-70b-mi355x-fp4-vs-fp8
INFERENCEX = {
    "b200": ((76.0, 4431.4), (108.0, 2744.1), (139.0, 912.2)),
    "mi355x": ((55.0, 2185.0), (76.0, 1504.0), (96.0, 750.0)),
}
# Stated tolerances on model / published: B200 within 0.5-1.5x (it was 0.31x at 76 tok/s/user
# and infeasible above 100 before the algorithm-aware collectives; 0.64-0.70x now); MI355X
# within 1/3-3x: the model is 1.0-2.1x too optimistic there (ROCm kernel efficiencies at small
# batch are not calibrated: a known gap, see docs/MODEL.md).
BANDS = {"b200": (0.5, 1.5), "mi355x": (1 / 3, 3.0)}


@pytest.mark.parametrize("chip_id", sorted(INFERENCEX))
def test_throughput_at_interactivity_against_inferencex(chip_id: str) -> None:
    lo, hi = BANDS[chip_id]
    for per_user, published in INFERENCEX[chip_id]:
        out, _ = best_per_chip("llama-3.3-70b", chip_id, per_user)
        ratio = 2.0 * out / published  # 1k/1k: input + output = 2 x output
        assert lo <= ratio <= hi, (chip_id, per_user, ratio)


# ---- every new chip and model loads and estimates ---------------------------------------------

NEW_CHIPS = ("gb300", "mi350x", "maia-200")
NEW_MODELS = (
    "llama-4-scout",
    "llama-4-maverick",
    "qwen3-8b",
    "qwen3-14b",
    "qwen3-32b",
    "qwen3-coder-480b-a35b",
    "kimi-k2",
    "deepseek-v3.1",
    "deepseek-v3.2",
    "glm-4.5",
    "glm-4.6",
    "glm-4.7",
)


@pytest.mark.parametrize("chip_id", NEW_CHIPS)
def test_new_chips_estimate(chip_id: str) -> None:
    chip = dev(chip_id)
    plan = InferencePlan(
        tp=min(4, chip.chip.interconnect.scale_up_domain),
        weight_dtype="fp8",
        act_dtype="fp8",
        kv_dtype="fp8",
    )
    e = estimate_max_throughput(
        get_model("llama-3.1-70b"), chip, plan, 1024, 1024, batch_limit=np.array([1.0, 64.0])
    )
    tps = np.asarray(e.output_tokens_per_s_per_chip)
    assert np.all(tps > 0) and np.all(np.isfinite(tps))


@pytest.mark.parametrize("model_id", NEW_MODELS)
def test_new_models_estimate_on_an_nvl72_rack(model_id: str) -> None:
    model = get_model(model_id)
    tp = 16 if model.n_heads % 16 == 0 else 8
    ep = tp if model.moe is not None and model.moe.n_experts % tp == 0 else 1
    plan = InferencePlan(tp=tp, ep=ep, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    e = estimate_max_throughput(
        model, dev("gb300"), plan, 1024, 1024, batch_limit=np.array([1.0, 32.0])
    )
    assert np.all(np.asarray(e.output_tokens_per_s_per_chip) > 0)


def test_eager_launches_bound_small_batches_only() -> None:
    """With a per-kernel host launch cost (no CUDA graph), a small-batch decode step becomes
    launch-bound (kernels x launch), a large batch stays device-bound; graph replay (None, every
    shipped profile) pays only the per-step host overhead."""
    m = get_model("llama-3.1-8b")
    b = np.array([1.0, 4096.0])
    graph = forward_cost(m, dev("h100-sxm"), InferencePlan(tp=1), b, 1.0, 1000.0)
    eager = forward_cost(
        m, dev("h100-sxm", host_launch_s=40e-6), InferencePlan(tp=1), b, 1.0, 1000.0
    )
    assert float(graph.kernels) == 32 * 8 + 3  # 8 kernels per layer + embedding, norm, head
    launch_floor = graph.step_overhead_s + float(graph.kernels) * 40e-6
    assert eager.time[0] == pytest.approx(launch_floor) and eager.time[0] > graph.time[0]
    assert eager.time[1] == pytest.approx(graph.time[1])


# ---- across scale-up domains (NCCL inter-node model) --------------------------------------------


def test_cross_node_all_reduce_matches_the_measured_two_node_a100_runs(shared: Path) -> None:
    """16 A100s on two DGX A100 nodes (microsoft/vidur): within 20% median at every size band up
    to 10 MB; small messages cost tens of microseconds, not one library latency per step."""
    import csv

    with open(shared / "data/measured-ops/network/a100_dgx/all_reduce.csv") as f:
        rows = list(csv.DictReader(f))
    pts = sorted(
        (int(r["size"]), float(r["time_stats.all_reduce.median"]) * 1e-3)
        for r in rows
        if r["num_workers"] == "16" and r["devices_per_node"] == "8"
    )
    size = np.array([p[0] for p in pts], dtype=float)
    meas = np.array([p[1] for p in pts])
    r = all_reduce(dev("a100-sxm-80gb"), size, 16)
    err = r.time / meas - 1.0
    for lo, hi in ((0, 1e5), (1e5, 1e6), (1e6, 4e6), (4e6, 1e7)):
        sel = (size > lo) & (size <= hi)
        assert sel.sum() >= 10 and abs(np.median(err[sel])) < 0.2, (lo, hi, np.median(err[sel]))
    assert r.time[0] < 100e-6  # 2 KiB across two nodes: measured 65 µs


def test_cross_node_latency_grows_with_domains_not_chips() -> None:
    """A small all-reduce pays the network per domain spanned (log2 of the domains for the
    tree), not per chip."""
    h = dev("h100-sxm")
    small = np.array([4096.0])
    t16 = all_reduce(h, small, 16).time[0]
    t64 = all_reduce(h, small, 64).time[0]
    t8 = all_reduce(h, small, 8).time[0]
    assert t8 < t16 < t64 < 2.0 * t16  # 8 domains: 3 tree levels instead of 1
    assert names(all_reduce(h, np.array([1e3, 1e9]), 16)) == ["tree", "ring"]


def test_tpu_decode_all_reduce_is_priced_per_ici_step_not_per_nccl_call():
    # A TP 4 decode all-reduce on a TPU v6e-4 (2x2 torus): 2 x (4 - 1) ring steps of the
    # profile's per-step latency. With the NVSwitch families' per-call NCCL latency (25.8 us)
    # charged per step it cost 155 us and SGLang-JAX's Qwen3-8B at 8 requests came out 64% slow
    # (measured inter-token latency 6.0 ms for 72 all-reduces a step; tpu-serving.csv)
    dev = Device(chip=get_chip("tpu-v6e"), eff=get_efficiency("google-tpu"))
    msg = 8 * 4096 * 2  # 8 sequences x hidden 4096 x bf16
    t = float(all_reduce(dev, msg, 4).time)
    assert t < 30e-6
    assert 72 * t < 0.3 * 6.0e-3

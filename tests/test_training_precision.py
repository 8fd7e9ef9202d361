"""Low-precision training recipes (training/precision.py) and LoRA/QLoRA (training/lora.py)."""

import subprocess
import sys

import numpy as np
import pytest

from siliconomics.catalog.registry import get_model
from siliconomics.errors import SiliconomicsError
from siliconomics.ops.device import Device
from siliconomics.resolve import device
from siliconomics.training import TrainPlan, estimate_training, search_plans
from siliconomics.training.estimate import train_device
from siliconomics.training.lora import NF4_BYTES, adapter_times, base_weight_bytes
from siliconomics.training.precision import RECIPES, quant_bytes, recipe, weight_cast_bytes

L70 = get_model("llama-3.1-70b")
L2_70 = get_model("llama-2-70b")
L8 = get_model("llama-3.1-8b")
KW = {"seq_len": 8192, "global_batch_seqs": 64, "check_memory": False}


# ---- recipes as data ------------------------------------------------------------------------
def test_recipe_element_widths_include_block_scales():
    assert recipe("fp8").bytes_per_elem == 1.0
    assert recipe("mxfp8").bytes_per_elem == pytest.approx(1 + 1 / 32)  # E8M0 per 32
    assert recipe("nvfp4").bytes_per_elem == pytest.approx(0.5 + 1 / 16)  # E4M3 per 16
    assert recipe("mxfp4").bytes_per_elem == pytest.approx(0.5 + 1 / 32)
    assert {RECIPES[n].gemm_dtype for n in ("fp8", "fp8-cs", "mxfp8")} == {"fp8"}
    assert {RECIPES[n].gemm_dtype for n in ("nvfp4", "mxfp4")} == {"fp4"}
    for r in RECIPES.values():
        assert r.lowp == (r.gemm_dtype != "bf16")
        assert r.source or not r.lowp, r.name


def test_quantise_bytes_per_gemm():
    m, n, k = 4096.0, 1024.0, 8192.0
    # delayed per-tensor FP8: read 2 B, write the row copy and the transposed copy (1 B each)
    f, b = quant_bytes(recipe("fp8"), m, n, k)
    assert float(f) == m * k * (2 + 2 * 1)
    assert float(b) == m * n * (2 + 2 * 1)
    # current scaling adds the amax read; a frozen GEMM needs no wgrad copy
    f_cs, _ = quant_bytes(recipe("fp8-cs"), m, n, k)
    assert float(f_cs) == m * k * (4 + 2)
    f_fr, b_fr = quant_bytes(recipe("fp8"), m, n, k, frozen=True)
    assert float(f_fr) == m * k * 3 and float(b_fr) == m * n * 3
    # bf16: nothing to quantise
    assert float(quant_bytes(recipe("bf16"), m, n, k)[0]) == 0.0
    assert float(weight_cast_bytes(recipe("bf16"), 1e9)) == 0.0
    assert float(weight_cast_bytes(recipe("fp8"), 1e9)) == 1e9 * (2 + 2)
    assert float(weight_cast_bytes(recipe("fp8"), 1e9, stored_lowp=True)) == 0.0


def test_nvfp4_pays_the_hadamard_amax_read_on_its_wgrad_copy():
    # Transformer Engine's NVFP4 recipe passes the wgrad operands through a random Hadamard
    # transform whose amax needs one more 16-bit read; a frozen GEMM has no wgrad copy
    m, n, k = 4096.0, 1024.0, 8192.0
    b4 = recipe("nvfp4").bytes_per_elem
    f, b = quant_bytes(recipe("nvfp4"), m, n, k)
    assert float(f) == pytest.approx(m * k * (2 + 2 + 2 * b4 + 2))
    assert float(b) == pytest.approx(m * n * (2 + 2 + 2 * b4 + 2))
    f_fr, _ = quant_bytes(recipe("nvfp4"), m, n, k, frozen=True)
    assert float(f_fr) == pytest.approx(m * k * (2 + 2 + b4))
    assert not recipe("mxfp4").wgrad_rht and not recipe("mxfp8").wgrad_rht


def test_fp4_training_gemms_run_at_the_sourced_share_of_the_fp8_fraction():
    """Blackwell's train_fp4_gemm_ratio (TE benchmark_gemm, pre-quantized: NVFP4 reaches 0.61
    of the share of peak MXFP8 does) prices 4-bit training GEMMs only; removing it makes NVFP4
    faster and leaves MXFP8 alone."""
    from siliconomics.training.kernels import consts

    dev = train_device(device("gb200"))
    ratio = dev.eff.train_fp4_gemm_ratio
    assert ratio is not None and 0.5 < ratio < 0.7
    c = consts(dev)
    eff = dev.gemm_efficiency("fp4")
    assert c.gemm_peak("fp4") == pytest.approx(dev.peak_flops("fp4") * eff * ratio)
    assert c.gemm_peak("fp8") == pytest.approx(dev.peak_flops("fp8") * eff)
    plain = Device(chip=dev.chip, eff=dev.eff.model_copy(update={"train_fp4_gemm_ratio": None}))
    t = {}
    for name, d in (("ratio", device("gb200")), ("plain", plain)):
        for dt in ("mxfp8", "nvfp4"):
            t[name, dt] = estimate_training(L8, d, TrainPlan(dp=4, dtype=dt), **KW).step_time_s
    assert t["ratio", "mxfp8"] == pytest.approx(t["plain", "mxfp8"])
    assert t["plain", "nvfp4"] < t["ratio", "nvfp4"] < t["ratio", "mxfp8"]


def test_unknown_or_unsupported_recipe_is_a_one_line_error():
    with pytest.raises(SiliconomicsError, match="allowed: bf16"):
        estimate_training(L8, device("h100-sxm"), TrainPlan(dp=8, dtype="fp6"), **KW)
    # block-scaled formats need Blackwell-class MMA; H100 has no fp4 and no MX hardware
    for d in ("mxfp8", "nvfp4"):
        with pytest.raises(SiliconomicsError, match=r"h100-sxm|fp4"):
            estimate_training(L8, device("h100-sxm"), TrainPlan(dp=8, dtype=d), **KW)


# ---- what runs in low precision ----------------------------------------------------------------
def test_fp8_speedup_grows_with_model_width():
    """The quantisation passes scale with T·D, the GEMMs with T·D²: wider models gain more
    from FP8 (the Megatron-Bridge performance guide's observation)."""
    plan = TrainPlan(dp=8)
    gain = {}
    for m in (L8, L70):
        bf = estimate_training(m, device("h100-sxm"), plan, **KW)
        f8 = estimate_training(m, device("h100-sxm"), TrainPlan(dp=8, dtype="fp8"), **KW)
        gain[m.id] = bf.step_time_s / f8.step_time_s
        assert 1.0 < gain[m.id] < 2.0
    assert gain[L70.id] > gain[L8.id]


def test_fp4_faster_than_mxfp8_faster_than_bf16_on_b200():
    t = {
        d: estimate_training(L70, device("b200"), TrainPlan(dp=8, dtype=d), **KW).step_time_s
        for d in ("bf16", "mxfp8", "nvfp4")
    }
    assert t["nvfp4"] < t["mxfp8"] < t["bf16"]
    # but far from the 2x / 4x peak ratios: attention, LM head, norms and casts stay
    assert t["bf16"] / t["nvfp4"] < 3.0


def test_lm_head_and_attention_stay_bf16_under_fp8():
    """Only the transformer-block GEMMs change format: the step gain of FP8 is bounded by
    their share (Amdahl), even with infinitely fast FP8 GEMMs."""
    dev = train_device(device("h100-sxm"))
    fast = dev.eff.model_copy(update={"train_lowp_gemm_efficiency": 100.0})
    bf = estimate_training(L8, device("h100-sxm"), TrainPlan(dp=8), **KW)
    f8 = estimate_training(L8, Device(chip=dev.chip, eff=fast), TrainPlan(dp=8, dtype="fp8"), **KW)
    assert f8.step_time_s > 0.2 * bf.step_time_s


def test_mfu_uses_the_recipe_peak():
    e = estimate_training(L70, device("b200"), TrainPlan(dp=8, dtype="nvfp4"), **KW)
    dev = train_device(device("b200"))
    assert e.model_flops_per_s_per_chip == pytest.approx(e.mfu * dev.peak_flops("fp4"))


# ---- LoRA / QLoRA ---------------------------------------------------------------------------------
def test_lora_frozen_base_memory_by_method():
    kw = {"seq_len": 4096, "global_batch_seqs": 8, "check_memory": False}
    p = TrainPlan(tp=8, method="lora")
    bf = estimate_training(L2_70, device("h100-sxm"), p, **kw)
    f8 = estimate_training(
        L2_70, device("h100-sxm"), TrainPlan(tp=8, method="lora", dtype="fp8"), **kw
    )
    q = estimate_training(L2_70, device("h100-sxm"), TrainPlan(tp=8, method="qlora"), **kw)
    # FP8 params (MLPerf NeMo LoRA) halve the layers' weights; NF4 quarters them (+ constants)
    assert f8.memory["weights"] < 0.6 * bf.memory["weights"]
    assert q.memory["weights"] < 0.35 * bf.memory["weights"]
    assert base_weight_bytes("qlora", recipe("bf16")) == NF4_BYTES == pytest.approx(0.5159, 1e-3)
    # adapters only: no base gradients or optimizer state
    assert q.memory["gradients"] < 0.01 * 4 * 70e9 / 8


def test_qlora_pays_dequantisation_and_only_bf16():
    kw = {"seq_len": 4096, "global_batch_seqs": 8, "check_memory": False}
    lo = estimate_training(L2_70, device("h100-sxm"), TrainPlan(tp=8, method="lora"), **kw)
    q = estimate_training(L2_70, device("h100-sxm"), TrainPlan(tp=8, method="qlora"), **kw)
    assert q.step_time_s > lo.step_time_s
    assert q.mfu == pytest.approx(lo.mfu * lo.step_time_s / q.step_time_s)
    with pytest.raises(SiliconomicsError, match="qlora"):
        estimate_training(
            L2_70, device("h100-sxm"), TrainPlan(tp=8, method="qlora", dtype="fp8"), **kw
        )


def test_lora_adapters_cost_grows_with_rank_and_backward_is_the_dgrad():
    dev = train_device(device("h100-sxm"))
    f16, b16 = adapter_times(dev, 8192, 8192, 10240, 16)
    f256, b256 = adapter_times(dev, 8192, 8192, 10240, 256)
    assert float(f256) > float(f16) > 0 and float(b256) > float(b16) > float(f16)
    kw = {"seq_len": 4096, "global_batch_seqs": 8, "check_memory": False}
    r16 = estimate_training(L8, device("h100-sxm"), TrainPlan(dp=8, method="lora"), **kw)
    r512 = estimate_training(
        L8, device("h100-sxm"), TrainPlan(dp=8, method="lora", lora_rank=512), **kw
    )
    assert r512.step_time_s > r16.step_time_s
    # LoRA skips the base wgrad: backward roughly half of full training's
    full = estimate_training(L8, device("h100-sxm"), TrainPlan(dp=8), **kw)
    ratio = r16.breakdown["backward"] / full.breakdown["backward"]
    assert 0.45 < ratio < 0.7


def test_lora_stores_no_inputs_of_frozen_mlp():
    kw = {"seq_len": 4096, "global_batch_seqs": 8, "check_memory": False}
    full = estimate_training(L8, device("h100-sxm"), TrainPlan(dp=8), **kw)
    lora = estimate_training(L8, device("h100-sxm"), TrainPlan(dp=8, method="lora"), **kw)
    assert lora.memory["activations"] < full.memory["activations"]


def test_fp8_activation_store_halves_the_activation_function_input():
    """MLPerf LoRA's FP8_ACT=1 (activation_func_fp8_input_store): the SwiGLU input (2 x d_ff
    per token, the largest stored tensor) is kept in FP8, so the 8-GPU B200 run fits without
    recomputation as published (training_results_v5.0 config_DGXB200_1x8x1xtp1pp1cp1.sh)."""
    kw = {"seq_len": 8192, "global_batch_seqs": 8, "check_memory": False}
    dev = device("b200")
    a = estimate_training(L2_70, dev, TrainPlan(dp=8, method="lora", dtype="fp8-dpa"), **kw)
    b = estimate_training(L2_70, dev, TrainPlan(dp=8, method="lora", dtype="fp8-dpa-act"), **kw)
    saved = a.memory["activations"] - b.memory["activations"]
    # per token and layer: 2 x d_ff values, one byte each saved
    expect = 8192 * L2_70.n_layers * 2 * L2_70.d_ff
    assert saved == pytest.approx(expect, rel=1e-9)
    assert a.step_time_s == pytest.approx(b.step_time_s)  # a memory saving only
    fits = estimate_training(
        L2_70, dev, TrainPlan(dp=8, method="lora", dtype="fp8-dpa-act"), seq_len=8192,
        global_batch_seqs=8,
    )  # fmt: skip
    assert fits.plan.recompute == "none"
    with pytest.raises(SiliconomicsError, match="does not fit"):
        estimate_training(
            L2_70, dev, TrainPlan(dp=8, method="lora", dtype="fp8-dpa"), seq_len=8192,
            global_batch_seqs=8,
        )  # fmt: skip


def test_mlperf_launch_config_names_the_fp8_recipe():
    from siliconomics.measured.importers.mlperf_training import _fp8_recipe

    assert _fp8_recipe({"FP8": "True"}) == "fp8"
    assert _fp8_recipe({"FP8": "True", "FP8_DPA": "1"}) == "fp8-dpa"
    assert _fp8_recipe({"FP8": "True", "FP8_DPA": "1", "FP8_ACT": "1"}) == "fp8-dpa-act"
    assert _fp8_recipe({"FP8": "True", "FP8_DPA": "0", "FP8_ACTIVATION": "True"}) == "fp8-act"
    for name in ("fp8-dpa", "fp8-dpa-act", "fp8-act"):
        assert RECIPES[name].gemm_dtype == "fp8"


def test_search_accepts_qlora_and_rank():
    ests = search_plans(
        L8,
        device("h100-sxm"),
        8,
        seq_len=4096,
        global_batch_seqs=8,
        method="qlora",
        lora_rank=64,
        top=1,
    )
    assert ests[0].plan.method == "qlora" and ests[0].plan.lora_rank == 64
    assert np.isfinite(ests[0].step_time_s)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "siliconomics.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_qlora_rank_and_bad_dtype():
    base = ["train", "--model", "llama-3.1-8b", "--chip", "h100-sxm", "--chips", "8"]
    base += ["--tokens", "1B", "--global-batch", "8", "--seq-len", "4096", "--json"]
    r = _cli(*base, "--method", "qlora", "--lora-rank", "32", "--plan", "dp=8,mb=1")
    assert r.returncode == 0, r.stderr
    assert '"qlora"' in r.stdout
    bad = _cli(*base, "--dtype", "fp6")
    assert bad.returncode == 2 and "fp6" in bad.stderr and "Traceback" not in bad.stderr
    bad = _cli(*base, "--method", "dora")
    assert bad.returncode == 2 and "dora" in bad.stderr


# ---- inference weight storage (ops/quant.py) ----------------------------------------------------
def test_block_scaled_weights_stream_their_scales():
    from siliconomics.ops.quant import stored_weight_bytes
    from siliconomics.parallel.memory import weight_bytes_per_chip
    from siliconomics.parallel.plan import InferencePlan

    assert stored_weight_bytes("fp4") == pytest.approx(0.5625)  # NVFP4: E4M3 scale per 16
    assert stored_weight_bytes("int4") == pytest.approx(0.5 + 2.5 / 128)  # AWQ group 128
    assert stored_weight_bytes("fp8") == 1.0 and stored_weight_bytes("bf16") == 2.0
    w4 = weight_bytes_per_chip(L70, InferencePlan(weight_dtype="fp4", act_dtype="fp4"))
    w8 = weight_bytes_per_chip(L70, InferencePlan(weight_dtype="fp8", act_dtype="fp8"))
    assert 0.5 < w4 / w8 < 0.62  # more than half: the scales and the 16-bit embeddings


def test_a_training_row_may_name_its_recipe():
    from siliconomics.validate.train_rows import TrainRow, _recipe_of

    def row(act: str, method: str = "full", software: str = "Megatron") -> TrainRow:
        class _R:
            act_dtype = act

        return TrainRow(
            row=_R(),  # type: ignore[arg-type]
            cp=None,
            fsdp="",
            zero_stage=None,
            virtual_pp=None,
            micro_batch=None,
            global_batch_seqs=None,
            recompute="",
            train_method=method,
            seq_len=None,
            notes="",
            software=software,
        )

    notes: list[str] = []
    assert _recipe_of(row("mxfp8"), "mxfp8", notes) == "mxfp8"
    assert _recipe_of(row("nvfp4"), "nvfp4", notes) == "nvfp4"
    assert _recipe_of(row("bf16"), "bf16", notes) == "bf16"
    assert _recipe_of(row("fp8", "lora", "NeMo 25.04"), "fp8", notes) == "fp8-dpa-act"
    assert _recipe_of(row("fp8", "lora"), "fp8-dpa-act", notes) == "fp8-dpa-act"
    assert _recipe_of(row("fp8"), "fp8", notes) == "fp8"

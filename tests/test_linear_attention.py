"""Gated DeltaNet hybrids (Qwen3-Next, Qwen3.5): loader, parameters, per-sequence state,
decode/prefill costs, memory, simulator state slots, and the refusals that remain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from siliconomics import resolve
from siliconomics.catalog import registry
from siliconomics.catalog.hf import load_hf_config
from siliconomics.cli import app
from siliconomics.errors import SiliconomicsError
from siliconomics.inference.estimate import max_batch
from siliconomics.inference.forward import forward_cost
from siliconomics.parallel.memory import (
    kv_bytes_per_seq_per_chip,
    kv_bytes_per_token_per_chip,
    state_bytes_per_seq_per_chip,
)
from siliconomics.parallel.plan import InferencePlan
from siliconomics.serving.cluster import kv_capacity_tokens, state_slots
from siliconomics.serving.config import PoolConfig
from siliconomics.training.estimate import estimate_training
from siliconomics.training.plan import TrainPlan

# Hugging Face Qwen3NextConfig defaults, documented as Qwen/Qwen3-Next-80B-A3B-Instruct
QWEN3_NEXT: dict[str, Any] = {
    "model_type": "qwen3_next", "vocab_size": 151936, "hidden_size": 2048,
    "intermediate_size": 5120, "num_hidden_layers": 48, "num_attention_heads": 16,
    "num_key_value_heads": 2, "head_dim": 256, "linear_conv_kernel_dim": 4,
    "linear_key_head_dim": 128, "linear_value_head_dim": 128, "linear_num_key_heads": 16,
    "linear_num_value_heads": 32, "moe_intermediate_size": 512,
    "shared_expert_intermediate_size": 512, "num_experts_per_tok": 10, "num_experts": 512,
    "full_attention_interval": 4, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
}  # fmt: skip


def _write(folder: Path, cfg: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder / "config.json"


def _layer_types(n: int, every: int = 4) -> list[str]:
    return ["full_attention" if (i + 1) % every == 0 else "linear_attention" for i in range(n)]


def test_qwen3_next_config_loads_as_a_hybrid(tmp_path: Path) -> None:
    m = load_hf_config(_write(tmp_path / "Qwen3-Next-80B-A3B", QWEN3_NEXT))
    assert m.linear_attention is not None
    assert (m.n_linear_layers, m.n_attention_layers) == (36, 12)
    assert m.attn_output_gate  # Qwen3-Next gates every full-attention output (no config key)
    assert m.linear_attention.state_dtype == "bf16"  # no mamba_ssm_dtype: the model's format
    # the same model with an explicit layer_types, and the preset
    explicit = load_hf_config(
        _write(tmp_path / "explicit", {**QWEN3_NEXT, "layer_types": _layer_types(48)})
    )
    assert explicit.linear_attention == m.linear_attention
    preset = registry.get_model("qwen3-next-80b-a3b")
    assert preset.linear_attention == m.linear_attention
    assert (preset.n_layers, preset.d_model, preset.moe) == (m.n_layers, m.d_model, m.moe)


def test_qwen35_text_config_and_fp32_state(tmp_path: Path) -> None:
    text = {
        **QWEN3_NEXT, "model_type": "qwen3_5_moe_text", "hidden_size": 4096,
        "num_hidden_layers": 60, "num_attention_heads": 32, "linear_num_value_heads": 64,
        "moe_intermediate_size": 1024, "shared_expert_intermediate_size": 1024,
        "vocab_size": 248320, "attn_output_gate": True, "mamba_ssm_dtype": "float32",
        "layer_types": _layer_types(60), "mtp_num_hidden_layers": 1,
    }  # fmt: skip
    del text["full_attention_interval"]  # the pattern alone fixes the interval
    raw = {"model_type": "qwen3_5_moe", "text_config": text}
    m = load_hf_config(_write(tmp_path / "Qwen3.5-397B-A17B", raw))
    la = registry.get_model("qwen3.5-397b-a17b").linear_attention
    assert m.linear_attention == la and la is not None and la.state_dtype == "fp32"
    assert (m.n_linear_layers, m.n_mtp_layers) == (45, 1)


def test_loader_refuses_what_it_cannot_price(tmp_path: Path) -> None:
    bad_order = {**QWEN3_NEXT, "layer_types": ["full_attention", *_layer_types(47)]}
    with pytest.raises(SiliconomicsError, match="does not follow 'full_attention_interval'"):
        load_hf_config(_write(tmp_path / "order", bad_order))
    with pytest.raises(SiliconomicsError, match="'mamba_ssm_dtype'"):
        load_hf_config(_write(tmp_path / "dt", {**QWEN3_NEXT, "mamba_ssm_dtype": "int8"}))
    # linear attention of another kind (no Gated DeltaNet keys) stays refused
    kda = {k: v for k, v in QWEN3_NEXT.items() if not k.startswith("linear_")}
    kda |= {"model_type": "kimi_linear", "layer_types": _layer_types(48)}
    with pytest.raises(SiliconomicsError, match="'linear_attention' layers"):
        load_hf_config(_write(tmp_path / "kda", kda))


def test_state_bytes_match_sglangs_state_slot() -> None:
    """Per sequence and Gated DeltaNet layer: the conv inputs (channels x (kernel - 1), 16-bit)
    and the state (value heads x dk x dv in the state format), the size SGLang's state pool
    allocates per slot."""
    m = registry.get_model("qwen3.5-397b-a17b")
    per_layer = (2 * 16 * 128 + 64 * 128) * 3 * 2 + 64 * 128 * 128 * 4
    one = InferencePlan()
    assert state_bytes_per_seq_per_chip(m, one) == 45 * per_layer
    assert state_bytes_per_seq_per_chip(m, InferencePlan(tp=8)) == pytest.approx(45 * per_layer / 8)
    # KV only in the 15 full-attention layers: 2 KV heads x 256 x 2 (K, V) x 2 bytes
    assert kv_bytes_per_token_per_chip(m, one) == 15 * 2 * 2 * 256 * 2
    ctx = np.array([0.0, 1000.0])
    got = kv_bytes_per_seq_per_chip(m, one, ctx)
    np.testing.assert_allclose(got, 45 * per_layer + ctx * 15 * 2 * 2 * 256 * 2)
    dense = registry.get_model("qwen3-235b-a22b")
    assert state_bytes_per_seq_per_chip(dense, one) == 0.0


def test_decode_reads_and_writes_each_state_once() -> None:
    m = registry.get_model("qwen3-next-80b-a3b")
    dev = resolve.device("h200-sxm")
    plan = InferencePlan(tp=2, ep=2, weight_dtype="fp8")
    ops = {op.name: op for op in forward_cost(m, dev, plan, 64.0, 1.0, 4000.0).ops}
    core = ops["linear_attention"]
    state = 2 * 2 * (16 * 128 * 128 * 2 + 3 * (2 * 8 * 128 + 16 * 128) * 2)  # read + write
    acts = (2 * 8 * 128 + 2 * 16 * 128) * 2  # q, k, v in; output out (16-bit activations)
    assert float(core.bytes) == pytest.approx(36 * (64 * state / 2 + 64 * acts))
    assert float(core.t_memory) > float(core.t_compute)  # the recurrence is memory-bound
    # the state traffic does not grow with the context; full attention's KV reads do
    far = {op.name: op for op in forward_cost(m, dev, plan, 64.0, 1.0, 64000.0).ops}
    assert float(far["linear_attention"].bytes) == float(core.bytes)
    assert float(far["attention"].bytes) > 10 * float(ops["attention"].bytes)
    # prompt chunks run the chunked form: matrix FLOPs, per-chunk states
    pre = {op.name: op for op in forward_cost(m, dev, plan, 1.0, 8192.0, 0.0).ops}
    chunked = 2 * 64 * (3 * 128 + 2 * 128) + 6 * 128 * 128  # per value head and token
    assert float(pre["linear_attention"].flops) == pytest.approx(36 * 8192 * 16 * chunked)
    assert float(core.flops) == pytest.approx(36 * 64 * 16 * 7 * 128 * 128)  # recurrent form
    # gated attention: q_proj twice as wide as the query heads
    qkv = (2 * 8 + 2 * 1) * 256 * 2048 * 2  # per token FLOPs on one of 2 chips
    assert float(ops["qkv_proj"].flops) == pytest.approx(12 * 64 * qkv)


def test_the_states_cap_the_batch() -> None:
    """A fixed-size state per sequence beside the KV cache: the batch that fits is the free
    memory over (KV of the context + state), and the state alone is worth ~1,500 tokens of
    KV here (Qwen3.5-397B, FP32 state)."""
    from siliconomics.parallel.memory import activation_bytes_per_chip, weight_bytes_per_chip

    m = registry.get_model("qwen3.5-397b-a17b")
    dev = resolve.device("b200")
    plan = InferencePlan(tp=8, weight_dtype="fp8")
    w = weight_bytes_per_chip(m, plan)
    free = dev.usable_bytes(w) - w - float(activation_bytes_per_chip(m, plan, 2048.0))
    state = state_bytes_per_seq_per_chip(m, plan)
    kv = kv_bytes_per_token_per_chip(m, plan) * 2048.0
    got = int(max_batch(m, dev, plan, 2048.0, 2048.0))
    assert got == int(free // (kv + state))
    assert got < int(free // kv) / 1.5
    assert 1000 < state / kv_bytes_per_token_per_chip(m, plan) < 2000


def test_simulator_reserves_states_for_its_sequences() -> None:
    m = registry.get_model("qwen3.5-397b-a17b")
    dev = resolve.device("b200")
    plan = InferencePlan(tp=8, weight_dtype="fp8")
    state = state_bytes_per_seq_per_chip(m, plan)
    per_tok = kv_bytes_per_token_per_chip(m, plan)
    few = PoolConfig(device=dev, plan=plan, max_seqs=64)
    many = PoolConfig(device=dev, plan=plan, max_seqs=256)
    assert state_slots(m, dev, few) == 64
    diff = kv_capacity_tokens(m, dev, few) - kv_capacity_tokens(m, dev, many)
    assert diff == pytest.approx(192 * state / per_tok, abs=1.0)
    # no sequence limit: as many states as sequences of the longest request fit
    free = PoolConfig(device=dev, plan=plan, max_seqs=None)
    n = state_slots(m, dev, free, max_ctx=9216)
    assert kv_capacity_tokens(m, dev, free, max_ctx=9216) >= n * 9216
    assert kv_capacity_tokens(m, dev, free, max_ctx=9216) < (n + 1) * 9216 + state / per_tok


def test_cli_serves_and_trains() -> None:
    runner = CliRunner()
    est = runner.invoke(
        app,
        ["estimate", "--model", "qwen3-next-80b-a3b", "--chip", "h100-sxm", "--tp", "4",
         "--batch", "16", "--input", "8192", "--output", "512", "--json"],
    )  # fmt: skip
    assert est.exit_code == 0, est.output
    sim = runner.invoke(
        app,
        ["simulate", "--model", "qwen3.5-397b-a17b", "--chip", "b200", "--tp", "8",
         "--weights-dtype", "fp8", "--act-dtype", "fp8", "--input", "2000", "--output", "200",
         "--requests", "40", "--max-seqs", "8000"],
    )  # fmt: skip
    assert sim.exit_code == 1
    assert "linear-attention states of 8000 sequences" in sim.output + str(sim.exception)
    tr = runner.invoke(
        app, ["train", "--model", "qwen3-next-80b-a3b", "--chip", "h100-sxm", "--chips", "64"]
    )
    assert tr.exit_code == 0, tr.output + str(tr.exception)


def test_training_prices_the_hybrid_layers() -> None:
    """Training: softmax attention in the full-attention layers only, the chunked gated delta
    rule in the others; context parallelism is refused for them."""
    from siliconomics.training.flops import attention_flops_per_token

    m = registry.get_model("qwen3.6-27b")
    per_head = 2.0 * 64 * (3 * 128 + 2 * 128) + 6.0 * 128 * 128
    want = 2.0 * 16 * 24 * 2 * 256 * (8192 + 1) / 2 + 48 * 48 * per_head
    assert attention_flops_per_token(m, 8192) == pytest.approx(want)
    dev = resolve.device("h100-sxm")
    softmax = m.model_copy(update={"linear_attention": None})
    kw = {"seq_len": 32768, "global_batch_seqs": 64}
    plan = TrainPlan(dp=4, tp=4, recompute="full")
    hyb = estimate_training(m, dev, plan, **kw)
    full = estimate_training(softmax, dev, plan, **kw)
    assert hyb.step_time_s < 0.8 * full.step_time_s  # at 32k tokens attention dominates
    with pytest.raises(SiliconomicsError, match="cp > 1 is not modelled for Gated DeltaNet"):
        estimate_training(m, dev, TrainPlan(dp=2, tp=4, cp=2), **kw)


def test_disaggregated_transfer_carries_the_states() -> None:
    from siliconomics.serving.disagg import KvLinks, state_bytes_per_request

    link = KvLinks(1, 10.0, 100.0, 0.0, per_request=50.0)
    assert link.transfer(0, 5, 0.0) == pytest.approx(1.0)  # (5 x 10 + 50) B at 100 B/s
    m = registry.get_model("qwen3.5-397b-a17b")
    per_layer = (2 * 16 * 128 + 64 * 128) * 3 * 2 + 64 * 128 * 128 * 4
    assert state_bytes_per_request(m, InferencePlan(tp=8)) == 45 * per_layer


# vLLM's fused_recurrent_gated_delta_rule_fwd at Qwen3-Next shapes (vllm-project/vllm PR #31722,
# "After" tables): (chip, tp, sequences) -> microseconds per layer
GDN_DECODE_US = {
    ("h200-sxm", 2, 128): 59.17, ("h200-sxm", 2, 256): 111.14, ("h200-sxm", 2, 512): 212.70,
    ("h200-sxm", 2, 1024): 420.22, ("h200-sxm", 4, 128): 33.76, ("h200-sxm", 4, 256): 60.29,
    ("h200-sxm", 4, 512): 113.28, ("h200-sxm", 4, 1024): 215.12, ("b200", 4, 128): 24.54,
    ("b200", 4, 256): 42.11, ("b200", 4, 512): 80.80, ("b200", 2, 128): 42.21,
    ("b200", 2, 256): 80.29,
}  # fmt: skip


@pytest.mark.parametrize(("key", "us"), sorted(GDN_DECODE_US.items()))
def test_decode_recurrence_matches_the_kernel_benchmark(key: tuple, us: float) -> None:
    """The decode recurrence at the profile's ``linear_decode_efficiency`` (derived from this
    benchmark's slopes, so this checks the bookkeeping: bytes per sequence and the fixed
    part), per layer, within 8%."""
    chip, tp, batch = key
    m = registry.get_model("qwen3-next-80b-a3b")
    dev = resolve.device(chip)
    assert dev.eff.linear_decode_efficiency is not None
    plan = InferencePlan(tp=tp, ep=tp)
    ops = {op.name: op for op in forward_cost(m, dev, plan, float(batch), 1.0, 2000.0).ops}
    per_layer_us = float(ops["linear_attention"].time) / m.n_linear_layers * 1e6
    assert per_layer_us == pytest.approx(us, rel=0.08)
    want = float(ops["linear_attention"].bytes) / dev.linear_decode_bytes_per_s()
    assert float(ops["linear_attention"].t_memory) == pytest.approx(want)


def test_speculative_decoding_keeps_a_state_per_verified_token() -> None:
    """With K drafts a hybrid keeps 1 + K state slots per sequence (vLLM's speculative state
    blocks) and verification writes the state after each of its K + 1 tokens; the MTP layer
    the server holds is full attention (its KV, not a state)."""
    from siliconomics.inference.speculative import Speculative, memory_model, step_cost

    m = registry.get_model("qwen3.5-397b-a17b")
    spec = Speculative(draft_tokens=3, accepted=2.5)
    held = memory_model(m, spec)
    assert (held.n_layers, held.n_linear_layers, held.n_attention_layers) == (61, 45, 16)
    one = InferencePlan(tp=8)
    base = state_bytes_per_seq_per_chip(m, one)
    assert state_bytes_per_seq_per_chip(held, one) == pytest.approx(4 * base)
    kv = kv_bytes_per_token_per_chip
    assert kv(held, one) == pytest.approx(kv(m, one) * 16 / 15)
    assert memory_model(m).linear_attention.state_slots == 1  # type: ignore[union-attr]
    dev = resolve.device("b200")
    plan = InferencePlan(tp=8, weight_dtype="fp8")
    ops = {op.name: op for op in step_cost(m, dev, plan, 32.0, 2000.0, spec).ops}
    per_seq = 5 * linear_shape_cache(m, 8)  # read 1, write K + 1 = 4
    acts = 4 * (2 * 2 * 128 + 2 * 8 * 128) * 2  # 4 tokens: q, k, v in, output out (bf16)
    want = 45 * 32 * (per_seq + acts)
    assert float(ops["linear_attention"].bytes) == pytest.approx(want)
    assert "mtp_linear_attention" not in ops  # the draft layer is full attention


def linear_shape_cache(m: Any, tp: int) -> float:
    from siliconomics.ops.linear_attention import linear_shape

    return linear_shape(m, tp).cache_bytes()


def test_the_hybrid_rows_are_held_out_of_calibration() -> None:
    from siliconomics.cli.calibrate_cmds import corpus_files, measured_files

    names = {p.name for p in measured_files(None, corpus=True)}
    assert "hybrid.csv" not in names and "trtllm.csv" in names
    assert "hybrid.csv" in {p.name for p in corpus_files()}  # still read and validated


# NVIDIA Nemotron 3 Nano (HF config.json of nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16)
NEMOTRON_NANO: dict[str, Any] = {
    "model_type": "nemotron_h", "hidden_size": 2688, "num_hidden_layers": 52,
    "hybrid_override_pattern": "MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME",
    "num_attention_heads": 32, "num_key_value_heads": 2, "head_dim": 128,
    "intermediate_size": 1856, "mlp_hidden_act": "relu2", "mamba_num_heads": 64,
    "mamba_head_dim": 64, "n_groups": 8, "ssm_state_size": 128, "conv_kernel": 4,
    "chunk_size": 128, "mamba_ssm_cache_dtype": "float32", "n_routed_experts": 128,
    "num_experts_per_tok": 6, "moe_intermediate_size": 1856,
    "moe_shared_expert_intermediate_size": 3712, "n_shared_experts": 1,
    "vocab_size": 131072, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
}  # fmt: skip


def test_nemotron_h_blocks_become_mixer_layers(tmp_path: Path) -> None:
    """52 blocks: 23 Mamba-2 + 6 attention mixers (the layers) and 23 MoE blocks (the layers
    that carry an FFN); squared-ReLU experts; the shared expert is two expert widths."""
    m = load_hf_config(_write(tmp_path / "nano", NEMOTRON_NANO))
    la = m.linear_attention
    assert la is not None and la.kind == "mamba2" and la.state_dtype == "fp32"
    assert (m.n_layers, m.ffn_layers, m.n_linear_layers, m.n_attention_layers) == (29, 23, 23, 6)
    assert (m.n_moe_layers, m.n_dense_ffn_layers) == (23, 0)
    assert (m.activation, m.gated, m.norm) == ("relu2", False, "rmsnorm")
    assert m.moe is not None and m.moe.n_shared_experts == 2
    assert m.blocks_per_layer == pytest.approx(52 / 29)
    preset = registry.get_model("nemotron-3-nano-30b-a3b")
    assert (preset.linear_attention, preset.moe, preset.ffn_layers) == (la, m.moe, 23)


def test_mamba2_costs() -> None:
    m = registry.get_model("nemotron-3-nano-30b-a3b")
    dev = resolve.device("h100-sxm")
    plan = InferencePlan()
    # state: 64 heads x 64 x 128 in fp32; conv: 3 inputs of x (4,096) and B, C (2 x 8 x 128)
    per_layer = 64 * 64 * 128 * 4 + 3 * (4096 + 2048) * 2
    assert state_bytes_per_seq_per_chip(m, plan) == 23 * per_layer
    assert kv_bytes_per_token_per_chip(m, plan) == 6 * 2 * 2 * 128 * 2  # 6 attention layers
    ops = {op.name: op for op in forward_cost(m, dev, plan, 16.0, 1.0, 1000.0).ops}
    assert float(ops["linear_attention"].flops) == pytest.approx(23 * 16 * 5 * 64 * 64 * 128)
    # one norm and residual per block: 52, not 2 x 29
    assert float(ops["norm+residual"].bytes) == pytest.approx(52 * 3 * 16 * 2688 * 2)
    # Mamba-2 decode: no kernel benchmark, so the profile's plain memory efficiency
    assert dev.linear_decode_bytes_per_s("mamba2") == pytest.approx(
        dev.hbm_bytes_per_s * dev.eff.memory_efficiency
    )


def load_hf_config_dict(raw: dict[str, Any]) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return load_hf_config(_write(Path(d) / "m", raw))


def test_cli_runs_a_mamba2_hybrid() -> None:
    runner = CliRunner()
    for args in (
        ["estimate", "--model", "nemotron-3-nano-30b-a3b", "--chip", "h100-sxm", "--batch", "8"],
        ["train", "--model", "nemotron-h-56b", "--chip", "h100-sxm", "--chips", "32"],
        ["simulate", "--model", "nemotron-3-nano-30b-a3b", "--chip", "h100-sxm",
         "--requests", "30", "--input", "500", "--output", "100"],
    ):  # fmt: skip
        r = runner.invoke(app, args)
        assert r.exit_code == 0, (args, r.output, r.exception)

"""Gemma 4: full-attention layers with their own head width and KV heads (K = V), the dense
MLP beside the MoE block, the loader and its refusals, memory, and the training refusal."""

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
from siliconomics.inference.forward import forward_cost
from siliconomics.parallel.memory import (
    kv_bytes_per_seq_per_chip,
    kv_bytes_per_token_per_chip,
    kv_full_fraction,
    param_counts,
)
from siliconomics.parallel.plan import InferencePlan

# google/gemma-4-31B-it text_config (the keys the loader reads), as vendored in
# xiaowanCN/aiconfigurator @5f2e6bb0 (nvidia--Gemma-4-31B-IT-NVFP4_config.json)
GEMMA4_31B: dict[str, Any] = {
    "model_type": "gemma4",
    "text_config": {
        "model_type": "gemma4_text", "hidden_size": 5376, "num_hidden_layers": 60,
        "num_attention_heads": 32, "num_key_value_heads": 16, "head_dim": 256,
        "global_head_dim": 512, "num_global_key_value_heads": 4, "attention_k_eq_v": True,
        "intermediate_size": 21504, "hidden_activation": "gelu_pytorch_tanh",
        "sliding_window": 1024, "vocab_size": 262144, "max_position_embeddings": 262144,
        "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 10,
        "enable_moe_block": False, "num_kv_shared_layers": 0, "hidden_size_per_layer_input": 0,
        "tie_word_embeddings": True, "dtype": "bfloat16",
    },
}  # fmt: skip


def _write(folder: Path, cfg: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


def test_loader_reads_the_global_layers_and_matches_the_preset(tmp_path: Path) -> None:
    m = load_hf_config(_write(tmp_path / "g4", GEMMA4_31B))
    ga = m.global_attention
    assert ga is not None and (ga.head_dim, ga.n_kv_heads, ga.k_eq_v) == (512, 4, True)
    assert (m.sliding_window, m.sliding_window_every, m.activation) == (1024, 6, "geglu")
    preset = registry.get_model("gemma-4-31b")
    assert preset.global_attention == ga and preset.d_ff == m.d_ff
    # without K = V the full layers keep the model's KV heads
    plain = {**GEMMA4_31B, "text_config": {**GEMMA4_31B["text_config"], "attention_k_eq_v": False}}
    g = load_hf_config(_write(tmp_path / "plain", plain)).global_attention
    assert g is not None and (g.head_dim, g.n_kv_heads, g.k_eq_v) == (512, 16, False)


def test_moe_block_beside_a_dense_mlp() -> None:
    m = registry.get_model("gemma-4-26b-a4b")
    assert m.moe is not None and (m.moe.n_shared_experts, m.moe.moe_d_ff) == (3, 704)
    assert m.moe.n_shared_experts * m.moe.moe_d_ff == m.d_ff  # the dense MLP's 2,112


def test_parameters_and_kv_cache_count_each_kind_of_layer() -> None:
    m = registry.get_model("gemma-4-31b")
    D = 5376
    local = D * (32 + 2 * 16) * 256 + 32 * 256 * D
    glob = D * (32 + 1 * 4) * 512 + 32 * 512 * D  # one K (= V) projection
    assert param_counts(m)["attention"] == 50 * local + 10 * glob
    plan = InferencePlan(tp=2, kv_dtype="bf16")
    # per token: 50 windowed layers x 2 x 8 heads x 256 + 10 full x 2 x 2 heads x 512, bf16
    per_tok = (50 * 2 * 8 * 256 + 10 * 2 * 2 * 512) * 2
    assert kv_bytes_per_token_per_chip(m, plan) == pytest.approx(per_tok)
    f = kv_full_fraction(m, plan)
    assert f == pytest.approx((10 * 2 * 512) / (10 * 2 * 512 + 50 * 8 * 256))
    ctx = 100_000.0
    want = per_tok * (f * ctx + (1 - f) * 1024)
    assert float(kv_bytes_per_seq_per_chip(m, plan, ctx)) == pytest.approx(want)


def test_full_layers_price_their_own_shape() -> None:
    m, dev = registry.get_model("gemma-4-31b"), resolve.device("h100-sxm")
    plan = InferencePlan(tp=2)
    B, c = 8.0, 20_000.0
    ops = {op.name: op for op in forward_cost(m, dev, plan, B, 1.0, c).ops}
    assert float(ops["qkv_proj_global"].flops) == pytest.approx(10 * 2 * B * (16 + 2) * 512 * D5)
    assert float(ops["qkv_proj"].flops) == pytest.approx(50 * 2 * B * (16 + 16) * 256 * D5)
    keys = c + 1.0
    assert float(ops["attention"].flops) == pytest.approx(10 * 4 * B * 16 * 512 * keys)
    assert float(ops["attention_window"].flops) == pytest.approx(50 * 4 * B * 16 * 256 * 1024)
    assert float(ops["o_proj_global"].flops) == pytest.approx(10 * 2 * B * D5 * 16 * 512)
    # the same model priced as uniform layers would read a different cache
    uniform = m.model_copy(update={"global_attention": None})
    a = forward_cost(uniform, dev, plan, B, 1.0, c)
    assert float(np.asarray(a.time)) != pytest.approx(
        float(np.asarray(forward_cost(m, dev, plan, B, 1.0, c).time))
    )


D5 = 5376


def test_schema_needs_a_window_pattern() -> None:
    m = registry.get_model("gemma-4-31b")
    with pytest.raises(ValueError, match="needs sliding_window and sliding_window_every"):
        m.model_validate({**m.model_dump(), "sliding_window_every": 0})


def test_training_is_refused_by_name() -> None:
    res = CliRunner().invoke(
        app, ["train", "--model", "gemma-4-31b", "--chip", "h100-sxm", "--chips", "8"]
    )
    assert isinstance(res.exception, SiliconomicsError), res.output
    assert "training gemma-4-31b is not modelled" in str(res.exception)


def test_cli_estimate_runs() -> None:
    res = CliRunner().invoke(
        app,
        [
            "estimate", "--model", "gemma-4-26b-a4b", "--chip", "b200", "--tp", "2",
            "--ep", "2", "--batch", "16", "--input", "8192", "--output", "1024",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "qkv_proj_global" in res.output


def test_unsupported_gemma4_variants_are_refused(tmp_path: Path) -> None:
    tc = GEMMA4_31B["text_config"]
    for key, val, msg in (
        ("hidden_size_per_layer_input", 256, "per-layer input embeddings"),
        ("use_double_wide_mlp", True, "MLPs of two widths"),
    ):
        cfg = {**GEMMA4_31B, "text_config": {**tc, key: val}}
        with pytest.raises(SiliconomicsError, match=msg):
            load_hf_config(_write(tmp_path / key, cfg))

"""DeepSeek Sparse Attention (DeepSeek-V3.2): the main MLA attention reads at most
``index_topk`` selected tokens per query (absorbed/MQA form in decode and prefill alike), the
lightning indexer scores every cached token (FP8, not split over tp) and its top-k reads the
logits; the indexer's key cache and weights count in memory. V3.2 is V3.1 plus DSA, so the
two presets isolate it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from siliconomics import resolve
from siliconomics.catalog.hf import load_hf_config
from siliconomics.catalog.schema import ModelSpec
from siliconomics.cli import app
from siliconomics.inference.forward import forward_cost
from siliconomics.parallel.memory import kv_bytes_per_token_per_chip, param_counts, total_params
from siliconomics.parallel.plan import InferencePlan

V32, V31 = "deepseek-v3.2", "deepseek-v3.1"
TP8 = InferencePlan(tp=8, ep=8, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
DP8 = InferencePlan(dp=8, ep=8, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")


def _op(model: str, plan: InferencePlan, name: str, B: float, s: float, c: float):
    fc = forward_cost(resolve.model(model), resolve.device("h200-sxm"), plan, B, s, c)
    (op,) = [o for o in fc.ops if o.name == name]
    return op


def test_preset_has_the_published_indexer() -> None:
    m = resolve.model(V32)
    assert m.dsa is not None
    assert (m.dsa.index_topk, m.dsa.index_n_heads, m.dsa.index_head_dim) == (2048, 64, 128)


def test_indexer_weights_and_cache_count_in_memory() -> None:
    m32, m31 = resolve.model(V32), resolve.model(V31)
    # per layer: wq_b 1536 x (64 x 128), wk + weights_proj 7168 x (128 + 64), k-norm 2 x 128
    per_layer = 1536 * 64 * 128 + 7168 * (128 + 64) + 2 * 128
    assert total_params(m32) - total_params(m31) == 61 * per_layer
    # whole on every tp rank: the tp=8 shard holds the full indexer
    diff8 = param_counts(m32, tp=8)["attention"] - param_counts(m31, tp=8)["attention"]
    assert diff8 == 61 * per_layer
    kv = kv_bytes_per_token_per_chip(m32, TP8) - kv_bytes_per_token_per_chip(m31, TP8)
    assert kv == pytest.approx(61 * (128 + 4))  # FP8 key + float32 scale, every layer


def test_main_attention_stops_growing_past_topk_while_the_indexer_does_not() -> None:
    a1, a2 = (_op(V32, TP8, "attention", 16.0, 1.0, c) for c in (3000.0, 12000.0))
    np.testing.assert_allclose(a1.flops, a2.flops, rtol=1e-12)  # 2,048 keys either way
    i1, i2 = (_op(V32, TP8, "indexer", 16.0, 1.0, c) for c in (3000.0, 12000.0))
    np.testing.assert_allclose(i2.flops / i1.flops, 12001.0 / 3001.0, rtol=1e-12)
    # below index_topk the selected set is the whole context: V3.1's absorbed decode FLOPs
    short = _op(V32, TP8, "attention", 16.0, 1.0, 1000.0)
    dense = _op(V31, TP8, "attention", 16.0, 1.0, 1000.0)
    np.testing.assert_allclose(short.flops, dense.flops, rtol=1e-12)


def test_prompts_run_in_mqa_form() -> None:
    """A 512-token prompt: V3.1 decompresses (MHA form, 192 + 128 per key and head), V3.2's
    sparse kernels stay absorbed (2 x 512 + 64)."""
    sparse = _op(V32, TP8, "attention", 1.0, 512.0, 0.0)
    dense = _op(V31, TP8, "attention", 1.0, 512.0, 0.0)
    np.testing.assert_allclose(sparse.flops / dense.flops, 1088.0 / 320.0, rtol=1e-12)


def test_long_prompts_get_cheaper_short_ones_do_not() -> None:
    """With attention data parallelism (the indexer unsplit either way), a 120k-token prompt
    prefills faster on V3.2 than on V3.1; a 4k one does not (MQA-form prefill costs more per
    key than the decompressed MHA form; TensorRT-LLM tech blog 15 lists MHA-mode prefill for
    short sequences as future work)."""
    dev = resolve.device("h200-sxm")

    def prefill(model: str, n: float) -> float:
        return float(forward_cost(resolve.model(model), dev, DP8, 8.0, n, 0.0).time)

    assert prefill(V32, 120_000.0) < 0.8 * prefill(V31, 120_000.0)
    assert prefill(V32, 4096.0) > prefill(V31, 4096.0)


def test_sparse_kernel_rates_and_their_fallback() -> None:
    h = resolve.device("h200-sxm")
    assert h.eff.sparse_mla_decode_efficiency == 0.41  # FlashMLA, H800: 410 of 989 TFLOP/s
    op = _op(V32, TP8, "attention", 64.0, 1.0, 8000.0)
    rate = h.peak_flops("bf16") * 0.41
    np.testing.assert_allclose(op.t_compute, op.flops / rate, rtol=1e-12)
    mi = resolve.device("mi300x")  # no sparse-kernel figure: the family's MLA decode factor
    assert mi.eff.sparse_mla_decode_efficiency is None
    got = mi.sparse_mla_flops("fp8", "fp8", prefill=False)
    assert got == pytest.approx(mi.mla_decode_flops("fp8", "fp8"))


def test_dsa_needs_mla() -> None:
    raw = resolve.model("llama-3.1-8b").model_dump()
    raw["dsa"] = {"index_topk": 2048, "index_n_heads": 64, "index_head_dim": 128}
    with pytest.raises(ValidationError, match="needs attention 'mla'"):
        ModelSpec.model_validate(raw)


def test_hf_loader_reads_the_indexer(tmp_path: Path) -> None:
    cfg = {
        "model_type": "deepseek_v32",
        "hidden_size": 7168,
        "intermediate_size": 18432,
        "moe_intermediate_size": 2048,
        "num_hidden_layers": 61,
        "num_attention_heads": 128,
        "num_key_value_heads": 128,
        "q_lora_rank": 1536,
        "kv_lora_rank": 512,
        "qk_nope_head_dim": 128,
        "qk_rope_head_dim": 64,
        "v_head_dim": 128,
        "n_routed_experts": 256,
        "n_shared_experts": 1,
        "num_experts_per_tok": 8,
        "first_k_dense_replace": 3,
        "vocab_size": 129280,
        "index_topk": 2048,
        "index_n_heads": 64,
        "index_head_dim": 128,
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    m = load_hf_config(tmp_path)
    assert m.dsa is not None and m.dsa.index_topk == 2048
    assert total_params(m) == total_params(resolve.model(V32))


def test_cli_estimate_states_the_sparse_attention() -> None:
    args = "estimate --model deepseek-v3.2 --chip h200-sxm --tp 8 --ep 8 --weights-dtype fp8"
    args += " --kv-dtype fp8 --batch 4 --input 32768"
    res = CliRunner().invoke(app, args.split(), env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "DeepSeek Sparse Attention" in res.output
    assert "indexer" in res.output

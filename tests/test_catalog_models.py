"""Model presets (catalog/data/models) and the Hugging Face config.json loader."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from siliconomics.catalog import registry
from siliconomics.catalog.hf import load_hf_config
from siliconomics.catalog.schema import ModelSpec
from siliconomics.errors import SiliconomicsError

MODELS_CSV = Path(__file__).resolve().parents[2] / "shared/validation/models.csv"


def n_params(m: ModelSpec) -> float:
    """Total parameters: embeddings + per-layer attention + FFN/MoE (+ routers) + norms.

    Biases other than q/k/v are left out (well under 0.1% for every preset)."""
    d, layers = m.d_model, m.n_layers
    emb = m.vocab_size * d * (1 if m.tied_embeddings else 2)
    if m.mla is not None:
        a = m.mla
        q_out = m.n_heads * m.head_dim
        q = d * q_out if a.q_lora_rank is None else a.q_lora_rank * (d + 1 + q_out)
        nope = m.head_dim - a.qk_rope_head_dim
        kv = d * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank
        kv += a.kv_lora_rank * m.n_heads * (nope + a.v_head_dim)
        attn = q + kv + m.n_heads * a.v_head_dim * d
    else:
        q_out, kv_out = m.n_heads * m.head_dim, m.n_kv_heads * m.head_dim
        gate = q_out if m.attn_output_gate else 0  # a second query-sized projection
        attn = d * (q_out + gate + 2 * kv_out) + q_out * d
        attn += (q_out + gate + 2 * kv_out) if m.qkv_bias else 0
        g = m.global_attention
        if g is not None:  # Gemma 4: full layers of their own width and KV heads
            n_full = layers // m.sliding_window_every
            qg, kvg = m.n_heads * g.head_dim, g.n_kv_heads * g.head_dim
            attn_g = d * (qg + (1 if g.k_eq_v else 2) * kvg) + qg * d
            attn = ((layers - n_full) * attn + n_full * attn_g) / layers
    la = m.linear_attention
    if la is not None:
        qk, v, nv = la.n_k_heads * la.k_head_dim, la.n_v_heads * la.v_head_dim, la.n_v_heads
        conv = 2 * qk + v
        if la.kind == "gated-deltanet":  # in_proj_qkvz + in_proj_ba, conv, A_log/dt_bias, norm
            lin = d * (2 * qk + 2 * v + 2 * nv) + la.conv_kernel * conv + 2 * nv + la.v_head_dim
        else:  # Mamba-2: in_proj (z, x, B, C, dt), conv + bias, A_log/D/dt_bias, grouped norm
            lin = d * (2 * qk + 2 * v + nv) + (la.conv_kernel + 1) * conv + 3 * nv + v
        lin += v * d  # out_proj
        n_lin = (
            la.n_linear
            if la.n_linear is not None
            else layers - layers // (la.full_attention_every or 1)
        )
        attn = ((layers - n_lin) * attn + n_lin * lin) / layers  # per-layer average
    per_ffn = (3 if m.gated else 2) * d
    with_ffn = layers if m.ffn_layers is None else m.ffn_layers  # Nemotron-H: mixer-only layers
    if m.moe is None:
        ffn = with_ffn * per_ffn * m.d_ff
    else:
        e = m.moe
        moe_layer = (e.n_experts + e.n_shared_experts) * per_ffn * e.moe_d_ff + e.n_experts * d
        if e.latent_dim is not None:  # LatentMoE: routed experts at the latent width + D<->latent
            moe_layer -= e.n_experts * per_ffn * e.moe_d_ff * (d - e.latent_dim) // d
            moe_layer += 2 * d * e.latent_dim
        n_moe = (with_ffn - e.n_dense_layers) // e.moe_layer_step  # Llama 4: every 2nd layer
        ffn = n_moe * moe_layer + (with_ffn - n_moe) * per_ffn * m.d_ff
    return emb + layers * attn + ffn + (layers + with_ffn + 1) * d


# Published totals; sources in the comments.
PUBLISHED_PARAMS = {
    "llama-2-7b": 6.74e9,  # Touvron et al. 2023 (Llama 2); HF meta-llama/Llama-2-7b-hf: 6.74B
    "llama-3.1-70b": 70.6e9,  # HF meta-llama/Llama-3.1-70B safetensors size: 70.6B
    "llama-3.1-405b": 405.8e9,  # HF meta-llama/Llama-3.1-405B model card (405B)
    "mixtral-8x7b": 46.7e9,  # Mistral AI "Mixtral of experts" post (46.7B total, 12.9B active)
    "deepseek-v3": 671e9,  # deepseek-ai/DeepSeek-V3 README_WEIGHTS.md (671B main model)
    "qwen3-30b-a3b": 30.5e9,  # Qwen/Qwen3-30B-A3B model card (30.5B total, 3.3B activated)
    "gpt-oss-120b": 116.8e9,  # openai/gpt-oss-120b model card (116.8B total, 5.1B active)
}


def test_every_preset_loads() -> None:
    models = registry.models()
    assert len(models) >= 20
    for model_id, spec in models.items():
        assert spec.id == model_id
        assert spec.source
        assert spec.n_heads * spec.head_dim > 0


@pytest.mark.parametrize(
    "model_id",
    [
        "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b",
        "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-3.3-70b", "gpt-j-6b",
        "gpt-3-175b", "mixtral-8x7b", "deepseek-v3", "qwen3-30b-a3b", "gpt-oss-120b",
    ],
)  # fmt: skip
def test_required_presets_exist(model_id: str) -> None:
    assert registry.get_model(model_id).id == model_id


def _csv_rows() -> list[dict[str, str]]:
    if not MODELS_CSV.exists():
        pytest.skip("shared/validation/models.csv not present beside the checkout")
    with MODELS_CSV.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


_TOP_INTS = ("n_layers", "d_model", "n_heads", "n_kv_heads", "head_dim", "d_ff", "vocab_size")
_MOE_INTS = ("n_experts", "experts_per_token", "moe_d_ff", "n_shared_experts", "n_dense_layers")
_MLA_INTS = ("q_lora_rank", "kv_lora_rank", "qk_rope_head_dim", "v_head_dim")
_TEXT = ("family", "norm", "activation", "attention", "position")


def test_every_csv_model_is_a_preset_with_the_same_hyperparameters() -> None:
    models = registry.models()
    for row in _csv_rows():
        assert row["id"] in models, f"{row['id']} from models.csv has no preset"
        m = models[row["id"]]
        for col in _TOP_INTS:
            assert getattr(m, col) == int(row[col]), (m.id, col)
        assert m.max_position == (int(row["max_position"]) if row["max_position"] else None)
        for col in _TEXT:
            assert getattr(m, col) == row[col], (m.id, col)
        assert m.tied_embeddings == (row["tied_embeddings"] == "true"), m.id
        assert m.parallel_attn_mlp == (row["parallel_attn_mlp"] == "true"), m.id
        assert m.source == row["source"], m.id
        if row["n_experts"]:
            assert m.moe is not None, m.id
            for col in _MOE_INTS:
                assert getattr(m.moe, col) == int(row[col] or 0), (m.id, col)
        else:
            assert m.moe is None, m.id
        if row["kv_lora_rank"]:
            assert m.mla is not None, m.id
            for col in _MLA_INTS:
                assert getattr(m.mla, col) == int(row[col]), (m.id, col)
        else:
            assert m.mla is None, m.id


@pytest.mark.parametrize(("model_id", "published"), sorted(PUBLISHED_PARAMS.items()))
def test_parameter_count_matches_published_total(model_id: str, published: float) -> None:
    got = n_params(registry.get_model(model_id))
    assert got == pytest.approx(published, rel=0.03), f"{model_id}: {got / 1e9:.2f}B"


def test_preset_specifics() -> None:
    oss = registry.get_model("gpt-oss-120b")
    assert (oss.sliding_window, oss.sliding_window_every) == (128, 2)
    assert oss.qkv_bias and oss.default_weight_dtype == "fp4" and oss.head_dim == 64
    assert oss.moe is not None and oss.moe.experts_per_token == 4
    assert registry.get_model("deepseek-v3").default_weight_dtype == "fp8"
    assert registry.get_model("deepseek-r1").default_weight_dtype == "fp8"
    gptj = registry.get_model("gpt-j-6b")
    assert gptj.parallel_attn_mlp and gptj.position == "rope-partial"
    assert gptj.activation == "gelu"
    assert registry.get_model("qwen3-30b-a3b").head_dim == 128
    assert not registry.get_model("llama-3.1-8b").qkv_bias


# --- Hugging Face config.json loader -------------------------------------------------------

LLAMA = {
    "_name_or_path": "meta-llama/Meta-Llama-3.1-70B", "model_type": "llama",
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "hidden_act": "silu",
    "hidden_size": 8192, "intermediate_size": 28672, "max_position_embeddings": 131072,
    "num_attention_heads": 64, "num_hidden_layers": 80, "num_key_value_heads": 8,
    "rope_scaling": {"factor": 8.0, "rope_type": "llama3"}, "rope_theta": 500000.0,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "vocab_size": 128256,
}  # fmt: skip
MIXTRAL = {
    "model_type": "mixtral", "hidden_act": "silu", "hidden_size": 4096,
    "intermediate_size": 14336, "max_position_embeddings": 32768, "num_attention_heads": 32,
    "num_experts_per_tok": 2, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "num_local_experts": 8, "sliding_window": None, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "vocab_size": 32000,
}  # fmt: skip
DEEPSEEK_V3 = {
    "model_type": "deepseek_v3", "first_k_dense_replace": 3, "hidden_act": "silu",
    "hidden_size": 7168, "intermediate_size": 18432, "kv_lora_rank": 512,
    "max_position_embeddings": 163840, "moe_intermediate_size": 2048, "n_routed_experts": 256,
    "n_shared_experts": 1, "num_attention_heads": 128, "num_experts_per_tok": 8,
    "num_hidden_layers": 61, "num_key_value_heads": 128, "q_lora_rank": 1536,
    "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "vocab_size": 129280,
    "num_nextn_predict_layers": 1,
    "quantization_config": {"fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]},
    "rope_scaling": {"factor": 40, "original_max_position_embeddings": 4096, "type": "yarn"},
    "tie_word_embeddings": False, "torch_dtype": "bfloat16",
}  # fmt: skip
GPT_OSS = {
    "model_type": "gpt_oss", "attention_bias": True, "experts_per_token": 4, "head_dim": 64,
    "hidden_act": "silu", "hidden_size": 2880, "intermediate_size": 2880,
    "layer_types": ["sliding_attention", "full_attention"] * 18,
    "max_position_embeddings": 131072, "num_attention_heads": 64, "num_experts_per_tok": 4,
    "num_hidden_layers": 36, "num_key_value_heads": 8, "num_local_experts": 128,
    "quantization_config": {"quant_method": "mxfp4"},
    "rope_scaling": {"factor": 32.0, "rope_type": "yarn"}, "sliding_window": 128,
    "swiglu_limit": 7.0, "tie_word_embeddings": False, "vocab_size": 201088,
}  # fmt: skip
GPTJ = {
    "model_type": "gptj", "activation_function": "gelu_new", "n_embd": 4096, "n_head": 16,
    "n_inner": None, "n_layer": 28, "n_positions": 2048, "rotary_dim": 64,
    "tie_word_embeddings": False, "vocab_size": 50400,
}  # fmt: skip


def _write(folder: Path, cfg: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


def _same_architecture(a: ModelSpec, b: ModelSpec) -> None:
    skip = {"id", "family", "source", "notes"}
    for name in ModelSpec.model_fields:
        if name not in skip:
            assert getattr(a, name) == getattr(b, name), name


def test_hf_llama(tmp_path: Path) -> None:
    path = _write(tmp_path / "Meta-Llama-3.1-70B", LLAMA)
    by_file = load_hf_config(path)
    assert by_file.id == "meta-llama/Meta-Llama-3.1-70B"  # _name_or_path
    assert by_file.family == "llama" and by_file.attention == "gqa"
    assert (by_file.head_dim, by_file.activation, by_file.norm) == (128, "swiglu", "rmsnorm")
    assert by_file.source == f"Hugging Face config.json at {path}"
    by_folder = load_hf_config(path.parent)
    assert by_folder.id == "Meta-Llama-3.1-70B"  # the folder name
    preset = registry.get_model("llama-3.1-70b")
    for spec in (by_file, by_folder):
        _same_architecture(spec, preset)
    assert registry.get_model(str(path)).d_model == 8192  # the registry takes paths too


def test_hf_mixtral(tmp_path: Path) -> None:
    m = load_hf_config(_write(tmp_path / "mixtral", MIXTRAL))
    assert m.moe is not None
    assert (m.moe.n_experts, m.moe.experts_per_token, m.moe.moe_d_ff) == (8, 2, 14336)
    assert (m.moe.n_shared_experts, m.moe.n_dense_layers) == (0, 0)
    assert m.sliding_window is None and m.d_ff == 14336
    assert n_params(m) == pytest.approx(46.7e9, rel=0.03)


def test_hf_deepseek_v3_mla(tmp_path: Path) -> None:
    m = load_hf_config(_write(tmp_path / "DeepSeek-V3", DEEPSEEK_V3))
    assert m.attention == "mla" and m.mla is not None and m.moe is not None
    assert m.head_dim == 192  # nope 128 + rope 64
    assert (m.mla.q_lora_rank, m.mla.kv_lora_rank, m.mla.v_head_dim) == (1536, 512, 128)
    assert (m.moe.n_shared_experts, m.moe.n_dense_layers, m.moe.moe_d_ff) == (1, 3, 2048)
    assert m.default_weight_dtype == "fp8" and m.position == "rope-yarn"
    _same_architecture(m, registry.get_model("deepseek-v3"))


def test_hf_gpt_oss(tmp_path: Path) -> None:
    m = load_hf_config(_write(tmp_path / "gpt-oss-120b", GPT_OSS))
    assert (m.sliding_window, m.sliding_window_every) == (128, 2)
    assert m.qkv_bias and m.default_weight_dtype == "fp4" and m.head_dim == 64
    assert m.activation_clamp == 7.0  # swiglu_limit
    _same_architecture(m, registry.get_model("gpt-oss-120b"))


def test_hf_gptj_defaults(tmp_path: Path) -> None:
    m = load_hf_config(_write(tmp_path / "gpt-j-6b", GPTJ))
    assert m.d_ff == 4 * 4096  # n_inner null -> 4 * n_embd
    assert (m.norm, m.activation, m.position) == ("layernorm", "gelu", "rope-partial")
    assert m.parallel_attn_mlp
    preset = registry.get_model("gpt-j-6b")  # no torch_dtype in the fixture: bf16 default
    _same_architecture(m, preset.model_copy(update={"default_weight_dtype": "bf16"}))


def test_hf_missing_hidden_size(tmp_path: Path) -> None:
    cfg = {k: v for k, v in LLAMA.items() if k != "hidden_size"}
    with pytest.raises(SiliconomicsError, match="hidden_size"):
        load_hf_config(_write(tmp_path / "broken", cfg))


def test_hf_bad_values(tmp_path: Path) -> None:
    with pytest.raises(SiliconomicsError, match="num_hidden_layers"):
        load_hf_config(_write(tmp_path / "a", {**LLAMA, "num_hidden_layers": "eighty"}))
    with pytest.raises(SiliconomicsError, match="n_kv_heads 7"):
        load_hf_config(_write(tmp_path / "b", {**LLAMA, "num_key_value_heads": 7}))
    with pytest.raises(SiliconomicsError, match="torch_dtype"):
        load_hf_config(_write(tmp_path / "c", {**LLAMA, "torch_dtype": "int3"}))


def test_hf_not_json_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("not json {", encoding="utf-8")
    with pytest.raises(SiliconomicsError, match="not valid JSON"):
        load_hf_config(bad)
    with pytest.raises(SiliconomicsError, match="cannot read"):
        load_hf_config(tmp_path / "nowhere" / "config.json")
    with pytest.raises(SiliconomicsError, match="JSON object"):
        load_hf_config(_write(tmp_path / "list", [1, 2]))  # type: ignore[arg-type]


# Llama 4 Maverick's text_config keys (meta-llama/Llama-4-Maverick-17B-128E-Instruct config.json
# as vendored in ai-dynamo/aiconfigurator@095f58a5).
LLAMA4_MAVERICK = {
    "architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4",
    "text_config": {
        "model_type": "llama4_text", "attention_chunk_size": 8192, "head_dim": 128,
        "hidden_act": "silu", "hidden_size": 5120, "interleave_moe_layer_step": 2,
        "intermediate_size": 8192, "intermediate_size_mlp": 16384,
        "max_position_embeddings": 1048576, "num_attention_heads": 40, "num_experts_per_tok": 1,
        "num_hidden_layers": 48, "num_key_value_heads": 8, "num_local_experts": 128,
        "vocab_size": 202048, "torch_dtype": "bfloat16",
    },
}  # fmt: skip


def test_hf_llama4_interleaved_moe_and_shared_expert(tmp_path: Path) -> None:
    m = load_hf_config(_write(tmp_path / "maverick", LLAMA4_MAVERICK))
    assert m.moe is not None
    assert (m.moe.n_experts, m.moe.experts_per_token, m.moe.moe_d_ff) == (128, 1, 8192)
    assert (m.moe.n_shared_experts, m.moe.moe_layer_step, m.n_moe_layers) == (1, 2, 24)
    assert m.d_ff == 16384  # dense layers use intermediate_size_mlp
    assert (m.sliding_window, m.sliding_window_every) == (8192, 4)  # chunked attention
    _same_architecture(m, registry.get_model("llama-4-maverick"))
    assert n_params(m) == pytest.approx(400e9, rel=0.03)  # Meta: 400B total, 17B active


def test_hf_shared_expert_width_and_mtp(tmp_path: Path) -> None:
    qwen2_moe = {
        "model_type": "qwen2_moe", "hidden_size": 2048, "num_hidden_layers": 24,
        "num_attention_heads": 16, "num_key_value_heads": 16, "intermediate_size": 5632,
        "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632,
        "num_experts": 60, "num_experts_per_tok": 4, "vocab_size": 151936,
    }  # fmt: skip
    m = load_hf_config(_write(tmp_path / "qwen2moe", qwen2_moe))
    assert m.moe is not None and m.moe.n_shared_experts == 4  # 5632 / 1408
    with pytest.raises(SiliconomicsError, match="shared_expert_intermediate_size"):
        load_hf_config(
            _write(tmp_path / "bad", {**qwen2_moe, "shared_expert_intermediate_size": 1000})
        )
    ds = load_hf_config(_write(tmp_path / "ds", DEEPSEEK_V3))
    assert ds.n_mtp_layers == 1 and ds.n_moe_layers == 58


NEW_PRESETS = {
    # id: (total params, active params), as published by the model's authors
    "llama-4-scout": (109e9, 17e9),
    "llama-4-maverick": (400e9, 17e9),
    "qwen3-8b": (8.2e9, 8.2e9),
    "qwen3-14b": (14.8e9, 14.8e9),
    "qwen3-32b": (32.8e9, 32.8e9),
    "qwen3-coder-480b-a35b": (480e9, 35e9),
    "kimi-k2": (1.04e12, 32e9),
    "kimi-k2.5": (1.04e12, 32e9),  # Moonshot: 1T total, 32B active (text model)
    "deepseek-v3.1": (671e9, 37e9),
    "deepseek-v3.2": (671e9, 37e9),
    "glm-4.5": (355e9, 32e9),
    "glm-4.6": (355e9, 32e9),
    "glm-4.7": (355e9, 32e9),
    "glm-5": (744e9, 40e9),  # GLM-5 technical report (arXiv:2602.15763), its Table 1
    # Gated DeltaNet hybrids: the names give total / active (Qwen counts Qwen3-Next's 3B
    # without embeddings and LM head: 3.25B here, 3.87B with them)
    "qwen3-next-80b-a3b": (80e9, 3.6e9),
    "qwen3.5-122b-a10b": (122e9, 10e9),
    "qwen3.5-397b-a17b": (397e9, 17e9),
    "qwen3.6-27b": (27e9, 27e9),
    "qwen3.6-35b-a3b": (35e9, 3.2e9),
    # Mamba-2 hybrids (NVIDIA: Nemotron 3 Nano 31.6B total, 3.6B active with embeddings)
    "nemotron-3-nano-30b-a3b": (31.6e9, 3.6e9),
    "nemotron-h-56b": (56e9, 56e9),
    # Gemma 3 (Google's sizes name the whole model; the 0.4B SigLIP tower of 4B-27B is not
    # counted here)
    "gemma-3-1b": (1e9, 1e9),
    "gemma-3-4b": (4e9, 4e9),
    "gemma-3-12b": (12e9, 12e9),
    "gemma-3-27b": (27e9, 27e9),
    # Gemma 4 (31B: 30.7B; 26B-A4B: Google's 25.2B total / 3.8B active)
    "gemma-4-31b": (30.7e9, 30.7e9),
    "gemma-4-26b-a4b": (25.2e9, 3.8e9),
    # LatentMoE (NVIDIA: Nemotron 3 Super 120B total, 12B active; Ultra 550B, 55B active)
    "nemotron-3-super-120b-a12b": (120e9, 12e9),
    "nemotron-3-ultra-550b-a55b": (550e9, 55e9),
}


@pytest.mark.parametrize(("model_id", "sizes"), sorted(NEW_PRESETS.items()))
def test_new_presets_match_published_sizes(model_id: str, sizes: tuple[float, float]) -> None:
    from siliconomics.parallel.memory import active_params

    m = registry.get_model(model_id)
    assert n_params(m) == pytest.approx(sizes[0], rel=0.04), model_id
    assert active_params(m) == pytest.approx(sizes[1], rel=0.09), model_id


def test_minimax_m25_preset_and_its_mtp_modules(tmp_path: Path) -> None:
    """MiniMax-M2.5: 230B total / 10B active (MiniMax's model card; its active count leaves
    out the embedding lookup), three one-layer MTP modules the loader reads from
    ``use_mtp`` / ``num_mtp_modules``."""
    from siliconomics.parallel.memory import active_params

    m = registry.get_model("minimax-m2.5")
    assert n_params(m) == pytest.approx(230e9, rel=0.04)
    lookup = m.vocab_size * m.d_model
    assert active_params(m) - lookup == pytest.approx(10e9, rel=0.05)
    assert m.n_mtp_layers == 3 and m.position == "rope-partial"
    raw = {
        "model_type": "minimax_m2", "num_hidden_layers": 62, "hidden_size": 3072,
        "num_attention_heads": 48, "num_key_value_heads": 8, "head_dim": 128,
        "intermediate_size": 1536, "vocab_size": 200064, "num_experts_per_tok": 8,
        "num_local_experts": 256, "rotary_dim": 64, "hidden_act": "silu",
        "use_mtp": True, "mtp_transformer_layers": 1, "num_mtp_modules": 3,
        "shared_intermediate_size": 0, "max_position_embeddings": 196608,
        "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]},
    }  # fmt: skip
    hf = load_hf_config(_write(tmp_path / "mm", raw))
    _same_architecture(hf, m)
    assert hf.n_mtp_layers == 3
    assert load_hf_config(_write(tmp_path / "off", {**raw, "use_mtp": False})).n_mtp_layers == 0


def test_hf_hybrid_layers_are_refused(tmp_path: Path) -> None:
    """Layers the schema cannot price (linear attention without Gated DeltaNet keys, unknown
    Nemotron-H blocks, per-layer shapes, compressed attention, unequal global
    layers): the loader names them instead of pricing them as something else."""
    base = {
        "hidden_size": 2048, "num_hidden_layers": 4, "num_attention_heads": 16,
        "num_key_value_heads": 2, "intermediate_size": 5120, "vocab_size": 151936,
    }  # fmt: skip
    lt = ["linear_attention", "linear_attention", "linear_attention", "full_attention"]
    with pytest.raises(SiliconomicsError, match="'linear_attention' layers"):
        load_hf_config(
            _write(tmp_path / "qn", {**base, "model_type": "qwen3_next", "layer_types": lt})
        )
    nh = {**base, "model_type": "nemotron_h", "hybrid_override_pattern": "M-M*X"}
    with pytest.raises(SiliconomicsError, match="has blocks 'X'"):
        load_hf_config(_write(tmp_path / "nh", nh))
    listed = {**base, "model_type": "nemotron_h", "layers_block_type": ["mamba", "mamba3"]}
    with pytest.raises(SiliconomicsError, match="'layers_block_type' has 'mamba3'"):
        load_hf_config(_write(tmp_path / "nh3", listed))
    nas = {**base, "model_type": "nemotron-nas", "block_configs": [{"ffn": {"ffn_mult": 2.6}}] * 4}
    with pytest.raises(SiliconomicsError, match="'block_configs' gives each of its 4 layers"):
        load_hf_config(_write(tmp_path / "nas", nas))
    v4 = {**base, "model_type": "deepseek_v4", "compress_ratios": [0, 4, 128, 0], "hc_mult": 4}
    with pytest.raises(SiliconomicsError, match="compresses the KV cache of 2 layers"):
        load_hf_config(_write(tmp_path / "v4", v4))
    g4 = {**base, "model_type": "gemma4_text", "head_dim": 256, "global_head_dim": 512}
    with pytest.raises(SiliconomicsError, match="has no sliding-window layer pattern"):
        load_hf_config(_write(tmp_path / "g4", g4))
    e2b = {**g4, "num_kv_shared_layers": 20}
    with pytest.raises(SiliconomicsError, match="'num_kv_shared_layers' 20: layers that reuse"):
        load_hf_config(_write(tmp_path / "e2b", e2b))
    ok = ["sliding_attention", "full_attention"] * 2
    m = load_hf_config(
        _write(
            tmp_path / "g",
            {**base, "model_type": "gemma3_text", "layer_types": ok, "sliding_window": 512},
        )
    )
    assert (m.sliding_window, m.sliding_window_every) == (512, 2)


def test_glm_51_is_glm_5_shaped() -> None:
    """GLM-5.1's config.json has GLM-5's architecture key for key."""
    _same_architecture(registry.get_model("glm-5.1"), registry.get_model("glm-5"))

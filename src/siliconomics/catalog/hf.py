"""Read a Hugging Face ``config.json`` into a :class:`ModelSpec`.

Covers the decoder-only families whose configs use the common key names (llama, mistral,
mixtral, qwen2/qwen3(-moe), deepseek_v3, gpt_oss, gptj, gpt2, gpt_neox, phi, gemma). Keys that
differ between families are tried in order (``hidden_size`` | ``n_embd`` | ``d_model``); the
defaults are those of the ``transformers`` config classes. Pure: reads only the given file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import SiliconomicsError
from .parse import validate_as
from .schema import ModelSpec

# Families with a plain (2-matrix) MLP, LayerNorm and biased projections; all others are
# gated (3-matrix) RMSNorm models.
_PLAIN_MLP = frozenset({"gpt2", "gptj", "gpt_neox", "phi", "opt", "bloom", "falcon", "gpt_bigcode"})
_TIED_BY_DEFAULT = frozenset({"gpt2", "opt", "bloom", "gemma", "gemma2", "gemma3", "gemma3_text"})
_QKV_BIAS_BY_DEFAULT = frozenset({"qwen2", "qwen2_moe", "gpt2", "gpt_neox", "phi"})
_LEARNED_POSITIONS = frozenset({"gpt2", "opt", "gpt_bigcode"})
_TORCH_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
_QUANT_DTYPES = {"mxfp4": "fp4", "nvfp4": "fp4", "fp8": "fp8", "fbgemm_fp8": "fp8"}


class _Config:
    """Typed access to the raw JSON object; every failure names the file and the key."""

    def __init__(self, raw: dict[str, Any], where: str) -> None:
        self.raw = raw
        self.where = where

    def fail(self, msg: str) -> SiliconomicsError:
        return SiliconomicsError(f"{self.where}: {msg}")

    def first(self, *keys: str) -> tuple[str, Any]:
        """The first of ``keys`` that is present and not null, or ``(keys[0], None)``."""
        for k in keys:
            if self.raw.get(k) is not None:
                return k, self.raw[k]
        return keys[0], None

    def opt_int(
        self, *keys: str, default: int | None = None, required: bool = False, minimum: int = 1
    ) -> int | None:
        key, v = self.first(*keys)
        if v is None:
            if default is None and required:
                alts = f" (or {'/'.join(keys[1:])})" if len(keys) > 1 else ""
                raise self.fail(f"missing '{key}'{alts}")
            return default
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise self.fail(f"'{key}' must be an integer >= {minimum}, got {v!r}")
        return v

    def req(self, *keys: str, default: int | None = None, minimum: int = 1) -> int:
        v = self.opt_int(*keys, default=default, required=True, minimum=minimum)
        assert v is not None  # opt_int raised otherwise
        return v

    def opt_str(self, *keys: str) -> str | None:
        key, v = self.first(*keys)
        if v is not None and not isinstance(v, str):
            raise self.fail(f"'{key}' must be a string, got {v!r}")
        return v


def _read(path: Path) -> tuple[Path, dict[str, Any]]:
    file = path / "config.json" if path.is_dir() else path
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SiliconomicsError(f"{file}: cannot read the file ({e})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise SiliconomicsError(f"{file}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(raw, dict):
        raise SiliconomicsError(f"{file}: expected a JSON object at the top level")
    # Multimodal wrappers (gemma3, llama4, qwen-vl) keep the language model in text_config.
    text_cfg = raw.get("text_config")
    if isinstance(text_cfg, dict) and "hidden_size" not in raw:
        raw = {**raw, **text_cfg}
    return file, raw


def _model_id(path: Path, file: Path, c: _Config) -> str:
    if path.is_dir():
        return path.name
    name = c.opt_str("_name_or_path")
    if name:
        return name
    return file.parent.name if file.stem == "config" and file.parent.name else file.stem


def _activation(c: _Config, gated: bool) -> str:
    key, act = c.first("mlp_hidden_act", "hidden_act", "hidden_activation", "activation_function")
    act = str(act or ("silu" if gated else "gelu")).lower()
    if "gelu" in act:
        return "geglu" if gated else "gelu"
    if act in ("silu", "swish") and gated:
        return "swiglu"
    if act == "relu" and not gated:
        return "relu"
    if act == "relu2" and not gated:  # squared ReLU (Nemotron-H), a plain two-matrix MLP
        return "relu2"
    raise c.fail(f"'{key}' = {act!r} is not supported for model_type {c.raw.get('model_type')!r}")


def _shared_experts(c: _Config, family: str, moe_d_ff: int) -> int:
    """Always-active experts: DeepSeek/GLM/Kimi ``n_shared_experts``; Llama 4 has one shared
    expert of the routed experts' width in every MoE layer (no config key); Qwen2-MoE gives
    the shared expert's width, counted in routed-expert widths; Gemma 4's MoE block runs
    beside a dense MLP of ``intermediate_size`` whose output it adds (``enable_moe_block``),
    an always-active expert of that width."""
    if c.raw.get("enable_moe_block"):
        dense = c.req("intermediate_size")
        if dense % moe_d_ff:
            raise c.fail(
                f"'intermediate_size' {dense} (the dense MLP beside the experts) is not a "
                f"multiple of the expert width {moe_d_ff}; the schema counts it in expert widths"
            )
        return dense // moe_d_ff
    n = c.opt_int("n_shared_experts", "num_shared_experts", minimum=0)
    wide = c.opt_int("moe_shared_expert_intermediate_size", minimum=0)  # Nemotron-H
    if n is not None and wide:
        if wide % moe_d_ff:
            raise c.fail(
                f"'moe_shared_expert_intermediate_size' {wide} is not a multiple of the expert "
                f"width {moe_d_ff}; the schema counts shared experts in expert widths"
            )
        return n * wide // moe_d_ff if n else 0
    if n is not None:
        return n
    if family.startswith("llama4"):
        return 1
    width = c.opt_int("shared_expert_intermediate_size", minimum=0)
    if not width:
        return 0
    if width % moe_d_ff:
        raise c.fail(
            f"'shared_expert_intermediate_size' {width} is not a multiple of the expert width "
            f"{moe_d_ff}; the schema counts shared experts in expert widths"
        )
    return width // moe_d_ff


def _moe(c: _Config, family: str, d_ff: int) -> dict[str, Any] | None:
    """The MoE table, or None for a dense model. Interleaving: Llama 4
    ``interleave_moe_layer_step``, Qwen ``decoder_sparse_step``, DeepSeek ``moe_layer_freq``
    (every step-th layer after the ``first_k_dense_replace`` leading dense layers is MoE)."""
    n_experts = c.opt_int("num_local_experts", "n_routed_experts", "num_experts")
    if not n_experts or n_experts <= 1:
        return None
    moe_d_ff = c.req("moe_intermediate_size", "intermediate_size", default=d_ff)
    return {
        "n_experts": n_experts,
        "experts_per_token": c.req("num_experts_per_tok", "experts_per_token", "top_k_experts"),
        "moe_d_ff": moe_d_ff,
        "n_shared_experts": _shared_experts(c, family, moe_d_ff),
        "n_dense_layers": c.req("first_k_dense_replace", default=0, minimum=0),
        "moe_layer_step": c.req(
            "interleave_moe_layer_step", "decoder_sparse_step", "moe_layer_freq", default=1
        ),
        "latent_dim": c.opt_int("moe_latent_size"),  # LatentMoE (Nemotron 3 Super/Ultra)
    }


_ATTENTION_LAYERS = ("full_attention", "sliding_attention", "attention")
"""``layer_types`` entries the schema models (softmax attention, full or windowed)"""


def _only_attention(c: _Config) -> None:
    """Refuse models whose layers the schema cannot price: linear-attention kinds other than
    Gated DeltaNet (``layer_types``), unknown Nemotron-H blocks, per-layer shapes (DeciLM /
    Llama-Nemotron ``block_configs``), compressed attention (DeepSeek-V4 ``compress_ratios``),
    and Gemma 4's KV-shared layers, per-layer input embeddings and double-wide MLPs (E2B /
    E4B). Pricing them as uniform softmax-attention layers would be silently wrong."""
    layer_types = c.raw.get("layer_types")
    if isinstance(layer_types, list):
        known = set(_ATTENTION_LAYERS)
        if _gated_deltanet(c):
            known.add("linear_attention")
        other = sorted({str(t) for t in layer_types} - known)
        if other:
            raise c.fail(
                f"'layer_types' has {', '.join(repr(t) for t in other)} layers (linear "
                "attention / state-space); softmax attention and Gated DeltaNet layers "
                "(Qwen3-Next / Qwen3.5 'linear_num_value_heads' keys) are modelled"
            )
    blocks = c.raw.get("block_configs")
    if isinstance(blocks, list) and blocks:
        raise c.fail(
            f"'block_configs' gives each of its {len(blocks)} layers its own attention and FFN "
            "shape (a NAS-pruned model such as Llama-Nemotron Super); layers of different "
            "shapes are not modelled"
        )
    ratios = c.raw.get("compress_ratios")
    if isinstance(ratios, list) and any(ratios):
        raise c.fail(
            f"'compress_ratios' compresses the KV cache of {sum(1 for r in ratios if r)} "
            "layers (DeepSeek-V4 compressed attention, with hyper-connections and an output "
            "LoRA); this attention is not modelled"
        )
    for key, what in (
        ("num_kv_shared_layers", "reuse earlier layers' KV cache (Gemma 4 E2B/E4B)"),
        ("hidden_size_per_layer_input", "add per-layer input embeddings (Gemma 4 E2B/E4B)"),
    ):
        n = c.raw.get(key)
        if isinstance(n, int) and n > 0:
            raise c.fail(f"'{key}' {n}: layers that {what} are not modelled")
    if c.raw.get("use_double_wide_mlp"):
        raise c.fail("'use_double_wide_mlp': layers with MLPs of two widths are not modelled")
    pattern = c.raw.get("hybrid_override_pattern")
    if isinstance(pattern, str):
        other = sorted(set(pattern) - set(_BLOCKS))
        if other:
            raise c.fail(
                f"'hybrid_override_pattern' has blocks {', '.join(repr(b) for b in other)}; "
                "M (Mamba-2), * (attention), - (MLP) and E (MoE) are modelled"
            )
        if "-" in pattern and "E" in pattern:
            raise c.fail(
                "'hybrid_override_pattern' mixes dense MLP (-) and MoE (E) blocks; one FFN "
                "kind per model is modelled"
            )


_STATE_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def _gated_deltanet(c: _Config) -> bool:
    """Whether the config describes Qwen3-Next / Qwen3.5 Gated DeltaNet layers."""
    return c.raw.get("linear_num_value_heads") is not None


def _linear_attention(c: _Config, n_layers: int) -> dict[str, Any] | None:
    """Gated DeltaNet layers (Qwen3-Next, Qwen3.5): every ``full_attention_interval``-th layer
    full attention, the others linear; an explicit ``layer_types`` must follow that pattern.
    The state's format is ``mamba_ssm_dtype`` where given (Qwen3.5: float32), else the model's
    16-bit format (vLLM's default)."""
    if not _gated_deltanet(c):
        return None
    layer_types = c.raw.get("layer_types")
    if isinstance(layer_types, list) and "full_attention" in layer_types:
        every = layer_types.index("full_attention") + 1  # the pattern is checked below
    else:  # Hugging Face's Qwen3NextConfig default interval is 4
        every = c.req("full_attention_interval", default=4)
    if isinstance(layer_types, list):
        expected = [
            "full_attention" if (i + 1) % every == 0 else "linear_attention"
            for i in range(n_layers)
        ]
        if [str(t) for t in layer_types] != expected:
            raise c.fail(
                f"'layer_types' does not follow 'full_attention_interval' {every} (layer i "
                "full attention when (i + 1) is a multiple of it); other layer orders are not "
                "modelled"
            )
    key, dt = c.first("mamba_ssm_dtype")
    if dt is not None and dt not in _STATE_DTYPES:
        raise c.fail(f"'{key}' = {dt!r} is not one of {', '.join(_STATE_DTYPES)}")
    return {
        "full_attention_every": every,
        "n_k_heads": c.req("linear_num_key_heads"),
        "n_v_heads": c.req("linear_num_value_heads"),
        "k_head_dim": c.req("linear_key_head_dim"),
        "v_head_dim": c.req("linear_value_head_dim"),
        "conv_kernel": c.req("linear_conv_kernel_dim", default=4),
        "state_dtype": _STATE_DTYPES.get(str(dt), "bf16"),
    }


_BLOCKS = "M*-E"
"""Nemotron-H ``hybrid_override_pattern`` blocks: Mamba-2 mixer, attention, MLP, MoE"""

_BLOCK_NAMES = {"mamba": "M", "attention": "*", "mlp": "-", "moe": "E"}
"""Nemotron-H ``layers_block_type`` entries (Nemotron 3 Ultra's config) as pattern blocks"""


def _block_list_as_pattern(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """A Nemotron-H config that lists its blocks (``layers_block_type``, with
    ``num_hidden_layers`` null) instead of giving ``hybrid_override_pattern``: the same
    config with the pattern string and the layer count filled in."""
    names = raw.get("layers_block_type")
    if raw.get("model_type") != "nemotron_h" or not isinstance(names, list):
        return raw
    if raw.get("hybrid_override_pattern") is not None:
        return raw
    unknown = sorted({str(n) for n in names} - set(_BLOCK_NAMES))
    if unknown:
        raise SiliconomicsError(
            f"{where}: 'layers_block_type' has {', '.join(repr(n) for n in unknown)}; "
            f"{', '.join(_BLOCK_NAMES)} are modelled"
        )
    pattern = "".join(_BLOCK_NAMES[str(n)] for n in names)
    out = dict(raw, hybrid_override_pattern=pattern)
    if out.get("num_hidden_layers") is None:
        out["num_hidden_layers"] = len(names)
    return out


def _blocks(c: _Config) -> tuple[int, int, int] | None:
    """(mixer layers, Mamba-2 layers, FFN layers) of a Nemotron-H block pattern, or None.
    Each block is a norm, one sub-layer and a residual add; a mixer (M or *) and the FFN
    block after it are priced as one layer, and mixers without an FFN as a mixer alone
    (``ffn_layers``)."""
    pattern = c.raw.get("hybrid_override_pattern")
    if not isinstance(pattern, str):
        return None
    mixers = pattern.count("M") + pattern.count("*")
    ffns = pattern.count("-") + pattern.count("E")
    if ffns > mixers:
        raise c.fail(
            f"'hybrid_override_pattern' has {ffns} FFN blocks but {mixers} mixers; more FFN "
            "blocks than mixers are not modelled"
        )
    if "*" not in pattern:
        raise c.fail("'hybrid_override_pattern' has no attention block (*); not modelled")
    return mixers, pattern.count("M"), ffns


def _mamba2(c: _Config, n_mamba: int) -> dict[str, Any]:
    """Mamba-2 layers as a ``linear_attention`` table (groups as key heads, the state size as
    the key width, heads of ``mamba_head_dim`` as value heads)."""
    key, dt = c.first("mamba_ssm_cache_dtype")
    if dt is not None and dt not in _STATE_DTYPES:
        raise c.fail(f"'{key}' = {dt!r} is not one of {', '.join(_STATE_DTYPES)}")
    return {
        "kind": "mamba2",
        "n_linear": n_mamba,
        "n_k_heads": c.req("n_groups"),
        "n_v_heads": c.req("mamba_num_heads"),
        "k_head_dim": c.req("ssm_state_size"),
        "v_head_dim": c.req("mamba_head_dim"),
        "conv_kernel": c.req("conv_kernel", default=4),
        "chunk": c.req("chunk_size", default=128),
        "state_dtype": _STATE_DTYPES.get(str(dt), "bf16"),
    }


def _global_attention(c: _Config, head_dim: int, n_kv: int) -> dict[str, Any] | None:
    """Gemma 4's full-attention layers of their own shape: ``global_head_dim`` wide and, with
    ``attention_k_eq_v`` (values = keys, no v_proj), ``num_global_key_value_heads`` KV heads
    (vLLM's ``Gemma4Attention``); None when they match the windowed layers."""
    g_dim = c.opt_int("global_head_dim") or head_dim
    k_eq_v = bool(c.raw.get("attention_k_eq_v"))
    g_kv = (c.opt_int("num_global_key_value_heads") or n_kv) if k_eq_v else n_kv
    if (g_dim, g_kv, k_eq_v) == (head_dim, n_kv, False):
        return None
    return {"head_dim": g_dim, "n_kv_heads": g_kv, "k_eq_v": k_eq_v}


def _mtp_layers(c: _Config) -> int:
    """Multi-token-prediction layers: DeepSeek/GLM ``num_nextn_predict_layers``; MiniMax-M2
    ``num_mtp_modules`` x ``mtp_transformer_layers`` when ``use_mtp``."""
    n = c.req("num_nextn_predict_layers", "mtp_num_hidden_layers", default=0, minimum=0)
    if n or not c.raw.get("use_mtp"):
        return n
    modules = c.req("num_mtp_modules", default=0, minimum=0)
    return modules * c.req("mtp_transformer_layers", default=1)


def _sliding(c: _Config) -> tuple[int | None, int]:
    """(window, every n-th layer full attention; 0 = all layers windowed)."""
    layer_types = c.raw.get("layer_types")
    if isinstance(layer_types, list):
        n_window = sum(t == "sliding_attention" for t in layer_types)
        if n_window == 0:
            return None, 0
        n_full = len(layer_types) - n_window
        return c.req("sliding_window"), round(len(layer_types) / n_full) if n_full else 0
    chunk = c.opt_int("attention_chunk_size")
    if chunk:
        # Llama 4 iRoPE: chunked local attention, every no_rope_layer_interval-th layer global.
        # Chunked attention is costed as a window of the chunk size (an upper bound: a query
        # sees on average half a chunk).
        return chunk, c.req("no_rope_layer_interval", default=4)
    window = c.opt_int("sliding_window")
    if not window or c.raw.get("use_sliding_window") is False:
        return None, 0
    if c.raw.get("model_type") == "gemma2":
        return window, 2  # gemma2 alternates local/global without a pattern key
    return window, c.req("sliding_window_pattern", default=0, minimum=0)


def _position(raw: dict[str, Any], family: str, head_dim: int) -> str:
    scaling = raw.get("rope_scaling")
    kind = scaling.get("rope_type", scaling.get("type")) if isinstance(scaling, dict) else None
    partial = raw.get("partial_rotary_factor", raw.get("rotary_pct", 1.0))
    rotary_dim = raw.get("rotary_dim")
    if family in _LEARNED_POSITIONS:
        return "learned"
    if isinstance(rotary_dim, int) and 0 < rotary_dim < head_dim:
        return "rope-partial"
    if isinstance(partial, float) and partial < 1:
        return "rope-partial"
    return "rope-yarn" if kind == "yarn" else "rope"


def _weight_dtype(c: _Config) -> str:
    q = c.raw.get("quantization_config")
    if isinstance(q, dict):
        method = str(q.get("quant_method", "")).lower()
        if method in _QUANT_DTYPES:
            return _QUANT_DTYPES[method]
        if method in ("gptq", "awq") and q.get("bits") in (4, 8):
            return f"int{q['bits']}"
    key, dt = c.first("torch_dtype", "dtype")
    if dt is None:
        return "bf16"
    if dt not in _TORCH_DTYPES:
        raise c.fail(f"'{key}' = {dt!r} is not one of {', '.join(_TORCH_DTYPES)}")
    return _TORCH_DTYPES[dt]


def load_hf_config(path: Path) -> ModelSpec:
    """Map a Hugging Face ``config.json`` (a file, or a folder holding one) to a ModelSpec."""
    path = Path(path)
    file, raw = _read(path)
    raw = _block_list_as_pattern(raw, str(file))
    c = _Config(raw, str(file))
    family = c.opt_str("model_type") or "unknown"
    gated = family not in _PLAIN_MLP and family != "nemotron_h"
    _only_attention(c)

    d = c.req("hidden_size", "n_embd", "d_model")
    n_layers = c.req("num_hidden_layers", "n_layer", "num_layers")
    blocks = _blocks(c)
    ffn_layers = None
    linear = _linear_attention(c, n_layers)
    if blocks is not None:  # Nemotron-H: layers = mixers, some without an FFN block
        n_layers, n_mamba, ffn_layers = blocks
        linear = _mamba2(c, n_mamba) if n_mamba else None
    n_heads = c.req("num_attention_heads", "n_head", "num_heads")
    n_kv = c.req(
        "num_key_value_heads", "num_kv_heads", default=1 if raw.get("multi_query") else n_heads
    )
    kv_lora = c.opt_int("kv_lora_rank")
    mla = None
    if kv_lora:
        rope = c.req("qk_rope_head_dim", minimum=0)
        head_dim = c.req("qk_nope_head_dim") + rope
        mla = {
            "q_lora_rank": c.opt_int("q_lora_rank"),
            "kv_lora_rank": kv_lora,
            "qk_rope_head_dim": rope,
            "v_head_dim": c.req("v_head_dim"),
        }
    else:
        if d % n_heads and raw.get("head_dim") is None:
            raise c.fail(
                f"missing 'head_dim' (hidden size {d} is not a multiple of {n_heads} heads)"
            )
        head_dim = c.req("head_dim", "attention_head_dim", default=d // n_heads)
    # Llama 4: intermediate_size_mlp is the dense layers' FFN, intermediate_size the experts'.
    d_ff = c.req("intermediate_size_mlp", "intermediate_size", "n_inner", "ffn_dim", default=4 * d)

    moe = _moe(c, family, d_ff)
    dsa = None
    topk = c.opt_int("index_topk")
    if topk and mla:  # DeepSeek Sparse Attention (DeepSeek-V3.2, GLM-5)
        dsa = {
            "index_topk": topk,
            "index_n_heads": c.req("index_n_heads"),
            "index_head_dim": c.req("index_head_dim"),
        }

    window, every = _sliding(c)
    global_attention = _global_attention(c, head_dim, n_kv)
    if global_attention is not None and not (window and every):
        raise c.fail(
            "'global_head_dim' / 'attention_k_eq_v' shape the full-attention layers between "
            "sliding-window ones, but the config has no sliding-window layer pattern"
        )

    spec: dict[str, Any] = {
        "id": _model_id(path, file, c),
        "family": family,
        "n_layers": n_layers,
        "d_model": d,
        "n_heads": n_heads,
        "n_kv_heads": n_kv,
        "head_dim": head_dim,
        "d_ff": d_ff,
        "vocab_size": c.req("vocab_size"),
        "max_position": c.opt_int(
            "max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"
        ),
        "tied_embeddings": bool(raw.get("tie_word_embeddings", family in _TIED_BY_DEFAULT)),
        "norm": "rmsnorm" if gated or family == "nemotron_h" else "layernorm",
        "activation": _activation(c, gated),
        "attention": "mla" if mla else "mha" if n_kv == n_heads else "mqa" if n_kv == 1 else "gqa",
        "position": _position(raw, family, head_dim),
        "parallel_attn_mlp": family in ("gptj", "phi")
        or bool(raw.get("use_parallel_residual", family == "gpt_neox") or raw.get("parallel_attn")),
        "sliding_window": window,
        "sliding_window_every": every,
        "qkv_bias": bool(
            raw.get("attention_bias", raw.get("qkv_bias", family in _QKV_BIAS_BY_DEFAULT))
        ),
        "activation_clamp": raw.get("swiglu_limit"),
        # Qwen3-Next gates every full-attention output (no config key); Qwen3.5 says so
        "attn_output_gate": bool(raw.get("attn_output_gate", family == "qwen3_next")),
        "linear_attention": linear,
        "global_attention": global_attention,
        "ffn_layers": ffn_layers,
        "moe": moe,
        "mla": mla,
        "dsa": dsa,
        "n_mtp_layers": _mtp_layers(c),
        "default_weight_dtype": _weight_dtype(c),
        "source": f"Hugging Face config.json at {file}",
    }
    return validate_as(ModelSpec, spec, where=str(file))

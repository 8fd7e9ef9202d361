"""Typed schemas of the packaged data files (chips, systems, models, efficiency profiles).

Each schema is written once, here. Data files are TOML; quantities may be written with units
(``"80 GiB"``, ``"3.35 TB/s"``) and are converted to SI at load. Every measured or published
number is a :class:`Sourced` value that keeps where it came from and how sure we are.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..units import DTYPES, Dimension, parse_quantity

Confidence = Literal["vendor", "derived", "inferred", "measured", "fitted", "estimate"]
"""How sure we are of a number: ``vendor`` (published spec), ``derived`` (arithmetic on vendor
numbers), ``inferred`` (reasoned assumption), ``measured`` (our or a public measurement),
``fitted`` (calibrated on a named data set), ``estimate`` (third-party estimate)."""

Topology = Literal["switch", "ring", "torus2d", "torus3d", "mesh", "pcie", "none"]
"""Scale-up topology: ``switch`` (NVSwitch: any-to-any at full link rate), ``ring`` (1D ring),
``torus2d``/``torus3d`` (TPU ICI, NeuronLink), ``mesh`` (full point-to-point mesh: each chip has
a direct link to every other chip, e.g. MI300X Infinity Fabric, Gaudi RoCE), ``pcie`` (through
the host PCIe switch), ``none`` (single chip)."""

ComputeDtype = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Sourced(_Frozen):
    """A number with provenance. ``value`` is in SI units after load."""

    value: float = Field(description="the number, in SI units (converted at load)")
    conf: Confidence = Field(description="how sure we are of it")
    src: str = Field(description="key into the file's [sources] table, or a URL")
    note: str = Field(default="", description="caveat or derivation")


def _sourced(dim: Dimension) -> Any:
    """Validator factory: accept ``{value="80 GiB", conf=..., src=...}`` and convert units."""

    def convert(v: Any, info: Any) -> Any:
        if isinstance(v, dict) and "value" in v:
            v = dict(v)
            v["value"] = parse_quantity(v["value"], dim, what=str(info.field_name))
            if not math.isfinite(v["value"]) or v["value"] < 0:
                raise ValueError(
                    f"{info.field_name}: {v['value']:g} is not a finite non-negative {dim}"
                )
        return v

    return convert


def sourced_field(dim: Dimension, description: str) -> Any:
    return Field(default=None, description=description, json_schema_extra={"dimension": dim})


class ChipCompute(_Frozen):
    """Peak dense (no sparsity) matrix throughput per chip, per input dtype, in FLOP/s (OP/s
    for integers). A dtype listed in ``unsupported`` is absent in hardware; a dtype neither
    given nor unsupported is unknown."""

    fp32: Sourced | None = sourced_field("flops_per_s", "FP32 (GPU: CUDA-core/vector) peak")
    tf32: Sourced | None = sourced_field("flops_per_s", "TF32 tensor peak")
    bf16: Sourced | None = sourced_field("flops_per_s", "BF16 matrix peak")
    fp16: Sourced | None = sourced_field("flops_per_s", "FP16 matrix peak (= BF16 if omitted)")
    fp8: Sourced | None = sourced_field("flops_per_s", "FP8 matrix peak")
    int8: Sourced | None = sourced_field("flops_per_s", "INT8 matrix peak (OP/s)")
    fp4: Sourced | None = sourced_field("flops_per_s", "FP4 matrix peak")
    vector_bf16: Sourced | None = sourced_field(
        "flops_per_s", "non-matrix (vector/SIMD) BF16 peak, for element-wise ops"
    )
    unsupported: tuple[ComputeDtype, ...] = Field(
        default=(), description="dtypes the matrix units lack in hardware ('n/a' in the sheet)"
    )

    _conv = field_validator(
        "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4", "vector_bf16", mode="before"
    )(_sourced("flops_per_s"))


class ChipMemory(_Frozen):
    """Device memory and on-chip SRAM."""

    kind: str = Field(description="memory technology, e.g. HBM3, HBM3e, GDDR6, SRAM")
    capacity_bytes: Sourced | None = sourced_field("bytes", "device memory capacity")
    bytes_per_s: Sourced | None = sourced_field("bytes_per_s", "peak device memory bandwidth")
    sram_bytes: Sourced | None = sourced_field(
        "bytes", "vendor-named main on-chip SRAM (not comparable across vendors)"
    )
    host_bytes: Sourced | None = sourced_field(
        "bytes",
        "host (CPU) memory per chip that training may offload activations to: the chip's share "
        "of its CPU's memory on a coherent CPU-GPU superchip (Grace: LPDDR5X); empty where the "
        "host link or share is not published (activation offload is then not offered)",
    )
    host_link_bytes_per_s: Sourced | None = sourced_field(
        "bytes_per_s",
        "chip-to-host bandwidth per direction for activation offload (NVLink-C2C: 450 GB/s "
        "each way of its 900 GB/s)",
    )

    _conv_b = field_validator("capacity_bytes", "sram_bytes", "host_bytes", mode="before")(
        _sourced("bytes")
    )
    _conv_bw = field_validator("bytes_per_s", "host_link_bytes_per_s", mode="before")(
        _sourced("bytes_per_s")
    )


class ChipInterconnect(_Frozen):
    """Scale-up (inside the fast domain) and scale-out (between domains) links."""

    scale_up_name: str = Field(default="", description="e.g. 'NVLink 4 via NVSwitch'")
    scale_up_bytes_per_s: Sourced | None = sourced_field(
        "bytes_per_s", "aggregate scale-up bandwidth per chip, both directions summed"
    )
    scale_up_domain: int = Field(default=1, ge=1, description="chips in one scale-up domain")
    topology: Topology = Field(default="none", description="scale-up topology")
    links: int | None = Field(
        default=None, ge=1, description="scale-up links per chip (mesh/torus bandwidth split)"
    )
    scale_out_bytes_per_s: Sourced | None = sourced_field(
        "bytes_per_s", "scale-out (NIC/DCN) bandwidth per chip, one direction"
    )
    switch_reduction: bool = Field(
        default=False,
        description="the scale-up switch reduces in-network (NVLink SHARP / NVLS multimem, "
        "NVSwitch gen 3 and later): enables the 'nvls' all-reduce",
    )

    _conv = field_validator("scale_up_bytes_per_s", "scale_out_bytes_per_s", mode="before")(
        _sourced("bytes_per_s")
    )


class ChipMatrix(_Frozen):
    """Geometry of the matrix engines that decides padding and wave quantisation.

    ``arch = "tiles"`` (GPU): a GEMM is cut into ``tile_m x tile_n`` output tiles spread over
    ``units`` streaming multiprocessors in waves. ``arch = "systolic"`` (TPU, Trainium, Gaudi
    MME): the contraction and output-column dims are padded to the array's ``rows x cols``."""

    arch: Literal["tiles", "systolic"] = Field(description="GPU tiles or systolic array")
    units: int = Field(ge=1, description="SMs / CUs / NeuronCores / TensorCores / MMEs per chip")
    tile_m: int = Field(default=128, ge=1, description="output tile rows (tokens) per unit")
    tile_n: int = Field(default=128, ge=1, description="output tile cols per unit")
    rows: int = Field(default=128, ge=1, description="systolic array rows (contraction dim)")
    cols: int = Field(default=128, ge=1, description="systolic array cols (output dim)")
    clock_hz: Sourced | None = sourced_field("hertz", "matrix-engine clock")
    note: str = Field(default="", description="where the geometry comes from")

    _conv = field_validator("clock_hz", mode="before")(_sourced("hertz"))


class TdpEstimate(_Frozen):
    """An unpublished TDP estimated by the catalog from its peers (:mod:`.power`)."""

    tdp_w: float = Field(gt=0, description="estimated TDP, watts")
    basis: str = Field(description="how it was estimated, in words")


class ChipPower(_Frozen):
    """Board/package power."""

    tdp_w: Sourced | None = sourced_field("watts", "max TDP/TBP per chip; empty if unpublished")
    idle_fraction: float = Field(
        default=0.3, ge=0, le=1, description="idle power as a fraction of TDP (power model)"
    )
    tdp_estimate: TdpEstimate | None = Field(
        default=None,
        exclude=True,
        description="set when the catalog is built (never in a data file): the estimate of an "
        "unpublished TDP from the catalog's other chips",
    )

    _conv = field_validator("tdp_w", mode="before")(_sourced("watts"))


class ChipSpec(_Frozen):
    """One accelerator (chip/package). Ids are those of shared/reference/accelerators.csv."""

    id: str = Field(description="exact catalog id, e.g. 'h100-sxm'")
    name: str = Field(description="marketing name")
    vendor: str = Field(description="NVIDIA, AMD, AWS, Google, Intel, Microsoft, ...")
    kind: Literal["gpu", "asic"] = Field(description="GPU or AI ASIC")
    family: str = Field(description="efficiency-profile family id (catalog/data/efficiency)")
    year: int | None = Field(default=None, description="announcement/launch year")
    process_nm: float | None = Field(default=None, description="process node, nm")
    compute: ChipCompute
    memory: ChipMemory
    interconnect: ChipInterconnect
    matrix: ChipMatrix
    power: ChipPower
    sources: dict[str, str] = Field(default_factory=dict, description="source key -> URL/ref")
    notes: str = Field(default="", description="caveats")

    @model_validator(mode="after")
    def _check_sources(self) -> ChipSpec:
        for section in (self.compute, self.memory, self.interconnect, self.matrix, self.power):
            for name in type(section).model_fields:
                v = getattr(section, name)
                if isinstance(v, Sourced) and not (v.src in self.sources or "://" in v.src):
                    raise ValueError(f"{self.id}: {name}.src '{v.src}' is not in [sources]")
        return self

    def peak_flops(self, dtype: str) -> float | None:
        """Published dense matrix peak for ``dtype`` in FLOP/s, ``None`` if unknown (fp16
        falls back to bf16, which every sheet gives at the same rate)."""
        c = self.compute
        v = getattr(c, dtype, None) if dtype in DTYPES else None
        if v is None and dtype == "fp16":
            v = c.bf16
        return v.value if isinstance(v, Sourced) else None

    def supports(self, dtype: str) -> bool:
        return dtype not in self.compute.unsupported


CloudMode = Literal["on-demand", "reserved-1y", "reserved-3y", "spot", "capacity-block"]
"""The one list of rental modes: ``on-demand``, ``reserved-1y``/``reserved-3y`` (1- or 3-year
commitments, savings plans or committed-use discounts), ``spot`` (preemptible),
``capacity-block`` (capacity reserved ahead for days or weeks, e.g. EC2 Capacity Blocks).
``owned`` (the TCO model) is added in :data:`PricingMode`."""

PricingMode = Literal[CloudMode, "owned"]
"""Every pricing mode (``--mode``): the rental modes, then ``owned`` (the TCO model)."""


def _check_date(v: str, info: Any = None) -> str:
    import re

    if not re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", v):
        raise ValueError(f"as_of '{v}': expected an ISO date YYYY-MM-DD (or YYYY-MM)")
    return v


class Price(_Frozen):
    """A dated price of a system (instance, slice, server)."""

    usd_per_hour: float = Field(gt=0, description="USD per hour for the whole system")
    mode: CloudMode = "on-demand"
    region: str = Field(description="cloud region")
    as_of: str = Field(description="date or snapshot the price was read (ISO date or note)")
    conf: Confidence = "vendor"
    src: str = Field(description="URL or source key")
    note: str = ""


class SystemSpec(_Frozen):
    """A purchasable/rentable unit: a cloud instance, TPU slice or server."""

    id: str = Field(description="e.g. 'p5.48xlarge', 'tpu-v6e-8'")
    chip: str = Field(description="chip id")
    chips: int = Field(ge=1, description="chips in the system")
    provider: str = Field(description="aws, gcp, azure, ... or 'owned'")
    host: str = Field(default="", description="host CPU / NIC summary")
    scale_up_domain: int | None = Field(
        default=None, ge=1, description="chips in one scale-up domain here (default: chip's)"
    )
    prices: tuple[Price, ...] = Field(default=(), description="dated prices")
    notes: str = ""


class MoESpec(_Frozen):
    """Mixture-of-experts FFN (absent for dense models)."""

    n_experts: int = Field(ge=1, description="routed experts (E)")
    experts_per_token: int = Field(ge=1, description="top-k routed experts per token")
    moe_d_ff: int = Field(ge=1, description="per-expert FFN hidden size")
    n_shared_experts: int = Field(default=0, ge=0, description="always-active experts")
    n_dense_layers: int = Field(default=0, ge=0, description="leading dense (non-MoE) layers")
    moe_layer_step: int = Field(
        default=1,
        ge=1,
        description="after the leading dense layers, every n-th layer is MoE and the others "
        "dense: layer i (0-based) is MoE when (i + 1) % n == 0, as Hugging Face Llama 4's "
        "interleave_moe_layer_step (Maverick 2, Scout 1); 1 = every layer MoE",
    )
    latent_dim: int | None = Field(
        default=None,
        ge=1,
        description="LatentMoE (NVIDIA Nemotron 3 Super/Ultra, Hugging Face moe_latent_size): "
        "the routed experts run at this width; each token is projected d_model -> latent_dim "
        "before dispatch and back after combine (two projections replicated on every tensor-"
        "parallel rank); the router and the shared experts stay at d_model. None: experts at "
        "d_model",
    )


class DSASpec(_Frozen):
    """DeepSeek Sparse Attention (DeepSeek-V3.2, GLM-5): a lightning indexer scores every cached
    token for each query (``index_n_heads`` FP8 dot products of ``index_head_dim``, ReLU, a
    weighted sum over its heads), keeps the ``index_topk`` best, and the MLA attention reads
    only those. Its own key cache (one ``index_head_dim`` FP8 vector per token and layer, with
    a float32 scale) sits beside the MLA latents."""

    index_topk: int = Field(ge=1, description="cached tokens each query attends to (HF index_topk)")
    index_n_heads: int = Field(ge=1, description="indexer query heads (HF index_n_heads)")
    index_head_dim: int = Field(ge=1, description="indexer query/key dim (HF index_head_dim)")


class MLASpec(_Frozen):
    """Multi-head latent attention (DeepSeek-V2/V3): the KV cache holds one compressed latent
    of ``kv_lora_rank + qk_rope_head_dim`` values per token and layer."""

    q_lora_rank: int | None = Field(default=None, ge=1, description="query low-rank dim")
    kv_lora_rank: int = Field(ge=1, description="compressed KV latent dim")
    qk_rope_head_dim: int = Field(ge=0, description="decoupled RoPE key dim")
    v_head_dim: int = Field(ge=1, description="value head dim")


class GlobalAttentionSpec(_Frozen):
    """The full-attention layers of a sliding-window model when they have another shape than
    the windowed ones (Gemma 4: ``global_head_dim`` 512 against ``head_dim`` 256, and
    ``num_global_key_value_heads``). Every full-attention layer keeps the model's query-head
    count; its projections, attention and KV cache use these head width and KV heads."""

    head_dim: int = Field(ge=1, description="head width of the full-attention layers")
    n_kv_heads: int = Field(ge=1, description="KV heads of the full-attention layers")
    k_eq_v: bool = Field(
        default=False,
        description="the values are the keys (HF attention_k_eq_v: no v_proj in the "
        "full-attention layers); the cache still holds K and V, as vLLM's attention layer "
        "stores them",
    )


class LinearAttentionSpec(_Frozen):
    """Gated DeltaNet linear attention (Yang, Kautz and Hatamizadeh, "Gated Delta Networks",
    ICLR 2025), as Qwen3-Next and Qwen3.5 interleave it with full attention: layer i (0-based)
    is full (softmax, KV-cached) attention when ``(i + 1) % full_attention_every == 0`` and a
    Gated DeltaNet layer otherwise. A Gated DeltaNet layer keeps no KV cache: each sequence
    holds one ``k_head_dim x v_head_dim`` state per value head (in ``state_dtype``) and the
    last ``conv_kernel - 1`` inputs of its causal depthwise convolution over q, k and v."""

    kind: Literal["gated-deltanet", "mamba2"] = Field(
        default="gated-deltanet",
        description="gated-deltanet (Qwen3-Next, Qwen3.5) or mamba2 (Nemotron-H: the heads "
        "below read as n_k_heads = n_groups, n_v_heads = mamba_num_heads, k_head_dim = "
        "ssm_state_size, v_head_dim = mamba_head_dim)",
    )
    full_attention_every: int | None = Field(
        default=None,
        ge=1,
        description="every n-th layer is full attention (HF full_attention_interval); give "
        "this or n_linear",
    )
    n_linear: int | None = Field(
        default=None,
        ge=0,
        description="linear-attention layers, counted (a block pattern that is not periodic, "
        "e.g. Nemotron-H's hybrid_override_pattern); give this or full_attention_every",
    )
    chunk: int = Field(
        default=64,
        ge=1,
        description="tokens per chunk of the chunked prefill kernel (flash-linear-attention's "
        "64 for Gated DeltaNet; HF chunk_size for Mamba-2)",
    )
    n_k_heads: int = Field(ge=1, description="query/key heads (HF linear_num_key_heads)")
    n_v_heads: int = Field(ge=1, description="value heads (HF linear_num_value_heads)")
    k_head_dim: int = Field(ge=1, description="query/key head dim (HF linear_key_head_dim)")
    v_head_dim: int = Field(ge=1, description="value head dim (HF linear_value_head_dim)")
    conv_kernel: int = Field(
        default=4, ge=1, description="causal depthwise conv width (HF linear_conv_kernel_dim)"
    )
    state_dtype: Literal["fp32", "bf16", "fp16"] = Field(
        default="bf16",
        description="format of the recurrent state in the serving cache (HF mamba_ssm_dtype; "
        "vLLM's --mamba-ssm-cache-dtype)",
    )
    state_slots: int = Field(
        default=1,
        ge=1,
        description="state + conv caches held per sequence: 1, or 1 + K under speculative "
        "decoding with K drafts (vLLM keeps the state after each verified token in a slot of "
        "its own, to roll back to the last accepted one); set by the serving memory model, "
        "not by Hugging Face configs",
    )
    trailing_full_layers: int = Field(
        default=0,
        ge=0,
        description="full-attention layers after the interleaved pattern: the MTP layers a "
        "speculating server holds (inference/speculative.memory_model); 0 in model files",
    )

    @model_validator(mode="after")
    def _check(self) -> LinearAttentionSpec:
        if (self.full_attention_every is None) == (self.n_linear is None):
            raise ValueError("linear attention: give exactly one of full_attention_every, n_linear")
        if self.n_v_heads % self.n_k_heads:
            raise ValueError(
                f"linear attention: n_v_heads {self.n_v_heads} not a multiple of n_k_heads "
                f"{self.n_k_heads}"
            )
        return self


class ModelSpec(_Frozen):
    """Transformer architecture. Notation: L layers, D d_model, H heads, K kv heads,
    hd head_dim, F d_ff, V vocab, E experts."""

    id: str = Field(description="exact catalog id, e.g. 'llama-3.1-70b'")
    family: str = Field(description="model family")
    n_layers: int = Field(ge=1, description="L: transformer blocks")
    d_model: int = Field(ge=1, description="D: hidden size")
    n_heads: int = Field(ge=1, description="H: query heads")
    n_kv_heads: int = Field(ge=1, description="K: key/value heads")
    head_dim: int = Field(ge=1, description="hd: per-head q/k dim")
    d_ff: int = Field(ge=1, description="F: dense FFN hidden size (each gate/up for SwiGLU)")
    vocab_size: int = Field(ge=1, description="V: embedding rows")
    max_position: int | None = Field(default=None, description="max context of the model")
    tied_embeddings: bool = Field(default=False, description="LM head shares embeddings")
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    activation: Literal["swiglu", "geglu", "gelu", "relu", "relu2"] = "swiglu"
    attention: Literal["mha", "gqa", "mqa", "mla"] = "gqa"
    position: str = Field(default="rope", description="rope, rope-partial, learned, ...")
    parallel_attn_mlp: bool = Field(default=False, description="GPT-J style parallel block")
    sliding_window: int | None = Field(
        default=None,
        ge=1,
        description="window of sliding-window attention layers (None = no windowed layers)",
    )
    sliding_window_every: int = Field(
        default=0,
        ge=0,
        description="with a window: every n-th layer is full attention and "
        "the others windowed; 0 = every layer windowed",
    )
    qkv_bias: bool = False
    attn_output_gate: bool = Field(
        default=False,
        description="full-attention output gated by a sigmoid of a second query-sized "
        "projection (HF attn_output_gate; Qwen3-Next, Qwen3.5): q_proj is 2 H hd wide",
    )
    linear_attention: LinearAttentionSpec | None = Field(
        default=None,
        description="Gated DeltaNet or Mamba-2 layers between the full-attention ones (None: "
        "every layer full attention)",
    )
    ffn_layers: int | None = Field(
        default=None,
        ge=0,
        description="layers that carry an FFN (dense, or MoE in an MoE model); the others are "
        "a mixer (attention or linear attention) alone, as Nemotron-H's separate mixer and FFN "
        "blocks pair up; None: every layer",
    )
    activation_clamp: float | None = Field(
        default=None,
        gt=0,
        description="gated activation clamped to this limit before the GLU (HF "
        "'swiglu_limit'; gpt-oss 7.0): gate input clamped from above, linear input to +-limit",
    )
    global_attention: GlobalAttentionSpec | None = Field(
        default=None,
        description="the full-attention layers' own head width and KV heads when they differ "
        "from the windowed layers' (Gemma 4); needs sliding_window and sliding_window_every",
    )
    moe: MoESpec | None = None
    mla: MLASpec | None = None
    dsa: DSASpec | None = Field(
        default=None,
        description="DeepSeek Sparse Attention on the MLA layers (None: dense attention)",
    )
    n_mtp_layers: int = Field(
        default=0,
        ge=0,
        description="multi-token-prediction modules (DeepSeek-V3 num_nextn_predict_layers): "
        "each is one transformer layer of the last layer's kind plus a 2D->D projection and "
        "a pass through the shared LM head and loss; counted in training step time and memory, "
        "in inference only as the draft of speculative decoding (estimate --mtp), never in "
        "n_layers",
    )
    default_weight_dtype: ComputeDtype = Field(
        default="bf16", description="dtype of the released checkpoint"
    )
    source: str = Field(description="where the hyperparameters come from")
    notes: str = ""

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"{self.id}: n_heads {self.n_heads} not a multiple of n_kv_heads {self.n_kv_heads}"
            )
        if self.attention == "mla" and self.mla is None:
            raise ValueError(f"{self.id}: attention 'mla' needs an [mla] table")
        if self.ffn_layers is not None:
            if self.ffn_layers > self.n_layers:
                raise ValueError(
                    f"{self.id}: ffn_layers {self.ffn_layers} exceeds n_layers {self.n_layers}"
                )
            if self.moe is not None and (self.moe.n_dense_layers or self.moe.moe_layer_step != 1):
                raise ValueError(
                    f"{self.id}: with ffn_layers every FFN is MoE (n_dense_layers 0, "
                    "moe_layer_step 1)"
                )
        la = self.linear_attention
        if la is not None and la.n_linear is not None and la.n_linear > self.n_layers:
            raise ValueError(f"{self.id}: n_linear {la.n_linear} exceeds n_layers {self.n_layers}")
        if self.linear_attention is not None and (self.mla is not None or self.sliding_window):
            raise ValueError(
                f"{self.id}: linear-attention layers are modelled beside GQA/MHA full "
                "attention only (not with MLA or sliding windows)"
            )
        ga = self.global_attention
        if ga is not None:
            if not (self.sliding_window and self.sliding_window_every):
                raise ValueError(
                    f"{self.id}: a [global_attention] table needs sliding_window and "
                    "sliding_window_every (it shapes the full-attention layers between windowed "
                    "ones)"
                )
            if self.mla is not None or self.linear_attention is not None:
                raise ValueError(
                    f"{self.id}: [global_attention] is modelled with GQA/MHA attention only"
                )
            if self.n_heads % ga.n_kv_heads:
                raise ValueError(
                    f"{self.id}: n_heads {self.n_heads} not a multiple of the global layers' "
                    f"n_kv_heads {ga.n_kv_heads}"
                )
        if self.dsa is not None and self.mla is None:
            raise ValueError(
                f"{self.id}: a [dsa] table (DeepSeek Sparse Attention) needs attention 'mla' "
                "and an [mla] table; DSA is only defined on MLA layers"
            )
        return self

    @property
    def gated(self) -> bool:
        return self.activation in ("swiglu", "geglu")

    @property
    def n_linear_layers(self) -> int:
        """Gated DeltaNet layers: those not a multiple of ``full_attention_every`` (1-based)."""
        la = self.linear_attention
        if la is None:
            return 0
        if la.n_linear is not None:
            return la.n_linear
        assert la.full_attention_every is not None
        patterned = self.n_layers - la.trailing_full_layers
        return patterned - patterned // la.full_attention_every

    @property
    def n_attention_layers(self) -> int:
        """Softmax-attention layers (full or windowed): every layer but the linear ones."""
        return self.n_layers - self.n_linear_layers

    @property
    def blocks_per_layer(self) -> float:
        """Residual blocks (a norm, a sub-layer, a tensor-parallel all-reduce) per layer,
        averaged: 2 (mixer, FFN), 1 with a parallel attention + MLP block, (L + ffn_layers) / L
        when some layers are a mixer alone."""
        if self.ffn_layers is not None:
            return (self.n_layers + self.ffn_layers) / self.n_layers
        return 1.0 if self.parallel_attn_mlp else 2.0

    @property
    def expert_width(self) -> int:
        """Input/output width of the routed experts, of their permute/unpermute and of the
        expert-parallel all-to-all payload: ``moe.latent_dim`` (LatentMoE) or ``d_model``."""
        if self.moe is not None and self.moe.latent_dim is not None:
            return self.moe.latent_dim
        return self.d_model

    @property
    def n_dense_ffn_layers(self) -> int:
        """Layers with a dense FFN: those with an FFN (all, or ``ffn_layers``) but not MoE."""
        with_ffn = self.n_layers if self.ffn_layers is None else self.ffn_layers
        return with_ffn - self.n_moe_layers

    @property
    def n_moe_layers(self) -> int:
        """Layers whose FFN is a mixture of experts: after ``moe.n_dense_layers`` leading dense
        layers, layer i (0-based) is MoE when ``(i + 1) % moe.moe_layer_step == 0``; with
        ``ffn_layers``, every layer that has an FFN."""
        if self.moe is None:
            return 0
        if self.ffn_layers is not None:
            return self.ffn_layers
        step = self.moe.moe_layer_step
        return sum(1 for i in range(self.moe.n_dense_layers, self.n_layers) if (i + 1) % step == 0)


EffValue = Annotated[float, Field(gt=0)]


class EfficiencyProfile(_Frozen):
    """Fraction-of-peak factors and fixed overheads of one chip family and software stack.

    Each factor says where it came from in ``provenance`` (``spec-derived``,
    ``fitted on <data set>``, ``measured on <device>``)."""

    family: str = Field(description="family id referenced by chips")
    stack: str = Field(description="software stack these factors describe")
    gemm_efficiency: EffValue = Field(
        le=1, description="fraction of dense matrix peak reached by large, well-shaped GEMMs"
    )
    lowp_gemm_efficiency: EffValue | None = Field(
        default=None,
        le=1,
        description="fraction of the fp8/int8/fp4 matrix peak reached by "
        "large GEMMs in this stack (low-precision kernels are often power- or scale-limited); "
        "default: gemm_efficiency",
    )
    grouped_gemm_efficiency: EffValue | None = Field(
        default=None,
        le=1,
        description="fraction of a dense GEMM's roofline rate (compute and weight streaming) "
        "that the stack's grouped MoE expert GEMMs reach: the op-class factor of the fused "
        "MoE kernels (gather, per-expert scheduling, less-tuned tiles); default 1 (as fast "
        "as a dense GEMM of the same shape). Inference only; training keeps 1",
    )
    memory_efficiency: EffValue = Field(
        le=1, description="fraction of peak HBM bandwidth reached by large streaming reads"
    )
    fp4_weight_stream_efficiency: EffValue | None = Field(
        default=None,
        le=1,
        description="fraction of the memory_efficiency bandwidth that block-scaled 4-bit "
        "(NVFP4) GEMM and grouped-GEMM kernels reach while streaming their weights "
        "(memory-bound decode); default 1",
    )
    fp4_grouped_gemm_efficiency: EffValue | None = Field(
        default=None,
        le=1,
        description="fraction of the fp4 matrix peak reached by block-scaled 4-bit grouped "
        "GEMMs (MoE experts, quantise/scale-factor handling included) in inference; default: "
        "lowp_gemm_efficiency",
    )
    attention_efficiency: EffValue = Field(
        le=1, description="fraction of matrix peak reached by fused (flash) attention"
    )
    mla_decode_efficiency: EffValue | None = Field(
        default=None,
        le=1,
        description="fraction of the 16-bit matrix peak reached by absorbed multi-head latent "
        "attention in decode (FlashMLA, CUTLASS MLA, TensorRT-LLM's MLA kernels): its "
        "latent QK/PV matmuls (2 x heads x (2 x kv_lora_rank + rope) FLOPs per cached "
        "token) run at the 16-bit rate whatever the cache format, an FP8 cache being "
        "dequantised in the kernel; default: attention_efficiency (of the 16-bit peak)",
    )
    sparse_mla_decode_efficiency: EffValue | None = Field(
        default=None,
        le=1,
        description="fraction of the 16-bit matrix peak reached by token-level sparse MLA "
        "attention (DeepSeek Sparse Attention, MQA form over the selected tokens) in decode; "
        "default: mla_decode_efficiency",
    )
    sparse_mla_prefill_efficiency: EffValue | None = Field(
        default=None,
        le=1,
        description="the same for prompt chunks (sparse MLA prefill, also in MQA form); "
        "default: mla_decode_efficiency",
    )
    linear_decode_efficiency: EffValue | None = Field(
        default=None,
        le=1,
        description="fraction of peak HBM bandwidth the Gated DeltaNet recurrent decode kernel "
        "(fused_recurrent_gated_delta_rule) reaches while reading and writing the per-sequence "
        "states: a gather over per-request state slots, not a streaming read; default: "
        "memory_efficiency",
    )
    kernel_overhead_s: float = Field(
        ge=0, description="fixed time per kernel/op launch on the device, s"
    )
    step_overhead_s: float = Field(
        ge=0, description="fixed host-side time per forward step (scheduling, sampling), s"
    )
    collective_latency_s: float = Field(
        ge=0, description="fixed latency per collective step (alpha in alpha-beta), s"
    )
    collective_efficiency: EffValue = Field(
        le=1, description="fraction of link bandwidth reached by large collectives"
    )
    memory_reserve_fraction: float = Field(
        ge=0, lt=1, description="fraction of device memory unavailable (runtime, fragmentation)"
    )
    memory_reserve_of_free: bool = Field(
        default=False,
        description="the reserve is memory_reserve_fraction of the memory the weights leave free "
        "(TensorRT-LLM's free_gpu_memory_fraction), not of the capacity",
    )
    host_launch_s: float | None = Field(
        default=None,
        ge=0,
        description="host time to launch one kernel when the stack launches eagerly (no CUDA "
        "graph / compiled program): a step is then at least kernels x this; None = the step "
        "replays a captured graph and only step_overhead_s is paid on the host",
    )
    shape_bucket_min: int | None = Field(
        default=None,
        ge=1,
        description="static-shape stacks (AWS Neuron): the smallest automatic sequence "
        "bucket; prompts run padded to the next power of two from it and each decode step "
        "attends over the next power-of-two cache length, up to the compiled length "
        "(inference/buckets.py); None = dynamic shapes, no padding",
    )
    host_per_seq_s: float | None = Field(
        default=None,
        ge=0,
        description="host time per running sequence per scheduler step (request bookkeeping, "
        "scheduling, sampling and response handling in the serving loop), overlapped with the "
        "device by an overlap scheduler: a step then lasts at least sequences x this; None = "
        "not modelled",
    )
    collective_hop_latency_s: float | None = Field(
        default=None,
        ge=0,
        description="latency per ring/tree step on the scale-up fabric inside a library "
        "collective (NCCL/RCCL hwLat); None: no per-step term on switch/mesh fabrics, and "
        "collective_latency_s per step on rings and tori",
    )
    custom_allreduce_latency_s: float | None = Field(
        default=None,
        ge=0,
        description="per-call latency of the stack's in-graph one-shot all-reduce kernel "
        "(TensorRT-LLM / vLLM custom all-reduce, NCCL symmetric kernels); None: the stack "
        "all-reduces through the library only",
    )
    custom_allreduce_efficiency: EffValue | None = Field(
        default=None,
        le=1,
        description="fraction of link bandwidth the custom one-/two-shot kernels reach (they "
        "run on a few thread blocks); default collective_efficiency",
    )
    fused_allreduce_norm: bool = Field(
        default=False,
        description="the stack fuses residual add + RMSNorm into its custom all-reduce kernel "
        "(TensorRT-LLM AllReduceFusionOp.RESIDUAL_RMS_NORM)",
    )
    train_gemm_efficiency: EffValue | None = Field(
        default=None,
        le=1,
        description="training: fraction of the bf16/fp16 peak reached by the forward and "
        "backward GEMMs of this training stack; default gemm_efficiency",
    )
    train_lowp_gemm_efficiency: EffValue | None = Field(
        default=None,
        le=1,
        description="training: fraction of the fp8/int8 peak reached by training GEMMs "
        "(scaling/casting overheads included); default lowp_gemm_efficiency",
    )
    train_fp4_gemm_ratio: EffValue | None = Field(
        default=None,
        gt=0,
        le=1,
        description="training: fraction of its 8-bit counterpart's share of peak that a "
        "block-scaled 4-bit (NVFP4/MXFP4) training GEMM reaches (4-bit GEMM efficiency = "
        "train_lowp_gemm_efficiency x this); default 1",
    )
    train_comm_overlap: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="training: fraction of tensor-, context-, pipeline- and expert-parallel "
        "communication hidden behind computation in this stack; default 0 (serialised)",
    )
    train_host_op_s: float | None = Field(
        default=None,
        ge=0,
        description="training: host time of one eager op in this family's PyTorch training "
        "stack (bounds the per-expert loop of a dropless MoE layer, training/host.py); "
        "default training.host.EAGER_HOST_OP_S on eager (GPU) families, 0 on compiled ones",
    )
    chip_factors: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="chip id -> factors fitted on that chip's own rows (calibration's chip "
        "level, shrunk toward this family's values); applied to that chip only "
        "(Catalog.profile_of), under every stack except for the factors a stack fitted itself",
    )
    provenance: dict[str, str] = Field(
        description="factor name -> 'spec-derived' / 'fitted on ...' / 'measured on ...'"
    )
    notes: str = ""


class BookPrice(_Frozen):
    """One dated, sourced price of a rentable offering in a price book
    (``catalog/data/prices/<provider>.toml``)."""

    offering: str = Field(description="instance / slice / offer name as the provider sells it")
    system: str = Field(
        default="",
        description="catalog system id when the offering is one (topology comes from it)",
    )
    chip: str = Field(description="catalog chip id")
    chips: int = Field(ge=1, description="chips in one offering (the unit you rent)")
    region: str = Field(description="provider region, or 'any' where the price is global")
    mode: CloudMode = "on-demand"
    usd_per_hour: float = Field(gt=0, description="USD per hour for the whole offering")
    as_of: str = Field(description="ISO date the price was read or published (YYYY-MM-DD)")
    conf: Confidence = "vendor"
    src: str = Field(description="URL or repo@commit:path where the price was read")
    note: str = ""

    _date = field_validator("as_of")(_check_date)


class PriceBookFile(_Frozen):
    """One provider's dated price book. A newer entry for the same offering, region and mode
    supersedes an older one; the older stays in the file as history."""

    provider: str = Field(description="aws, gcp, azure, lambda, coreweave, ... or 'user'")
    as_of: str = Field(description="ISO date of the newest price in the book")
    notes: str = ""
    prices: tuple[BookPrice, ...] = ()

    _date = field_validator("as_of")(_check_date)


class SearchRealismRow(_Frozen):
    """One published training configuration: the search's fastest plan against its best
    published MFU (``scripts/search_realism.py``)."""

    id: str
    ratio: float = Field(gt=0, description="search MFU / best published MFU")
    best: str = Field(description="the row id of the best published run")
    search_plan: str
    published_plan: str


class SearchRealismFile(_Frozen):
    """``catalog/data/search_realism.toml``: how far the training search's best plans beat the
    best published runs of the same configurations (docs/TRAINING.md, "Search realism")."""

    measured: str
    source: str
    row: list[SearchRealismRow]

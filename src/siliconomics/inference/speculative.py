"""Speculative decoding with the model's multi-token-prediction (MTP) module.

DeepSeek-V3 (and R1, V3.1, V3.2, GLM-4.5+) ship one MTP module: one transformer layer of the
last layer's kind, a ``2D -> D`` projection of [token embedding; hidden state], and the shared
embedding and LM head (DeepSeek-V3 report §2.2). Serving engines reuse it ``K`` times per step
to draft ``K`` tokens ("MTP Eagle", TensorRT-LLM's default; tech blog 2), then verify them in
one pass of the main model. One decode step of ``B`` sequences is therefore

* a verification pass of ``K + 1`` tokens per sequence (the last accepted token and the
  drafts), through the decode attention kernels (causal over the new tokens; absorbed MLA),
  with ``K + 1`` LM-head positions per sequence;
* ``K`` passes of the MTP module over one token per sequence at the sequence's context;

and it emits, on average, ``accepted`` tokens per sequence (1 for the verified token plus the
accepted drafts; TensorRT-LLM's "acceptance rate", between 1 and ``K + 1``). The acceptance is
a property of the model, the draft and the text, not of the hardware, so it is an input: e.g.
DeepSeek-R1 on TensorRT-LLM's 1k/2k benchmark accepts 1.92 / 2.58 / 2.82 / 2.99 / 3.01 tokens
per step at K = 1..5 (tech blog 1). Time per output token is the step time over ``accepted``.

MiniMax-M2.5 ships three one-layer MTP modules instead (TensorRT-LLM's "MTP vanilla": module
``i`` drafts token ``i``); each draft is still one layer's pass, so a step is priced the same
way, and memory holds all of the model's MTP layers.

Not modelled: tree drafts (chains only, as TensorRT-LLM), a separate draft model (Eagle-3
heads), the draft tokens' transient KV entries, and relaxed acceptance (give its measured
acceptance instead)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from ..catalog.schema import ModelSpec
from ..errors import SiliconomicsError
from ..ops.device import Device
from ..parallel.plan import InferencePlan
from .forward import ForwardCost, forward_cost, projection_op

MAX_DRAFT_TOKENS = 16
"""most drafts per step accepted as input: published MTP runs use 1-5 (TensorRT-LLM tech blog 1
finds 3 best and 5 slower), and a chain's acceptance vanishes long before 16"""


@dataclass(frozen=True)
class Speculative:
    """``draft_tokens`` (K) drafted by the MTP module per step, ``accepted`` tokens emitted
    per step on average (1 <= accepted <= K + 1)."""

    draft_tokens: int
    accepted: float

    def __post_init__(self) -> None:
        k, a = self.draft_tokens, self.accepted
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_DRAFT_TOKENS:
            raise SiliconomicsError(
                f"--mtp: draft tokens per step must be an integer from 1 to {MAX_DRAFT_TOKENS}, "
                f"got {k!r}"
            )
        if not np.isfinite(a) or not 1.0 <= a <= k + 1:
            raise SiliconomicsError(
                f"--accepted: mean tokens emitted per step must lie in [1, {k + 1}] "
                f"(1 verified token + at most {k} accepted drafts), got {a!r}"
            )

    def describe(self) -> str:
        return (
            f"speculative decoding: MTP module drafts {self.draft_tokens} token(s) per step, "
            f"{self.accepted:g} tokens emitted per step (given); a step verifies "
            f"{self.draft_tokens + 1} tokens per sequence through the decode kernels and runs "
            f"the MTP module {self.draft_tokens} time(s) (one layer, its 2D->D projection and "
            "the shared LM head); time per output token = step / accepted"
        )


def check(model: ModelSpec, spec: Speculative) -> None:
    if model.n_mtp_layers < 1:
        raise SiliconomicsError(
            f"model '{model.id}' has no multi-token-prediction module (n_mtp_layers = 0): "
            "--mtp drafts with the model's own MTP layer (DeepSeek-V3/R1/V3.x, GLM-4.5+, MiniMax-M2.5); "
            "separate draft models are not modelled"
        )


def mtp_module(model: ModelSpec) -> ModelSpec:
    """The MTP module as a one-layer model of the last layer's kind (MoE where the model's
    last layer is), with the shared embedding and LM head."""
    moe = model.moe
    if moe is not None and model.n_moe_layers > 0:
        moe = moe.model_copy(update={"n_dense_layers": 0, "moe_layer_step": 1})
    else:
        moe = None
    upd: dict[str, object] = {
        "id": f"{model.id}-mtp",
        "n_layers": 1,
        "sliding_window": None,
        "sliding_window_every": 0,
        "global_attention": None,
        "linear_attention": None,  # the MTP layer is full attention (Qwen3-Next, Qwen3.5)
        "ffn_layers": None,
        "moe": moe,
        "n_mtp_layers": 0,
    }
    return model.model_copy(update=upd)


def memory_model(model: ModelSpec, spec: Speculative | None = None) -> ModelSpec:
    """The model with its MTP layers counted as extra layers: their weights and their KV cache
    (the 2D->D projection, 2 D^2 parameters, is left out). In a Gated DeltaNet hybrid the MTP
    layers are full attention, and with ``spec`` every sequence holds 1 + K state slots
    (vLLM's speculative state blocks: the state after each verified token, to roll back to
    the last accepted one)."""
    upd: dict[str, object] = {"n_layers": model.n_layers + model.n_mtp_layers}
    if model.ffn_layers is not None:  # each MTP layer has its FFN
        upd["ffn_layers"] = model.ffn_layers + model.n_mtp_layers
    la = model.linear_attention
    if la is not None:
        slots = 1 + spec.draft_tokens if spec is not None else la.state_slots
        extra = la.trailing_full_layers + model.n_mtp_layers
        upd["linear_attention"] = la.model_copy(
            update={"state_slots": slots, "trailing_full_layers": extra}
        )
    return model.model_copy(update=upd)


def step_cost(
    model: ModelSpec,
    dev: Device,
    plan: InferencePlan,
    batch: ArrayLike,
    ctx: ArrayLike,
    spec: Speculative,
) -> ForwardCost:
    """One speculative decode step of ``batch`` sequences at past context ``ctx``: the
    verification pass and the ``K`` draft passes (their ops prefixed ``mtp_``), one step
    overhead."""
    K = spec.draft_tokens
    B = np.asarray(batch, dtype=np.float64)
    c = np.asarray(ctx, dtype=np.float64)
    verify = forward_cost(model, dev, plan, B, K + 1.0, c, logits_tokens=B * (K + 1.0), verify=True)
    draft = forward_cost(mtp_module(model), dev, plan, B, 1.0, c + K)
    D = model.d_model
    proj = projection_op(model, dev, plan, B, "eh_proj", D, 2 * D)
    drafts = [replace(op, name=f"mtp_{op.name}").scaled(K) for op in (*draft.ops, proj)]
    return ForwardCost(
        ops=(*verify.ops, *drafts),
        step_overhead_s=verify.step_overhead_s,
        pipeline_s=verify.pipeline_s,
        host_launch_s=verify.host_launch_s,
        host_seq_s=verify.host_seq_s,
    )

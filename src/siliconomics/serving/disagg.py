"""Prefill/decode disaggregation (Splitwise, Patel et al., ISCA 2024; DistServe, Zhong et al.,
OSDI 2024): a prefill pool computes each prompt and its first token, ships the KV cache over
the network to a decode pool, which generates the rest. The pools may be different chips.

KV transfer: the prompt's unique KV bytes (``L * 2 * K * head_dim * kv_bytes`` per token, or
the MLA latent) over one link per prefill replica, first come first served, at
``bytes / bandwidth + latency``. The default bandwidth is the slower side's scale-out (NIC)
bandwidth per chip times the chips of one replica of that side: every chip of a replica sends
its own shard in parallel. The prompt's blocks are released on the prefill side when the
transfer starts (an optimistic simplification; transfers take milliseconds).
"""

from __future__ import annotations

from ..catalog.schema import ModelSpec
from ..ops.device import Device
from ..parallel.memory import kv_bytes_per_token_per_chip, state_bytes_per_seq_per_chip
from ..parallel.plan import InferencePlan
from .config import ServingConfig


def kv_bytes_per_token(model: ModelSpec, plan: InferencePlan) -> float:
    """Unique KV-cache bytes per token of the whole model (no TP replication of KV heads)."""
    return kv_bytes_per_token_per_chip(
        model, InferencePlan(kv_dtype=plan.kv_dtype, weight_dtype=plan.weight_dtype)
    )


def state_bytes_per_request(model: ModelSpec, plan: InferencePlan) -> float:
    """Fixed-size cache a prefilled request hands over besides its KV: the Gated DeltaNet
    layers' states (0 for models without them), for the whole model."""
    return state_bytes_per_seq_per_chip(
        model, InferencePlan(kv_dtype=plan.kv_dtype, weight_dtype=plan.weight_dtype)
    )


def default_link_bytes_per_s(cfg: ServingConfig, prefill: Device, decode: Device) -> float:
    assert cfg.decode_pool is not None
    p_side = prefill.scale_out_bytes_per_s_dir * cfg.pool.plan.chips_per_replica
    d_side = decode.scale_out_bytes_per_s_dir * cfg.decode_pool.plan.chips_per_replica
    return min(p_side, d_side)


class KvLinks:
    """One FIFO link per prefill replica."""

    def __init__(
        self, n: int, bytes_per_token: float, bw: float, latency: float, per_request: float = 0.0
    ) -> None:
        self.free_at = [0.0] * n
        self.per_token, self.bw, self.latency = bytes_per_token, bw, latency
        self.per_request = per_request  # linear-attention states: bytes whatever the length
        self.busy_s = 0.0
        self.bytes = 0.0

    def transfer(self, link: int, tokens: int, t: float) -> float:
        """Start a transfer of ``tokens`` tokens' KV at ``t``; returns its arrival time."""
        nbytes = tokens * self.per_token + self.per_request
        dur = nbytes / self.bw + self.latency
        start = max(t, self.free_at[link])
        self.free_at[link] = start + dur
        self.busy_s += dur
        self.bytes += nbytes
        return start + dur

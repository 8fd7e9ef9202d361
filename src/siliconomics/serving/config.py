"""What a serving simulation runs: pools of replicas, their engine limits, and latency targets.

A deployment is one pool of identical replicas (co-located prefill and decode), or two pools
(prefill/decode disaggregation, Splitwise/DistServe style), possibly on different chips.

Defaults and their sources:

* ``max_seqs = 256``: vLLM's default ``max_num_seqs`` (vLLM engine arguments).
* ``max_batched_tokens = 8192``: TensorRT-LLM's default ``max_num_tokens`` (TensorRT-LLM
  "Tuning max batch size and max num tokens" guide); vLLM's chunked-prefill budget is of the
  same order.
* ``block_size = 16``: vLLM's default KV-cache block (tokens per block, PagedAttention paper).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..catalog.schema import ChipSpec, ModelSpec
from ..errors import SiliconomicsError
from ..inference import speculative
from ..inference.speculative import Speculative
from ..ops.device import Device
from ..parallel.plan import InferencePlan


@dataclass(frozen=True, kw_only=True)
class PoolConfig:
    """Identical replicas of one model on one chip type, and the engine each runs."""

    device: Device
    """the chip and the efficiency profile of its stack"""
    plan: InferencePlan
    """layout of one replica; ``plan.replicas`` is the number of replicas in the pool"""
    scheduler: str = "chunked"
    """replica scheduler (see ``serving.schedulers.SCHEDULERS``)"""
    max_seqs: int | None = 256
    """admission limit: concurrent sequences per replica (None: KV-cache memory decides)"""
    max_batched_tokens: int = 8192
    """admission limit: tokens processed in one step (prefill chunk budget)"""
    block_size: int = 16
    """tokens per paged KV-cache block"""
    buckets: tuple[int, ...] = ()
    """static scheduler: compiled sequence-length buckets (empty: powers of two from 128)"""
    multi_step: int = 1
    """continuous scheduler: decode steps per scheduler call (vLLM V0 ``num_scheduler_steps``;
    waiting prompts are admitted only between rounds)"""
    adp_balance: tuple[int, int] | None = None
    """chunked scheduler with attention DP (``plan.dp`` > 1): TensorRT-LLM's attention-DP
    balancing ``(timeout_iters, batching_wait_iters)`` (``serving/schedulers/adp.py``); None:
    prompts start as soon as the budget allows"""
    graph_sizes: tuple[int, ...] = ()
    """batch sizes (sequences per attention rank) of captured CUDA graphs that generation-only
    steps are padded up to (TensorRT-LLM ``cuda_graph_config`` with ``enable_padding``; vLLM
    and SGLang capture sizes); empty: no padding (see ``serving/steptime.py``)"""
    spec: Speculative | None = None
    """speculative decoding with the model's MTP module (``K`` drafts, ``accepted`` tokens per
    step; :mod:`..inference.speculative`); None: one token per decode step"""

    @property
    def chip(self) -> ChipSpec:
        return self.device.chip

    @property
    def replicas(self) -> int:
        return self.plan.replicas

    @property
    def chips(self) -> int:
        return self.plan.chips


@dataclass(frozen=True, kw_only=True)
class ServingConfig:
    """A deployment: one pool, or a prefill pool plus a decode pool (disaggregated)."""

    model: ModelSpec
    pool: PoolConfig
    """all replicas (co-located), or the prefill pool when ``decode_pool`` is set"""
    decode_pool: PoolConfig | None = None
    """decode pool for prefill/decode disaggregation"""
    router: str = "least-tokens"
    """how requests are spread over replicas (see ``serving.router.ROUTERS``)"""
    kv_link_bytes_per_s: float | None = None
    """KV-transfer bandwidth per prefill replica (default: the slower pool's scale-out
    bandwidth per chip times the chips of one replica)"""
    kv_link_latency_s: float = 10e-6
    """fixed latency of one KV transfer (RDMA-class network, an estimate)"""
    price_overrides: dict[str, float] = field(default_factory=dict)
    """chip id -> USD per chip-hour; the simulator ignores it (it measures seconds, tokens and
    joules); the edge prices the result with it (economics.serving_cost)"""

    @property
    def disaggregated(self) -> bool:
        return self.decode_pool is not None

    @property
    def pools(self) -> tuple[PoolConfig, ...]:
        return (self.pool,) if self.decode_pool is None else (self.pool, self.decode_pool)

    @property
    def chips(self) -> int:
        return sum(p.chips for p in self.pools)

    def validate(self) -> None:
        for p in self.pools:
            for name in ("max_batched_tokens", "block_size"):
                v = getattr(p, name)
                if not isinstance(v, int) or v < 1:
                    raise SiliconomicsError(f"{name} must be a positive integer, got {v!r}")
            if p.block_size > MAX_BLOCK_TOKENS:
                raise SiliconomicsError(
                    f"block_size {p.block_size}: at most {MAX_BLOCK_TOKENS} tokens per KV block "
                    "(vLLM uses 16; larger blocks waste cache)"
                )
            if p.max_seqs is not None and p.max_seqs < 1:
                raise SiliconomicsError(f"max_seqs must be >= 1 or empty, got {p.max_seqs}")
            if not isinstance(p.multi_step, int) or p.multi_step < 1:
                raise SiliconomicsError(
                    f"multi_step must be a positive integer, got {p.multi_step!r}"
                )
            if p.adp_balance is not None and (
                p.scheduler != "chunked" or p.adp_balance[0] < 1 or p.adp_balance[1] < 0
            ):
                raise SiliconomicsError(
                    f"adp_balance {p.adp_balance}: needs scheduler 'chunked', timeout_iters >= 1 "
                    "and batching_wait_iters >= 0"
                )
            if any(g < 1 for g in p.graph_sizes):
                raise SiliconomicsError(
                    f"graph_sizes must be positive batch sizes: {p.graph_sizes}"
                )
            if any(b < 1 for b in p.buckets):
                raise SiliconomicsError(f"buckets must be positive token counts: {p.buckets}")
            if p.spec is not None:
                speculative.check(self.model, p.spec)
                if p.scheduler == "static":
                    raise SiliconomicsError(
                        "speculative decoding is simulated with the chunked and continuous "
                        "schedulers, not 'static' (static shapes)"
                    )
                if p.graph_sizes:
                    raise SiliconomicsError(
                        "speculative decoding with CUDA-graph padding is not modelled"
                    )
        if self.decode_pool is not None and self.pool.scheduler == "static":
            raise SiliconomicsError(
                "scheduler 'static' cannot run a disaggregated pool; use continuous or chunked"
            )


MAX_BLOCK_TOKENS = 4096
"""largest KV-cache block accepted (tokens); serving stacks use 16-256"""


@dataclass(frozen=True, kw_only=True)
class Slo:
    """Latency targets, each at ``percentile`` over requests (MLPerf Server: p99)."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    percentile: float = 99.0

    def __post_init__(self) -> None:
        for name in ("ttft_s", "tpot_s", "e2e_s"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise SiliconomicsError(f"SLO {name} must be > 0, got {v}")
        if not 0 < self.percentile <= 100:
            raise SiliconomicsError(f"SLO percentile must be in (0, 100], got {self.percentile}")

    @property
    def empty(self) -> bool:
        return self.ttft_s is None and self.tpot_s is None and self.e2e_s is None

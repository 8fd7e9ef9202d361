"""The plan spec: what to serve (and train), under which targets and limits.

A spec is a YAML or TOML file validated against :class:`PlanSpec` (pydantic, ``extra=forbid``:
an unknown or misspelt field is an error naming it). Quantities may carry units where a
duration is expected (``ttft: 2s``, ``tpot: 50ms``). Relative trace paths are resolved against
the spec file's folder. Reading the file, and the chip and model files it may name, is the
edge's job (:func:`siliconomics.resolve.plan_spec`); every fleet function stays pure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..catalog.parse import validate_as
from ..catalog.schema import PricingMode
from ..errors import SiliconomicsError
from ..inference.speculative import Speculative
from ..serving.config import Slo as ServingSlo
from ..serving.workload import Lengths as SampledLengths
from ..units import DTYPES, parse_duration
from .profile import Capacity, Profile


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Lengths(_Strict):
    """A token-length distribution (prompt or answer), as a spec writes it; it becomes the
    project's one length type (:meth:`to_lengths`), which samples it."""

    mean: float = Field(gt=0, description="mean length in tokens")
    dist: Literal["fixed", "lognormal", "uniform"] = Field(
        default="lognormal", description="shape: fixed (always the mean), lognormal, uniform"
    )
    sigma: float = Field(
        default=0.8, ge=0, description="lognormal: standard deviation of log(length)"
    )
    min: float = Field(default=1, ge=1, description="smallest length (clip)")
    max: float | None = Field(default=None, ge=1, description="largest length (clip)")

    def to_lengths(self) -> SampledLengths:
        """The project's one length distribution (:class:`siliconomics.serving.Lengths`),
        which samples it: fixed at the mean; uniform from ``min`` to ``max`` (default
        ``2 * mean - min``, so the mean holds); lognormal with this mean and sigma, clipped."""
        if self.dist == "fixed" or (self.dist == "lognormal" and self.sigma == 0):
            n = min(max(self.mean, self.min), self.max or math.inf)
            return SampledLengths(kind="fixed", params=(n,), min=self.min, rounding="nearest")
        if self.dist == "uniform":
            hi = self.max if self.max is not None else 2 * self.mean - self.min
            return SampledLengths(
                kind="uniform",
                params=(self.min, max(hi, self.min)),
                min=self.min,
                rounding="nearest",
            )
        cap = () if self.max is None else (self.max,)
        return SampledLengths(
            kind="lognormal",
            params=(self.mean, self.sigma, *cap),
            min=self.min,
            rounding="nearest",
        )


class Slo(_Strict):
    """Latency targets, met at the given percentile over all requests (p99: 99% of them), as
    a spec writes them (:meth:`to_slo`: the simulator's Slo)."""

    ttft: float | None = Field(default=None, description="time to first token, e.g. '2s'")
    tpot: float | None = Field(default=None, description="time per output token, e.g. '50ms'")
    percentile: float = Field(default=99, gt=0, lt=100, description="e.g. 50, 90, 99")

    def to_slo(self) -> ServingSlo:
        """The same targets as the simulator's :class:`siliconomics.serving.Slo` (seconds)."""
        return ServingSlo(ttft_s=self.ttft, tpot_s=self.tpot, percentile=self.percentile)

    @field_validator("ttft", "tpot", mode="before")
    @classmethod
    def _seconds(cls, v: object, info: object) -> object:
        if v is None or isinstance(v, bool):
            return v
        name = getattr(info, "field_name", "slo")
        return parse_duration(v, what=f"slo.{name}")  # type: ignore[arg-type]


class Mtp(_Strict):
    """Speculative decoding with the model's multi-token-prediction module, as a spec writes it
    (:meth:`to_speculative`: the estimate's :class:`siliconomics.inference.speculative.
    Speculative`, which checks the ranges)."""

    draft_tokens: int = Field(description="tokens the MTP module drafts per step (1-16)")
    accepted: float = Field(
        description="mean tokens emitted per step, 1 to draft_tokens + 1 (the draft's measured "
        "acceptance, e.g. 2.82 for DeepSeek-R1 at 3 drafts, TensorRT-LLM tech blog 1)"
    )

    @model_validator(mode="after")
    def _ranges(self) -> Mtp:
        try:
            self.to_speculative()
        except SiliconomicsError as e:
            raise ValueError(
                str(e).replace("--mtp", "draft_tokens").replace("--accepted", "accepted")
            ) from None
        return self

    def to_speculative(self) -> Speculative:
        return Speculative(draft_tokens=self.draft_tokens, accepted=self.accepted)


class Workload(_Strict):
    """One model's traffic and latency targets."""

    name: str = Field(default="", description="label (default: the model id)")
    model: str = Field(description="model id (see 'siliconomics models')")
    rate_rps: float | None = Field(
        default=None, gt=0, description="requests per second (default: the trace's own rate)"
    )
    input: Lengths | None = Field(default=None, description="prompt-length distribution")
    output: Lengths | None = Field(default=None, description="answer-length distribution")
    trace: str | None = Field(
        default=None,
        description="CSV with num_prefill_tokens,num_decode_tokens[,arrived_at] per request "
        "(instead of input/output)",
    )
    slo: Slo = Field(default_factory=Slo, description="latency targets")
    weights_dtype: str = Field(default="bf16", description="weight format")
    act_dtype: str = Field(default="bf16", description="activation (compute) format")
    kv_dtype: str = Field(default="bf16", description="KV-cache format")
    bucket_edges: tuple[float, ...] | None = Field(
        default=None, description="prompt-length bucket edges (default: quantiles)"
    )
    mtp: Mtp | None = Field(
        default=None,
        description="speculative decoding with the model's MTP module: {draft_tokens, "
        "accepted} (models with one: DeepSeek-V3/R1/V3.x, GLM-4.5+, MiniMax-M2.5)",
    )

    @field_validator("weights_dtype", "act_dtype", "kv_dtype")
    @classmethod
    def _dtype(cls, v: str) -> str:
        if v not in DTYPES:
            raise ValueError(f"'{v}' is not a dtype; allowed: {', '.join(DTYPES)}")
        return v

    @model_validator(mode="after")
    def _lengths(self) -> Workload:
        has_dist = self.input is not None and self.output is not None
        if self.trace is None and not has_dist:
            raise ValueError("give either 'trace' or both 'input' and 'output' lengths")
        if self.trace is not None and (self.input is not None or self.output is not None):
            raise ValueError("give either 'trace' or 'input'/'output', not both")
        if self.trace is None and self.rate_rps is None:
            raise ValueError("'rate_rps' is required without a trace")
        return self

    @property
    def label(self) -> str:
        return self.name or self.model


class TrainingJob(_Strict):
    """Train ``tokens`` tokens of ``model`` by a deadline, as cheaply as possible."""

    model: str = Field(description="model id")
    tokens: float = Field(gt=0, description="training tokens, e.g. 1e12")
    deadline_days: float = Field(gt=0, description="wall-clock deadline in days")
    seq_len: int = Field(default=4096, ge=1, description="sequence length")
    global_batch_seqs: int = Field(default=1024, ge=1, description="sequences per step")
    max_chips: int = Field(default=4096, ge=1, description="largest cluster to consider")


class Migration(_Strict):
    """The one-off cost of moving the code base to the planned fleet's chips (port-check's
    estimate or your own), set against the monthly saving over a baseline fleet."""

    weeks: str | None = Field(
        default=None, description="engineer-weeks LOW-HIGH, e.g. '6-10' (or give port_check)"
    )
    port_check: str | None = Field(
        default=None,
        description="a project (folder, wheel, sdist, requirements file; relative to the spec) "
        "that siliconomics port-check scans for the weeks",
    )
    port_target: str | None = Field(
        default=None, description="with port_check: the target stack (neuron, tpu, gaudi, rocm)"
    )
    eng_rate_usd_per_week: float | None = Field(
        default=None,
        gt=0,
        description="loaded cost of one engineer-week (default: docs/PORTING.md)",
    )
    baseline: str = Field(
        default="all-NVIDIA",
        description="the fleet you would keep without porting: an alternative's label "
        "(all-NVIDIA, all-<chip>, ...)",
    )
    horizon_months: float = Field(default=36.0, gt=0, description="planning horizon, months")

    @model_validator(mode="after")
    def _one_estimate(self) -> Migration:
        if (self.weeks is None) == (self.port_check is None):
            raise ValueError("give exactly one of 'weeks' and 'port_check'")
        return self


class PlanSpec(_Strict):
    """Everything the fleet planner needs."""

    name: str = Field(default="plan", description="title of the plan")
    migration: Migration | None = Field(
        default=None, description="migration cost and payback against a baseline fleet"
    )
    pricing: PricingMode = Field(default="on-demand", description="how chips are paid for")
    chips: tuple[str, ...] | None = Field(
        default=None, description="allowed chip ids (default: every chip with a price)"
    )
    vendors: tuple[str, ...] | None = Field(default=None, description="allowed vendors")
    availability: dict[str, int] = Field(
        default_factory=dict, description="most chips obtainable per chip id"
    )
    prices: dict[str, float] = Field(
        default_factory=dict, description="USD per chip-hour overrides per chip id"
    )
    instance_chips: dict[str, int] = Field(
        default_factory=dict,
        description="chips per rentable node for chips without a catalog system",
    )
    budget_usd_per_hour: float | None = Field(default=None, gt=0, description="cost cap, USD/h")
    power_cap_kw: float | None = Field(default=None, gt=0, description="power cap, kW")
    disaggregation: Literal["off", "auto", "only"] = Field(
        default="auto",
        description="prefill/decode on separate pools: off, auto (when cheaper), only",
    )
    kv_transfer_usd_per_gb: float = Field(
        default=0.0,
        ge=0,
        description="USD per GB of KV cache moved prefill -> decode (0 inside one data "
        "centre; your egress price across clouds)",
    )
    max_utilisation: float = Field(
        default=0.8, gt=0, le=1, description="busy fraction per replica (queueing headroom)"
    )
    buckets: int = Field(default=3, ge=1, le=8, description="prompt-length buckets per workload")
    seed: int = Field(default=0, description="seed for sampled lengths and the simulator")
    workloads: tuple[Workload, ...] = Field(default=(), description="serving workloads")
    training: TrainingJob | None = Field(default=None, description="a training job to plan")
    stack: str | None = Field(
        default=None,
        description="software stack for every chip it runs on (default: each chip's best "
        "published stack; see docs/CALIBRATION.md)",
    )
    profile: Profile | None = Field(
        default=None,
        description="traffic over the week and the months: plans committed + burst capacity "
        "(docs/PLANNING.md, 'Traffic that changes')",
    )
    capacity: Capacity | None = Field(
        default=None,
        description="with a profile: owned site, reservations, on-demand, spot, delays",
    )

    @model_validator(mode="after")
    def _something(self) -> PlanSpec:
        if not self.workloads and self.training is None:
            raise ValueError("give at least one of 'workloads' or 'training'")
        for name, table in (("availability", self.availability), ("prices", self.prices)):
            for k, v in table.items():
                if v <= 0:
                    raise ValueError(f"{name}.{k} must be > 0, got {v}")
        if self.capacity is not None and self.profile is None:
            raise ValueError("'capacity' needs a 'profile' (the traffic over time)")
        return self


def parse_spec(raw: object, *, where: str = "spec", base_dir: Path | None = None) -> PlanSpec:
    """Validate a parsed mapping; resolve trace paths against ``base_dir``."""
    spec = validate_as(PlanSpec, raw, where=where)
    if base_dir is None:
        return spec
    fixed = []
    for w in spec.workloads:
        if w.trace is not None and not Path(w.trace).is_absolute():
            w = w.model_copy(update={"trace": str((base_dir / w.trace).resolve())})
        fixed.append(w)
    prof = spec.profile
    if prof is not None and prof.trace is not None and not Path(prof.trace).is_absolute():
        prof = prof.model_copy(update={"trace": str((base_dir / prof.trace).resolve())})
    return spec.model_copy(update={"workloads": tuple(fixed), "profile": prof})

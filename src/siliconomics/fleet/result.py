"""What the planner returns: the chosen fleet, its alternatives and the cost-latency frontier."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Pool:
    """Replicas of one layout on one node type, in one role."""

    workload: str
    chip: str
    vendor: str
    system: str
    role: str
    """'both' (co-located), 'prefill' or 'decode'"""
    tp: int
    pp: int
    batch_limit: float
    replicas: int
    chips: int
    usd_per_chip_hour: float
    utilisation: float
    """busy fraction of the replicas at the planned traffic"""
    buckets: dict[str, float]
    """bucket label -> share of that bucket's requests this pool serves"""
    watts: float


@dataclass(frozen=True, kw_only=True)
class Latency:
    """Predicted latency percentiles of one workload in the chosen fleet."""

    workload: str
    ttft_p50_s: float
    ttft_p_s: float
    tpot_p50_s: float
    tpot_p_s: float
    percentile: float
    source: str
    """'simulation' or 'analytic (unloaded)'"""
    slo_ttft_s: float | None
    slo_tpot_s: float | None

    @property
    def meets_slo(self) -> bool:
        ok = self.slo_ttft_s is None or self.ttft_p_s <= self.slo_ttft_s * 1.0001
        return ok and (self.slo_tpot_s is None or self.tpot_p_s <= self.slo_tpot_s * 1.0001)


@dataclass(frozen=True, kw_only=True)
class Alternative:
    """A restricted fleet (one vendor, one chip type, co-located only) for comparison."""

    label: str
    usd_per_hour: float | None
    """None when infeasible"""
    ratio: float | None
    """cost / cost of the chosen fleet"""
    chips: dict[str, int]
    usd_by_chip: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    solver: str = ""
    """how the solve ended: 'optimal, gap 0.02%' or 'time limit reached, gap 3.1%'"""
    optimality_gap: float = 0.0

    @property
    def sentence(self) -> str:
        if self.usd_per_hour is None or self.ratio is None:
            return f"{self.label}: infeasible ({self.reason})"
        pct = (self.ratio - 1.0) * 100.0
        rel = f"{pct:.0f}% more" if pct >= 0.5 else ("the same" if pct > -0.5 else "less")
        return f"{self.label} costs {rel} (${self.usd_per_hour:,.2f}/h)"


@dataclass(frozen=True, kw_only=True)
class ParetoPoint:
    slo_scale: float
    """targets multiplied by this factor"""
    usd_per_hour: float
    tpot_s: float
    """worst predicted TPOT over workloads (at the SLO percentile)"""
    ttft_s: float
    chips: dict[str, int]
    solver: str = ""
    """how the solve ended (as :attr:`Alternative.solver`)"""
    optimality_gap: float = 0.0


@dataclass(frozen=True, kw_only=True)
class FleetResult:
    name: str
    pricing: str
    pools: tuple[Pool, ...]
    chips: dict[str, int]
    """chip id -> chips bought (whole nodes)"""
    nodes: dict[str, int]
    """node type -> count"""
    usd_by_chip: dict[str, float]
    """chip id -> USD per hour of its nodes"""
    usd_per_hour: float
    kv_transfer_usd_per_hour: float
    output_tokens_per_s: float
    input_tokens_per_s: float
    power_w: float
    latency: tuple[Latency, ...]
    alternatives: tuple[Alternative, ...]
    pareto: tuple[ParetoPoint, ...]
    excluded: dict[str, str]
    """chip id -> why it was not considered"""
    warnings: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    buckets: tuple[dict[str, float | str], ...] = field(default=())
    solver: str = ""
    """how the chosen fleet's solve ended: 'optimal, gap 0.02%' (HiGHS proved no fleet is
    cheaper by more than that) or 'time limit reached, gap 3.1%'"""
    optimality_gap: float = 0.0
    """that gap as a fraction"""

    @property
    def usd_per_million_output(self) -> float:
        return self.usd_per_hour / (self.output_tokens_per_s * 3600.0) * 1e6

    @property
    def usd_per_million_tokens(self) -> float:
        """Input and output tokens together."""
        tok = self.output_tokens_per_s + self.input_tokens_per_s
        return self.usd_per_hour / (tok * 3600.0) * 1e6

    @property
    def mixed(self) -> bool:
        return len(self.chips) > 1

    @property
    def disaggregated(self) -> bool:
        return any(p.role != "both" for p in self.pools)

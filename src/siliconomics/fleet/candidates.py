"""Replica configurations per (workload, chip) that meet the latency targets, per bucket.

For every parallel layout of :func:`siliconomics.search.compare.candidate_plans` one vectorised
call of :func:`estimate_max_throughput` (with the workload's speculative decoding, if any)
evaluates all buckets x the batch-limit ladder twice: at
the bucket's mean lengths (throughput and TPOT: the prefill work interleaved with decode steps
depends on the mean prompt) and at its SLO-percentile prompt (TTFT). The grid is computed once
and filtered for any latency scale, so a cost-latency frontier costs no new estimates.

A :class:`Config` is one (chip, layout, batch limit): it serves every bucket whose targets it
meets, at ``cap_rps[b]`` requests/s per replica when fully busy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..catalog.schema import ModelSpec
from ..errors import SiliconomicsError
from ..inference.estimate import estimate_max_throughput
from ..ops.device import Device
from ..parallel.plan import InferencePlan
from ..search.assess import assess
from ..search.compare import BATCH_LADDER, candidate_plans
from .spec import Workload
from .workload import Bucket

F = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Config:
    """One replica layout of one workload's model on one chip, in one role."""

    workload: str
    chip: str
    plan: InferencePlan
    role: str
    """'both' (co-located prefill and decode), 'prefill' or 'decode'"""
    batch_limit: float
    cap_rps: F
    """requests/s one fully busy replica serves, per bucket of the workload (0: not allowed)"""
    ttft_s: F
    """predicted TTFT at the SLO-percentile prompt, unloaded, per bucket"""
    tpot_s: F
    """predicted mean time per output token at this batch limit, per bucket"""
    ttft_mean_s: F
    """predicted TTFT at the bucket's mean prompt, unloaded"""
    watts_per_chip: F
    """average power per chip when busy (incl. host share), per bucket"""
    bound: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def chips(self) -> int:
        return self.plan.chips_per_replica

    @property
    def key(self) -> str:
        p = self.plan
        pp = f"pp{p.pp}" if p.pp > 1 else ""
        return f"{self.workload}/{self.chip}/tp{p.tp}{pp}/b{self.batch_limit:g}/{self.role}"


@dataclass(frozen=True, kw_only=True)
class ChipGrid:
    """Every layout x bucket x batch limit of one workload on one chip (co-located)."""

    workload: str
    chip: str
    plans: tuple[InferencePlan, ...]
    cap_rps: F  # (plan, bucket, batch)
    ttft_s: F
    ttft_mean_s: F
    tpot_s: F
    watts: F
    bound: NDArray[np.str_]
    reason: str = ""
    """why no layout fits at all (empty when some do)"""


def chip_grid(model: ModelSpec, dev: Device, w: Workload, buckets: list[Bucket]) -> ChipGrid:
    """Evaluate all co-located layouts of ``model`` on ``dev`` for every bucket."""
    chip = dev.chip
    I = np.array([[b.mean_input for b in buckets], [b.p_input for b in buckets]], dtype=np.float64)[
        :, :, None
    ]
    O = np.array([[b.mean_output for b in buckets]] * 2, dtype=np.float64)[:, :, None]
    shape = (len(buckets), len(BATCH_LADDER))
    plans, caps, ttfts, ttft_means, tpots, watts, bounds = [], [], [], [], [], [], []
    reason = ""
    spec = None if w.mtp is None else w.mtp.to_speculative()
    for plan in candidate_plans(model, dev, w.weights_dtype, w.act_dtype, w.kv_dtype):
        try:
            est = estimate_max_throughput(
                model, dev, plan, I, O, batch_limit=BATCH_LADDER, spec=spec
            )
        except SiliconomicsError as e:
            reason = str(e)
            continue
        a = assess(est)
        full = (2, *shape)
        tput = np.broadcast_to(est.output_tokens_per_s, full)[0]
        caps.append(tput / O[0])
        ttfts.append(np.broadcast_to(est.ttft_s, full)[1])
        ttft_means.append(np.broadcast_to(est.ttft_s, full)[0])
        tpots.append(np.broadcast_to(est.tpot_s, full)[0])
        watts.append(np.broadcast_to(a.watts_per_chip, full)[0])
        bounds.append(np.broadcast_to(est.decode_bound, full)[0])
        plans.append(plan)
    if not plans:
        empty = np.zeros((0, *shape))
        return ChipGrid(
            workload=w.label,
            chip=chip.id,
            plans=(),
            cap_rps=empty,
            ttft_s=empty,
            ttft_mean_s=empty,
            tpot_s=empty,
            watts=empty,
            bound=np.zeros((0, *shape), dtype=str),
            reason=reason or "no layout fits",
        )
    return ChipGrid(
        workload=w.label,
        chip=chip.id,
        plans=tuple(plans),
        cap_rps=np.stack(caps),
        ttft_s=np.stack(ttfts),
        ttft_mean_s=np.stack(ttft_means),
        tpot_s=np.stack(tpots),
        watts=np.stack(watts),
        bound=np.stack(bounds),
    )


def meets(ttft: F, tpot: F, w: Workload, scale: float) -> NDArray[np.bool_]:
    """Where predicted latencies meet the workload's targets scaled by ``scale``."""
    ok = np.isfinite(ttft) & np.isfinite(tpot)
    if w.slo.ttft is not None:
        ok &= ttft <= w.slo.ttft * scale
    if w.slo.tpot is not None:
        ok &= tpot <= w.slo.tpot * scale
    return np.asarray(ok)


def select_configs(
    g: ChipGrid, w: Workload, scale: float, usd_per_chip_hour: float, *, role: str = "both"
) -> list[Config]:
    """Per bucket, the (layout, batch limit) with the lowest $ per request meeting the
    (scaled) targets; each chosen config also serves the other buckets it can."""
    if not g.plans:
        return []
    ttft = g.ttft_s if role == "both" else np.zeros_like(g.ttft_s)  # decode: no prefill
    ok = meets(ttft, g.tpot_s, w, scale) & (g.cap_rps > 0)
    chips = np.array([p.chips_per_replica for p in g.plans], dtype=np.float64)[:, None, None]
    usd_per_req = np.where(ok, usd_per_chip_hour * chips / np.maximum(g.cap_rps, 1e-30), np.inf)
    picks: set[tuple[int, int]] = set()
    for b in range(g.cap_rps.shape[1]):
        flat = usd_per_req[:, b, :]
        if np.isfinite(flat).any():
            ij = np.unravel_index(int(np.argmin(flat)), flat.shape)
            picks.add((int(ij[0]), int(ij[1])))
    out = []
    for i, j in sorted(picks):
        okb = ok[i, :, j]
        out.append(
            Config(
                workload=g.workload,
                chip=g.chip,
                plan=g.plans[i],
                role=role,
                batch_limit=float(BATCH_LADDER[j]),
                cap_rps=np.where(okb, g.cap_rps[i, :, j], 0.0),
                ttft_s=g.ttft_s[i, :, j],
                ttft_mean_s=g.ttft_mean_s[i, :, j],
                tpot_s=g.tpot_s[i, :, j],
                watts_per_chip=g.watts[i, :, j],
                bound=str(g.bound[i, 0, j]),
            )
        )
    return out


def closest_miss(g: ChipGrid, w: Workload) -> str:
    """How close this chip gets to the targets (for infeasibility messages)."""
    if not g.plans:
        return g.reason
    parts = []
    if w.slo.tpot is not None:
        parts.append(f"best TPOT {float(np.min(g.tpot_s)) * 1e3:.1f} ms")
    if w.slo.ttft is not None:
        parts.append(f"best TTFT {float(np.min(g.ttft_s)):.3g} s")
    return ", ".join(parts)

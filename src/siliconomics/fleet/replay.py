"""Replay a multi-period plan hour by hour in the serving simulator, with autoscaling.

For each replayed hour of a week in one month, an autoscaler sets the fleet from that hour's
own need (the windowed need of :func:`.profile.windowed_need`, not its level's): held
capacity that is paid anyway first (reservations, capacity blocks), then owned chips (busy
power only), then the plan's burst nodes of the hour's level scaled down to the remainder
(whole nodes, never more than planned). Traffic goes to each chip type in proportion to what
its active chips carry; each chip type's share is simulated with its reference fleet's
layouts, replicas scaled to its active chips (:func:`.confirm.simulated_latency`, Poisson
arrivals at the hour's highest rate). The hour meets its targets when every chip type's
simulated percentiles do. Cost per hour: held capacity + owned busy power + active burst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from ..errors import SiliconomicsError
from .confirm import _serving, analytic_latency, simulated_latency
from .multiplan import ProfilePlan
from .profile import HOURS_PER_WEEK, windowed_need

F = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class ReplayHour:
    hour: int
    rate: float
    """traffic at the hour's highest point (1 = the spec's rates)"""
    chips: dict[str, int]
    planned_usd: float
    simulated_usd: float
    meets_slo: bool
    ttft_p_s: float
    tpot_p_s: float
    source: str


@dataclass(frozen=True, kw_only=True)
class Replay:
    month: int
    hours: tuple[ReplayHour, ...]

    @property
    def attainment(self) -> float:
        """Share of replayed hours whose simulated percentiles meet the targets."""
        return sum(h.meets_slo for h in self.hours) / max(len(self.hours), 1)

    @property
    def planned_attainment(self) -> float:
        """The plan holds at least each hour's need at the planned utilisation: every hour."""
        return 1.0


def _autoscale(plan: ProfilePlan, month: int, h: int, need: float) -> tuple[F, F]:
    """(chips active per source, USD this hour) for one hour's own need."""
    sol, srcs = plan.solution, plan.sources
    act = np.zeros(len(srcs))
    usd = 0.0
    left = need
    for j, s in enumerate(srcs):  # paid anyway: count it first
        if s.monthly and s.kind != "owned":
            act[j] = sol.held[j, month] * s.node_chips
            left -= act[j] * plan.units[s.chip].kappa
            usd += act[j] * s.usd_per_chip_hour
    for j, s in enumerate(srcs):
        if s.kind == "owned":
            k = plan.units[s.chip].kappa
            held = sol.held[j, month] * s.node_chips
            act[j] = min(held, max(left, 0.0) / k)
            left -= act[j] * k
            usd += held * s.usd_per_chip_hour + act[j] * s.usd_per_busy_chip_hour
    lv = int(plan.levels.of_hour[h])
    burst = [j for j, s in enumerate(srcs) if not s.monthly]
    cap = sum(
        sol.burst[j, month, lv]
        * srcs[j].node_chips
        * srcs[j].capacity_factor
        * plan.units[srcs[j].chip].kappa
        for j in burst
    )
    f = min(1.0, max(left, 0.0) / cap) if cap > 0 else 0.0
    for j in burst:
        s = srcs[j]
        nodes = min(sol.burst[j, month, lv], math.ceil(sol.burst[j, month, lv] * f - 1e-9))
        act[j] = nodes * s.node_chips
        usd += act[j] * s.usd_per_chip_hour
    return act, np.array(usd)


def _simulate_chip(plan: ProfilePlan, chip: str, chips: float, rate: float, seed: int):
    """Latency of one chip type carrying ``rate`` traffic units on ``chips`` chips."""
    u = plan.units[chip]
    b, s = u.built, u.solution
    f = chips / u.ref_chips
    reps = np.where(s.replicas > 0, np.maximum(1, np.round(s.replicas * f)), 0).astype(np.int64)
    b2 = replace(b, problem=replace(b.problem, rates=b.problem.rates * (rate / u.ref_units)))
    s2 = replace(s, replicas=reps)
    serving = _serving()
    out = []
    for wi, wk in enumerate(u.inputs.workloads):
        if serving is None:
            out.append(analytic_latency(wk, b2, s2, wi))
            continue
        try:
            out.append(simulated_latency(serving, wk, b2, s2, seed, wi, u.inputs.devices))
        except (ArithmeticError, SiliconomicsError):
            out.append(analytic_latency(wk, b2, s2, wi))
    return out


def replay(plan: ProfilePlan, *, month: int | None = None, hours: range | None = None) -> Replay:
    """Replay ``hours`` (default: every hour) of a week in ``month`` (default: the last)."""
    m = plan.months - 1 if month is None else month
    g = float(plan.growth[m])
    peak = windowed_need(plan.week, 0.0, 0.0)  # each hour's highest point
    planned = plan.cost_week(m)
    out = []
    seed = plan.spec.seed
    for h in hours or range(HOURS_PER_WEEK):
        act, usd = _autoscale(plan, m, h, g * float(plan.need[h]))
        by_chip: dict[str, float] = {}
        for j, s in enumerate(plan.sources):
            by_chip[s.chip] = by_chip.get(s.chip, 0.0) + act[j] * s.capacity_factor
        carry = {c: n * plan.units[c].kappa for c, n in by_chip.items() if n > 0}
        total = sum(carry.values())
        rate = g * float(peak[h])
        lats = []
        for c, cap in carry.items():
            lats += _simulate_chip(plan, c, by_chip[c], rate * cap / total, seed + h)
        out.append(
            ReplayHour(
                hour=h,
                rate=rate,
                chips={c: round(n) for c, n in by_chip.items() if n > 0},
                planned_usd=float(planned[h]),
                simulated_usd=float(usd),
                meets_slo=all(la.meets_slo for la in lats),
                ttft_p_s=max(la.ttft_p_s for la in lats),
                tpot_p_s=max(la.tpot_p_s for la in lats),
                source=lats[0].source if lats else "",
            )
        )
    return Replay(month=m, hours=tuple(out))

"""Runner-up fleets (one vendor, one chip type, co-located only) and the cost-latency
frontier (the cheapest fleet as the latency targets are scaled)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .build import Built, Inputs
from .milp import Solution, hint_of
from .result import Alternative, ParetoPoint
from .solve import _chips_of, _unserved, _usd_of, solve_at

Progress = Callable[[str, int, int], None]
FRONTIER_SCALES = (0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0)
FRONTIER_TIME_LIMIT_S = 2.0
"""per frontier point: HiGHS's best fleet after 2 s (the chosen fleet gets the full limit)"""


def _uses_only(b: Built, s: Solution, chips: set[str], disagg: bool) -> bool:
    """Whether fleet ``s`` uses only ``chips`` (and no prefill/decode split unless allowed)."""
    if not set(_chips_of(b, s)) <= chips:
        return False
    return disagg or all(
        len(r.pools) == 1 for x, r in zip(s.shares, b.problem.routes, strict=True) if x > 1e-9
    )


def _alternative(label: str, b: Built, s: Solution, best_usd: float) -> Alternative:
    return Alternative(
        label=label,
        usd_per_hour=s.usd_per_hour,
        ratio=s.usd_per_hour / best_usd,
        chips=_chips_of(b, s),
        usd_by_chip=_usd_of(b, s),
        solver=s.status,
        optimality_gap=s.gap,
    )


def alternatives(
    inp: Inputs,
    best_usd: float,
    disaggregated: bool,
    scale: float = 1.0,
    main: tuple[Built, Solution] | None = None,
) -> list[Alternative]:
    """Single-vendor and single-chip-type fleets (and co-located only), as runner-ups.
    ``main``: the chosen fleet and its program (at ``scale``): a restriction that the chosen
    fleet already meets has it as its cheapest fleet (no solve); the others start from it."""
    table = {c: d.chip for c, d in inp.devices.items()}
    chips = set(inp.offers)
    groups: list[tuple[str, set[str], bool]] = []
    vendors = sorted({table[c].vendor for c in chips})
    if len(vendors) > 1:
        groups += [(f"all-{v}", {c for c in chips if table[c].vendor == v}, True) for v in vendors]
    if len(chips) > 1:
        groups += [(f"all-{c}", {c}, True) for c in sorted(chips)]
    if disaggregated and inp.spec.disaggregation == "auto":
        groups.append(("co-located only (no prefill/decode split)", chips, False))
    out = []
    hint = hint_of(main[0].problem, main[1]) if main else None
    for label, subset, dis in groups:
        if main and _uses_only(*main, subset, dis):
            out.append(_alternative(label, *main, best_usd))
            continue
        b, s = solve_at(inp, scale, subset, disagg=dis, hint=hint)
        if s is None:
            reason = _unserved(inp, b) or "a limit (availability, budget or power) binds"
            out.append(
                Alternative(
                    label=label,
                    usd_per_hour=None,
                    ratio=None,
                    chips={},
                    reason=reason.split(": ", 1)[-1][:160],
                )
            )
        else:
            out.append(_alternative(label, b, s, best_usd))
    return sorted(out, key=lambda a: (a.ratio is None, a.ratio or 0.0))


def _worst_latency(b: Built, s: Solution) -> tuple[float, float]:
    used = [i for i, x in enumerate(s.shares) if x > 1e-9]
    ttft = max((b.route_latency[i][0] for i in used), default=np.nan)
    tpot = max((b.route_latency[i][2] for i in used), default=np.nan)
    return float(ttft), float(tpot)


def frontier(
    inp: Inputs,
    progress: Progress | None = None,
    main: tuple[float, Built, Solution] | None = None,
) -> list[ParetoPoint]:
    """Cheapest fleet with the targets scaled; the non-dominated (cost, TPOT) points.
    ``main``: the chosen fleet, its scale and program: the point at that scale is it, the
    others start from it."""
    pts = []
    hint = hint_of(main[1].problem, main[2]) if main else None
    for n, scale in enumerate(FRONTIER_SCALES):
        if progress:
            progress("cost-latency frontier", n, len(FRONTIER_SCALES))
        s: Solution | None
        if main and scale == main[0]:
            b, s = main[1], main[2]
        else:
            b, s = solve_at(
                inp, scale, set(inp.offers), time_limit_s=FRONTIER_TIME_LIMIT_S, hint=hint
            )
        if s is not None:
            ttft, tpot = _worst_latency(b, s)
            pts.append(
                ParetoPoint(
                    slo_scale=scale,
                    usd_per_hour=s.usd_per_hour,
                    tpot_s=tpot,
                    ttft_s=ttft,
                    chips=_chips_of(b, s),
                    solver=s.status,
                    optimality_gap=s.gap,
                )
            )
    if progress:
        progress("cost-latency frontier", len(FRONTIER_SCALES), len(FRONTIER_SCALES))
    pts.sort(key=lambda p: (p.usd_per_hour, p.tpot_s))
    out: list[ParetoPoint] = []
    for p in pts:
        if not out or p.tpot_s < out[-1].tpot_s - 1e-12:
            out.append(p)
    return out

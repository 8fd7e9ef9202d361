"""Solving the fleet program for one latency scale and chip subset, and explaining an
infeasible one (which limit binds, or which bucket no chip can serve)."""

from __future__ import annotations

from .build import Built, Inputs, build
from .candidates import closest_miss
from .milp import MIP_GAP, TIME_LIMIT_S, Hint, Solution, binding_limits, solve


def solve_at(
    inp: Inputs,
    scale: float,
    chips: set[str],
    *,
    colocated: bool = True,
    disagg: bool = True,
    gap: float = MIP_GAP,
    time_limit_s: float = TIME_LIMIT_S,
    hint: Hint | None = None,
) -> tuple[Built, Solution | None]:
    """Build and solve the program for targets x ``scale`` on ``chips`` (``gap``: relative
    optimality gap at which HiGHS may stop; at ``time_limit_s`` it returns its best fleet;
    ``hint``: a fleet to start from, :func:`.milp.hint_of`)."""
    mode = inp.spec.disaggregation
    b = build(
        inp, scale, chips, colocated=colocated and mode != "only", disagg=disagg and mode != "off"
    )
    if not b.problem.routes:
        return b, None
    return b, solve(b.problem, gap=gap, time_limit_s=time_limit_s, hint=hint)


def _unserved(inp: Inputs, b: Built) -> str:
    """Buckets that no allowed chip can serve within the targets, with the closest misses."""
    served = {r.bucket for r in b.problem.routes}
    for g, (wi, bucket) in enumerate(b.buckets):
        if g in served:
            continue
        w = inp.workloads[wi].workload
        misses = [
            f"{c}: {closest_miss(inp.grids[(wi, c)], w)}"
            for c in sorted(b.chips)
            if (wi, c) in inp.grids
        ][:5]
        slo = []
        if w.slo.ttft is not None:
            slo.append(f"ttft {w.slo.ttft:g} s")
        if w.slo.tpot is not None:
            slo.append(f"tpot {w.slo.tpot * 1e3:g} ms")
        return (
            f"spec field 'workloads.{wi}.slo': no allowed chip meets {' and '.join(slo)} at "
            f"p{w.slo.percentile:g} for {bucket.label} (p{w.slo.percentile:g} prompt "
            f"{bucket.p_input:.0f} tokens); closest: {'; '.join(misses)}"
        )
    return ""


def explain_infeasible(inp: Inputs, b: Built) -> str:
    """Which constraint binds, with the size of the gap."""
    why = _unserved(inp, b)
    if why:
        return why
    limits, together, sol = binding_limits(b.problem)
    if sol is None:
        return "no fleet meets the targets even without availability, budget and power limits"
    spec = inp.spec
    ctx = "without these limits" if together else "within the other limits"
    parts = []
    for lim in limits:
        if lim == "budget":
            parts.append(
                f"budget_usd_per_hour {spec.budget_usd_per_hour:g} is below the cheapest "
                f"fleet {ctx} (${sol.usd_per_hour:,.2f}/h)"
            )
        elif lim == "power":
            parts.append(
                f"power_cap_kw {spec.power_cap_kw:g} is below what the cheapest fleet "
                f"{ctx} draws ({sol.power_w / 1e3:,.1f} kW)"
            )
        else:
            need = _chips_of(b, sol)
            parts.append(
                f"availability {dict(spec.availability)} leaves too few chips (without it the "
                f"cheapest fleet uses {need})"
            )
    if len(parts) == 1:
        return f"infeasible: {parts[0]}"
    if together:
        return f"infeasible: {' and '.join(parts)} (these must be relaxed together)"
    return f"infeasible: {' or '.join(parts)} (relaxing any one of these is enough)"


def _chips_of(b: Built, s: Solution) -> dict[str, int]:
    out: dict[str, int] = {}
    for o, n in zip(b.offers, s.nodes, strict=True):
        if n > 0:
            out[o.chip] = out.get(o.chip, 0) + int(n) * o.node_chips
    return out


def _usd_of(b: Built, s: Solution) -> dict[str, float]:
    out: dict[str, float] = {}
    for o, n in zip(b.offers, s.nodes, strict=True):
        if n > 0:
            out[o.chip] = out.get(o.chip, 0.0) + int(n) * o.node_chips * o.usd_per_chip_hour
    return out

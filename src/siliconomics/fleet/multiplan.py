"""Plans for traffic that changes: committed capacity plus burst, owned plus cloud.

1. Per chip type, the steady planner's cheapest single-chip fleet for the spec's workloads at
   the horizon's peak rate, confirmed in the serving simulator (:func:`.planner.confirmed`),
   gives what one chip carries (``kappa``: layouts, phases, buckets and latency targets are
   all inside it) and the layout to replay.
2. The profile's week becomes a windowed need (scale-up and scale-down delays keep headroom)
   grouped into rate levels; months scale it by growth.
3. One MILP (:mod:`.multiperiod`) picks owned, reserved, capacity-block, on-demand and spot
   nodes per chip, month and level. The same program restricted to one mode gives the
   single-mode alternatives; re-solved at lower and higher growth it gives the scenarios.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from ..catalog.catalog import Catalog
from ..economics.pricebook import PriceBook
from ..economics.pricing import catalog_book
from ..errors import SiliconomicsError
from ..parallel.memory import weight_bytes_per_chip
from ..serving.workload import Requests
from .build import Built, Inputs
from .milp import Solution
from .multiperiod import MilpSolution, Program, program, solve_program
from .planner import Progress, allowed_chips, confirmed, prepare
from .profile import (
    HOURS_PER_MONTH,
    HOURS_PER_WEEK,
    Capacity,
    Levels,
    aggregate,
    growth,
    weekly_shape,
    windowed_need,
)
from .sources import COMMITTED, Source, sources_for
from .spec import PlanSpec

F = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class ChipUnit:
    """One chip type's reference fleet: what a chip carries and how to replay it."""

    chip: str
    kappa: float
    """traffic units (1 = the spec's rates) one chip carries"""
    ref_units: float
    ref_chips: float
    load_s: float
    inputs: Inputs
    built: Built
    solution: Solution
    describe: str


@dataclass(frozen=True, kw_only=True)
class Alternative:
    label: str
    usd: float | None
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class ProfilePlan:
    name: str
    spec: PlanSpec
    sources: tuple[Source, ...]
    solution: MilpSolution
    units: dict[str, ChipUnit]
    week: F
    """168 relative rates (mean 1)"""
    need: F
    """168 windowed needs (relative)"""
    levels: Levels
    growth: F
    ahead_s: float
    behind_s: float
    alternatives: tuple[Alternative, ...]
    scenarios: tuple[Alternative, ...]
    excluded: dict[str, str]
    assumptions: tuple[str, ...]

    @property
    def months(self) -> int:
        return len(self.growth)

    @property
    def best_single(self) -> Alternative | None:
        ok = [a for a in self.alternatives if a.usd is not None]
        return min(ok, key=lambda a: a.usd or 0.0) if ok else None

    def usd_by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for s, u in zip(self.sources, self.solution.usd_by_source, strict=True):
            out[s.kind] = out.get(s.kind, 0.0) + float(u)
        return out

    def capacity_week(self, month: int) -> F:
        """(sources, 168) chips of each source in each hour of a week of ``month``."""
        sol, lv = self.solution, self.levels.of_hour
        out = np.zeros((len(self.sources), HOURS_PER_WEEK))
        for j, s in enumerate(self.sources):
            if s.monthly:
                out[j] = sol.held[j, month] * s.node_chips
            else:
                out[j] = sol.burst[j, month][lv] * s.node_chips
        return out

    def cost_week(self, month: int) -> F:
        """Planned USD per hour in each hour of a week of ``month``."""
        sol, lv = self.solution, self.levels.of_hour
        out = np.zeros(HOURS_PER_WEEK)
        for j, s in enumerate(self.sources):
            if s.monthly:
                out += sol.held[j, month] * s.node_chips * s.usd_per_chip_hour
                out += sol.active[j, month][lv] * s.usd_per_busy_chip_hour
            else:
                out += sol.burst[j, month][lv] * s.node_chips * s.usd_per_chip_hour
        return out

    def committed_utilisation(self) -> dict[str, float]:
        """Per held source: share of its capacity-hours the traffic needs (held capacity is
        used cheapest first: owned, then reserved, then capacity blocks)."""
        sol = self.solution
        h = self.levels.hours * HOURS_PER_MONTH / HOURS_PER_WEEK
        need = self.growth[:, None] * self.levels.need[None, :]
        order = sorted(
            (j for j, s in enumerate(self.sources) if s.monthly),
            key=lambda j: self.sources[j].usd_per_busy_chip_hour,
        )
        order.sort(
            key=lambda j: (
                ("owned", "reserved-3y", "reserved-1y").index(self.sources[j].kind)
                if self.sources[j].kind in COMMITTED
                else 3
            )
        )
        left = need.copy()
        out = {}
        for j in order:
            s = self.sources[j]
            cap = (sol.held[j] * s.node_chips * self.units[s.chip].kappa)[:, None]
            used = np.minimum(cap, np.maximum(left, 0.0))
            left = left - used
            tot = float((cap * h[None, :]).sum())
            if tot > 0:
                out[s.label] = float((used * h[None, :]).sum()) / tot
        return out

    def breakeven(self) -> dict[str, float | None]:
        """Per held source: utilisation above which it costs less than renting the same
        capacity on demand at the cheapest on-demand price per unit of traffic
        (owned: ``A / (R - B)``; reserved and blocks: ``p / R``; None when never)."""
        od = [
            s.usd_per_chip_hour / self.units[s.chip].kappa
            for s in self.sources
            if s.kind == "on-demand"
        ]
        if not od:
            return {}
        rent = min(od)
        out: dict[str, float | None] = {}
        for s in self.sources:
            if not s.monthly:
                continue
            k = self.units[s.chip].kappa
            fixed, busy = s.usd_per_chip_hour / k, s.usd_per_busy_chip_hour / k
            u = fixed / (rent - busy) if rent > busy else None
            out[s.label] = u if u is not None and u <= 1.0 else None
        return out


def load_seconds(unit_inputs: Inputs, b: Built, s: Solution, provision_s: float, gbps: float):
    """Start-up time of the chip's replicas: provisioning plus the heaviest chip's weights
    over the loading bandwidth."""
    worst = 0.0
    for (cfg, _), n in zip(b.pools, s.replicas, strict=True):
        if n <= 0:
            continue
        wk = next(w for w in unit_inputs.workloads if w.workload.label == cfg.workload)
        worst = max(worst, weight_bytes_per_chip(wk.model, cfg.plan) / (gbps * 1e9))
    return provision_s + worst


def chip_units(
    spec: PlanSpec,
    catalog: Catalog,
    chips: list[str],
    ref_units: float,
    progress: Progress | None,
    traces: Mapping[str, Requests] | None,
    book: PriceBook,
) -> tuple[dict[str, ChipUnit], dict[str, str]]:
    """Per chip: the steady planner's confirmed single-chip fleet at ``ref_units`` x the
    spec's rates (prices do not matter here: one price per chip, so the cheapest fleet is the
    one with the fewest chip-hours)."""
    base = prepare(spec, catalog, book=book, traces=traces)
    rates = [w.traffic.rate_rps for w in base.workloads]
    wls = tuple(
        w.model_copy(update={"rate_rps": r * ref_units})
        for w, r in zip(spec.workloads, rates, strict=True)
    )
    ref = spec.model_copy(
        update={
            "workloads": wls,
            "pricing": "on-demand",
            "prices": dict.fromkeys(chips, 1.0),
            "chips": tuple(chips),
            "vendors": None,
            "availability": {},
            "power_cap_kw": None,
        }
    )
    inp = prepare(ref, catalog, progress, book=book, traces=traces)
    units: dict[str, ChipUnit] = {}
    why: dict[str, str] = {}
    cap = spec.capacity or Capacity()
    for c in chips:
        if c not in inp.offers:
            why[c] = inp.excluded.get(c, "no node type")
            continue
        one = replace(inp, offers={c: inp.offers[c]})
        try:
            one, _, b, s, lat, _ = confirmed(one)
        except SiliconomicsError as e:
            why[c] = str(e)
            continue
        used = float(sum(int(n) * b.pools[k][0].chips for k, n in enumerate(s.replicas)))
        load = cap.load_time.get(c) or load_seconds(one, b, s, cap.provision, cap.load_gb_per_s)
        units[c] = ChipUnit(
            chip=c,
            kappa=ref_units / used,
            ref_units=ref_units,
            ref_chips=used,
            load_s=load,
            inputs=one,
            built=b,
            solution=s,
            describe=", ".join(
                f"{int(n)} x tp{b.pools[k][0].plan.tp} {b.pools[k][0].role}"
                for k, n in enumerate(s.replicas)
                if n > 0
            )
            + f"; {'meets' if all(la.meets_slo for la in lat) else 'MISSES'} the targets "
            f"({lat[0].source})",
        )
    return units, why


def _solve_or_none(p: Program, **kw) -> MilpSolution | None:
    return solve_program(p, **kw)


def _build(spec: PlanSpec, srcs: list[Source], units, lv: Levels, g: F) -> Program:
    cap = spec.capacity or Capacity()
    return program(
        [s for s in srcs if s.chip in units],
        {c: u.kappa for c, u in units.items()},
        lv,
        g,
        availability=dict(spec.availability),
        site_kw=cap.site_power_kw,
        power_cap_kw=spec.power_cap_kw,
        spot_max_share=cap.spot.max_share,
    )


def plan_profile(
    spec: PlanSpec,
    catalog: Catalog,
    progress: Progress | None = None,
    *,
    book: PriceBook | None = None,
    traces: Mapping[str, Requests] | None = None,
    arrivals: F | None = None,
) -> ProfilePlan:
    """The committed + burst plan over the profile's horizon (see the module docstring);
    ``arrivals``: the profile trace's arrival times (read by the edge)."""
    prof, cap = spec.profile, spec.capacity or Capacity()
    assert prof is not None
    if not spec.workloads:
        raise SiliconomicsError("spec field 'workloads': a profile needs serving workloads")
    if spec.budget_usd_per_hour is not None:
        raise SiliconomicsError(
            "spec field 'budget_usd_per_hour': not used with a profile (the plan minimises the "
            "horizon's total cost); remove it"
        )
    book = book or catalog_book(catalog)
    week = weekly_shape(prof, arrivals)
    g = growth(prof)
    chips = allowed_chips(spec, catalog)
    _check_capacity(cap, chips, book)
    units, why = chip_units(
        spec, catalog, chips, float(week.max() * g.max()), progress, traces, book
    )
    if not units:
        raise SiliconomicsError(
            "spec field 'chips': no allowed chip can serve the workloads ("
            + "; ".join(f"{c}: {r}" for c, r in why.items())
            + ")"
        )
    nodes = {c: max(o.node_chips for o in u.inputs.offers[c]) for c, u in units.items()}
    loads = {c: u.load_s for c, u in units.items()}
    devs = {c: u.inputs.devices[c].chip for c, u in units.items()}
    srcs, excl = sources_for(devs, book, cap, nodes, loads)
    if not srcs:
        raise SiliconomicsError("spec field 'capacity': no source has a price for the chips")
    burst_loads = [loads[s.chip] for s in srcs if not s.monthly] or [0.0]
    ahead, behind = max(burst_loads), cap.scale_down
    need = windowed_need(week, ahead, behind)
    lv = aggregate(need, prof.levels)
    if progress:
        progress("multi-period plan", 0, 1)
    alts, held_tries = _alternatives(spec, srcs, units, lv, g)
    # Each single-mode plan is a feasible point of the full program: its committed schedule is
    # tried too, so the hybrid plan is never dearer than the best single mode.
    sol = solve_program(_build(spec, srcs, units, lv, g), also_try=held_tries)
    if sol is None:
        raise SiliconomicsError(
            "spec fields 'availability'/'power_cap_kw'/'capacity.site_power_kw': no plan "
            "carries the peak traffic within these limits"
        )
    scen = _scenarios(spec, srcs, units, lv, sol)
    return ProfilePlan(
        name=spec.name,
        spec=spec,
        sources=tuple(s for s in srcs if s.chip in units),
        solution=sol,
        units=units,
        week=week,
        need=need,
        levels=lv,
        growth=g,
        ahead_s=ahead,
        behind_s=behind,
        alternatives=tuple(alts),
        scenarios=tuple(scen),
        excluded={**why, **excl},
        assumptions=tuple(_assumptions(spec, lv, ahead, behind)),
    )


def _check_capacity(cap: Capacity, chips: list[str], book: PriceBook) -> None:
    """Ids in the capacity section must be allowed chips and priced regions."""
    for field, ids in (("owned", cap.owned or ()), ("load_time", tuple(cap.load_time))):
        for c in ids:
            if c not in chips:
                raise SiliconomicsError(
                    f"spec field 'capacity.{field}': chip '{c}' is not among the allowed chips "
                    f"({', '.join(chips)})"
                )
    known = book.regions()
    for r in cap.regions or ():
        if r not in known:
            raise SiliconomicsError(
                f"spec field 'capacity.regions': no price in the book is for '{r}'; regions: "
                f"{', '.join(known)}"
            )


SINGLE = ("owned", "reserved-3y", "reserved-1y", "capacity-block", "on-demand")


def _alternatives(spec, srcs, units, lv, g) -> tuple[list[Alternative], tuple[np.ndarray, ...]]:
    """Each single-mode plan, and its committed schedule laid out over all of ``srcs``."""
    out = []
    helds: list[np.ndarray] = []
    for kind in SINGLE:
        idx = [j for j, s in enumerate(srcs) if s.kind == kind]
        if not idx:
            continue
        s = solve_program(_build(spec, [srcs[j] for j in idx], units, lv, g))
        out.append(
            Alternative(
                label=f"all {kind}",
                usd=None if s is None else s.usd,
                note="" if s is not None else "infeasible within the limits",
            )
        )
        if s is not None:
            full = np.zeros((len(srcs), s.held.shape[1]), dtype=np.int64)
            full[idx] = s.held
            helds.append(full)
    return out, tuple(helds)


def _scenarios(spec, srcs, units, lv, sol) -> list[Alternative]:
    """Growth at half and at 1.5x the plan's (or +-2 points when flat): re-planned, and with
    the planned commitments kept (burst absorbs the surprise)."""
    prof = spec.profile
    g0 = prof.growth_per_month
    out = []
    for name, gr in (("low", g0 * 0.5 if g0 else -0.02), ("high", g0 * 1.5 if g0 else 0.02)):
        gg = growth(prof, gr)
        p = _build(spec, srcs, units, lv, gg)
        re = solve_program(p, also_try=(sol.held,))
        kept = solve_program(p, fixed_held=sol.held)
        out.append(
            Alternative(
                label=f"{name} growth {gr:+.1%}/month, re-planned",
                usd=None if re is None else re.usd,
            )
        )
        out.append(
            Alternative(
                label=f"{name} growth {gr:+.1%}/month, commitments as planned",
                usd=None if kept is None else kept.usd,
                note="" if kept else "the planned commitments exceed a limit",
            )
        )
    return out


def _assumptions(spec: PlanSpec, lv: Levels, ahead: float, behind: float) -> list[str]:
    prof = spec.profile
    assert prof is not None
    return [
        f"rates are the workloads' weekly mean at month 0, growing {prof.growth_per_month:.1%} "
        "per month; each month is planned at its last day's traffic",
        f"{len(lv.need)} rate levels per month (hours grouped by need, each level at its "
        f"busiest hour): {lv.overstatement:.1%} more capacity-hours than hour-by-hour planning",
        f"scale-up headroom: capacity covers the rate {ahead / 60:.0f} min ahead (start and load "
        f"the slowest burst chip) and {behind / 60:.0f} min behind (scale-down delay)",
        "committed capacity (owned, reservations) is never returned and is charged inside the "
        "horizon only",
        "one chip type's throughput comes from its cheapest single-chip steady fleet at the "
        "peak rate (phases are not split across chip types)",
    ]

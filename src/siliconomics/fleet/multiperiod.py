"""The multi-period capacity plan as one MILP (scipy.optimize.milp, HiGHS).

Periods are (month m, rate level l): the week's hours grouped into levels
(:func:`.profile.aggregate`), the same levels every month scaled by that month's growth.
Capacity is counted in units of the traffic (1 = the spec's rates); ``kappa_c`` is what one
chip of type c carries (from the steady planner's cheapest single-chip fleet at the peak rate,
confirmed in the simulator, :mod:`.multiplan`). Variables, all per source j (a chip in one mode
at one place):

    C[j, m]     integer nodes held in month m        (owned, reserved, capacity blocks)
    a[j, m, l]  continuous owned chips serving        (owned only: busy power is paid on them)
    B[j, m, l]  integer nodes in period (m, l)        (on-demand, spot)

    minimise  sum_j,m  p_j N_j C[j,m] H_m  +  sum  b_j a[j,m,l] h_ml  +  sum p_j N_j B[j,m,l] h_ml
    s.t.      sum_owned k_j a + sum_held k_j N_j C + sum_burst k_j f_j N_j B >= need[m,l]
              a[j,m,l] <= N_j C[j,m];   C[j,m-1] <= C[j,m]  (owned and reserved: never returned)
              spot capacity <= max_share x need;  chips of a type <= availability
              owned chips x peak W <= site cap;   all chips x peak W <= power_cap_kw

with ``N_j`` chips per node, ``h_ml`` hours of the period, ``H_m`` hours of the month, ``f_j``
spot's capacity factor. Committed capacity is charged inside the horizon only. It is solved
in two passes (:func:`solve_program`): all at once with rented nodes continuous, which fixes
the held nodes; then the rented nodes as integers with the held ones fixed. (All-integer in one
pass, HiGHS did not close a 1% gap on the example in 10 s.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from .profile import HOURS_PER_MONTH, HOURS_PER_WEEK, Levels
from .sources import Source

if TYPE_CHECKING:
    from scipy.sparse import lil_matrix


F = NDArray[np.float64]
MIP_GAP = 1e-3
TIME_LIMIT_S = 10.0


@dataclass(frozen=True, kw_only=True)
class Program:
    sources: tuple[Source, ...]
    kappa: dict[str, float]
    """chip -> traffic units one chip carries"""
    need: F
    """(months, levels) traffic units to carry"""
    level_hours: F
    """hours per week of each level"""
    availability: dict[str, int]
    site_w: float | None = None
    power_w: float | None = None
    spot_max_share: float = 1.0


@dataclass(frozen=True, kw_only=True)
class MilpSolution:
    held: NDArray[np.int64]
    """(sources, months) nodes held (0 for burst sources)"""
    burst: NDArray[np.int64]
    """(sources, months, levels) nodes rented per period (0 for held sources)"""
    active: F
    """(sources, months, levels) owned chips serving"""
    usd: float
    usd_by_source: F
    variables: int
    integers: int
    constraints: int
    solve_s: float


class _Layout:
    """Variable indices: held C per monthly source, active a per owned, burst B per burst."""

    def __init__(self, p: Program) -> None:
        nm, nl = p.need.shape
        self.nm, self.nl = nm, nl
        self.C: dict[int, NDArray[np.int64]] = {}
        self.a: dict[int, NDArray[np.int64]] = {}
        self.B: dict[int, NDArray[np.int64]] = {}
        n = 0
        for j, s in enumerate(p.sources):
            if s.monthly:
                self.C[j] = np.arange(n, n + nm)
                n += nm
                if s.kind == "owned":
                    self.a[j] = np.arange(n, n + nm * nl).reshape(nm, nl)
                    n += nm * nl
            else:
                self.B[j] = np.arange(n, n + nm * nl).reshape(nm, nl)
                n += nm * nl
        self.n = n


def _cost(p: Program, L: _Layout) -> F:
    c = np.zeros(L.n)
    h = p.level_hours * HOURS_PER_MONTH / HOURS_PER_WEEK  # hours per month of each level
    for j, s in enumerate(p.sources):
        if j in L.C:
            c[L.C[j]] = s.usd_per_chip_hour * s.node_chips * HOURS_PER_MONTH
        if j in L.a:
            c[L.a[j]] = s.usd_per_busy_chip_hour * h[None, :]
        if j in L.B:
            c[L.B[j]] = s.usd_per_chip_hour * s.node_chips * h[None, :]
    return c


def _rows(p: Program, L: _Layout) -> tuple[lil_matrix, list[float], list[float]]:
    """Every constraint as rows of one sparse matrix with their bounds."""
    from scipy.sparse import lil_matrix

    rows: list[dict[int, float]] = []
    lo: list[float] = []
    hi: list[float] = []

    def add(r: dict[int, float], lower: float, upper: float) -> None:
        rows.append(r)
        lo.append(lower)
        hi.append(upper)

    for m in range(L.nm):
        for lv in range(L.nl):
            cap: dict[int, float] = {}
            spot: dict[int, float] = {}
            for j, s in enumerate(p.sources):
                k = p.kappa[s.chip]
                if j in L.a:
                    cap[int(L.a[j][m, lv])] = k
                    add({int(L.a[j][m, lv]): 1.0, int(L.C[j][m]): -s.node_chips}, -np.inf, 0.0)
                elif j in L.C:
                    cap[int(L.C[j][m])] = k * s.node_chips
                else:
                    v = int(L.B[j][m, lv])
                    cap[v] = k * s.node_chips * s.capacity_factor
                    if s.kind == "spot":
                        spot[v] = k * s.node_chips * s.capacity_factor
            add(cap, float(p.need[m, lv]), np.inf)
            if spot and p.spot_max_share < 1.0:
                add(spot, -np.inf, p.spot_max_share * float(p.need[m, lv]))
            _limits(p, L, m, lv, add)
    for j, s in enumerate(p.sources):
        if s.committed:
            for m in range(1, L.nm):
                add({int(L.C[j][m - 1]): 1.0, int(L.C[j][m]): -1.0}, -np.inf, 0.0)
    A = lil_matrix((len(rows), L.n))
    for i, r in enumerate(rows):
        for v, x in r.items():
            A[i, v] = x
    return A, lo, hi


def _chips_terms(p: Program, L: _Layout, m: int, lv: int, chip: str | None, owned_only: bool):
    out: dict[int, float] = {}
    for j, s in enumerate(p.sources):
        if (chip is not None and s.chip != chip) or (owned_only and s.kind != "owned"):
            continue
        w = 1.0 if chip is not None else s.peak_w_per_chip
        if j in L.C:
            out[int(L.C[j][m])] = s.node_chips * w
        elif j in L.B:
            out[int(L.B[j][m, lv])] = s.node_chips * w
    return out


def _limits(p: Program, L: _Layout, m: int, lv: int, add) -> None:
    for chip, avail in p.availability.items():
        terms = _chips_terms(p, L, m, lv, chip, False)
        if terms:
            add(terms, -np.inf, float(avail))
    if p.power_w is not None:
        add(_chips_terms(p, L, m, lv, None, False), -np.inf, p.power_w)
    if p.site_w is not None and lv == 0:
        terms = _chips_terms(p, L, m, lv, None, True)
        if terms:
            add(terms, -np.inf, p.site_w)


COMMIT_SCALES = (1.0, 1.1, 1.2, 1.35, 0.9)
"""held schedules tried around the first pass's (it under-commits: fractional rented nodes
hide the cost of renting whole nodes)"""


def solve_program(
    p: Program,
    *,
    fixed_held: NDArray[np.int64] | None = None,
    also_try: tuple[NDArray[np.int64], ...] = (),
) -> MilpSolution | None:
    """The cheapest plan found, or None when infeasible. ``fixed_held``: hold these committed
    nodes (sources x months) and re-plan only the rest (what a growth surprise costs).

    Passes of the same program: with rented nodes continuous it gives a held schedule; then,
    for that schedule scaled by each of ``COMMIT_SCALES`` (and each of ``also_try``), the
    rented nodes are solved as integers with the held ones fixed (the program falls apart into
    one small problem per period); the cheapest wins."""
    first = _solve(p, fixed_held=fixed_held, integer_burst=False, fix_blocks=False)
    if first is None:
        return None
    scales = (1.0,) if fixed_held is not None else COMMIT_SCALES
    tries = [_scaled(p, first.held, f) for f in scales] + list(also_try)
    best: MilpSolution | None = None
    spent = first.solve_s
    seen: set[bytes] = set()
    for held in tries:
        if held.tobytes() in seen:
            continue
        seen.add(held.tobytes())
        s = _solve(p, fixed_held=held, integer_burst=True, fix_blocks=True)
        if s is None:
            continue
        spent += s.solve_s
        if best is None or s.usd < best.usd:
            best = s
    if best is None:
        return None
    return replace(best, solve_s=spent)


def _scaled(p: Program, held: NDArray[np.int64], f: float) -> NDArray[np.int64]:
    """Committed held nodes x ``f`` (capacity blocks as they are), still never decreasing."""
    out = held.copy()
    for j, s in enumerate(p.sources):
        if s.committed:
            out[j] = np.maximum.accumulate(np.round(held[j] * f).astype(np.int64))
    return out


def _solve(
    p: Program,
    *,
    fixed_held: NDArray[np.int64] | None,
    integer_burst: bool,
    fix_blocks: bool,
) -> MilpSolution | None:
    from scipy.optimize import Bounds, LinearConstraint, milp

    L = _Layout(p)
    cost = _cost(p, L)
    A, lo, hi = _rows(p, L)
    integ = np.ones(L.n)
    upper = np.full(L.n, np.inf)
    lower = np.zeros(L.n)
    for j in L.a:
        integ[L.a[j].ravel()] = 0
    if not integer_burst:
        for j in L.B:
            integ[L.B[j].ravel()] = 0
    if fixed_held is not None:
        for j, s in enumerate(p.sources):
            if j in L.C and (fix_blocks or s.kind != "capacity-block"):
                lower[L.C[j]] = upper[L.C[j]] = fixed_held[j]
    t0 = time.perf_counter()
    res = milp(
        cost,
        constraints=[LinearConstraint(A.tocsr(), lo, hi)],
        integrality=integ,
        bounds=Bounds(lower, upper),
        options={"time_limit": TIME_LIMIT_S, "mip_rel_gap": MIP_GAP},
    )
    dt = time.perf_counter() - t0
    if res.x is None or res.status not in (0, 1):
        return None
    x = res.x
    ns = len(p.sources)
    held = np.zeros((ns, L.nm), dtype=np.int64)
    burst = np.zeros((ns, L.nm, L.nl), dtype=np.int64)
    active = np.zeros((ns, L.nm, L.nl))
    by_src = np.zeros(ns)
    for j in range(ns):
        idx: list[NDArray[np.int64]] = []
        if j in L.C:
            held[j] = np.round(x[L.C[j]])
            idx.append(L.C[j])
        if j in L.a:
            active[j] = x[L.a[j]]
            idx.append(L.a[j].ravel())
        if j in L.B:
            burst[j] = np.round(x[L.B[j]])
            idx.append(L.B[j].ravel())
        ii = np.concatenate(idx)
        by_src[j] = float(cost[ii] @ x[ii])
    return MilpSolution(
        held=held,
        burst=burst,
        active=active,
        usd=float(cost @ x),
        usd_by_source=by_src,
        variables=L.n,
        integers=int(integ.sum()),
        constraints=A.shape[0],
        solve_s=dt,
    )


def program(
    sources: list[Source],
    kappa: dict[str, float],
    lv: Levels,
    months_growth: F,
    *,
    availability: dict[str, int],
    site_kw: float | None,
    power_cap_kw: float | None,
    spot_max_share: float,
) -> Program:
    return Program(
        sources=tuple(sources),
        kappa=kappa,
        need=months_growth[:, None] * lv.need[None, :],
        level_hours=lv.hours,
        availability=availability,
        site_w=site_kw * 1e3 if site_kw else None,
        power_w=power_cap_kw * 1e3 if power_cap_kw else None,
        spot_max_share=spot_max_share,
    )

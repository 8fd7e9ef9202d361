"""The fleet as a mixed-integer linear program (scipy.optimize.milp, HiGHS).

Variables: ``x[r]`` in [0, 1], the share of a bucket's requests sent along route r (a co-located
pool, or a prefill pool then a decode pool); ``n[k]`` integer replicas of pool k (a config on a
node type); ``m[o]`` integer nodes of node type o. With lambda_b the bucket's rate and
``load[r,k]`` the replica-seconds per request that route r puts on pool k (1 / capacity, over
the target utilisation):

    minimise   sum_o m_o c_o P_o  +  sum_r x_r lambda_b kv_usd_r                ($ per hour)
    s.t.       sum_{r of b} x_r = 1                                  every bucket served
               sum_r x_r lambda_b load[r,k] <= n_k                   pool capacity
               sum_{k on o} n_k chips_k <= c_o m_o                   whole nodes
               sum_{o of chip} c_o m_o <= avail_chip                 availability
               cost <= budget,  idle + busy power <= cap             (when given)

(Mélange, Griggs et al. 2024, solves the same bucket-to-GPU assignment as an ILP.) Any of the
optional limits can be switched off, which is how an infeasible spec finds its binding limit.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from . import highs
from .formulation import assemble, flows, to_routes
from .prune import dominated_pools, kept_routes

F = NDArray[np.float64]
LIMITS = ("availability", "budget", "power")
MIP_GAP = 1e-3
"""stop when the fleet is within 0.1% of the best possible cost"""
TIME_LIMIT_S = 10.0
"""per solve; HiGHS returns its best fleet so far (status 1) when it is reached"""


@dataclass(frozen=True, kw_only=True)
class Route:
    bucket: int
    pools: tuple[int, ...]
    loads: tuple[float, ...]
    """replica-seconds per request on each pool"""
    busy_w: tuple[float, ...]
    """extra power over idle per replica-second on each pool (W)"""
    kv_usd_per_request: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Problem:
    rates: F
    """requests/s per bucket"""
    routes: tuple[Route, ...]
    pool_offer: tuple[int, ...]
    pool_chips: tuple[int, ...]
    offer_chip: tuple[str, ...]
    offer_node_chips: tuple[int, ...]
    offer_usd_per_chip_hour: tuple[float, ...]
    offer_idle_w_per_chip: tuple[float, ...]
    availability: dict[str, int]
    budget_usd_per_hour: float | None = None
    power_cap_w: float | None = None
    pool_keys: tuple[str, ...] = ()
    """names that identify each pool across programs (for warm starts; may be empty)"""
    offer_keys: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Solution:
    shares: F
    replicas: NDArray[np.int64]
    nodes: NDArray[np.int64]
    usd_per_hour: float
    power_w: float
    bound_usd_per_hour: float
    """HiGHS's proven lower bound on the cheapest fleet's cost"""
    limit_hit: bool = False
    """the solve stopped at its time limit (its best fleet so far)"""
    solve_s: float = 0.0

    @property
    def gap(self) -> float:
        """Relative optimality gap: how much cheaper a fleet might still be (0: proven
        cheapest, up to the solver's tolerance)."""
        if self.usd_per_hour <= 0:
            return 0.0
        return max(0.0, (self.usd_per_hour - self.bound_usd_per_hour) / self.usd_per_hour)

    @property
    def status(self) -> str:
        """'optimal, gap 0.02%' or 'time limit reached, gap 3.1%'."""
        head = "time limit reached" if self.limit_hit else "optimal"
        return f"{head}, gap {fmt_gap(self.gap)}"


def fmt_gap(gap: float) -> str:
    return f"{gap:.1%}" if gap >= 0.001 else f"{gap:.2%}"


def _power_row(p: Problem, nr: int, nk: int) -> F:
    row = np.zeros(nr + nk + len(p.offer_chip))
    for i, r in enumerate(p.routes):
        row[i] = p.rates[r.bucket] * sum(ld * w for ld, w in zip(r.loads, r.busy_w, strict=True))
    for o, idle in enumerate(p.offer_idle_w_per_chip):
        row[nr + nk + o] = idle * p.offer_node_chips[o]
    return row


def _cost_row(p: Problem, nr: int, nk: int) -> F:
    c = np.zeros(nr + nk + len(p.offer_chip))
    for i, r in enumerate(p.routes):
        c[i] = p.rates[r.bucket] * r.kv_usd_per_request * 3600.0
    for o in range(len(p.offer_chip)):
        c[nr + nk + o] = p.offer_usd_per_chip_hour[o] * p.offer_node_chips[o]
    return c


Hint = dict[str, int]
"""a fleet to start from: pool key -> replicas and 'node:' + node key -> nodes"""


def hint_of(p: Problem, s: Solution) -> Hint:
    """The fleet ``s`` as a warm start for a related program (other targets or chips)."""
    out = {k: int(n) for k, n in zip(p.pool_keys, s.replicas, strict=False) if n > 0}
    out |= {f"node:{k}": int(n) for k, n in zip(p.offer_keys, s.nodes, strict=False) if n > 0}
    return out


def _start(p: Problem, hint: Hint | None, nf: int, gone: set[int]) -> dict[int, float] | None:
    if not hint or not p.pool_keys or not p.offer_keys:
        return None
    nk = len(p.pool_offer)
    start = {nf + k: float(hint.get(key, 0)) for k, key in enumerate(p.pool_keys)}
    if any(start[nf + k] > 0 for k in gone):
        return None  # the hinted fleet uses a dropped pool: no start
    start |= {nf + nk + o: float(hint.get(f"node:{key}", 0)) for o, key in enumerate(p.offer_keys)}
    return start


def _fewest(
    p: Problem, shares: F, replicas: F, nodes: F
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The replicas the routed load needs and the nodes they fill. HiGHS may leave spare
    replicas in a node it pays for anyway (they cost nothing in the program); which ones it
    leaves is arbitrary, so the fleet is stated with none (never more than HiGHS's)."""
    load = np.zeros(len(p.pool_offer))
    for x, r in zip(shares, p.routes, strict=True):
        if x > 0:
            for k, ld in zip(r.pools, r.loads, strict=True):
                load[k] += x * p.rates[r.bucket] * ld
    n = np.minimum(replicas, np.ceil(load - 1e-6))
    chips = np.zeros(len(p.offer_chip))
    np.add.at(chips, np.asarray(p.pool_offer, dtype=np.int64), n * np.asarray(p.pool_chips))
    m = np.minimum(nodes, np.ceil(chips / np.asarray(p.offer_node_chips) - 1e-9))
    return n.astype(np.int64), m.astype(np.int64)


def solve(
    p: Problem,
    *,
    relax: frozenset[str] = frozenset(),
    gap: float = MIP_GAP,
    time_limit_s: float = TIME_LIMIT_S,
    compact: bool = True,
    hint: Hint | None = None,
) -> Solution | None:
    """Cheapest fleet, or None when infeasible (with the limits in ``relax`` switched off).
    ``compact``: drop dominated pools and solve the tightened flow form of
    :mod:`.formulation` (False: one variable per route, as written in the module docstring;
    the same optimum, kept as the reference). ``hint``: a fleet HiGHS starts from where it is
    feasible (:func:`hint_of`)."""
    t0 = time.perf_counter()
    gone = dominated_pools(p) if compact else set()
    fl, pairings = flows(p, kept_routes(p, gone), compact=compact)
    m = assemble(p, fl, pairings, relax, gone, tight=compact)
    out = highs.run(m, gap=gap, time_limit_s=time_limit_s, start=_start(p, hint, len(fl), gone))
    if out.x is None:
        return None
    nf, nk, nr = len(fl), len(p.pool_offer), len(p.routes)
    shares = to_routes(p, fl, pairings, out.x[:nf])
    replicas, nodes = _fewest(p, shares, np.round(out.x[nf : nf + nk]), np.round(out.x[nf + nk :]))
    full = np.r_[shares, replicas, nodes]
    usd = float(_cost_row(p, nr, nk) @ full)
    # no bound reported: proven optimal, or nothing proven (gap 100%)
    fallback = usd if out.optimal else 0.0
    bound = min(out.bound, usd) if np.isfinite(out.bound) else fallback
    return Solution(
        shares=shares,
        replicas=replicas,
        nodes=nodes,
        usd_per_hour=usd,
        power_w=float(_power_row(p, nr, nk) @ full),
        bound_usd_per_hour=bound,
        limit_hit=not out.optimal,
        solve_s=time.perf_counter() - t0,
    )


def _active(p: Problem) -> list[str]:
    on = {
        "availability": bool(p.availability),
        "budget": p.budget_usd_per_hour is not None,
        "power": p.power_cap_w is not None,
    }
    return [lim for lim in LIMITS if on[lim]]


def binding_limits(p: Problem) -> tuple[list[str], bool, Solution | None]:
    """Which optional limits make the problem infeasible: those whose removal alone makes it
    feasible (``together`` False), else the smallest set that must go together (True); plus
    the fleet without them (to size the gap). Empty when no relaxation helps."""
    active = _active(p)
    alone = []
    first: Solution | None = None
    for lim in active:
        s = solve(p, relax=frozenset({lim}))
        if s is not None:
            alone.append(lim)
            first = first or s
    if alone:
        return alone, False, first
    for size in range(2, len(active) + 1):
        for combo in itertools.combinations(active, size):
            s = solve(p, relax=frozenset(combo))
            if s is not None:
                return list(combo), True, s
    return [], False, None

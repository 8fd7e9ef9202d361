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
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

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


@dataclass(frozen=True, kw_only=True)
class Solution:
    shares: F
    replicas: NDArray[np.int64]
    nodes: NDArray[np.int64]
    usd_per_hour: float
    power_w: float


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


def solve(
    p: Problem,
    *,
    relax: frozenset[str] = frozenset(),
    gap: float = MIP_GAP,
    time_limit_s: float = TIME_LIMIT_S,
) -> Solution | None:
    """Cheapest fleet, or None when infeasible (with the limits in ``relax`` switched off)."""
    nr, nk, no = len(p.routes), len(p.pool_offer), len(p.offer_chip)
    nb = len(p.rates)
    nv = nr + nk + no
    cost = _cost_row(p, nr, nk)
    rows: list[tuple[F, float, float]] = []

    A = lil_matrix((nb + nk + no, nv))
    lo = np.zeros(nb + nk + no)
    hi = np.zeros(nb + nk + no)
    for i, r in enumerate(p.routes):
        A[r.bucket, i] = 1.0
        for k, ld in zip(r.pools, r.loads, strict=True):
            A[nb + k, i] += p.rates[r.bucket] * ld
    lo[:nb] = hi[:nb] = 1.0
    for k in range(nk):
        A[nb + k, nr + k] = -1.0
        o = p.pool_offer[k]
        A[nb + nk + o, nr + k] = p.pool_chips[k]
    lo[nb:] = -np.inf
    for o in range(no):
        A[nb + nk + o, nr + nk + o] = -p.offer_node_chips[o]
    if "availability" not in relax:
        for chip, avail in p.availability.items():
            row = np.zeros(nv)
            for o in range(no):
                if p.offer_chip[o] == chip:
                    row[nr + nk + o] = p.offer_node_chips[o]
            if row.any():
                rows.append((row, -np.inf, float(avail)))
    if p.budget_usd_per_hour is not None and "budget" not in relax:
        rows.append((cost, -np.inf, p.budget_usd_per_hour))
    if p.power_cap_w is not None and "power" not in relax:
        rows.append((_power_row(p, nr, nk), -np.inf, p.power_cap_w))
    cons = [LinearConstraint(A.tocsr(), lo, hi)]
    if rows:
        cons.append(
            LinearConstraint(
                np.stack([r[0] for r in rows]), [r[1] for r in rows], [r[2] for r in rows]
            )
        )
    integrality = np.r_[np.zeros(nr), np.ones(nk + no)]
    upper = np.r_[np.ones(nr), np.full(nk + no, np.inf)]
    res = milp(
        cost,
        constraints=cons,
        integrality=integrality,
        bounds=Bounds(np.zeros(nv), upper),
        options={"time_limit": time_limit_s, "mip_rel_gap": gap},
    )
    if res.x is None or res.status not in (0, 1):
        return None
    x = res.x
    return Solution(
        shares=x[:nr],
        replicas=np.round(x[nr : nr + nk]).astype(np.int64),
        nodes=np.round(x[nr + nk :]).astype(np.int64),
        usd_per_hour=float(cost @ x),
        power_w=float(_power_row(p, nr, nk) @ x),
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

"""The fleet program of :mod:`.milp` in the compact form handed to HiGHS.

Flows instead of routes: a route through one pool is one flow variable; the routes of a bucket
through a prefill pool and then a decode pool are, where every prefill pool of a group pairs
with every decode pool of that group (the usual case: the TTFT filter keeps whole rows), one
flow per prefill pool and one per decode pool, with the group's two sides balanced. Loads,
energy and KV cost of such routes are separable (each part depends on one pool), so the
program is the same; |P| + |D| variables replace |P| x |D|. A bucket whose pair routes are not
separable keeps one flow per route.

Valid inequalities tighten the LP relaxation without cutting off any fleet:

- ``n_k >= sum of the flows of bucket b through pool k`` (per side): any flow through a pool
  needs a whole replica, and a bucket's flows through it sum to at most 1;
- integer upper bounds: no pool needs more replicas than it takes to carry every bucket it can
  serve, no node type more nodes than those replicas fill (without them HiGHS can run into its
  time limit; the like inequality for nodes per node type made the solves slower and is left
  out).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

    from .milp import Problem

F = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Flow:
    """One continuous variable: the share of a bucket's requests on one pool (or one route)."""

    bucket: int
    pools: tuple[int, ...]
    loads: tuple[float, ...]
    busy_w: tuple[float, ...]
    kv_usd: float = 0.0
    side: int = 0
    """0: counts toward serving the bucket; 1: the decode side of a pairing"""
    pairing: int = -1
    """the pairing whose balance row it enters (-1: none)"""
    route: int = -1
    """the route it is (-1: one side of a pairing)"""


@dataclass(frozen=True, kw_only=True)
class Pairing:
    """Prefill pools x decode pools of one bucket, every pair a route."""

    prefill: tuple[int, ...]
    """flow indices"""
    decode: tuple[int, ...]
    route: dict[tuple[int, int], int] = field(default_factory=dict)
    """(prefill pool, decode pool) -> route index"""


def _separable(p: Problem, rs: list[int]) -> bool:
    """Whether each pool's load and energy, and the KV cost, are the same on all these pair
    routes (so a pair's route is its two halves), with no pair twice."""
    halves: list[dict[int, tuple[float, float]]] = [{}, {}]
    kv = {p.routes[i].kv_usd_per_request for i in rs}
    seen = set()
    for i in rs:
        r = p.routes[i]
        if r.pools in seen or r.pools[0] == r.pools[1]:
            return False
        seen.add(r.pools)
        for side in (0, 1):
            half = (r.loads[side], r.busy_w[side])
            if halves[side].setdefault(r.pools[side], half) != half:
                return False
    return len(kv) == 1 and not set(halves[0]) & set(halves[1])


def _pairings(p: Problem, b: int, rs: list[int], flows: list[Flow], out: list[Pairing]) -> None:
    """Group a bucket's pair routes by the set of decode pools a prefill pool pairs with."""
    partners: dict[int, set[int]] = defaultdict(set)
    route_of: dict[tuple[int, int], int] = {}
    first: dict[int, int] = {}
    for i in rs:
        kp, kd = p.routes[i].pools
        partners[kp].add(kd)
        route_of[(kp, kd)] = i
        first.setdefault(kp, i)
        first.setdefault(kd, i)
    groups: dict[frozenset[int], list[int]] = defaultdict(list)
    for kp in sorted(partners):
        groups[frozenset(partners[kp])].append(kp)
    for decs, pres in groups.items():
        g = len(out)
        pf: list[int] = []
        df: list[int] = []
        for side, ks in ((0, pres), (1, sorted(decs))):
            for k in ks:
                r = p.routes[first[k]]
                (pf if side == 0 else df).append(len(flows))
                flows.append(
                    Flow(
                        bucket=b,
                        pools=(k,),
                        loads=(r.loads[side],),
                        busy_w=(r.busy_w[side],),
                        kv_usd=r.kv_usd_per_request if side == 0 else 0.0,
                        side=side,
                        pairing=g,
                    )
                )
        out.append(
            Pairing(
                prefill=tuple(pf),
                decode=tuple(df),
                route={(kp, kd): route_of[(kp, kd)] for kp in pres for kd in decs},
            )
        )


def _route_flow(p: Problem, i: int) -> Flow:
    r = p.routes[i]
    return Flow(
        bucket=r.bucket,
        pools=r.pools,
        loads=r.loads,
        busy_w=r.busy_w,
        kv_usd=r.kv_usd_per_request,
        route=i,
    )


def flows(p: Problem, keep: list[int], *, compact: bool = True) -> tuple[list[Flow], list[Pairing]]:
    """The flow variables for the routes ``keep`` (``compact`` False: one per route)."""
    out: list[Flow] = []
    pairings: list[Pairing] = []
    pairs: dict[int, list[int]] = defaultdict(list)
    for i in keep:
        if compact and len(p.routes[i].pools) == 2:
            pairs[p.routes[i].bucket].append(i)
        else:
            out.append(_route_flow(p, i))
    for b, rs in sorted(pairs.items()):
        if _separable(p, rs):
            _pairings(p, b, rs, out, pairings)
        else:
            out.extend(_route_flow(p, i) for i in rs)
    return out, pairings


def to_routes(p: Problem, fl: list[Flow], pairings: list[Pairing], x: F) -> F:
    """Route shares from flow values; a pairing's flows are matched greedily (north-west
    corner), which uses at most |P| + |D| - 1 of its routes."""
    shares = np.zeros(len(p.routes))
    for f, v in zip(fl, x, strict=True):
        if f.route >= 0:
            shares[f.route] += v
    for g in pairings:
        pre = [[fl[j].pools[0], float(x[j])] for j in g.prefill if x[j] > 1e-12]
        dec = [[fl[j].pools[0], float(x[j])] for j in g.decode if x[j] > 1e-12]
        i = j = 0
        while i < len(pre) and j < len(dec):
            amount = min(pre[i][1], dec[j][1])
            shares[g.route[(int(pre[i][0]), int(dec[j][0]))]] += amount
            pre[i][1] -= amount
            dec[j][1] -= amount
            if pre[i][1] <= 1e-12:
                i += 1
            if dec[j][1] <= 1e-12:
                j += 1
    return shares


def replica_bounds(p: Problem, fl: list[Flow]) -> F:
    """Most replicas an optimal fleet needs per pool: enough to carry every bucket it can
    serve (per side, the heaviest flow of each bucket)."""
    peak: dict[tuple[int, int, int], float] = {}
    for f in fl:
        for k, ld in zip(f.pools, f.loads, strict=True):
            key = (k, f.bucket, f.side)
            peak[key] = max(peak.get(key, 0.0), float(p.rates[f.bucket]) * ld)
    ub = np.zeros(len(p.pool_offer))
    for (k, _, _), v in peak.items():
        ub[k] += v
    return np.ceil(ub * (1.0 + 1e-9))


class _Rows:
    """Sparse constraint rows, gathered as (columns, coefficients, lower, upper)."""

    def __init__(self) -> None:
        self.r: list[int] = []
        self.c: list[int] = []
        self.v: list[float] = []
        self.lo: list[float] = []
        self.hi: list[float] = []

    def add(self, cols: list[int], vals: list[float], lo: float, hi: float) -> None:
        n = len(self.lo)
        self.r += [n] * len(cols)
        self.c += cols
        self.v += vals
        self.lo.append(lo)
        self.hi.append(hi)


@dataclass(frozen=True, kw_only=True)
class Model:
    """Columns: flows, then replicas per pool, then nodes per node type."""

    cost: F
    upper: F
    integrality: F
    rows: NDArray[np.int64]
    cols: NDArray[np.int64]
    vals: F
    """the constraint matrix as (row, column, value) entries, in the order they were added"""
    lo: F
    hi: F

    @property
    def matrix(self) -> csr_matrix:
        """The constraint matrix (scipy, duplicate entries summed)."""
        from scipy.sparse import coo_matrix

        shape = (self.lo.size, self.cost.size)
        return coo_matrix((self.vals, (self.rows, self.cols)), shape=shape).tocsr()

    def csc(self) -> tuple[NDArray[np.int32], NDArray[np.int32], F] | None:
        """(column starts, row indices, values) of the matrix by columns, rows sorted within
        a column: what ``matrix.tocsc()`` gives, built without importing scipy. None when an
        entry repeats (the scipy matrix sums those)."""
        n = self.cost.size
        key = self.cols * max(self.lo.size, 1) + self.rows
        order = np.argsort(key, kind="stable")
        k = key[order]
        if k.size > 1 and bool(np.any(k[1:] == k[:-1])):
            return None
        starts = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(self.cols, minlength=n), out=starts[1:])
        return starts, self.rows[order].astype(np.int32), self.vals[order]


def _objective_and_power(p: Problem, fl: list[Flow]) -> tuple[F, F]:
    nf, nk, no = len(fl), len(p.pool_offer), len(p.offer_chip)
    cost, power = np.zeros(nf + nk + no), np.zeros(nf + nk + no)
    for j, f in enumerate(fl):
        rate = float(p.rates[f.bucket])
        cost[j] = rate * f.kv_usd * 3600.0
        power[j] = rate * sum(ld * w for ld, w in zip(f.loads, f.busy_w, strict=True))
    for o in range(no):
        cost[nf + nk + o] = p.offer_usd_per_chip_hour[o] * p.offer_node_chips[o]
        power[nf + nk + o] = p.offer_idle_w_per_chip[o] * p.offer_node_chips[o]
    return cost, power


def _capacity(p: Problem, fl: list[Flow], rows: _Rows) -> list[dict[int, float]]:
    """Pool capacity and whole-node rows; returns each pool's capacity coefficients."""
    nf, nk = len(fl), len(p.pool_offer)
    cap: list[dict[int, float]] = [{} for _ in range(nk)]
    for j, f in enumerate(fl):
        for k, ld in zip(f.pools, f.loads, strict=True):
            cap[k][j] = cap[k].get(j, 0.0) + float(p.rates[f.bucket]) * ld
    for k in range(nk):
        rows.add([*cap[k], nf + k], [*cap[k].values(), -1.0], -np.inf, 0.0)
    for o, c in enumerate(p.offer_node_chips):
        ks = [k for k in range(nk) if p.pool_offer[k] == o]
        cols = [nf + k for k in ks] + [nf + nk + o]
        rows.add(cols, [float(p.pool_chips[k]) for k in ks] + [-float(c)], -np.inf, 0.0)
    return cap


def _cuts(p: Problem, fl: list[Flow], cap: list[dict[int, float]], rows: _Rows) -> None:
    """The valid inequalities of the module docstring."""
    nf = len(fl)
    through: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for j, f in enumerate(fl):
        for k, ld in zip(f.pools, f.loads, strict=True):
            if ld > 0:
                through[(k, f.bucket, f.side)].append(j)
    for (k, _, _), js in through.items():
        if min(cap[k][j] for j in js) < 1.0:  # else the capacity row is already as tight
            rows.add([*js, nf + k], [1.0] * len(js) + [-1.0], -np.inf, 0.0)


def _limits(
    p: Problem, nf: int, cost: F, power: F, relax: frozenset[str], rows: _Rows
) -> dict[str, int]:
    """Availability, budget and power rows (unless relaxed); returns the availability used."""
    nk, no = len(p.pool_offer), len(p.offer_chip)
    avail = {} if "availability" in relax else dict(p.availability)
    for chip, n in avail.items():
        os_ = [o for o in range(no) if p.offer_chip[o] == chip]
        if os_:
            rows.add(
                [nf + nk + o for o in os_],
                [float(p.offer_node_chips[o]) for o in os_],
                -np.inf,
                float(n),
            )
    for on, row, lim in (
        (p.budget_usd_per_hour is not None and "budget" not in relax, cost, p.budget_usd_per_hour),
        (p.power_cap_w is not None and "power" not in relax, power, p.power_cap_w),
    ):
        if on and lim is not None:
            nz = np.flatnonzero(row)
            rows.add(nz.tolist(), row[nz].tolist(), -np.inf, float(lim))
    return avail


def _upper(p: Problem, fl: list[Flow], gone: set[int], avail: dict[str, int], tight: bool) -> F:
    nk, no = len(p.pool_offer), len(p.offer_chip)
    n_ub = replica_bounds(p, fl) if tight else np.full(nk, np.inf)
    n_ub[sorted(gone)] = 0.0
    m_ub = np.full(no, np.inf)
    if tight:
        chips = np.zeros(no)
        for k in range(nk):
            chips[p.pool_offer[k]] += n_ub[k] * p.pool_chips[k]
        m_ub = np.ceil(chips / np.asarray(p.offer_node_chips, dtype=np.float64) - 1e-9)
        for o, chip in enumerate(p.offer_chip):
            if chip in avail:
                m_ub[o] = min(m_ub[o], avail[chip] // p.offer_node_chips[o])
    return np.r_[np.ones(len(fl)), n_ub, m_ub]


def assemble(
    p: Problem,
    fl: list[Flow],
    pairings: list[Pairing],
    relax: frozenset[str],
    gone: set[int],
    *,
    tight: bool = True,
) -> Model:
    """The program over flows; ``tight``: with the cuts and integer bounds."""
    nf, nk, no = len(fl), len(p.pool_offer), len(p.offer_chip)
    rows = _Rows()
    serve: dict[int, list[int]] = defaultdict(list)
    for j, f in enumerate(fl):
        if f.side == 0:
            serve[f.bucket].append(j)
    for b in range(len(p.rates)):
        rows.add(serve[b], [1.0] * len(serve[b]), 1.0, 1.0)
    for g in pairings:
        cols = [*g.prefill, *g.decode]
        rows.add(cols, [1.0] * len(g.prefill) + [-1.0] * len(g.decode), 0.0, 0.0)
    cap = _capacity(p, fl, rows)
    if tight:
        _cuts(p, fl, cap, rows)
    cost, power = _objective_and_power(p, fl)
    avail = _limits(p, nf, cost, power, relax, rows)
    return Model(
        cost=cost,
        upper=_upper(p, fl, gone, avail, tight),
        integrality=np.r_[np.zeros(nf), np.ones(nk + no)],
        rows=np.asarray(rows.r, dtype=np.int64),
        cols=np.asarray(rows.c, dtype=np.int64),
        vals=np.asarray(rows.v, dtype=np.float64),
        lo=np.asarray(rows.lo),
        hi=np.asarray(rows.hi),
    )

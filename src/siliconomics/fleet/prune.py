"""Dominated pools, dropped before the fleet program is solved; the optimum is unchanged.

Pool ``a`` stands in for pool ``b`` when both are on the same node type, ``b``'s replica is
``q`` whole replicas of ``a`` (``chips_b = q chips_a``), and every route through ``b`` has a twin
through ``a`` (same bucket, same other pools) that puts no more load on ``a`` than ``q`` times
the load on ``b``, draws no more energy per request and costs no more KV transfer. Any fleet
using ``n`` replicas of ``b`` then has a twin using ``q n`` replicas of ``a`` on the same chips,
at the same cost and power: ``b`` can go. Pools no route uses go too. Ties (each stands in for
the other) keep the lower index, so of every set of equals one survives.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .milp import Problem

_Key = tuple[int, tuple[int, ...]]
_Val = tuple[float, float, tuple[float, ...], float, float]


def _signatures(p: Problem) -> tuple[list[dict[_Key, _Val]], set[int]]:
    """Per pool: (bucket, the route's pools with this one blanked) -> (load on it, its energy
    per request, the other pools' loads, their energy, KV USD per request); and the pools with
    two routes of one key (never dropped nor used as a stand-in)."""
    sig: list[dict[_Key, _Val]] = [{} for _ in p.pool_offer]
    twice: set[int] = set()
    for r in p.routes:
        energy = [ld * w for ld, w in zip(r.loads, r.busy_w, strict=True)]
        for pos, k in enumerate(r.pools):
            others = tuple(-1 if j == pos else kk for j, kk in enumerate(r.pools))
            other_loads = tuple(ld for j, ld in enumerate(r.loads) if j != pos)
            other_e = sum(e for j, e in enumerate(energy) if j != pos)
            val = (r.loads[pos], energy[pos], other_loads, other_e, r.kv_usd_per_request)
            if (r.bucket, others) in sig[k]:
                twice.add(k)
            sig[k][(r.bucket, others)] = val
    return sig, twice


def _stands_in(p: Problem, sig: list[dict[_Key, _Val]], a: int, b: int) -> bool:
    """Whether pool ``a`` can carry everything pool ``b`` carries (see the module docstring)."""
    if p.pool_chips[b] % p.pool_chips[a]:
        return False
    q = p.pool_chips[b] // p.pool_chips[a]
    sa = sig[a]
    for key, (ld, e, ol, oe, kv) in sig[b].items():
        v = sa.get(key)
        if v is None or v[0] > q * ld or v[1] > e or v[3] > oe or v[4] > kv:
            return False
        if any(x > y for x, y in zip(v[2], ol, strict=True)):
            return False
    return True


def dominated_pools(p: Problem) -> set[int]:
    """Pools that an optimal fleet never needs (unused, or another stands in for them)."""
    sig, twice = _signatures(p)
    gone = {k for k, s in enumerate(sig) if not s}
    by_offer: dict[int, list[int]] = defaultdict(list)
    for k, o in enumerate(p.pool_offer):
        if sig[k] and k not in twice:
            by_offer[o].append(k)
    for ks in by_offer.values():
        for b in ks:
            for a in ks:
                if a == b or not _stands_in(p, sig, a, b):
                    continue
                if a < b or not _stands_in(p, sig, b, a):
                    gone.add(b)
                    break
    return gone


def kept_routes(p: Problem, gone: set[int]) -> list[int]:
    """Indices of the routes that use no dropped pool."""
    return [i for i, r in enumerate(p.routes) if not gone.intersection(r.pools)]

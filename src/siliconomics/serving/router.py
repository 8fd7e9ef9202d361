"""Routers: which replica (engine) of a pool gets a request. Adding one is a class here plus
one line in ``ROUTERS``.

* ``round-robin``: replicas in turn.
* ``least-tokens``: the replica with the fewest outstanding tokens at the arrival instant
  (prompt tokens not yet prefilled plus output tokens not yet generated, over its queued and
  running requests).
* ``jsq``: join the shortest queue: fewest requests assigned and not finished.

Ties go to the lowest replica index, so routing is deterministic.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

from .engine import Engine


class Router:
    name = ""

    def pick(self, engines: Sequence[Engine], rid: int, t: float) -> Engine:  # pragma: no cover
        raise NotImplementedError


class RoundRobin(Router):
    name = "round-robin"

    def __init__(self) -> None:
        self.next = 0

    def pick(self, engines: Sequence[Engine], rid: int, t: float) -> Engine:
        e = engines[self.next % len(engines)]
        self.next += 1
        return e


class LeastTokens(Router):
    name = "least-tokens"

    def pick(self, engines: Sequence[Engine], rid: int, t: float) -> Engine:
        if len(engines) == 1:
            return engines[0]
        best, low = engines[0], math.inf
        for e in engines:  # Engine.load_at inlined: this loop is the router's whole cost
            load = e.load_tokens
            if e.run_steps:
                load -= e.n_dec * bisect_right(e.run_ends, t - e.run_t0)
            if load < low:  # strict: ties go to the lowest index
                best, low = e, load
        return best


class JoinShortestQueue(Router):
    name = "jsq"

    def pick(self, engines: Sequence[Engine], rid: int, t: float) -> Engine:
        if len(engines) == 1:
            return engines[0]
        return min(engines, key=lambda e: e.n_assigned)


ROUTERS: dict[str, type[Router]] = {
    "round-robin": RoundRobin,
    "least-tokens": LeastTokens,
    "jsq": JoinShortestQueue,
}

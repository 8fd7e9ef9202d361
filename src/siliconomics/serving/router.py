"""Routers: which replica (engine) of a pool gets a request. Adding one is a class here plus
one line in ``ROUTERS``.

* ``round-robin``: replicas in turn.
* ``least-tokens``: the replica with the fewest outstanding tokens at the arrival instant
  (prompt tokens not yet prefilled plus output tokens not yet generated, over its queued and
  running requests).
* ``jsq``: join the shortest queue: fewest requests assigned and not finished.

Ties go to the lowest replica index, so routing is deterministic.

Large pools (more than :data:`SCAN_MAX` replicas) are routed through a :class:`LoadIndex`: a
tournament tree of lower bounds of each replica's load, refreshed in O(log replicas) whenever
the event loop touches a replica. The bounds are exact except during a multi-step decode run,
whose load falls as its steps complete: there the bound is the load just before the run's
completion event, tightened to the load :data:`AHEAD` steps on once a pick has read the
replica (renewed when it lapses). The pick reads the exact load of the replicas whose bound
could still beat the best found, and stops at the first bound that cannot: the same replica
as a scan of every one, usually after a handful of reads.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence

from .engine import Engine

SCAN_MAX = 16
"""pools of at most this many replicas are scanned (cheaper than keeping an index)"""
AHEAD = 32
"""decode steps a replica's tight load bound looks ahead (:class:`LoadIndex`)"""
FLAT_MAX = 256
"""indexes of up to this many leaves filter the leaves instead of walking the tree"""
SCANNED_RUN_CLOSED = 1 << 62
"""decode runs on replicas a load scan reads are summed step by step (a bisection per read)"""


class Router:
    name = ""

    def pick(self, engines: Sequence[Engine], rid: int, t: float) -> Engine:  # pragma: no cover
        raise NotImplementedError

    def bind(self, engines: Sequence[Engine]) -> None:
        """Called once with the pool's engines before the run (indexed routers hook in)."""


class RoundRobin(Router):
    name = "round-robin"

    def __init__(self) -> None:
        self.next = 0

    def pick(self, engines: Sequence[Engine], rid: int, t: float) -> Engine:
        e = engines[self.next % len(engines)]
        self.next += 1
        return e


def tokens_at(e: Engine, t: float) -> int:
    """Outstanding tokens of ``e`` at ``t`` (:meth:`.engine.Engine.load_at`)."""
    if e.run_steps:
        return e.load_tokens - e.n_dec * e.run.count(t - e.run_t0)
    return e.load_tokens


def tokens_bound(e: Engine) -> int:
    """A lower bound of :func:`tokens_at` until ``e``'s state next changes: its load just
    before its run's last step ends (loads only fall during a run, and a query at the end
    instant itself comes after the run's completion event, which changes the state)."""
    m = e.run_steps
    if not m:
        return e.load_tokens
    end = e.run_t0 + e.run.end(m)  # the completion event's time, as the loop pushed it
    return tokens_at(e, math.nextafter(end, -math.inf))


def assigned(e: Engine, t: float) -> int:
    return e.n_assigned


def assigned_bound(e: Engine) -> int:
    return e.n_assigned


class LoadIndex:
    """Engines of one pool in a tournament tree of ``(bound, engine index)``: each node holds
    the least pair below it. :meth:`touch` refreshes one leaf and its ancestors (O(log
    replicas)); :meth:`best` walks the tree best first.

    With ``ahead`` > 0 (outstanding tokens), a replica whose load :meth:`best` reads during a
    decode run gets a tighter bound: its load once ``ahead`` more steps have completed, valid
    until the end of the step before (picks come in time order), after which :meth:`best`
    renews it. Without it every replica in a long run would keep the loose bound of its
    run's end and be read at every pick."""

    def __init__(
        self,
        engines: Sequence[Engine],
        load: Callable[[Engine, float], int],
        bound: Callable[[Engine], int],
        ahead: int = 0,
    ) -> None:
        self.engines, self.load, self.bound = list(engines), load, bound
        self.ahead = ahead
        self.base = self.engines[0].index
        size = 1
        while size < len(self.engines):
            size *= 2
        self.size = size
        pad: tuple[float, int] = (math.inf, 1 << 62)
        tree = [pad] * (2 * size)
        for i, e in enumerate(self.engines):
            tree[size + i] = (bound(e), e.index)
        for pos in range(size - 1, 0, -1):
            a, b = tree[2 * pos], tree[2 * pos + 1]
            tree[pos] = a if a <= b else b
        self.tree = tree
        self.stamp = [0] * len(self.engines)  # bumps when a leaf is set: stale expiries
        self.expiry: list[tuple[float, int, int]] = []  # (time, engine index, stamp)

    def touch(self, e: Engine) -> None:
        self.stamp[e.index - self.base] += 1
        self._set(self.size + e.index - self.base, (self.bound(e), e.index))

    def _set(self, pos: int, key: tuple[int, int]) -> None:
        tree = self.tree
        if tree[pos] == key:
            return
        tree[pos] = key
        pos >>= 1
        while pos:
            a, b = tree[2 * pos], tree[2 * pos + 1]
            m = a if a <= b else b
            if tree[pos] == m:
                return  # the ancestors are unchanged
            tree[pos] = m
            pos >>= 1

    def _renew(self, e: Engine, done: int) -> bool:
        """``e`` is in a run with ``done`` steps complete: set its leaf to its load ``ahead``
        steps on (False when that reaches the run's last step: the run's bound is as tight)."""
        j = done + self.ahead
        if j >= e.run_steps - 1:
            return False
        i = e.index - self.base
        self.stamp[i] += 1
        # valid before step j ends: until then at most j steps are complete
        heapq.heappush(self.expiry, (e.run_t0 + e.run.end(j), e.index, self.stamp[i]))
        self._set(self.size + i, (e.load_tokens - e.n_dec * j, e.index))
        return True

    def _exact(self, e: Engine, t: float) -> int:
        """``e``'s load at ``t`` (in a run, its leaf then gets a look-ahead bound)."""
        if self.ahead and e.run_steps:  # tokens_at, inlined
            done = e.run.count(t - e.run_t0)
            self._renew(e, done)
            return e.load_tokens - e.n_dec * done
        return self.load(e, t)

    def best(self, t: float) -> Engine:
        """The engine of least (load at ``t``, index)."""
        tree, size, engines, base = self.tree, self.size, self.engines, self.base
        exp, stamp = self.expiry, self.stamp
        while exp and exp[0][0] <= t:  # tight bounds that lapse by t: renew them
            _, idx, st = heapq.heappop(exp)
            if stamp[idx - base] == st:
                e = engines[idx - base]
                if not (e.run_steps and self._renew(e, e.run.count(t - e.run_t0))):
                    self.touch(e)  # too near the run's end: back to the run's bound
        best: tuple[float, int] = (math.inf, 0)
        if size <= FLAT_MAX:  # read the root's engine, then every leaf that could beat it
            idx = tree[1][1]  # (read before the read below renews its leaf)
            best = (self._exact(engines[idx - base], t), idx)
            for key in sorted([k for k in tree[size : size + len(engines)] if k < best]):
                if key >= best:
                    break
                cand = (self._exact(engines[key[1] - base], t), key[1])
                if cand < best:
                    best = cand
            return engines[best[1] - base]
        frontier = [(tree[1], 1)]
        while frontier:
            entry, pos = heapq.heappop(frontier)
            if entry >= best:  # every node left (and below it) is no better
                break
            if pos >= size:
                cand = (self._exact(engines[entry[1] - base], t), entry[1])
                if cand < best:
                    best = cand
                continue
            c = 2 * pos
            if tree[c] < best:
                heapq.heappush(frontier, (tree[c], c))
            if tree[c + 1] < best:
                heapq.heappush(frontier, (tree[c + 1], c + 1))
        return engines[best[1] - base]


class _Indexed(Router):
    """A router that picks the least (load, index), by scan or through a :class:`LoadIndex`."""

    load: Callable[[Engine, float], int] = staticmethod(tokens_at)
    bound: Callable[[Engine], int] = staticmethod(tokens_bound)
    ahead = 0  # LoadIndex: steps a tight bound looks ahead in a decode run (0: no run bounds)

    def __init__(self) -> None:
        self.index: LoadIndex | None = None

    def bind(self, engines: Sequence[Engine]) -> None:
        if len(engines) <= SCAN_MAX:
            for e in (
                engines if type(self).ahead else ()
            ):  # the scan reads every run at every pick: keep lists
                e.run_closed = SCANNED_RUN_CLOSED
        else:
            cls = type(self)
            self.index = LoadIndex(engines, cls.load, cls.bound, cls.ahead)
            for e in engines:
                e.touch = self.index.touch

    def pick(self, engines: Sequence[Engine], rid: int, t: float) -> Engine:
        if len(engines) == 1:
            return engines[0]
        if self.index is not None:
            return self.index.best(t)
        return self.scan(engines, t)

    def scan(self, engines: Sequence[Engine], t: float) -> Engine:
        load = type(self).load
        return min(engines, key=lambda e: load(e, t))  # first of equal loads: lowest index


class LeastTokens(_Indexed):
    name = "least-tokens"
    load = staticmethod(tokens_at)
    bound = staticmethod(tokens_bound)
    ahead = AHEAD

    def scan(self, engines: Sequence[Engine], t: float) -> Engine:
        best, low = engines[0], math.inf
        for e in engines:  # tokens_at inlined: this loop is the router's whole cost
            load = e.load_tokens
            if e.run_steps:
                if load - e.n_dec * e.run_steps >= low:  # even a finished run cannot win
                    continue
                load -= e.n_dec * e.run.count(t - e.run_t0)
            if load < low:  # strict: ties go to the lowest index
                best, low = e, load
        return best


class JoinShortestQueue(_Indexed):
    name = "jsq"
    load = staticmethod(assigned)
    bound = staticmethod(assigned_bound)


ROUTERS: dict[str, type[Router]] = {
    "round-robin": RoundRobin,
    "least-tokens": LeastTokens,
    "jsq": JoinShortestQueue,
}

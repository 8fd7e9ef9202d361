"""Request-level serving simulator: workload -> router -> replica schedulers -> metrics.

Public API::

    simulate(config, workload, *, seed=0, rng=None, slo=None) -> SimResult
    max_rate(config, workload, slo, ...) -> CapacityResult
    min_replicas(config, workload, slo, rate, ...) -> CapacityResult
"""

from __future__ import annotations

from .capacity import CapacityResult, max_rate, min_replicas
from .config import PoolConfig, ServingConfig, Slo
from .metrics import Dist, PoolStats, RequestLog, SimResult
from .simulate import simulate
from .traces import named_workload, parse_trace_csv, trace_workload
from .workload import Arrival, Lengths, Requests, Workload, parse_arrival, parse_lengths

__all__ = [
    "Arrival",
    "CapacityResult",
    "Dist",
    "Lengths",
    "PoolConfig",
    "PoolStats",
    "RequestLog",
    "Requests",
    "ServingConfig",
    "SimResult",
    "Slo",
    "Workload",
    "max_rate",
    "min_replicas",
    "named_workload",
    "parse_arrival",
    "parse_lengths",
    "parse_trace_csv",
    "simulate",
    "trace_workload",
]

"""Build a deployment and a workload from plain values (the CLI's and planner's entry)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ..catalog.schema import ModelSpec
from ..errors import SiliconomicsError
from ..ops.device import Device
from .config import PoolConfig, ServingConfig
from .traces import NAMED, named_workload, parse_trace_csv, trace_workload
from .workload import Workload, parse_arrival, parse_lengths

PoolSide = tuple[Device, int, int]
"""(device, tp, replicas) of one side of a disaggregated deployment"""


def make_config(
    model: ModelSpec,
    pool: PoolConfig,
    *,
    prefill: PoolSide | None = None,
    decode: PoolSide | None = None,
    router: str = "least-tokens",
    price_overrides: dict[str, float] | None = None,
) -> ServingConfig:
    """One pool, or, when ``prefill`` or ``decode`` is given as (device, tp, replicas), a
    disaggregated pair: each side is ``pool`` on that device with that tp and replica count
    (the missing side keeps ``pool``'s)."""
    overrides = dict(price_overrides or {})
    if prefill is None and decode is None:
        return ServingConfig(model=model, pool=pool, router=router, price_overrides=overrides)
    return ServingConfig(
        model=model,
        pool=_side(pool, prefill),
        decode_pool=_side(pool, decode),
        router=router,
        price_overrides=overrides,
    )


def _side(pool: PoolConfig, side: PoolSide | None) -> PoolConfig:
    if side is None:
        return pool
    dev, tp, reps = side
    return replace(pool, device=dev, plan=replace(pool.plan, tp=tp, replicas=reps))


def make_workload(
    *,
    rate: float | None,
    arrival: str = "poisson",
    input_len: str = "1024",
    output_len: str = "256",
    n_requests: int | None = None,
    trace: str | None = None,
    trace_lines: Iterable[str] | None = None,
) -> Workload:
    """A workload from CLI-style text. ``trace`` is a named trace (``azure-conv``, ...) or,
    with ``trace_lines`` (the opened file), a CSV to replay. Without a rate, a synthetic
    workload runs offline (all requests at t = 0)."""
    n = n_requests if n_requests is not None else 1000
    if trace is not None and trace_lines is None:
        if trace not in NAMED:
            raise SiliconomicsError(
                f"--trace '{trace}': not a file and not a named trace ({', '.join(NAMED)})"
            )
        return named_workload(trace, n_requests=n, rate=rate)
    if trace_lines is not None:
        reqs = parse_trace_csv(trace_lines, where=trace or "trace")
        return trace_workload(reqs, n_requests=n_requests or len(reqs), rate=rate, name=trace or "")
    arr = parse_arrival(arrival, rate) if rate is not None else parse_arrival("burst", 1.0)
    return Workload(
        arrival=arr,
        input=parse_lengths(input_len, what="--input"),
        output=parse_lengths(output_len, what="--output"),
        n_requests=n,
    )

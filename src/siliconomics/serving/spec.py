"""Build a deployment and a workload from plain values (the CLI's and planner's entry)."""

from __future__ import annotations

from collections.abc import Iterable

from ..catalog.registry import get_chip
from ..catalog.schema import ModelSpec
from ..errors import SiliconomicsError
from ..parallel.plan import InferencePlan
from .config import PoolConfig, ServingConfig
from .traces import NAMED, named_workload, parse_trace_csv, trace_workload
from .workload import Workload, parse_arrival, parse_lengths


def make_config(
    model: ModelSpec,
    chip: str,
    *,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    dp: int = 1,
    replicas: int = 1,
    weight_dtype: str = "bf16",
    act_dtype: str = "bf16",
    kv_dtype: str = "bf16",
    scheduler: str = "chunked",
    router: str = "least-tokens",
    max_seqs: int | None = 256,
    max_batched_tokens: int = 8192,
    block_size: int = 16,
    buckets: tuple[int, ...] = (),
    prefill: tuple[str, int, int] | None = None,
    decode: tuple[str, int, int] | None = None,
    price_overrides: dict[str, float] | None = None,
) -> ServingConfig:
    """One pool of ``replicas`` x (tp, pp) on ``chip``; or, when ``prefill`` or ``decode``
    is given as (chip, tp, replicas), a disaggregated pair whose missing side takes
    ``chip``/``tp``/``replicas``."""

    def pool(chip_id: str, tp_: int, reps: int) -> PoolConfig:
        plan = InferencePlan(
            tp=tp_,
            pp=pp,
            ep=ep,
            dp=dp,
            replicas=reps,
            weight_dtype=weight_dtype,
            act_dtype=act_dtype,
            kv_dtype=kv_dtype,
        )
        return PoolConfig(
            chip=get_chip(chip_id),
            plan=plan,
            scheduler=scheduler,
            max_seqs=max_seqs,
            max_batched_tokens=max_batched_tokens,
            block_size=block_size,
            buckets=buckets,
        )

    overrides = dict(price_overrides or {})
    if prefill is None and decode is None:
        return ServingConfig(
            model=model,
            pool=pool(chip, tp, replicas),
            router=router,
            price_overrides=overrides,
        )
    p = prefill or (chip, tp, replicas)
    d = decode or (chip, tp, replicas)
    return ServingConfig(
        model=model,
        pool=pool(*p),
        decode_pool=pool(*d),
        router=router,
        price_overrides=overrides,
    )


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

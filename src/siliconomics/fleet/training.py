"""Cheapest (chip, cluster size, parallelism) to train a token budget by a deadline.

For each allowed chip and cluster size (whole nodes, doubling up to ``max_chips`` and the
availability limit) the training model's layout search
(:func:`siliconomics.training.search_plans`) gives the fastest layout; the run takes
``tokens / tokens_per_s`` and costs ``chips x USD per chip-hour x hours`` in the spec's pricing
mode. The cheapest run that meets the deadline wins; the cheapest per chip are the runner-ups.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..catalog.catalog import Catalog
from ..catalog.schema import ModelSpec
from ..economics.pricebook import PriceBook
from ..errors import SiliconomicsError
from ..ops.device import Device
from .offers import Offer, offers_for_chip
from .spec import PlanSpec, TrainingJob

SearchFn = Callable[..., list[Any]]


@dataclass(frozen=True, kw_only=True)
class TrainOption:
    chip: str
    system: str
    chips: int
    layout: str
    """parallelism of the fastest layout (dp, tp, pp, ...)"""
    step_time_s: float
    tokens_per_s: float
    mfu: float
    days: float
    usd_per_hour: float
    usd_total: float


@dataclass(frozen=True, kw_only=True)
class TrainingResult:
    model: str
    tokens: float
    deadline_days: float
    pricing: str
    best: TrainOption
    per_chip: tuple[TrainOption, ...]
    """cheapest option meeting the deadline on each chip, cheapest first"""
    excluded: dict[str, str]


def _search_fn() -> SearchFn:
    try:
        mod = importlib.import_module("siliconomics.training")
        fn: SearchFn = mod.search_plans
    except (ImportError, AttributeError):
        raise SiliconomicsError(
            "spec field 'training': training plans need siliconomics.training.search_plans, "
            "which this build does not have"
        ) from None
    return fn


def _sizes(offer: Offer, limit: int) -> list[int]:
    out, n = [], offer.node_chips
    while n <= limit:
        out.append(n)
        n *= 2
    return out


def _layout(plan: object) -> str:
    """Compact parallelism, e.g. 'dp64 tp2 zero3 mb2 recompute=full' (unit degrees left out)."""
    if plan is None:
        return "-"
    parts = [f"dp{getattr(plan, 'dp', '?')}"]
    for k in ("tp", "pp", "cp", "ep"):
        v = getattr(plan, k, 1)
        if v != 1:
            parts.append(f"{k}{v}")
    for k, short in (("zero", "zero"), ("micro_batch", "mb")):
        if hasattr(plan, k):
            parts.append(f"{short}{getattr(plan, k)}")
    rc = getattr(plan, "recompute", "none")
    if rc != "none":
        parts.append(f"recompute={rc}")
    return " ".join(parts)


def _options(job: TrainingJob, inp: _Resolved, chip: str, offer: Offer, fn: SearchFn) -> list:
    spec, model = inp.spec, inp.model
    limit = min(job.max_chips, spec.availability.get(chip, job.max_chips))
    out: list[TrainOption] = []
    met = 0
    for n in _sizes(offer, limit):
        try:
            found = fn(
                model,
                inp.devices[chip],
                n,
                seq_len=job.seq_len,
                global_batch_seqs=job.global_batch_seqs,
                top=1,
            )
        except SiliconomicsError:
            continue
        except NotImplementedError:
            raise SiliconomicsError(
                "spec field 'training': siliconomics.training.search_plans is not implemented "
                "in this build"
            ) from None
        if not found:
            continue
        e = found[0]
        tps = float(e.tokens_per_s)
        hours = job.tokens / tps / 3600.0
        usd_h = n * offer.usd_per_chip_hour
        out.append(
            TrainOption(
                chip=chip,
                system=offer.system,
                chips=n,
                layout=_layout(getattr(e, "plan", None)),
                step_time_s=float(e.step_time_s),
                tokens_per_s=tps,
                mfu=float(getattr(e, "mfu", float("nan"))),
                days=hours / 24.0,
                usd_per_hour=usd_h,
                usd_total=usd_h * hours,
            )
        )
        met += hours / 24.0 <= job.deadline_days
        if met == 2:
            break  # one size past the first that meets the deadline: catches a bigger cluster
            # being cheaper (less recomputation or pipelining) without scanning them all
    return out


@dataclass(frozen=True, kw_only=True)
class _Resolved:
    spec: PlanSpec
    model: ModelSpec
    devices: dict[str, Device]


def plan_training(
    spec: PlanSpec,
    catalog: Catalog,
    progress: Callable[[str, int, int], None] | None = None,
    *,
    search: SearchFn | None = None,
    book: PriceBook | None = None,
) -> TrainingResult:
    """Cheapest cluster that trains ``spec.training.tokens`` within the deadline (``search``:
    the layout search, default :func:`siliconomics.training.search_plans`, called with the
    model, a ``Device`` and a chip count). Ids in the spec resolve through ``catalog``."""
    job = spec.training
    if job is None:
        raise SiliconomicsError("spec field 'training' is missing")
    try:
        model = catalog.model(job.model)
    except SiliconomicsError as e:
        raise SiliconomicsError(f"spec field 'training.model': {e}") from None
    fn = search or _search_fn()
    from .planner import allowed_chips, devices  # the same chip rules as serving

    chips = allowed_chips(spec, catalog)
    inp = _Resolved(spec=spec, model=model, devices=devices(chips, catalog))
    feasible: list[TrainOption] = []
    fastest: dict[str, TrainOption] = {}
    excluded: dict[str, str] = {}
    for i, chip in enumerate(chips):
        if progress:
            progress("training layouts", i, len(chips))
        offers, why = offers_for_chip(chip, spec, book, catalog)
        if not offers:
            excluded[chip] = why
            continue
        offer = max(offers, key=lambda o: (o.node_chips, -o.usd_per_chip_hour))
        opts = _options(job, inp, chip, offer, fn)
        if not opts:
            excluded[chip] = "no training layout fits in memory up to the cluster limit"
            continue
        fastest[chip] = min(opts, key=lambda o: o.days)
        ok = [o for o in opts if o.days <= job.deadline_days]
        if ok:
            feasible.append(min(ok, key=lambda o: o.usd_total))
        else:
            excluded[chip] = (
                f"needs {fastest[chip].days:.1f} days on {fastest[chip].chips} chips "
                f"(the most allowed)"
            )
    if progress:
        progress("training layouts", len(chips), len(chips))
    if not feasible:
        best = min(fastest.values(), key=lambda o: o.days, default=None)
        hint = f"; fastest: {best.chip} x{best.chips} in {best.days:.1f} days" if best else ""
        raise SiliconomicsError(
            f"spec field 'training.deadline_days': no allowed chip trains {job.tokens:.3g} "
            f"tokens of {job.model} in {job.deadline_days:g} days within max_chips "
            f"{job.max_chips} and availability{hint}"
        )
    feasible.sort(key=lambda o: o.usd_total)
    return TrainingResult(
        model=job.model,
        tokens=job.tokens,
        deadline_days=job.deadline_days,
        pricing=spec.pricing,
        best=feasible[0],
        per_chip=tuple(feasible),
        excluded=excluded,
    )

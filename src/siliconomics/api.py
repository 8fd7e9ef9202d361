"""The Python API: the edge for notebooks and scripts, one function per CLI command.

Every function takes ids, files or objects (a chip id, a chip TOML/JSON file, a ``ChipSpec`` or
a ``Device``; a model id, a model file, a Hugging Face ``config.json`` or a ``ModelSpec``),
resolves them once (:mod:`siliconomics.resolve`) and returns a :class:`Result`: the typed result
of the library (``result.value``, whose attributes are also reachable on the result itself),
``to_dict()`` (exactly the ``--json`` output of the matching command) and ``to_pandas()`` (a
DataFrame of its main table; needs pandas).

Units: SI throughout (seconds, bytes, FLOP/s, watts, joules), USD for money, tokens for lengths.
Latency targets may be given as seconds (``0.05``) or text with a unit (``"50ms"``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from . import resolve
from .calibrate.bands import DEFAULT_LEVEL, derate, searched
from .catalog.bandtable import Residual
from .catalog.catalog import Catalog
from .catalog.schema import EfficiencyProfile, ModelSpec
from .catalog.stacks import Calibration, ProfileSet, Workload
from .economics.pricebook import Pricing
from .economics.serving_cost import price_simulation
from .economics.tco import OwnedAssumptions
from .errors import SiliconomicsError
from .fleet import PlanOutcome, run_plan
from .fleet.spec import PlanSpec, parse_spec
from .inference.estimate import estimate_max_throughput, estimate_static
from .inference.speculative import Speculative
from .ops.device import Device
from .parallel.plan import InferencePlan
from .report import plan_report, serialize, sim_tables, train_tables
from .report import tco as tco_report
from .report.bands import AnswerBand, answer_band, distinguishable
from .resolve import ChipLike, ModelLike
from .search.assess import Assessment, assess
from .search.compare import Comparison, compare_chips
from .search.tco_study import REFERENCE_CHIPS, TcoStudy, study_tco
from .serving import CapacityResult, Slo, max_rate, min_replicas
from .serving import simulate as run_simulation
from .serving.config import PoolConfig
from .serving.spec import make_config, make_workload
from .training.study import TrainingStudy, study_training
from .units import DTYPES, parse_positive
from .validate.rows import ValidationReport
from .validate.suite import validate_measured

T = TypeVar("T")

__all__ = [
    "Result",
    "compare",
    "estimate",
    "plan",
    "simulate",
    "tco",
    "train",
    "validate",
]

PricingLike = str | Pricing
"""A pricing mode (``on-demand``, ``reserved-1y``, ``reserved-3y``, ``spot``,
``capacity-block``, ``owned``) priced from the packaged book, or a ready :class:`Pricing`
(``siliconomics.resolve.pricing``: a user's prices file, a region, providers)."""


@dataclass(frozen=True)
class Result(Generic[T]):
    """A typed result with its JSON form and a table view."""

    value: T
    """the library's result object (Assessment, Comparison, TrainingStudy, ...)"""
    _to_dict: Callable[[T], dict[str, Any]]
    _table: Callable[[dict[str, Any]], list[dict[str, Any]]]
    band: AnswerBand | None = None
    """the error band of the answer (``band.band.lo``/``hi``: log speed ratios) and the
    software stack it was resolved for; None where bands are per row (compare, validate)"""
    calibration: Calibration | None = None
    """the stack profiles and band table the answer used"""
    distinguishable: Mapping[str, bool | None] = field(default_factory=dict)
    """compare: chip -> whether its cost band lies wholly above the cheapest chip's"""
    config: Any = None
    """simulate: the deployment that was simulated (ServingConfig)"""

    def to_dict(self) -> dict[str, Any]:
        """The same dict the command prints with ``--json`` (JSON-safe values): every
        predicted value with ``<name>_low``/``<name>_high`` from its error band, and a
        ``band`` entry saying where the band came from."""
        out: dict[str, Any] = json.loads(json.dumps(self._to_dict(self.value), default=str))
        return out

    def to_pandas(self) -> Any:
        """The main table (one row per chip, plan, pricing mode, measured row, ...) as a
        ``pandas.DataFrame``, band columns included. Needs pandas (``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "to_pandas() needs pandas, which is not installed: pip install pandas"
            ) from None
        return pd.DataFrame(self._table(self.to_dict()))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.value, name)


def _one_row(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in d.items() if not isinstance(v, dict | list)}]


def _key(name: str) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    def rows(d: dict[str, Any]) -> list[dict[str, Any]]:
        return list(d.get(name) or [])

    return rows


def _banded(
    fn: Callable[[T], dict[str, Any]], ab: AnswerBand | None
) -> Callable[[T], dict[str, Any]]:
    """``fn`` with the answer's band attached to its dict."""
    if ab is None:
        return fn

    def with_band(v: T) -> dict[str, Any]:
        d = fn(v)
        ab.attach(d)
        return d

    return with_band


def _seconds(v: float | str | None, what: str) -> float | None:
    if v is None:
        return None
    return parse_positive(v, "seconds", what=what)


def _dtype(name: str, v: str) -> str:
    if v not in DTYPES:
        raise SiliconomicsError(f"{name} '{v}' is not a dtype; allowed: {', '.join(DTYPES)}")
    return v


def _pricing(
    pricing: PricingLike, prices: Mapping[str, float] | None, utilisation: float = 1.0
) -> Pricing:
    """``pricing`` as a Pricing, with ``prices`` (chip id -> USD per chip-hour) applied to
    its mode."""
    if isinstance(pricing, Pricing):
        p = pricing
    else:
        p = resolve.pricing(pricing, utilisation=utilisation)
    if prices:
        p = replace(p, book=p.book.with_chip_hour(resolve.chip_prices(prices, p), p.mode))
    return p


def _calibrated(
    devs: Sequence[Device],
    stack: str | None,
    profile: str | Path | None,
    level: float,
    workload: Workload = "inference",
) -> tuple[list[Device], Calibration]:
    """The devices with the profile of their family for ``stack``/``profile`` (as given when
    neither is set), and the calibration their bands come from."""
    calib = resolve.calibration(
        stack, profile, level, workload, [d.chip.family for d in devs], extra=[d.eff for d in devs]
    )
    if stack is None and profile is None:
        return list(devs), calib
    return [Device(chip=d.chip, eff=calib.resolved[d.chip.family].profile) for d in devs], calib


def _with_memory_fraction(dev: Device, fraction: float | None) -> Device:
    """``dev`` whose engine fills ``fraction`` of device memory (the rest is the runtime
    reserve); unchanged when ``fraction`` is None."""
    if fraction is None:
        return dev
    if not 0.0 < fraction <= 1.0:
        raise SiliconomicsError(f"memory_fraction {fraction:g}: allowed: a share in (0, 1]")
    eff = dev.eff.model_copy(
        update={"memory_reserve_fraction": 1.0 - fraction, "memory_reserve_of_free": False}
    )
    return Device(chip=dev.chip, eff=eff)


def _layout(
    tp: int, pp: int, ep: int, dp: int, replicas: int, dtypes: tuple[str, str, str]
) -> InferencePlan:
    """One replica's layout and the (weights, activations, KV cache) dtypes."""
    w, a, kv = dtypes
    return InferencePlan(
        tp=tp,
        pp=pp,
        ep=ep,
        dp=dp,
        replicas=replicas,
        weight_dtype=_dtype("weights_dtype", w),
        act_dtype=_dtype("act_dtype", a),
        kv_dtype=_dtype("kv_dtype", kv),
    )


def _regime(*limits: object) -> str:
    return "latency-target" if any(v is not None for v in limits) else "max-throughput"


def estimate(
    model: ModelLike,
    chip: ChipLike,
    *,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    dp: int = 1,
    replicas: int = 1,
    batch: int = 1,
    input_len: int = 1024,
    output_len: int = 256,
    weights_dtype: str = "bf16",
    act_dtype: str = "bf16",
    kv_dtype: str = "bf16",
    mode: str = "static",
    pricing: PricingLike = "on-demand",
    prices: Mapping[str, float] | None = None,
    stack: str | None = None,
    profile: str | Path | None = None,
    level: float = DEFAULT_LEVEL,
    buckets: tuple[Sequence[int], Sequence[int]] | None = None,
    memory_fraction: float | None = None,
    mtp: int | None = None,
    accepted: float | None = None,
) -> Result[Assessment]:
    """One configuration (``siliconomics estimate``): TTFT and TPOT (s), output tokens/s,
    memory per chip (bytes), USD per million tokens, joules per token and the per-op
    breakdown, each with its error band (``*_low``/``*_high``, at ``level``). ``mode``:
    ``static`` (one batch of ``batch`` sequences) or ``max-throughput`` (continuous batching,
    ``batch`` as the engine's limit). ``pricing``: a pricing mode or a Pricing; ``prices``:
    chip id -> USD per chip-hour overrides. ``stack``: the software stack (default: the
    chip's best published one); ``profile``: a calibration directory. ``buckets``: the
    deployment's compiled (context, generation) sequence buckets on a static-shape stack
    (AWS Neuron), static mode only; default: the stack's automatic buckets.
    ``memory_fraction``: the share of device memory the engine may fill with weights,
    activations and KV cache (vLLM's ``--gpu-memory-utilization``, SGLang's
    ``--mem-fraction-static``); default: 1 - the profile's runtime reserve. ``mtp``, ``accepted``:
    speculative decoding with the model's MTP module, ``mtp`` drafts per step of which
    ``accepted`` tokens per step are emitted on average (1 to mtp + 1; docs/MODEL.md)."""
    m = resolve.model(model)
    spec = _speculative(mtp, accepted)
    (dev,), calib = _calibrated([resolve.device(chip)], stack, profile, level)
    dev = _with_memory_fraction(dev, memory_fraction)
    p = _layout(tp, pp, ep, dp, replicas, (weights_dtype, act_dtype, kv_dtype))
    shapes = resolve.buckets(buckets, dev, mode)
    if mode == "static":
        est = estimate_static(m, dev, p, batch, input_len, output_len, shapes=shapes, spec=spec)
    elif mode == "max-throughput":
        est = estimate_max_throughput(
            m, dev, p, input_len, output_len, batch_limit=batch, spec=spec
        )
    else:
        raise SiliconomicsError(f"--mode '{mode}': allowed: static, max-throughput")
    a = assess(est, _pricing(pricing, prices))
    regime = "latency-target" if mode == "static" and batch == 1 else "max-throughput"
    ab = answer_band(calib, dev.chip.family, m, regime)
    return Result(a, _banded(serialize.assessment_dict, ab), _one_row, ab, calib)


def _speculative(mtp: int | None, accepted: float | None) -> Speculative | None:
    if mtp is None and accepted is None:
        return None
    if mtp is None:
        raise SiliconomicsError("--accepted needs --mtp (the draft tokens per step)")
    if accepted is None:
        raise SiliconomicsError(
            "--mtp needs --accepted: the mean tokens a step emits (1 to mtp+1), a property of "
            "the model, draft and text; e.g. 1.92 / 2.58 / 2.82 for DeepSeek-R1 MTP 1 / 2 / 3 "
            "(TensorRT-LLM tech blog 1)"
        )
    return Speculative(draft_tokens=mtp, accepted=float(accepted))


def compare(
    model: ModelLike,
    chips: Iterable[ChipLike] | None = None,
    *,
    input_len: int = 1024,
    output_len: int = 256,
    ttft: float | str | None = None,
    tpot: float | str | None = None,
    weights_dtype: str = "bf16",
    act_dtype: str = "bf16",
    kv_dtype: str = "bf16",
    pricing: PricingLike = "on-demand",
    prices: Mapping[str, float] | None = None,
    stack: str | None = None,
    profile: str | Path | None = None,
    level: float = DEFAULT_LEVEL,
    mtp: int | None = None,
    accepted: float | None = None,
) -> Result[Comparison]:
    """Every chip (or ``chips``: ids, files, objects) at its cheapest layout within the
    targets (``siliconomics compare``), ranked by USD per million output tokens. ``ttft``,
    ``tpot``: seconds or text with a unit. Each feasible chip's values carry their error band
    and ``distinguishable_from_cheapest`` (its cost band lies wholly above the cheapest
    chip's). ``mtp``, ``accepted``: speculative decoding with the model's MTP module on every
    chip (as in :func:`estimate`). Table: one row per chip."""
    m = resolve.model(model)
    spec = _speculative(mtp, accepted)
    devs, calib = _calibrated(resolve.devices(chips), stack, profile, level)
    cmp = compare_chips(
        m,
        devs,
        input_len=input_len,
        output_len=output_len,
        ttft_s=_seconds(ttft, "ttft"),
        tpot_s=_seconds(tpot, "tpot"),
        weight_dtype=_dtype("weights_dtype", weights_dtype),
        act_dtype=_dtype("act_dtype", act_dtype),
        kv_dtype=_dtype("kv_dtype", kv_dtype),
        price_overrides=_pricing(pricing, prices),
        spec=spec,
    )
    regime = _regime(ttft, tpot)
    marks = distinguishable(cmp, calib, regime)

    def to_dict(c: Comparison) -> dict[str, Any]:
        d = serialize.comparison_dict(c)
        fam = {ch.chip.id: ch.chip.family for ch in c.choices}
        for row in d["chips"]:
            if row["feasible"]:
                answer_band(calib, fam[row["chip"]], m, regime).attach(row)
                row["distinguishable_from_cheapest"] = marks.get(row["chip"])
        return d

    return Result(cmp, to_dict, _key("chips"), None, calib, marks)


def train(
    model: ModelLike,
    chip: ChipLike,
    chips: int,
    *,
    tokens: float = 1e12,
    global_batch: int = 1024,
    seq_len: int = 4096,
    plan: str | None = None,
    top: int = 5,
    dtype: str = "bf16",
    method: str = "full",
    lora_rank: int = 16,
    optimizer: str = "adam",
    pricing: PricingLike = "on-demand",
    prices: Mapping[str, float] | None = None,
    utilisation: float = 0.6,
    stack: str | None = None,
    profile: str | Path | None = None,
    level: float = DEFAULT_LEVEL,
) -> Result[TrainingStudy]:
    """Training on ``chips`` chips (``siliconomics train``): step time (s), MFU, memory per
    chip (bytes), and days, USD and joules to train ``tokens`` tokens, for ``plan`` (e.g.
    ``"tp=8,pp=2"``) or the ``top`` fastest searched plans, each with its error band.
    ``utilisation``: for ``owned`` pricing, the cluster's busy fraction over its life.
    Table: one row per plan."""
    m = resolve.model(model)
    (dev,), calib = _calibrated([resolve.device(chip)], stack, profile, level, "training")
    p = _pricing(pricing, None)
    study = study_training(
        m,
        dev,
        chips,
        tokens,
        seq_len=seq_len,
        global_batch_seqs=global_batch,
        plan_text=plan,
        top=top,
        dtype=dtype,
        method=method,
        optimizer=optimizer,
        lora_rank=lora_rank,
        price_overrides=resolve.chip_prices(prices or {}, p),
        pricing=p.mode,
        utilisation=utilisation,
        price_book=p.book,
        catalog_chips=p.chips,
    )
    ab = answer_band(calib, dev.chip.family, m, "training", kind="training")
    if plan is None:  # searched plans: the search's measured over-credit widens the low end
        ab = replace(ab, band=searched(ab.band, resolve.search_realism_ratios()))
    return Result(study, _banded(train_tables.study_dict, ab), _key("plans"), ab, calib)


def simulate(
    model: ModelLike,
    chip: ChipLike,
    *,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    dp: int = 1,
    replicas: int = 1,
    rate: float | None = None,
    arrival: str = "poisson",
    input_len: str | int = 1024,
    output_len: str | int = 256,
    trace: str | Path | None = None,
    requests: int | None = None,
    ttft: float | str | None = None,
    tpot: float | str | None = None,
    e2e: float | str | None = None,
    percentile: float = 99.0,
    scheduler: str = "chunked",
    router: str = "least-tokens",
    max_seqs: int | None = 256,
    max_batched_tokens: int = 8192,
    block_size: int = 16,
    multi_step: int = 1,
    adp_balance: tuple[int, int] | None = None,
    graph_sizes: tuple[int, ...] = (),
    prefill: tuple[ChipLike | None, int | None, int | None] | None = None,
    decode: tuple[ChipLike | None, int | None, int | None] | None = None,
    weights_dtype: str = "bf16",
    act_dtype: str = "bf16",
    kv_dtype: str = "bf16",
    search: str | None = None,
    target_rate: float | None = None,
    warmup: float = 0.0,
    seed: int = 0,
    pricing: PricingLike = "on-demand",
    prices: Mapping[str, float] | None = None,
    stack: str | None = None,
    profile: str | Path | None = None,
    level: float = DEFAULT_LEVEL,
    sink: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    stream: bool = False,
    mtp: int | None = None,
    accepted: float | None = None,
) -> Result[Any]:
    """Request-level serving simulation (``siliconomics simulate``): latency percentiles
    (s), throughput (tokens/s), goodput, cost (USD) and energy (J), each with its error band.
    ``rate``: requests/s (None: all requests at t = 0); lengths: tokens, or
    ``"uniform:A,B"`` / ``"lognormal:MEAN,SIGMA"``; ``trace``: a CSV file or a named trace.
    ``prefill``/``decode``: (chip, tp, replicas) of a disaggregated side (None entries keep
    the pool's). ``search``: ``"max-rate"`` (highest rate meeting the SLO) or
    ``"min-replicas"`` (fewest replicas serving ``target_rate`` requests/s); the value is then
    a CapacityResult. ``sink``/``progress``: callbacks for trace events and progress.
    ``stream=True``: memory flat in the number of requests (docs/SERVING.md, streamed runs):
    latency percentiles from a sketch within 0.5% relative error, no per-request log.
    Engine knobs of :class:`.serving.config.PoolConfig`: ``multi_step`` (continuous scheduler:
    decode steps per scheduler call), ``adp_balance`` (chunked scheduler with ``dp`` > 1:
    TensorRT-LLM's attention-DP balancing ``(timeout_iters, batching_wait_iters)``),
    ``graph_sizes`` (CUDA-graph batch sizes decode steps are padded up to). ``mtp``,
    ``accepted``: speculative decoding with the model's MTP module (as in :func:`estimate`;
    chunked and continuous schedulers). Table: one row per pool."""
    sides = [chip, *(s[0] for s in (prefill, decode) if s is not None and s[0] is not None)]
    devs, calib = _calibrated([resolve.device(c) for c in sides], stack, profile, level)
    by_chip = dict(zip(map(str, sides), devs, strict=False))
    dev = devs[0]
    m = resolve.model(model)
    regime = _regime(ttft, tpot, e2e)
    front = dev if decode is None or decode[0] is None else by_chip[str(decode[0])]
    ab = answer_band(calib, front.chip.family, m, regime)
    pool = PoolConfig(
        device=dev,
        plan=_layout(tp, pp, ep, dp, replicas, (weights_dtype, act_dtype, kv_dtype)),
        scheduler=scheduler,
        max_seqs=max_seqs or None,
        max_batched_tokens=max_batched_tokens,
        block_size=block_size,
        multi_step=multi_step,
        adp_balance=adp_balance,
        graph_sizes=tuple(graph_sizes),
        spec=_speculative(mtp, accepted),
    )

    def side(s: tuple[ChipLike | None, int | None, int | None]) -> tuple[Device, int, int]:
        c, s_tp, s_reps = s
        return (by_chip[str(c)] if c is not None else dev, s_tp or tp, s_reps or replicas)

    disagg = prefill is not None or decode is not None
    cfg = make_config(
        m,
        pool,
        prefill=side(prefill or (None, None, None)) if disagg else None,
        decode=side(decode or (None, None, None)) if disagg else None,
        router=router,
    )
    pr = _pricing(pricing, prices)
    if cfg.price_overrides:
        pr = replace(pr, book=pr.book.with_chip_hour(cfg.price_overrides, pr.mode))
    w = make_workload(
        rate=rate,
        arrival=arrival,
        input_len=str(input_len),
        output_len=str(output_len),
        n_requests=requests,
        trace=None if trace is None else str(trace),
        trace_lines=resolve.trace_lines(trace),
    )
    slo = Slo(
        ttft_s=_seconds(ttft, "ttft"),
        tpot_s=_seconds(tpot, "tpot"),
        e2e_s=_seconds(e2e, "e2e"),
        percentile=percentile,
    )
    if search is not None:
        cap = _capacity(search, cfg, w, slo, target_rate, seed)
        if cap.result is not None:
            cap = replace(cap, result=price_simulation(cap.result, pr))
        return Result(
            cap, _banded(sim_tables.capacity_dict, ab), _capacity_rows, ab, calib, config=cfg
        )
    res = run_simulation(
        cfg,
        w,
        seed=seed,
        slo=None if slo.empty else slo,
        warmup=warmup,
        sink=sink,
        progress=progress,
        stream=stream,
    )
    res = price_simulation(res, pr)
    return Result(res, _banded(sim_tables.sim_dict, ab), _key("pools"), ab, calib, config=cfg)


def _capacity(
    search: str,
    cfg: Any,
    w: Any,
    slo: Slo,
    target_rate: float | None,
    seed: int,
) -> CapacityResult:
    if search == "max-rate":
        return max_rate(cfg, w, slo, seed=seed)
    if search == "min-replicas":
        if target_rate is None or not target_rate > 0:
            raise SiliconomicsError("search 'min-replicas' needs target_rate > 0 requests/s")
        return min_replicas(cfg, w, slo, float(target_rate), seed=seed)
    raise SiliconomicsError(f"search '{search}': allowed: max-rate, min-replicas")


def _capacity_rows(d: dict[str, Any]) -> list[dict[str, Any]]:
    res = d.get("result") or {}
    return list(res.get("pools") or []) if isinstance(res, dict) else []


def plan(
    spec: str | Path | PlanSpec | Mapping[str, Any],
    *,
    chips: Iterable[ChipLike] = (),
    models: Iterable[ModelLike] = (),
    base_dir: str | Path | None = None,
    sensitivity: bool = False,
    pricing: PricingLike | None = None,
    stack: str | None = None,
    profile: str | Path | None = None,
    level: float = DEFAULT_LEVEL,
    robust: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> Result[PlanOutcome]:
    """The cheapest fleet for a plan spec (``siliconomics plan``): a YAML/TOML file (chip and
    model files it names resolve relative to it), a mapping of spec fields, or a PlanSpec.
    ``chips``/``models``: extra chips and models (files or objects) the spec may name by id;
    ``base_dir``: the folder relative chip/model paths of a PlanSpec or mapping resolve
    against (default: the working folder). ``sensitivity``: also compute the cost tornado (``result.sensitivity``; a few re-plans).
    ``pricing``: a pricing mode (overrides the spec's) or a Pricing (its book and mode).
    ``robust``: plan every chip at the low end of its error band (``level``). Each pool of the
    fleet carries its error band; ``robust`` in ``to_dict()`` says how it was planned.
    Table: one row per pool of the chosen fleet (USD/h, chips, watts)."""
    ps, cat = _plan_inputs(spec, chips, models, base_dir)
    book = None
    if isinstance(pricing, Pricing):
        ps, book = ps.model_copy(update={"pricing": pricing.mode}), pricing.book
    elif pricing is not None:
        _pricing(pricing, None)  # refuses an unknown mode, naming the allowed ones
        ps = ps.model_copy(update={"pricing": pricing})
    calib = resolve.calibration(
        stack or ps.stack, profile, level, "inference", None, extra=cat.profiles.values()
    )
    first = cat.model(ps.workloads[0].model) if ps.workloads else None
    profiles, note = _robust(calib, first, robust)
    cat = cat.with_profiles(profiles)
    outcome = run_plan(
        ps, cat, progress, book=book, traces=resolve.traces(ps), sensitivity=sensitivity
    )

    models_of = {w.name: w.model for w in ps.workloads}

    def to_dict(o: PlanOutcome) -> dict[str, Any]:
        d = plan_report.outcome_dict(o)
        for pool in (d.get("fleet") or {}).get("pools") or []:
            c = cat.chips.get(str(pool.get("chip")))
            if c is not None and c.family in calib.resolved:
                model = cat.models.get(models_of.get(str(pool.get("workload")), ""), first)
                answer_band(calib, c.family, model, "latency-target").attach(pool)
        d["robust"] = note
        return d

    return Result(outcome, to_dict, _plan_rows, None, calib)


def _plan_inputs(
    spec: str | Path | PlanSpec | Mapping[str, Any],
    chips: Iterable[ChipLike],
    models: Iterable[ModelLike],
    base_dir: str | Path | None = None,
) -> tuple[PlanSpec, Catalog]:
    base = resolve.catalog_with(chips, models)
    if isinstance(spec, str | Path):
        return resolve.plan_spec(spec, base)
    raw = spec if isinstance(spec, PlanSpec) else parse_spec(dict(spec))
    return resolve.spec_catalog(raw, Path(base_dir) if base_dir else None, base)


def _robust(
    calib: Calibration, model: ModelSpec | None, robust: bool
) -> tuple[dict[str, EfficiencyProfile], dict[str, Any]]:
    """Each family's profile for the run: the stack's, or with ``robust`` derated to the low
    end of its band (:func:`siliconomics.calibrate.bands.derate`); and the note saying so."""
    profiles = calib.efficiency()
    factors: dict[str, float] = {}
    if robust:
        for fam, rp in calib.resolved.items():
            b = answer_band(calib, fam, model, "latency-target").band
            factors[fam] = min(1.0, math.exp(b.lo))
            profiles[fam] = derate(rp.profile, factors[fam])
    level = calib.level
    text = (
        f"robust: planned at the low end of each chip's {level:.0%} band (speed x "
        + ", ".join(f"{f} {v:.2f}" for f, v in sorted(factors.items()))
        + ")"
        if robust
        else f"planned at the central prediction ({level:.0%} bands: --robust plans on their "
        "low end)"
    )
    used = sorted({f"{f}: {rp.stack} ({rp.basis})" for f, rp in calib.resolved.items()})
    return profiles, {
        "enabled": robust,
        "level": level,
        "speed_factor_by_family": factors,
        "stacks": {f: rp.stack for f, rp in calib.resolved.items()},
        "text": text + "; stacks: " + ", ".join(used),
    }


def _plan_rows(d: dict[str, Any]) -> list[dict[str, Any]]:
    fleet = d.get("fleet") or {}
    return list(fleet.get("pools") or [])


def tco(
    chip: ChipLike,
    model: ModelLike | None = None,
    *,
    mode: str = "owned",
    utilisation: float = 0.6,
    input_len: int = 1024,
    output_len: int = 256,
    ttft: float | str | None = None,
    tpot: float | str | None = None,
    weights_dtype: str = "bf16",
    act_dtype: str = "bf16",
    kv_dtype: str = "bf16",
    pricing: Pricing | None = None,
    assumptions: OwnedAssumptions | Mapping[str, Any] | None = None,
    breakeven_price: bool = False,
    stack: str | None = None,
    profile: str | Path | None = None,
    level: float = DEFAULT_LEVEL,
    mtp: int | None = None,
    accepted: float | None = None,
) -> Result[TcoStudy]:
    """Rent or buy one chip (``siliconomics tco``): USD per chip-hour in every pricing mode,
    break-even utilisation, and with a model USD per million tokens and J/token (with their
    error band). ``pricing``: a Pricing whose book replaces the packaged one; ``assumptions``:
    owned-TCO overrides (field -> value, ``chip_prices`` chip -> USD) or ready
    OwnedAssumptions; ``breakeven_price``: also what the chip would have to cost to beat
    renting it and owning the reference chips. ``mtp``, ``accepted``: speculative decoding
    with the model's MTP module (as in :func:`estimate`). Table: one row per pricing mode."""
    (dev,), calib = _calibrated([resolve.device(chip)], stack, profile, level)
    m = resolve.model(model) if model is not None else None
    spec = _speculative(mtp, accepted)
    if spec is not None and m is None:
        raise SiliconomicsError("--mtp prices a model's speculative decoding: give --model")
    cat = resolve.packaged().with_chips({dev.id: dev.chip})  # a chip file's id may be priced
    study = _tco_study(
        dev,
        m,
        dict(
            mode=mode,
            utilisation=utilisation,
            input_len=input_len,
            output_len=output_len,
            ttft_s=_seconds(ttft, "ttft"),
            tpot_s=_seconds(tpot, "tpot"),
            weight_dtype=_dtype("weights_dtype", weights_dtype),
            act_dtype=_dtype("act_dtype", act_dtype),
            kv_dtype=_dtype("kv_dtype", kv_dtype),
            assumptions=resolve.owned_assumptions(assumptions, None, cat),
            book=(pricing or resolve.pricing()).book,
            breakeven_price=breakeven_price,
            mtp=spec,
        ),
    )
    ab = answer_band(calib, dev.chip.family, m, _regime(ttft, tpot))
    return Result(study, _banded(tco_report.tco_dict, ab), _key("modes"), ab, calib)


def _tco_study(dev: Device, model: ModelSpec | None, kw: dict[str, Any]) -> TcoStudy:
    return study_tco(
        dev,
        model=model,
        references=resolve.devices(REFERENCE_CHIPS),
        catalog_chips=resolve.packaged().chips,
        **kw,
    )


def validate(
    measured: str | Path,
    *,
    models_csv: str | Path | None = None,
    profiles: Mapping[str, EfficiencyProfile] | None = None,
    catalog: Catalog | None = None,
    profile_set: ProfileSet | None = None,
    residuals: Sequence[Residual] | None = None,
    level: float = 0.8,
) -> Result[ValidationReport]:
    """Predict every usable row of a measured-results CSV (shared SCHEMA.md) and compare
    (``siliconomics validate``). ``profiles``: efficiency profiles by family that replace the
    packaged ones (e.g. a calibration trial). Table: one row per predicted inference row
    (``training`` holds the training report)."""
    rows, train_rows, cat = resolve.measured(
        Path(measured), Path(models_csv) if models_csv else None, catalog
    )
    if profiles:
        cat = cat.with_profiles(profiles)
    report = validate_measured(
        rows, train_rows, cat, profile_set=profile_set, residuals=residuals, level=level
    )
    return Result(report, serialize.validation_dict, _key("results"))

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from . import resolve
from .calibrate.bands import Residual
from .catalog.catalog import Catalog
from .catalog.schema import EfficiencyProfile
from .catalog.stacks import ProfileSet
from .economics.pricing import parse_price_overrides
from .errors import SiliconomicsError
from .fleet import PlanOutcome, run_plan
from .fleet.spec import PlanSpec, parse_spec
from .inference.estimate import estimate_max_throughput, estimate_static
from .parallel.plan import InferencePlan
from .report import plan_report, serialize, sim_tables, train_tables
from .report import tco as tco_report
from .resolve import ChipLike, ModelLike
from .search.assess import Assessment, assess
from .search.compare import Comparison, compare_chips
from .search.tco_study import TcoStudy, study_tco
from .serving import Slo
from .serving import simulate as run_simulation
from .serving.config import PoolConfig
from .serving.metrics import SimResult
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


@dataclass(frozen=True)
class Result(Generic[T]):
    """A typed result with its JSON form and a table view."""

    value: T
    """the library's result object (Assessment, Comparison, TrainingStudy, ...)"""
    _to_dict: Callable[[T], dict[str, Any]]
    _table: Callable[[dict[str, Any]], list[dict[str, Any]]]

    def to_dict(self) -> dict[str, Any]:
        """The same dict the command prints with ``--json`` (JSON-safe values)."""
        out: dict[str, Any] = json.loads(json.dumps(self._to_dict(self.value), default=str))
        return out

    def to_pandas(self) -> Any:
        """The main table (one row per chip, plan, pricing mode, measured row, ...) as a
        ``pandas.DataFrame``. Needs pandas (``pip install pandas``)."""
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


def _seconds(v: float | str | None, what: str) -> float | None:
    if v is None:
        return None
    return parse_positive(v, "seconds", what=what)


def _dtype(name: str, v: str) -> str:
    if v not in DTYPES:
        raise SiliconomicsError(f"{name} '{v}' is not a dtype; allowed: {', '.join(DTYPES)}")
    return v


def _prices(prices: Mapping[str, float] | None) -> dict[str, float]:
    return parse_price_overrides([f"{k}={v}" for k, v in (prices or {}).items()])


def estimate(
    model: ModelLike,
    chip: ChipLike,
    *,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    replicas: int = 1,
    batch: int = 1,
    input_len: int = 1024,
    output_len: int = 256,
    weights_dtype: str = "bf16",
    act_dtype: str = "bf16",
    kv_dtype: str = "bf16",
    mode: str = "static",
    prices: Mapping[str, float] | None = None,
) -> Result[Assessment]:
    """One configuration (``siliconomics estimate``): TTFT and TPOT (s), output tokens/s,
    memory per chip (bytes), USD per million tokens, joules per token and the per-op
    breakdown. ``mode``: ``static`` (one batch of ``batch`` sequences) or ``max-throughput``
    (continuous batching, ``batch`` as the engine's limit). ``prices``: chip id -> USD per
    chip-hour overrides."""
    m, dev = resolve.model(model), resolve.device(chip)
    p = InferencePlan(
        tp=tp,
        pp=pp,
        ep=ep,
        replicas=replicas,
        weight_dtype=_dtype("weights_dtype", weights_dtype),
        act_dtype=_dtype("act_dtype", act_dtype),
        kv_dtype=_dtype("kv_dtype", kv_dtype),
    )
    if mode == "static":
        est = estimate_static(m, dev, p, batch, input_len, output_len)
    elif mode == "max-throughput":
        est = estimate_max_throughput(m, dev, p, input_len, output_len, batch_limit=batch)
    else:
        raise SiliconomicsError(f"mode '{mode}': allowed: static, max-throughput")
    return Result(assess(est, _prices(prices)), serialize.assessment_dict, _one_row)


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
    prices: Mapping[str, float] | None = None,
) -> Result[Comparison]:
    """Every chip (or ``chips``: ids, files, objects) at its cheapest layout within the
    targets (``siliconomics compare``), ranked by USD per million output tokens. ``ttft``,
    ``tpot``: seconds or text with a unit. Table: one row per chip."""
    cmp = compare_chips(
        resolve.model(model),
        resolve.devices(chips),
        input_len=input_len,
        output_len=output_len,
        ttft_s=_seconds(ttft, "ttft"),
        tpot_s=_seconds(tpot, "tpot"),
        weight_dtype=_dtype("weights_dtype", weights_dtype),
        act_dtype=_dtype("act_dtype", act_dtype),
        kv_dtype=_dtype("kv_dtype", kv_dtype),
        price_overrides=_prices(prices),
    )
    return Result(cmp, serialize.comparison_dict, _key("chips"))


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
    optimizer: str = "adam",
    prices: Mapping[str, float] | None = None,
) -> Result[TrainingStudy]:
    """Training on ``chips`` chips (``siliconomics train``): step time (s), MFU, memory per
    chip (bytes), and days, USD and joules to train ``tokens`` tokens, for ``plan`` (e.g.
    ``"tp=8,pp=2"``) or the ``top`` fastest searched plans. Table: one row per plan."""
    study = study_training(
        resolve.model(model),
        resolve.device(chip),
        chips,
        tokens,
        seq_len=seq_len,
        global_batch_seqs=global_batch,
        plan_text=plan,
        top=top,
        dtype=_dtype("dtype", dtype),
        method=method,
        optimizer=optimizer,
        price_overrides=_prices(prices),
        catalog_chips=resolve.packaged().chips,
    )
    return Result(study, train_tables.study_dict, _key("plans"))


def simulate(
    model: ModelLike,
    chip: ChipLike,
    *,
    tp: int = 1,
    replicas: int = 1,
    rate: float | None = None,
    input_len: str | int = 1024,
    output_len: str | int = 256,
    requests: int | None = None,
    ttft: float | str | None = None,
    tpot: float | str | None = None,
    scheduler: str = "chunked",
    max_seqs: int | None = 256,
    seed: int = 0,
) -> Result[SimResult]:
    """Request-level serving simulation (``siliconomics simulate``): latency percentiles
    (s), throughput (tokens/s), goodput, cost and energy. ``rate``: requests/s (None: all
    requests at t = 0); lengths: tokens, or ``"uniform:A,B"`` / ``"lognormal:MEAN,SIGMA"``.
    Table: one row per pool."""
    pool = PoolConfig(
        device=resolve.device(chip),
        plan=InferencePlan(tp=tp, replicas=replicas),
        scheduler=scheduler,
        max_seqs=max_seqs,
    )
    cfg = make_config(resolve.model(model), pool)
    w = make_workload(
        rate=rate, input_len=str(input_len), output_len=str(output_len), n_requests=requests
    )
    slo = Slo(ttft_s=_seconds(ttft, "ttft"), tpot_s=_seconds(tpot, "tpot"))
    res = run_simulation(cfg, w, seed=seed, slo=None if slo.empty else slo)
    return Result(res, sim_tables.sim_dict, _key("pools"))


def plan(
    spec: str | Path | PlanSpec | Mapping[str, Any],
    *,
    chips: Iterable[ChipLike] = (),
    models: Iterable[ModelLike] = (),
    sensitivity: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> Result[PlanOutcome]:
    """The cheapest fleet for a plan spec (``siliconomics plan``): a YAML/TOML file (chip and
    model files it names resolve relative to it), a mapping of spec fields, or a PlanSpec.
    ``chips``/``models``: extra chips and models (files or objects) the spec may name by id.
    ``sensitivity``: also compute the cost tornado (``result.sensitivity``; a few re-plans).
    ``progress``: called as ``progress(stage, done, total)`` while it plans.
    Table: one row per pool of the chosen fleet (USD/h, chips, watts)."""
    base = resolve.catalog_with(chips, models)
    if isinstance(spec, str | Path):
        ps, cat = resolve.plan_spec(spec, base)
    else:
        raw = spec if isinstance(spec, PlanSpec) else parse_spec(dict(spec))
        ps, cat = resolve.spec_catalog(raw, None, base)
    outcome = run_plan(ps, cat, progress, traces=resolve.traces(ps), sensitivity=sensitivity)
    return Result(outcome, plan_report.outcome_dict, _plan_rows)


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
) -> Result[TcoStudy]:
    """Rent or buy one chip (``siliconomics tco``): USD per chip-hour in every pricing mode,
    break-even utilisation, and with a model USD per million tokens and J/token.
    Table: one row per pricing mode."""
    study = study_tco(
        resolve.device(chip),
        mode=mode,
        utilisation=utilisation,
        model=resolve.model(model) if model is not None else None,
        input_len=input_len,
        output_len=output_len,
        ttft_s=_seconds(ttft, "ttft"),
        tpot_s=_seconds(tpot, "tpot"),
    )
    return Result(study, tco_report.tco_dict, _key("modes"))


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

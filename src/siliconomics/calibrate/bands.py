"""Error bands from cross-validated residuals.

The band table is the list of leave-one-source-out residuals of every calibration row (written
by ``siliconomics calibrate`` as ``bands.toml``; the packaged one is
``catalog/data/bands.toml``). A residual is ``r = log(measured / predicted)`` oriented as a
*speed* (for time metrics such as ``tpot_s`` or ``step_time_s`` the ratio is inverted), so
throughput and latency rows of a cell pool into one distribution.

A prediction's band (default 80%) comes from the residuals of its cell, found by these rules,
first that applies (``MIN_ROWS`` residuals needed at a level):

1. its (kind, family, stack, regime, model class) cell;
2. its (kind, family, stack): widened x ``WIDEN_LEVEL``;
3. its (kind, family): widened x ``WIDEN_LEVEL``\\ :sup:`2`;
4. all rows of its kind (inference / training): widened x ``WIDEN_UNMEASURED`` (no
   measurement of the family behind it).

On top: a stack with no measurement of its own on the family (it inherits the default stack's
factors) widens x ``WIDEN_STACK``; a model class (dense / MoE) with fewer than ``MIN_ROWS``
rows on the family widens x ``WIDEN_CLASS``, a regime (max-throughput / latency-target) with
fewer x ``WIDEN_REGIME``. "Widened x w" scales the band's half-width (in log space) about its
centre. The empirical quantiles get a small-sample inflation ``sqrt(1 + 1/n)`` and a floor
half-width of ``FLOOR`` (run-to-run spread of repeated measurements), and the cell's centre
and half-width are shrunk toward those of all rows of its kind by ``K_SOURCES`` pseudo-sources
(weight n_sources / (n_sources + K_SOURCES)): rows of one source share a setup, so a cell's
spread is only as well known as its number of sources. Last, the half-width is multiplied
by the scale of its (kind, family) stored on the residuals (the kind's when the family has
none; a non-default stack with rows of its own has its own, pooled over families,
:func:`scale_key`): calibration sets it from the held-out rows of that family (or stack), the
``level`` quantile of
|residual - centre| / half-width, shrunk toward the kind's by ``K_SCALE`` pseudo-sources
(:func:`family_scales`), since the rules above alone over-cover some families and
under-cover others. In cross-validation each row's scale is estimated without its source.
Each band says which rules made it, in words.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from ..catalog.bandtable import Residual as Residual  # the band table type lives in the catalog
from ..catalog.bandtable import from_toml_dict as from_toml_dict
from ..catalog.schema import EfficiencyProfile
from ..catalog.stacks import default_stack, stacks

MIN_ROWS = 6
K_SOURCES = 3.0
WIDEN_LEVEL = 1.25
WIDEN_UNMEASURED = 1.5
WIDEN_STACK = 1.5
WIDEN_CLASS = 1.5
WIDEN_REGIME = 1.25
FLOOR = math.log(1.05)
DEFAULT_LEVEL = 0.8
TIME_METRICS = ("ttft_s", "tpot_s", "e2e_latency_s", "step_time_s", "time_to_train_s")


def is_time_metric(metric: str) -> bool:
    return metric in TIME_METRICS


@dataclass(frozen=True, kw_only=True)
class Band:
    """A multiplicative band on a *speed*: measured speed / predicted speed is expected in
    [exp(lo), exp(hi)] with probability ``level``."""

    lo: float
    hi: float
    level: float
    n: int
    basis: str
    """the cell the residuals came from"""
    reason: str
    """the rules applied, in words"""

    def speed(self, value: float) -> tuple[float, float]:
        """(low, high) of a predicted speed (throughput, tokens/s, MFU)."""
        return value * math.exp(self.lo), value * math.exp(self.hi)

    def time(self, value: float) -> tuple[float, float]:
        """(low, high) of a predicted time, cost or energy (inverse of a speed)."""
        return value * math.exp(-self.hi), value * math.exp(-self.lo)

    def of(self, value: float, metric: str) -> tuple[float, float]:
        return self.time(value) if is_time_metric(metric) else self.speed(value)

    def covers(self, measured: float, predicted: float, metric: str) -> bool:
        lo, hi = self.of(predicted, metric)
        return lo <= measured <= hi


@dataclass(frozen=True, kw_only=True)
class BandQuery:
    kind: str
    family: str
    stack: str
    regime: str
    model_class: str
    stack_measured: bool = True
    """False when the stack inherits the family default's factors (no rows of its own)"""


def _centre_half(rs: Sequence[Residual], level: float) -> tuple[float, float]:
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(np.array([r.log_ratio for r in rs]), [a, 1.0 - a])
    return float((lo + hi) / 2.0), float((hi - lo) / 2.0) * math.sqrt(1.0 + 1.0 / len(rs))


def _quantiles(
    rs: Sequence[Residual], pool: Sequence[Residual], level: float
) -> tuple[float, float]:
    """The cell's band, shrunk toward the pool's by ``K_SOURCES`` pseudo-sources: rows of one
    source share its setup, so a cell's spread is only as well known as its number of
    *sources* (a cell of 8 rows from 2 documents says little about the next document)."""
    c, h = _centre_half(rs, level)
    cp, hp = _centre_half(pool, level)
    n = len({r.group for r in rs})
    w = n / (n + K_SOURCES)
    c = w * c + (1 - w) * cp
    h = max(math.sqrt(w * h**2 + (1 - w) * hp**2), FLOOR)
    return c - h, c + h


def _widen(lo: float, hi: float, w: float) -> tuple[float, float]:
    c, h = (lo + hi) / 2.0, (hi - lo) / 2.0
    return c - h * w, c + h * w


def band_for(
    residuals: Sequence[Residual],
    q: BandQuery,
    *,
    level: float = DEFAULT_LEVEL,
    exclude_group: str | None = None,
) -> Band:
    """The band of one prediction (``exclude_group``: leave that source's residuals out, for
    checking coverage on held-out sources)."""
    pool = [r for r in residuals if r.kind == q.kind and r.group != exclude_group]
    fam = [r for r in pool if r.family == q.family]
    levels: list[tuple[str, list[Residual], float]] = [
        (
            f"{q.family} with {q.stack}, {q.regime}, {q.model_class}",
            [
                r
                for r in fam
                if (r.stack, r.regime, r.model_class) == (q.stack, q.regime, q.model_class)
            ],
            1.0,
        ),
        (f"{q.family} with {q.stack}", [r for r in fam if r.stack == q.stack], WIDEN_LEVEL),
        (f"the {q.family} family", fam, WIDEN_LEVEL**2),
        (f"all {q.kind} rows", pool, WIDEN_UNMEASURED),
    ]
    reasons: list[str] = []
    for k, (name, rs, w) in enumerate(levels):
        if len(rs) < MIN_ROWS and k < len(levels) - 1:
            continue
        if not rs:
            return Band(lo=-1.0, hi=1.0, level=level, n=0, basis="none", reason="no residuals")
        lo, hi = _widen(*_quantiles(rs, pool, level), w)
        if k > 0:
            reasons.append(_fallback_reason(q, k, len(levels[k - 1][1]), name, w))
        if not q.stack_measured:
            lo, hi = _widen(lo, hi, WIDEN_STACK)
            reasons.append(
                f"no measurement of {q.family} with {q.stack}: default-stack factors, "
                f"band x{WIDEN_STACK}"
            )
        for key, w2 in (("model_class", WIDEN_CLASS), ("regime", WIDEN_REGIME)):
            want = getattr(q, key)
            n_key = sum(getattr(r, key) == want for r in fam)
            if n_key < MIN_ROWS:
                lo, hi = _widen(lo, hi, w2)
                reasons.append(f"{n_key} {want} rows on {q.family}: band x{w2}")
        lo, hi = _scaled(lo, hi, pool, fam, q, reasons, level)
        return Band(
            lo=lo,
            hi=hi,
            level=level,
            n=len(rs),
            basis=name,
            reason="; ".join(
                ([f"{len(rs)} cross-validated rows of its cell"] if k == 0 else []) + reasons
            ),
        )
    raise AssertionError("unreachable")


def searched(b: Band, ratios: Sequence[float]) -> Band:
    """The band of a plan the training *search* picked: ``b`` with its low end lowered by how
    far the search's fastest plans beat the best published MFU of their configurations
    (``ratios``: search / best published, one per published configuration), taken at the
    band's level and never below 1. The point estimate stays; only the band says that a
    searched plan may not reach what the model credits it with."""
    if not ratios:
        return b
    f = max(1.0, float(np.quantile(np.asarray(ratios, dtype=np.float64), b.level)))
    if f <= 1.0:
        return b
    why = (
        f"searched plan: the search's best plans beat the best published MFU of their "
        f"configurations by x{f:.2f} at the {b.level:.0%} quantile ({len(ratios)} published "
        "training configurations, docs/TRAINING.md 'Search realism'): low end lowered by it"
    )
    return replace(b, lo=b.lo - math.log(f), reason=f"{b.reason}; {why}")


@cache
def scale_key(kind: str, family: str, stack: str) -> str:
    """The key of a row's half-width scale: its family for the family's default stack (or an
    unstated one), ``stack:<id>`` for another stack with rows of its own, pooled over the
    families it runs on. A non-default stack's rows come from fewer, more varied sources than
    the default's (community engines on new models), so their held-out bands need a scale of
    their own; with one scale per family, SGLang's rows on four GPU families were covered 63% of
    the time (2026-11-30), and one per (family, stack) rests on two to seven sources each."""
    if not stack or stack == default_stack(family, kind, stacks()):  # type: ignore[arg-type]
        return family
    return f"stack:{stack}"


def _scaled(
    lo: float,
    hi: float,
    pool: Sequence[Residual],
    fam: Sequence[Residual],
    q: BandQuery,
    reasons: list[str],
    level: float = DEFAULT_LEVEL,
) -> tuple[float, float]:
    """The band widened by the held-out scale of its stack (a non-default stack with rows of its
    own) or family (the kind's when the family has none), then by :func:`t_ratio` for the
    number of sources that scale rests on."""
    key = scale_key(q.kind, q.family, q.stack)
    own = [r for r in pool if scale_key(r.kind, r.family, r.stack) == key]
    if key == q.family:
        own = [r for r in own if r.family == q.family]
    base = [r for r in fam if scale_key(r.kind, r.family, r.stack) == q.family]
    fs = [r.family_scale for r in (own or base or fam) if r.family_scale > 0]
    who = f"{q.stack} stack" if own and key != q.family else q.family
    if fs:
        scale = float(np.median(fs))
        why = f"the {who} {q.kind} scale that makes its held-out bands cover"
        n_src = len({r.group for r in (own or base or fam) if r.family_scale > 0})
    else:
        scale = float(np.median([r.scale for r in pool])) if pool else 1.0
        why = f"the {q.kind} scale that makes held-out bands cover"
        n_src = len({r.group for r in pool})
    if scale != 1.0:
        lo, hi = _widen(lo, hi, scale)
        reasons.append(f"x{scale:.3g}: {why}")
    t = t_ratio(n_src, level)
    if t > 1.0005:
        lo, hi = _widen(lo, hi, t)
        reasons.append(f"x{t:.3g}: Student-t for a scale known from {n_src} source(s)")
    return lo, hi


@cache
def t_ratio(n_sources: int, level: float) -> float:
    """How much wider a ``level`` band must be when its half-width scale is estimated from
    ``n_sources`` sources (plus the ``K_SCALE`` pseudo-sources it is shrunk toward): Student's
    t quantile with ``n_sources + K_SCALE - 1`` degrees of freedom over the normal one. A new
    source is a draw from a spread known only that well: 1.47 with no source of its own (the
    kind's scale alone), 1.16 with 3, 1.03 with 20 (2026-11-30: the few-source Gaudi and
    vllm-gaudi bands covered 47-48% of held-out rows without it)."""
    from scipy import stats

    a = (1.0 + level) / 2.0
    dof = max(n_sources + K_SCALE - 1.0, 1.0)
    return float(stats.t.ppf(a, dof) / stats.norm.ppf(a))


def _fallback_reason(q: BandQuery, k: int, n_cell: int, name: str, w: float) -> str:
    if k == 3:
        return f"no measurement of {q.family} (fewer than {MIN_ROWS} rows); band from {name} x{w}"
    return (
        f"{n_cell} rows of {q.family} with {q.stack}"
        + (f", {q.regime}, {q.model_class}" if k == 1 else "")
        + f" (< {MIN_ROWS}); band from {name} x{w:g}"
    )


def width_scale(items: Sequence[tuple[float, float, float]], level: float) -> float:
    """The half-width scale at which bands ``(lo, hi)`` (log speed ratios) cover ``level`` of
    their rows' residuals ``r``: the ``level`` quantile of ``|r - centre| / half-width``."""
    need = [abs(r - (lo + hi) / 2.0) / max((hi - lo) / 2.0, 1e-12) for lo, hi, r in items]
    return float(np.quantile(np.array(need), level, method="higher")) if need else 1.0


K_SCALE = 3.0
"""pseudo-sources of the kind's scale in a family's scale (:func:`family_scales`)"""


@dataclass(frozen=True, kw_only=True)
class Need:
    """One held-out row for setting scales: its keys and the half-width multiple its band
    (at scale 1) needs to cover it, ``|r - centre| / half-width``."""

    kind: str
    family: str
    group: str
    need: float


def _q(xs: Sequence[float], level: float) -> float:
    return float(np.quantile(np.array(xs), level, method="higher"))


def _shrunk_scale(fam: Sequence[Need], kind_scale: float, level: float) -> float:
    """A family's scale: the ``level`` quantile of its rows' needs, shrunk (in log) toward the
    kind's scale with weight n_sources / (n_sources + ``K_SCALE``)."""
    if not fam:
        return kind_scale
    n = len({x.group for x in fam})
    w = n / (n + K_SCALE)
    s = max(_q([x.need for x in fam], level), 1e-6)
    return math.exp(w * math.log(s) + (1 - w) * math.log(kind_scale))


def family_scales(
    needs: Sequence[Need], level: float
) -> tuple[list[float], dict[str, float], dict[tuple[str, str], float]]:
    """Half-width scales from held-out rows, per (kind, family): the ``level`` quantile of
    its rows' needs (the scale at which they would be covered), shrunk toward the kind's
    (the same quantile over all rows of the kind) by ``K_SCALE`` pseudo-sources.

    Returns (the scale of each row, estimated *without its own source*: the one its coverage
    is checked with; the kind scales and the family scales on all rows: what is shipped)."""
    by_kind: dict[str, list[Need]] = {}
    by_fam: dict[tuple[str, str], list[Need]] = {}
    for x in needs:
        by_kind.setdefault(x.kind, []).append(x)
        by_fam.setdefault((x.kind, x.family), []).append(x)
    kind = {k: _q([x.need for x in v], level) for k, v in by_kind.items()}
    fam = {k: _shrunk_scale(v, kind[k[0]], level) for k, v in by_fam.items()}
    per_row = []
    cache: dict[tuple[str, str, str], float] = {}
    for x in needs:
        key = (x.kind, x.family, x.group)
        if key not in cache:
            ks = [y.need for y in by_kind[x.kind] if y.group != x.group]
            k_scale = _q(ks, level) if ks else 1.0
            others = [y for y in by_fam[(x.kind, x.family)] if y.group != x.group]
            cache[key] = _shrunk_scale(others, k_scale, level)
        per_row.append(cache[key])
    return per_row, kind, fam


def coverage(
    items: Iterable[tuple[Residual, bool]],
) -> tuple[int, float]:
    """(n, fraction covered) of (residual, covered) pairs."""
    xs = [c for _, c in items]
    return len(xs), (sum(xs) / len(xs) if xs else math.nan)


def to_toml_dict(residuals: Sequence[Residual], meta: dict[str, str]) -> dict[str, object]:
    return {
        "meta": meta,
        "residual": [r.__dict__ for r in residuals],
    }


_SPEED_FIELDS = (
    "gemm_efficiency",
    "lowp_gemm_efficiency",
    "memory_efficiency",
    "attention_efficiency",
    "collective_efficiency",
    "train_gemm_efficiency",
    "train_lowp_gemm_efficiency",
)
_TIME_FIELDS = ("kernel_overhead_s", "step_overhead_s", "collective_latency_s")


def derate(prof: EfficiencyProfile, factor: float) -> EfficiencyProfile:
    """The profile of a chip ``factor`` (<= 1) times as fast: every fraction of peak times
    ``factor`` and every fixed time divided by it, so that every roofline time (max of compute,
    memory and link terms, plus overheads) is divided by ``factor`` exactly. ``plan --robust``
    plans on this, with ``factor`` the pessimistic end of the band."""
    f = min(1.0, factor)
    upd: dict[str, float] = {}
    for k in _SPEED_FIELDS:
        v = getattr(prof, k)
        if v is not None:
            upd[k] = v * f
    for k in _TIME_FIELDS:
        upd[k] = getattr(prof, k) / f
    chips = {
        c: {
            k: v * f if k in _SPEED_FIELDS else v / f if k in _TIME_FIELDS else v
            for k, v in fs.items()
        }
        for c, fs in prof.chip_factors.items()
    }
    return prof.model_copy(update={**upd, "chip_factors": chips})

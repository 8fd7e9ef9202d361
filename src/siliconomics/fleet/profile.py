"""Traffic that changes: a rate per hour of the week, growth per month, and where capacity
may come from (owned site, reservations, on-demand, spot, capacity blocks).

A spec's ``profile`` gives the *shape* of the traffic relative to the workloads' ``rate_rps``
(the weekly mean at month 0): exactly one of

- ``hourly``: 24 (one day, repeated; ``weekend`` scales Saturday and Sunday) or 168 relative
  rates (Monday 00:00 first);
- ``peak_to_trough``: a cosine diurnal curve ``1 + a cos(2 pi (t - peak_hour) / 24)`` with
  ``a = (R - 1) / (R + 1)``, so peak / trough = R; ``weekend`` scales Saturday and Sunday;
- ``trace``: a CSV with ``arrived_at`` (seconds); arrivals are counted per profile hour
  (``trace_seconds_per_hour`` trace seconds make one hour) and folded onto the hours of the
  week (a trace shorter than a week is repeated);

or none of them: flat. The shape is scaled to mean 1 over the week, then grown by
``(1 + growth_per_month) ** month``. Everything here is pure: the edge reads the trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import SiliconomicsError
from ..units import parse_duration

F = NDArray[np.float64]
HOURS_PER_WEEK = 168
HOURS_PER_MONTH = 730.0
"""8,760 hours a year / 12"""
WEEKEND = slice(120, 168)
"""Saturday 00:00 to Sunday 24:00 when the week starts on Monday 00:00"""

CommitKind = Literal["owned", "reserved-1y", "reserved-3y", "capacity-block"]
BurstKind = Literal["on-demand", "spot"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Profile(_Strict):
    """How the traffic moves over the week and the months (relative to ``rate_rps``)."""

    hourly: tuple[float, ...] | None = Field(
        default=None, description="24 or 168 relative rates (hour of day or of the week)"
    )
    peak_to_trough: float | None = Field(
        default=None, ge=1, description="diurnal swing: peak rate / trough rate"
    )
    peak_hour: float = Field(default=14, ge=0, lt=24, description="hour of day of the peak")
    weekend: float = Field(
        default=1.0, gt=0, description="Saturday and Sunday rate relative to weekdays"
    )
    trace: str | None = Field(
        default=None, description="CSV with arrived_at (seconds) whose arrivals give the shape"
    )
    trace_seconds_per_hour: float = Field(
        default=3600, gt=0, description="trace seconds that make one profile hour"
    )
    growth_per_month: float = Field(
        default=0.0, gt=-0.5, le=1.0, description="traffic growth per month, e.g. 0.05"
    )
    horizon_months: int = Field(default=12, ge=1, le=60, description="months planned")
    levels: int = Field(
        default=12, ge=1, le=48, description="rate levels per month (period aggregation)"
    )

    @field_validator("hourly")
    @classmethod
    def _hourly(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is None:
            return v
        if len(v) not in (24, HOURS_PER_WEEK):
            raise ValueError(f"give 24 or 168 values, got {len(v)}")
        if any(x < 0 for x in v) or not any(x > 0 for x in v):
            raise ValueError("relative rates must be >= 0 and not all 0")
        return v

    @model_validator(mode="after")
    def _one_shape(self) -> Profile:
        given = [
            n
            for n, v in (
                ("hourly", self.hourly),
                ("peak_to_trough", self.peak_to_trough),
                ("trace", self.trace),
            )
            if v is not None
        ]
        if len(given) > 1:
            raise ValueError(f"give at most one of hourly, peak_to_trough, trace (got {given})")
        return self


class Spot(_Strict):
    """Spot capacity: its interruption risk and the fallback that replaces it."""

    interruptions_per_month: float = Field(
        default=0.2,
        ge=0,
        le=30,
        description="share of spot nodes reclaimed per month (AWS Spot Instance Advisor's "
        "highest band is '>20%')",
    )
    fallback: Literal["on-demand"] = Field(
        default="on-demand", description="what replaces a reclaimed spot node"
    )
    fallback_hours: float = Field(
        default=1.0, gt=0, description="hours a fallback node runs before spot returns"
    )
    max_share: float = Field(
        default=1.0, gt=0, le=1, description="largest share of a period's capacity on spot"
    )


class Capacity(_Strict):
    """Where chips may come from: an owned site and cloud regions."""

    owned: tuple[str, ...] | None = Field(
        default=None,
        description="chips that may be bought for the owned site (default: every allowed "
        "chip with an owned cost)",
    )
    committed: tuple[CommitKind, ...] = Field(
        default=("owned", "reserved-1y", "reserved-3y", "capacity-block"),
        description="committed sources allowed (held every hour of a month or longer)",
    )
    burst: tuple[BurstKind, ...] = Field(
        default=("on-demand",), description="per-period sources allowed: on-demand, spot"
    )
    regions: tuple[str, ...] | None = Field(
        default=None, description="cloud regions allowed (default: every region priced)"
    )
    site_power_kw: float | None = Field(
        default=None, gt=0, description="power cap of the owned site (chips at peak), kW"
    )
    spot: Spot = Field(default_factory=Spot, description="spot interruption risk and fallback")
    provision: float = Field(
        default=300.0, description="seconds to start a cloud node before loading, e.g. '5min'"
    )
    load_gb_per_s: float = Field(
        default=2.0, gt=0, description="weight-loading bandwidth per chip, GB/s"
    )
    scale_down: float = Field(
        default=600.0, description="seconds a node is kept after the load falls, e.g. '10min'"
    )
    load_time: dict[str, float] = Field(
        default_factory=dict, description="scale-up time per chip id (overrides the estimate)"
    )

    @field_validator("provision", "scale_down", mode="before")
    @classmethod
    def _dur(cls, v: object, info: object) -> object:
        name = getattr(info, "field_name", "capacity")
        if isinstance(v, int | float) and not isinstance(v, bool) and v == 0:
            return 0.0
        return parse_duration(v, what=f"capacity.{name}")  # type: ignore[arg-type]

    @field_validator("load_time", mode="before")
    @classmethod
    def _durs(cls, v: object) -> object:
        if not isinstance(v, dict):
            return v
        return {k: parse_duration(x, what=f"capacity.load_time.{k}") for k, x in v.items()}


def diurnal(peak_to_trough: float, peak_hour: float) -> F:
    """24 hourly values of the cosine day with the given swing (mean 1)."""
    a = (peak_to_trough - 1.0) / (peak_to_trough + 1.0)
    t = np.arange(24) + 0.5
    return 1.0 + a * np.cos(2 * np.pi * (t - peak_hour) / 24.0)


def from_arrivals(arrival_s: F, seconds_per_hour: float) -> F:
    """168 relative rates from arrival times: arrivals per profile hour, folded onto the week
    (hours the trace does not cover repeat it)."""
    a = np.asarray(arrival_s, dtype=np.float64)
    if a.size < 2:
        raise SiliconomicsError("spec field 'profile.trace': needs arrived_at times (>= 2 rows)")
    hours = np.floor((a - a.min()) / seconds_per_hour).astype(np.int64)
    span = int(hours.max())  # the last (partial) hour is dropped
    if span < 1:
        raise SiliconomicsError(
            "spec field 'profile.trace': the trace spans less than 2 profile hours; lower "
            "profile.trace_seconds_per_hour"
        )
    counts = np.bincount(hours, minlength=span + 1)[:span].astype(np.float64)
    return np.resize(counts, HOURS_PER_WEEK)


def weekly_shape(p: Profile, arrival_s: F | None = None) -> F:
    """168 hourly rates relative to the weekly mean (mean 1)."""
    if p.trace is not None:
        if arrival_s is None:
            raise SiliconomicsError("spec field 'profile.trace': the trace was not read")
        week = from_arrivals(arrival_s, p.trace_seconds_per_hour)
    elif p.hourly is not None and len(p.hourly) == HOURS_PER_WEEK:
        week = np.array(p.hourly, dtype=np.float64)
    else:
        day = (
            np.array(p.hourly, dtype=np.float64)
            if p.hourly is not None
            else diurnal(p.peak_to_trough or 1.0, p.peak_hour)
        )
        week = np.tile(day, 7)
        week[WEEKEND] *= p.weekend
    if week.mean() <= 0:
        raise SiliconomicsError("spec field 'profile': the traffic shape is zero everywhere")
    return week / week.mean()


def windowed_need(week: F, ahead_s: float, behind_s: float) -> F:
    """Capacity each hour must hold so that scaling keeps up: the highest rate from
    ``behind_s`` before the hour (a node is kept that long after the load falls) to
    ``ahead_s`` after it (a node must be started and loaded that long before it is needed).
    The rate is linear between hour midpoints (the week wraps)."""
    fine = 12  # 5-minute steps
    t = np.arange(HOURS_PER_WEEK * fine) / fine
    mid = np.arange(HOURS_PER_WEEK) + 0.5
    xs = np.r_[mid[-1] - HOURS_PER_WEEK, mid, mid[0] + HOURS_PER_WEEK]
    ys = np.r_[week[-1], week, week[0]]
    r = np.interp(t, xs, ys)
    a, b = round(ahead_s / 300.0), round(behind_s / 300.0)
    out = np.empty(HOURS_PER_WEEK)
    for h in range(HOURS_PER_WEEK):
        idx = np.arange(h * fine - b, (h + 1) * fine + a) % r.size
        out[h] = r[idx].max()
    return out


@dataclass(frozen=True, kw_only=True)
class Levels:
    """The week's hours grouped into rate levels (the aggregation of periods)."""

    need: F
    """per level: the highest windowed need of its hours (relative rate)"""
    hours: F
    """per level: hours per week"""
    of_hour: NDArray[np.int64]
    """per hour of the week: its level"""
    overstatement: float
    """sum(hours x (level need - hour need)) / sum(hour need): how much more capacity-hours
    the aggregated plan holds than hour-by-hour planning would"""


def aggregate(need: F, levels: int) -> Levels:
    """Group hours by their need into at most ``levels`` equal-width bands between the week's
    lowest and highest need; each band is planned at its highest hour (so every hour is
    covered) and weighs its number of hours. Time order does not matter once the windowed need
    holds the ramps, so this is a load-duration-curve aggregation."""
    lo, hi = float(need.min()), float(need.max())
    if hi - lo < 1e-9 * max(hi, 1.0):
        idx = np.zeros(need.size, dtype=np.int64)
    else:
        idx = np.minimum(((need - lo) / (hi - lo) * levels).astype(np.int64), levels - 1)
    used = np.unique(idx)
    remap = {int(u): i for i, u in enumerate(used)}
    of_hour = np.array([remap[int(i)] for i in idx], dtype=np.int64)
    lv_need = np.array([need[of_hour == i].max() for i in range(len(used))])
    hours = np.array([float((of_hour == i).sum()) for i in range(len(used))])
    over = float((lv_need[of_hour] - need).sum() / need.sum())
    return Levels(need=lv_need, hours=hours, of_hour=of_hour, overstatement=over)


def growth(p: Profile, g: float | None = None) -> F:
    """Traffic multiplier per month, at the month's end (capacity must hold the whole month)."""
    rate = p.growth_per_month if g is None else g
    return (1.0 + rate) ** np.arange(1, p.horizon_months + 1, dtype=np.float64)

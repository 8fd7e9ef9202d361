"""When does a cheaper fleet pay back the port? Pure arithmetic on the migration estimate
(engineer-weeks x a loaded engineering rate) and the monthly saving of the cheaper option.

- migration cost = weeks x rate (low and high);
- payback months = migration cost / monthly saving (None when there is no saving);
- net saving over the horizon = saving x horizon months - migration cost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import SiliconomicsError

if TYPE_CHECKING:
    from ..fleet import PlanOutcome

DEFAULT_ENG_RATE_USD_PER_WEEK = 6500.0
"""Loaded cost of one ML engineer-week; see docs/PORTING.md for the derivation and source."""
DEFAULT_HORIZON_MONTHS = 36.0


@dataclass(frozen=True, kw_only=True)
class Payback:
    weeks_low: float
    weeks_high: float
    eng_rate_usd_per_week: float
    monthly_saving_usd: float
    """saving per month of the cheaper option (negative: the target costs more)"""
    horizon_months: float

    @property
    def cost_low_usd(self) -> float:
        return self.weeks_low * self.eng_rate_usd_per_week

    @property
    def cost_high_usd(self) -> float:
        return self.weeks_high * self.eng_rate_usd_per_week

    def _months(self, cost: float) -> float | None:
        return cost / self.monthly_saving_usd if self.monthly_saving_usd > 0 else None

    @property
    def payback_months_low(self) -> float | None:
        return self._months(self.cost_low_usd)

    @property
    def payback_months_high(self) -> float | None:
        return self._months(self.cost_high_usd)

    @property
    def net_saving_low_usd(self) -> float:
        """net of the dearer port (the pessimistic end)"""
        return self.monthly_saving_usd * self.horizon_months - self.cost_high_usd

    @property
    def net_saving_high_usd(self) -> float:
        return self.monthly_saving_usd * self.horizon_months - self.cost_low_usd


def payback(
    *,
    weeks: tuple[float, float],
    eng_rate_usd_per_week: float,
    monthly_saving_usd: float,
    horizon_months: float = DEFAULT_HORIZON_MONTHS,
) -> Payback:
    lo, hi = weeks
    if lo < 0 or hi < lo:
        raise SiliconomicsError(f"migration weeks {lo}-{hi}: need 0 <= LOW <= HIGH")
    if eng_rate_usd_per_week <= 0 or horizon_months <= 0:
        raise SiliconomicsError("--eng-rate and --horizon must be positive")
    return Payback(
        weeks_low=lo,
        weeks_high=hi,
        eng_rate_usd_per_week=eng_rate_usd_per_week,
        monthly_saving_usd=monthly_saving_usd,
        horizon_months=horizon_months,
    )


_RANGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:-\s*(\d+(?:\.\d+)?))?\s*$")


def parse_weeks(text: str) -> tuple[float, float]:
    """``"6-10"`` -> (6, 10); ``"8"`` -> (8, 8)."""
    m = _RANGE.match(text)
    if not m:
        raise SiliconomicsError(
            f"--migration-weeks '{text}' is not a range; use LOW-HIGH, e.g. 6-10"
        )
    lo = float(m.group(1))
    hi = float(m.group(2)) if m.group(2) else lo
    if hi < lo:
        raise SiliconomicsError(f"--migration-weeks '{text}': HIGH is below LOW")
    return lo, hi


HOURS_PER_MONTH = 730.0
"""8,760 hours a year / 12"""


def plan_payback(outcome: PlanOutcome) -> Payback | None:
    """The payback of the spec's ``migration`` for the chosen fleet: its monthly saving is
    (baseline fleet USD/h - chosen fleet USD/h) x 730 h, the baseline being the planner's
    alternative named by ``migration.baseline``. None without a migration or a fleet."""
    mig = outcome.spec.migration
    f = outcome.fleet
    if mig is None or f is None:
        return None
    labels = {a.label: a for a in f.alternatives}
    base = labels.get(mig.baseline)
    if base is None or base.usd_per_hour is None:
        known = ", ".join(sorted(a for a, v in labels.items() if v.usd_per_hour is not None))
        raise SiliconomicsError(
            f"migration.baseline '{mig.baseline}' is not a feasible alternative of this plan; "
            f"allowed: {known or 'none'}"
        )
    if mig.weeks is None:  # the edge fills it from port_check before planning
        raise SiliconomicsError("migration: no weeks (port_check was not run)")
    return payback(
        weeks=parse_weeks(mig.weeks),
        eng_rate_usd_per_week=mig.eng_rate_usd_per_week or DEFAULT_ENG_RATE_USD_PER_WEEK,
        monthly_saving_usd=(base.usd_per_hour - f.usd_per_hour) * HOURS_PER_MONTH,
        horizon_months=mig.horizon_months,
    )

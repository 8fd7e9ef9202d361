"""When does a cheaper fleet pay back the port? Pure arithmetic on the migration estimate
(engineer-weeks x a loaded engineering rate) and the monthly saving of the cheaper option.

- migration cost = weeks x rate (low and high);
- payback months = migration cost / monthly saving (None when there is no saving);
- net saving over the horizon = saving x horizon months - migration cost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import SiliconomicsError

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

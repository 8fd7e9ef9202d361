"""Searched training plans carry the search's measured over-credit in their band (issue 10
item 6; docs/TRAINING.md, "Search realism"): the point estimate stays, the low end drops by the
ratio search / best published MFU at the band's level."""

from __future__ import annotations

import math

import numpy as np
import pytest

from siliconomics import api, resolve
from siliconomics.calibrate.bands import Band, searched


def _band(level: float = 0.8) -> Band:
    return Band(lo=-0.2, hi=0.1, level=level, n=10, basis="cell", reason="10 rows")


def test_searched_lowers_only_the_low_end_by_the_ratio_at_the_level() -> None:
    ratios = [0.9, 1.0, 1.05, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 2.0]
    b = searched(_band(), ratios)
    f = float(np.quantile(ratios, 0.8))
    assert b.lo == pytest.approx(-0.2 - math.log(f))
    assert b.hi == 0.1 and b.level == 0.8
    assert "searched plan" in b.reason and f"x{f:.2f}" in b.reason
    # a higher level takes a higher quantile: a wider band
    assert searched(_band(0.95), ratios).lo < b.lo


def test_searched_leaves_the_band_when_the_search_never_beats_published_runs() -> None:
    assert searched(_band(), []) == _band()
    assert searched(_band(), [0.8, 0.9, 1.0]) == _band()


def test_packaged_ratios_are_read_and_positive() -> None:
    r = resolve.search_realism_ratios()
    assert len(r) >= 20 and all(x > 0 for x in r)


def test_train_widens_the_band_of_searched_plans_not_of_a_given_plan() -> None:
    kw = {"global_batch": 64, "seq_len": 4096, "top": 1}
    fixed = api.train("llama-3-8b", "h100-sxm", 8, plan="tp=1,zero=1,mb=1,recompute=full", **kw)
    found = api.train("llama-3-8b", "h100-sxm", 8, **kw)
    assert fixed.band is not None and found.band is not None
    assert found.band.band.lo < fixed.band.band.lo
    assert found.band.band.hi == fixed.band.band.hi
    assert "searched plan" in found.to_dict()["band"]["reason"]
    assert "searched plan" not in fixed.to_dict()["band"]["reason"]

"""Honest validation: leave-one-source-out cross-validation, band coverage, and the generated
docs/VALIDATION.md (fails when stale)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from siliconomics.api import validate as api_validate
from siliconomics.calibrate.policy import BOUNDS
from siliconomics.cli import app
from siliconomics.report.validation_doc import COMMIT_PREFIX, render

ROOT = Path(__file__).resolve().parents[1]


def test_cross_validated_error_thresholds(shared_cv):
    # Thresholds set at what leave-one-source-out measures on the shared file (inference
    # 17.4%, training 15.9% at the time of writing) with margin; in-sample is not asserted.
    inf = shared_cv.stats("inference")[0]
    tr = shared_cv.stats("training")[0]
    assert inf.n >= 45 and inf.sources >= 12
    assert inf.cv_median_abs_pct <= 22.0
    assert tr.cv_median_abs_pct <= 20.0
    # cross-validated is never better than in-sample by construction of the folds' data
    assert inf.cv_median_abs_pct >= inf.in_sample_median_abs_pct - 1.0


def test_band_coverage_on_held_out_sources(shared_cv):
    # Each held-out row's 80% band comes from the other sources' residuals only.
    rows = shared_cv.rows
    cov = sum(r.covered for r in rows) / len(rows)
    assert 0.72 <= cov <= 0.90, cov
    for kind in ("inference", "training"):
        assert 0.6 <= shared_cv.stats(kind)[0].coverage <= 0.95
    # every group key is reported
    for key in ("family", "model_class", "regime", "dtype", "stack"):
        assert shared_cv.stats("inference", key)


def test_fits_obey_the_policy(shared_cv):
    for r in shared_cv.calibration.records:
        assert len(r.params) <= r.n_rows // 3, r
        for p in r.params:
            v = r.values[p]
            lo, hi = BOUNDS[p]
            assert lo <= v <= hi


def _strip(text: str) -> str:
    return "\n".join(
        re.sub(r"at commit `[^`]*`", "at commit `X`", line) for line in text.splitlines()
    )


def test_validation_doc_is_current(shared, shared_cv):
    doc = ROOT / "docs" / "VALIDATION.md"
    measured = shared / "validation/measured.csv"
    fresh = render(measured.name, "X", api_validate(measured).value, shared_cv)
    assert COMMIT_PREFIX in fresh
    assert _strip(doc.read_text(encoding="utf-8")) == _strip(fresh), (
        "docs/VALIDATION.md is stale: run `make docs`"
    )


def test_validate_json_gives_a_band_and_stack_for_every_prediction(shared):
    r = CliRunner().invoke(app, ["validate", str(shared / "validation/measured.csv"), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    rows = d["results"] + d["training"]["results"]
    assert len(rows) >= 70
    for x in rows:
        assert x["low"] is not None and x["high"] is not None, x["id"]
        assert x["low"] < x["high"]
        assert x["stack"], x["id"]
        assert x["band_reason"]
    inside = sum(x["low"] <= x["measured"] <= x["high"] for x in rows) / len(rows)
    assert inside >= 0.75  # in-sample coverage of the packaged bands (CV coverage above)

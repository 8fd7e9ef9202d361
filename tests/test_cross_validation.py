"""Honest validation: cross-validation by source (the shared file leave-one-source-out; the
packaged corpus grouped 10-fold, read from docs/data/cross_validation.json), band coverage, and the generated
docs/VALIDATION.md (fails when stale)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siliconomics.api import validate as api_validate
from siliconomics.calibrate.policy import BOUNDS
from siliconomics.catalog.stacks import packaged_residuals
from siliconomics.cli import app
from siliconomics.report.validation_doc import COMMIT_PREFIX, render
from siliconomics.validate.cv import CVReport

ROOT = Path(__file__).resolve().parents[1]
CORPUS_INFERENCE_MAX = 25.0
CORPUS_TRAINING_MAX = 18.0


CV_JSON = ROOT / "docs" / "data" / "cross_validation.json"


def _corpus_cv() -> CVReport:
    return CVReport.from_json(json.loads(CV_JSON.read_text(encoding="utf-8")))


def test_cross_validated_error_thresholds(shared_cv):
    # Leave one source out on the shared file alone (the library path users run on their own
    # file). Thresholds at what it measures (inference 17.1%, training 13.9% at the time of
    # writing) with margin; in-sample is not asserted.
    inf = shared_cv.stats("inference")[0]
    tr = shared_cv.stats("training")[0]
    assert inf.n >= 45 and inf.sources >= 12
    assert inf.cv_median_abs_pct <= 22.0
    assert tr.cv_median_abs_pct <= 20.0
    # cross-validated is never better than in-sample by construction of the folds' data
    assert inf.cv_median_abs_pct >= inf.in_sample_median_abs_pct - 1.0


def test_band_coverage_on_held_out_sources(shared_cv):
    # Each held-out row's 80% band comes from the other sources' residuals only, widened by
    # its (kind, family) scale estimated from the other sources' held-out rows (never its own
    # miss), so coverage is not 80% by construction: on the shared file's few rows (51
    # inference rows from 16 sources) the binomial spread of an 80% coverage alone is wide, so
    # the bound is its 95% interval, 0.8 +- 1.96 sqrt(0.16 / n) (69-91% for 51 rows; the corpus
    # report, ~2,000 rows, is held to 75-85%). With one to five sources per family the
    # Student-t widening of the scales (bands.t_ratio) sits this small set near the top
    # (2026-11-30: inference 46 of 51).
    for kind in ("inference", "training"):
        st = shared_cv.stats(kind)[0]
        half = 1.96 * math.sqrt(0.16 / st.n)
        assert 0.8 - half <= st.coverage <= 0.8 + half, (kind, st.n, st.coverage)
    # every group key is reported
    for key in ("family", "model_class", "regime", "dtype", "stack"):
        assert shared_cv.stats("inference", key)


def test_corpus_cross_validation_headline():
    # The packaged calibration's cross-validation (make calibrate: corpus + shared file,
    # grouped by source). Thresholds at what it measures with margin (see docs/VALIDATION.md).
    cv = _corpus_cv()
    inf, tr = cv.stats("inference")[0], cv.stats("training")[0]
    assert inf.n >= 1500 and inf.sources >= 80
    assert tr.n >= 250 and tr.sources >= 50
    assert inf.cv_median_abs_pct <= CORPUS_INFERENCE_MAX
    assert tr.cv_median_abs_pct <= CORPUS_TRAINING_MAX
    # Held-out coverage (each row's width scale estimated without its own source, so not 80%
    # by construction). Training allows 70%: its one-source MoE group (28 rows that no other
    # source predicts) is covered about a third of the time, which pulls the kind to ~75%;
    # docs/VALIDATION.md lists every group outside 75-85%.
    assert 0.75 <= inf.coverage <= 0.85
    assert 0.70 <= tr.coverage <= 0.85
    # bands shipped = the residuals of this cross-validation
    packaged = {r.id: r for r in packaged_residuals()}
    assert set(packaged) == {r.id for r in cv.rows}
    for r in cv.residuals():
        assert packaged[r.id].log_ratio == pytest.approx(r.log_ratio, rel=1e-9, abs=1e-12)
        assert packaged[r.id].scale == pytest.approx(r.scale)


def test_corpus_band_coverage_per_group():
    # Bands are checked per group on held-out rows only: each row's band comes from the other
    # sources' residuals and its (kind, family) width scale from the other sources' held-out
    # coverage. Well-sourced groups (at least 10 sources) must cover near the 80% level;
    # the doc lists every group outside 75-85%. Reports written before per-family scales
    # (no `family_scale`) are not checked here: `make calibrate` regenerates them.
    cv = _corpus_cv()
    if not cv.family_scale:
        pytest.skip("cross_validation.json predates per-family band scales: run make calibrate")
    off = []
    for kind, lo, hi in (("inference", 0.70, 0.90), ("training", 0.55, 0.95)):
        for key in ("family", "model_class", "regime", "dtype", "stack"):
            for s in cv.stats(kind, key):
                if s.sources >= 10 and not lo <= s.coverage <= hi:
                    off.append((kind, key, s.group))
    assert sorted(off) == sorted(KNOWN_UNDERCOVERED), off


# Well-sourced groups whose held-out bands cover too little, each with its diagnosis; the test
# fails when one is mended (remove it) or a new one appears.
KNOWN_UNDERCOVERED: list[tuple[str, str, str]] = [
    # (MLPerf Training GPT-3 INT8 on TPU v5p/v6e, 13 rows from 13 submissions, was covered 46%
    # while v6e's INT8 rows sat 22% fast; since each chip fits the GEMM fractions its rows run
    # (calibrate.policy.chip_affordable) they are within 1-8%, 85% covered.)
    # Over-covered: MLPerf Training Llama-2-70B LoRA under FP8 attention + FP8 activation store
    # on Blackwell (18 rows, 18 submissions) sits within 4% of the measurements, while its
    # bands come from the whole Blackwell training cell, whose held-out scale widened (x1.16 ->
    # x1.29) when the BF16 rows (Megatron-Bridge tutorial, NeMo's BF16 MoE rows, 20-30% apart
    # in both directions) got their own fitted fraction on 2026-12-01: 100% covered.
    ("training", "dtype", "fp8/fp8-dpa-act"),
]


def test_fits_obey_the_policy(shared_cv):
    for r in (*shared_cv.records, *_corpus_cv().records):
        assert len(r.params) <= r.n_rows // 3, r
        for p in r.params:
            v = r.values[p]
            lo, hi = BOUNDS[p]
            assert lo <= v <= hi


def _strip(text: str) -> str:
    return "\n".join(
        re.sub(r"at commit `[^`]*`", "at commit `X`", line) for line in text.splitlines()
    )


def test_validation_doc_is_current(shared):
    doc = ROOT / "docs" / "VALIDATION.md"
    measured = shared / "validation/measured.csv"
    fresh = render(measured.name, "X", api_validate(measured).value, _corpus_cv())
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

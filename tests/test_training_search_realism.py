"""Issue 10 item 6: for each published training row, the search's fastest plan must not beat the
published MFU by more than 10% (validate/search_realism.py). Rows still above are listed with
the diagnosed over-credit as strict xfails: the day a mechanism fixes one, the xfail fails and
must be removed (docs/TRAINING.md, "Search realism", keeps the table)."""

import pytest

from siliconomics.resolve import device, measured
from siliconomics.validate.search_realism import search_vs_published
from siliconomics.validate.train_rows import train_rows_by_family

LIMIT = 1.10
# Diagnoses from the split ratio = row_error x search_gain (validate/search_realism.py):
# row_error = the model's MFU for the published plan / published MFU; search_gain = searched /
# published plan, both in the model (docs/TRAINING.md, "Search realism", has the table).
_NO_RECOMPUTE = (
    "search gain: cp2 halves activations so the searched plan drops the full recomputation "
    "the memory model says the published layout needs (the row itself is predicted within 10%)"
)
_TPU_LAYOUT = (
    "search gain: tensor-parallel + FSDP without remat, where the published plan is FSDP + "
    "remat (the fitted TPU train_comm_overlap, at its upper bound 1.0 since the corpus "
    "calibration, hides TP traffic)"
)
_ROW = "row error: the model is optimistic on the published plan itself; the search adds < 5%"
# Ratios in parentheses were measured with the calibration of 2026-11-29 (shared file only);
# the corpus calibration of 2026-11-30 moved three rows within 10% (removed from this list).
KNOWN_OVER: dict[str, str] = {
    "LLAMA3PAPER-H100-16384": _NO_RECOMPUTE + " (1.37)",
    "LLAMA3PAPER-H100-8192": _NO_RECOMPUTE + " (1.35)",
    "MAXTEXT-V5E-64B": _TPU_LAYOUT + " (1.24)",
    "MAXTEXT-V5P-512B": _TPU_LAYOUT + " (1.55; the published tp16 plan is predicted 26% slow)",
    "MLPT41-V6E-512-GPT3-BLK": _ROW + " (1.98: v6e int8 GPT-3 is predicted twice too fast)",
    "TPUREC-V6E-L2-70B-TPS": _ROW + " (1.26)",
    "TPUREC-V6E-L31-70B-STEP": _ROW + " (1.12)",
    "TPUREC-V6E-L31-8B-STEP": "both: row error 1.20 and search gain 1.29 (cp2, no remat)",
    "MLPT50-B200-8-LORA-THR": _NO_RECOMPUTE + " (1.44)",
    "MLPT41-H100-8-LORA-THR": _NO_RECOMPUTE + " (1.16)",
    "MLPT50-MI300X-8-LORA-THR": "both: row error 1.18 (one unfitted MI300X row) and "
    + _NO_RECOMPUTE
    + " (1.43)",
    "NEMO2407-H100-L3-8B-8": _ROW + " (1.27: NeMo 24.07; 25.09 runs the layout 15% faster)",
    "NEMO2407-H100-L2-7B-8": _ROW + " (1.16: NeMo 24.07)",
}


def _rows(shared):
    _, train_rows, catalog = measured(shared / "validation/measured.csv")
    return [(tr, m) for tr, m, _ in train_rows_by_family(train_rows, catalog) if m is not None]


def test_search_stays_within_ten_percent_of_published_mfu(shared):
    rows = _rows(shared)
    assert len(rows) >= 20
    over, fixed = [], []
    for tr, m in rows:
        x = search_vs_published(tr, m, device(tr.row.chip))
        assert 0.0 < x.published_mfu < 1.0 and 0.0 < x.search_mfu < 1.0, x
        if x.ratio > LIMIT and x.row_id not in KNOWN_OVER:
            over.append(f"{x.row_id}: {x.ratio:.2f} ({x.search_plan})")
        if x.ratio <= LIMIT and x.row_id in KNOWN_OVER:
            fixed.append(x.row_id)
    assert not over, "search beats the published MFU by > 10%: " + "; ".join(over)
    assert not fixed, f"now within 10%: remove from KNOWN_OVER: {fixed}"


@pytest.mark.parametrize("row_id", sorted(KNOWN_OVER))
def test_known_over_credits_are_still_open(shared, row_id):
    """Each known over-credit, one per row: strict xfail, so a fix shows up as a failure."""
    tr, m = next((tr, m) for tr, m in _rows(shared) if tr.row.id == row_id)
    x = search_vs_published(tr, m, device(tr.row.chip))
    if x.ratio > LIMIT:
        pytest.xfail(f"{x.ratio:.2f}x: {KNOWN_OVER[row_id]}")
    pytest.fail(f"{row_id} is now within 10% ({x.ratio:.2f}x): remove it from KNOWN_OVER")


def test_ratio_splits_into_row_error_and_search_gain(shared):
    """The diagnosis rests on ratio = row_error x search_gain, with the published plan
    predicted as validate predicts the row (finite for every row)."""
    for tr, m in _rows(shared)[:6]:
        x = search_vs_published(tr, m, device(tr.row.chip))
        assert x.plan_mfu > 0 and x.published_plan
        assert x.ratio == pytest.approx(x.row_error * x.search_gain)

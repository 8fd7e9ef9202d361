"""Issue 10 item 6: for each published training row, the search's fastest plan must not beat the
best published MFU for that configuration (model, chip, chip count, sequence, batch, method and
recipe: the row itself or a faster published run of it in the shared file or the packaged
corpus) by more than 10% (validate/search_realism.py). Rows still above are listed with the
diagnosed over-credit as strict xfails: the day a mechanism fixes one, the xfail fails and
must be removed (docs/TRAINING.md, "Search realism", keeps the table)."""

import importlib.util
import tomllib
from pathlib import Path

import pytest

from siliconomics.resolve import device
from siliconomics.validate.search_realism import (
    configuration,
    published_mfu,
    search_vs_published,
)

ROOT = Path(__file__).resolve().parent.parent

LIMIT = 1.10
# Diagnoses from the split ratio = row_error x search_gain (validate/search_realism.py):
# row_error = the model's MFU for the published plan / published MFU; search_gain = searched /
# published plan, both in the model (docs/TRAINING.md, "Search realism", has the table).
_NO_RECOMPUTE = (
    "search gain: cp2 halves activations so the searched plan drops the full recomputation "
    "the memory model says the published layout needs"
)
_TPU_LAYOUT = (
    "search gain: tensor-parallel + FSDP without remat, where the published plan is FSDP + "
    "remat (the fitted TPU train_comm_overlap, at its upper bound 1.0 since the corpus "
    "calibration, hides TP traffic)"
)
_ROW = "row error: the model is optimistic on the published plan itself; the search adds < 5%"
_BOTH = "both: the model is optimistic on the published plan and the search adds "
# ratio = row_error x search_gain, measured with the corpus calibration of 2026-11-30 against
# the best published run of the configuration. Left since: NEMO2407-H100-L3-8B-8 (1.25 against
# its own NeMo 24.07 run, 1.04 against NeMo 25.11's run of the same configuration, which is
# 20% faster: the row error was the older software, not the search).
KNOWN_OVER: dict[str, str] = {
    "LLAMA3PAPER-H100-16384": _NO_RECOMPUTE + " (1.31 = 0.96 x 1.36)",
    "LLAMA3PAPER-H100-8192": _NO_RECOMPUTE + " (1.32 = 0.98 x 1.35)",
    "MAXTEXT-V5E-64B": _TPU_LAYOUT + " (1.21 against the corpus run; 0.93 x 1.32)",
    "MAXTEXT-V5P-512B": _TPU_LAYOUT + " (1.15 = 0.87 x 1.33; the published tp16 plan is slow)",
    "MLPT41-V6E-512-GPT3-BLK": _BOTH
    + "tp8 + pp2 for the published FSDP + remat (1.56 = 1.22 x 1.28)",
    "TPUREC-V6E-L2-70B-TPS": _BOTH + "tp4 without remat (1.60 = 1.22 x 1.32)",
    "TPUREC-V6E-L31-70B-STEP": _TPU_LAYOUT + " (1.42 = 1.09 x 1.31)",
    "TPUREC-V6E-L31-8B-STEP": _BOTH + "cp2 without remat (1.50 = 1.17 x 1.29)",
    "MLPT41-H100-8-LORA-THR": "search gain: tp2 + cp2 for the published tp4, mb2 (1.20 = 1.06 x 1.13)",
    "MLPT50-MI300X-8-LORA-THR": _NO_RECOMPUTE
    + " (1.25 against Dell's faster MI300X run; 0.88 x 1.44, one unfitted MI300X row)",
    # Entered with the recalibration that added chip-level factors (same day, later): the
    # tpu-v5e chip factor (0.79, above the TPU family's 0.75). Left with the recalibration after the
    # Megatron MoE-layer efficiency and the 400 Gb/s B200 NICs (2026-11-30, later):
    # MBRIDGE2511-B200-L31-405B-128 and NEMO2407-H100-L2-7B-8 (ratios in docs/TRAINING.md).
    # Left with the FP8 activation-function store of the MLPerf LoRA configs (2026-11-30,
    # last pass): MLPT50-B200-8-LORA-THR (1.16 -> 1.01: its published layout now fits without
    # the full recomputation the memory model used to force).
    "MAXTEXT-V5E-32B": _TPU_LAYOUT + " (1.14 against the corpus run; 0.88 x 1.33)",
}


def _script():
    spec = importlib.util.spec_from_file_location("sr", ROOT / "scripts/search_realism.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SR = _script()


def _rows(shared):
    return SR.rows(shared)


def _best_published(shared: Path) -> dict[tuple[object, ...], tuple[float, str]]:
    return SR.best_published(shared)


def _ratio(shared, tr, m):
    """(search MFU / best published MFU of the configuration, the best row's id, Realism)."""
    return SR.ratio(shared, tr, m)


def test_search_stays_within_ten_percent_of_published_mfu(shared):
    rows = _rows(shared)
    assert len(rows) >= 20
    over, fixed = [], []
    for tr, m in rows:
        ratio, best_id, x = _ratio(shared, tr, m)
        assert 0.0 < x.published_mfu < 1.0 and 0.0 < x.search_mfu < 1.0, x
        assert ratio <= x.ratio
        if ratio > LIMIT and x.row_id not in KNOWN_OVER:
            over.append(f"{x.row_id}: {ratio:.2f} vs {best_id} ({x.search_plan})")
        if ratio <= LIMIT and x.row_id in KNOWN_OVER:
            fixed.append(x.row_id)
    assert not over, "search beats the best published MFU by > 10%: " + "; ".join(over)
    assert not fixed, f"now within 10%: remove from KNOWN_OVER: {fixed}"


def test_best_published_is_a_faster_run_of_the_same_configuration(shared):
    """NeMo 24.07's Llama-3-8B on 8 H100 (shared file) is not the best published run of its
    configuration: NeMo 25.11 ran the same model, chips, sequence, batch and FP8 recipe 20%
    faster (corpus nemo.csv), and that run is the realism benchmark."""
    tr, m = next((tr, m) for tr, m in _rows(shared) if tr.row.id == "NEMO2407-H100-L3-8B-8")
    best, best_id = _best_published(shared)[configuration(tr)]
    assert best_id == "NEMO-2511-H100-LLAMA-3-8B-8-FP8-CS"
    assert best > 1.15 * published_mfu(tr, m, device(tr.row.chip))


@pytest.mark.parametrize("row_id", sorted(KNOWN_OVER))
def test_known_over_credits_are_still_open(shared, row_id):
    """Each known over-credit, one per row: strict xfail, so a fix shows up as a failure."""
    tr, m = next((tr, m) for tr, m in _rows(shared) if tr.row.id == row_id)
    ratio, best_id, _ = _ratio(shared, tr, m)
    if ratio > LIMIT:
        pytest.xfail(f"{ratio:.2f}x vs {best_id}: {KNOWN_OVER[row_id]}")
    pytest.fail(f"{row_id} is now within 10% ({ratio:.2f}x): remove it from KNOWN_OVER")


def test_ratio_splits_into_row_error_and_search_gain(shared):
    """The diagnosis rests on ratio = row_error x search_gain, with the published plan
    predicted as validate predicts the row (finite for every row)."""
    for tr, m in _rows(shared)[:6]:
        x = search_vs_published(tr, m, device(tr.row.chip))
        assert x.plan_mfu > 0 and x.published_plan
        assert x.ratio == pytest.approx(x.row_error * x.search_gain)


def test_packaged_search_realism_table_is_current(shared):
    """catalog/data/search_realism.toml (it widens the band of searched plans) holds the ratios
    this code gives today: re-run `scripts/search_realism.py --write` when this fails."""
    raw = tomllib.loads((ROOT / "src/siliconomics/catalog/data/search_realism.toml").read_text())
    packaged = {r["id"]: r["ratio"] for r in raw["row"]}
    fresh = {rid: r for rid, r, _, _ in SR.table(shared)}
    assert set(packaged) == set(fresh)
    for rid, r in fresh.items():
        assert packaged[rid] == pytest.approx(r, abs=0.01), rid

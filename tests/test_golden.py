"""Refactors keep predictions bit-identical: every row of the shared measured file is predicted
exactly as recorded in tests/data/golden_predictions.json (see scripts/golden_predictions.py
for how a deliberate model change regenerates it)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ROOT.parent / "shared" / "validation" / "measured.csv"


@pytest.mark.skipif(not MEASURED.is_file(), reason="../shared/validation/measured.csv missing")
def test_predictions_are_bit_identical_to_the_golden_file() -> None:
    spec = importlib.util.spec_from_file_location("golden", ROOT / "scripts/golden_predictions.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    want = json.loads(mod.GOLDEN.read_text(encoding="utf-8"))
    got = mod.predictions(MEASURED)
    changed = {
        k: (want.get(k), got.get(k)) for k in set(want) | set(got) if want.get(k) != got.get(k)
    }
    assert not changed, f"{len(changed)} predictions changed, e.g. {sorted(changed.items())[:3]}"

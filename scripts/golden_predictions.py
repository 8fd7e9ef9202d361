"""Write (or check) the golden predictions for the shared measured file.

``tests/test_golden.py`` asserts that ``siliconomics validate`` predicts every row of the shared
file bit-identically to ``tests/data/golden_predictions.json``. A refactor must leave it
unchanged. A deliberate model or calibration change regenerates it with
``python scripts/golden_predictions.py ../shared/validation/measured.csv --write`` and says why
in the commit message.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from siliconomics.api import validate

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "data" / "golden_predictions.json"


def predictions(measured: Path) -> dict[str, str]:
    """Row id -> repr of the predicted value (repr round-trips floats exactly)."""
    r = validate(measured).value
    out = {
        f"inference:{x.row.id}": repr(x.predicted)
        + ("" if x.simulated is None else f" sim={x.simulated!r}")
        for x in r.results
    }
    if r.training is not None:
        out.update(
            {
                f"training:{x.row.id}": repr(x.predicted)
                + ("" if x.simulated is None else f" sim={x.simulated!r}")
                for x in r.training.results
            }
        )
    return dict(sorted(out.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("measured", type=Path)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    got = predictions(a.measured)
    if a.write:
        GOLDEN.write_text(json.dumps(got, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {len(got)} predictions to {GOLDEN}")
        return 0
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    diff = {k for k in set(got) | set(want) if got.get(k) != want.get(k)}
    for k in sorted(diff):
        print(f"{k}: golden {want.get(k)} now {got.get(k)}")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())

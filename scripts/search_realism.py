"""Search realism (issue 10 item 6): for every published training row of the shared file, the
MFU of the search's fastest plan for the same configuration against the best published MFU of
that configuration (the row itself or a faster published run of it in the shared file or the
packaged corpus); ``validate/search_realism.py`` has the definitions.

Prints one line per row (ratio, the best run, the split into row error x search gain, both
plans). ``--write`` stores the ratios as ``catalog/data/search_realism.toml``, which widens the
band of every searched training plan (``siliconomics train`` without ``--plan``) by the ratio at
the band's level (docs/TRAINING.md, "Search realism"). ``tests/test_training_search_realism.py``
recomputes them and fails when the packaged file is stale. Usage::

    .venv/bin/python scripts/search_realism.py [--shared ../shared] [--write]
"""

from __future__ import annotations

import argparse
import functools
from datetime import date
from pathlib import Path
from typing import Any

from siliconomics.errors import SiliconomicsError
from siliconomics.resolve import device, measured
from siliconomics.validate.search_realism import (
    Realism,
    configuration,
    published_mfu,
    search_vs_published,
)
from siliconomics.validate.train_rows import train_rows_by_family

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "src/siliconomics/measured/corpus"
TRAIN_FILES = ("nemo", "maxtext", "gaudi", "mlperf-training-v4.0", "mlperf-training-v4.1",
               "mlperf-training-v5.0", "neuron")  # fmt: skip
PACKAGED = ROOT / "src/siliconomics/catalog/data/search_realism.toml"


def rows(shared: Path) -> list[tuple[Any, Any]]:
    """The shared file's usable training rows with a known model: (TrainRow, ModelSpec)."""
    _, train_rows, catalog = measured(shared / "validation/measured.csv")
    return [(tr, m) for tr, m, _ in train_rows_by_family(train_rows, catalog) if m is not None]


@functools.cache
def best_published(shared: Path) -> dict[tuple[object, ...], tuple[float, str]]:
    """Best published MFU (and its row id) per configuration over the shared file and the
    packaged corpus training files."""
    best: dict[tuple[object, ...], tuple[float, str]] = {}
    files = [shared / "validation/measured.csv"] + [CORPUS / f"{f}.csv" for f in TRAIN_FILES]
    for f in files:
        _, got, cat = measured(f, CORPUS / "models.csv")
        for tr, m, _ in train_rows_by_family(got, cat):
            if m is None:
                continue
            try:
                mfu = published_mfu(tr, m, device(tr.row.chip, cat))
            except SiliconomicsError:
                continue
            key = configuration(tr)
            if mfu > best.get(key, (0.0, ""))[0]:
                best[key] = (mfu, tr.row.id)
    return best


def ratio(shared: Path, tr: Any, m: Any) -> tuple[float, str, Realism]:
    """(search MFU / best published MFU of the configuration, the best row's id, Realism)."""
    x = search_vs_published(tr, m, device(tr.row.chip))
    best, best_id = best_published(shared).get(configuration(tr), (x.published_mfu, x.row_id))
    best = max(best, x.published_mfu)
    return x.search_mfu / best, best_id, x


def table(shared: Path) -> list[tuple[str, float, str, Realism]]:
    """(row id, ratio, best row id, Realism) for every row, in the shared file's order."""
    out = []
    for tr, m in rows(shared):
        r, best_id, x = ratio(shared, tr, m)
        out.append((tr.row.id, r, best_id, x))
    return out


def toml_text(t: list[tuple[str, float, str, Realism]], today: str) -> str:
    lines = [
        "# Search realism: the search's fastest plan against the best published MFU of each",
        "# published training configuration (docs/TRAINING.md, 'Search realism'). Written by",
        "# `.venv/bin/python scripts/search_realism.py --write`; it widens the band of searched",
        "# training plans. Regenerate it after a recalibration (the test fails when stale).",
        f'measured = "{today}"',
        'source = "../shared/validation/measured.csv + src/siliconomics/measured/corpus '
        '(training files)"',
        "",
    ]
    for rid, r, best_id, x in t:
        lines += [
            "[[row]]",
            f'id = "{rid}"',
            f"ratio = {r:.4f}",
            f'best = "{best_id}"',
            f'search_plan = "{x.search_plan}"',
            f'published_plan = "{x.published_plan}"',
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--write", action="store_true", help=f"write {PACKAGED.name}")
    a = ap.parse_args()
    t = table(a.shared)
    for rid, r, best_id, x in t:
        flag = "OVER" if r > 1.10 else "    "
        print(
            f"{rid:32s} {r:5.2f} {flag} row {x.row_error:.2f} x search {x.search_gain:.2f}"
            f"  best {best_id}  search: {x.search_plan}  published: {x.published_plan}"
        )
    within = sum(r <= 1.10 for _, r, _, _ in t)
    print(f"{len(t)} rows, {within} within 1.10")
    if a.write:
        PACKAGED.write_text(toml_text(t, date.today().isoformat()), encoding="utf-8")
        print(f"wrote {PACKAGED}")


if __name__ == "__main__":
    main()

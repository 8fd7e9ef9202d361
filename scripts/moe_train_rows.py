"""MoE training rows of the packaged NeMo corpus: predicted / measured and the step breakdown.

``--cv-like`` predicts with the family profile less its per-chip factors and with
``train_host_op_s`` at the calibration prior (what a family fit without the NeMo source
falls back to), a quick stand-in for the grouped cross-validation of ``make calibrate``.
Usage::

    .venv/bin/python scripts/moe_train_rows.py [--cv-like] [--dense]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from siliconomics import resolve
from siliconomics.calibrate.policy import PRIORS
from siliconomics.errors import SiliconomicsError
from siliconomics.training.estimate import train_device
from siliconomics.validate.banded import default_profile_set, row_profile
from siliconomics.validate.rows import row_device
from siliconomics.validate.train_rows import _metric, best_row_estimate

CORPUS = Path(__file__).resolve().parent.parent / "src/siliconomics/measured/corpus"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cv-like", action="store_true", help="no chip factors, host op at prior")
    ap.add_argument("--dense", action="store_true", help="dense rows too")
    a = ap.parse_args()
    _, train, cat = resolve.measured(CORPUS / "nemo.csv", CORPUS / "models.csv")
    ps = default_profile_set(cat.profiles)
    cells: dict[tuple[str, str], list[float]] = {}
    for tr in train:
        model = cat.models[tr.row.model]
        if model.moe is None and not a.dense:
            continue
        fam = cat.chip(tr.row.chip).family
        prof = row_profile(tr.row, fam, ps)[0].profile
        if a.cv_like:
            upd = {"chip_factors": {}, "train_host_op_s": PRIORS["train_host_op_s"]}
            prof = prof.model_copy(update=upd)
        dev = train_device(row_device(tr.row, cat.with_profiles({fam: prof})))
        try:
            est = best_row_estimate(tr, model, dev, [])
        except SiliconomicsError as e:
            print(f"{tr.row.id:48} skipped: {e}")
            continue
        ratio = _metric(tr, model, est.tokens_per_s, est.step_time_s) / tr.row.value
        tot = sum(est.breakdown.values())
        parts = " ".join(
            f"{k.split()[0][:8]}={v / tot * 100:.0f}%"
            for k, v in est.breakdown.items()
            if v > 0.01 * tot
        )
        print(f"{tr.row.id:48} {ratio:5.2f}  {est.plan.label()} | {parts}")
        dtype = "bf16" if (tr.row.act_dtype or "bf16") in ("bf16", "fp16") else "fp8"
        cls = "moe" if model.moe is not None else "dense"
        cells.setdefault((f"{fam} {cls}", dtype), []).append(abs(ratio - 1.0) * 100.0)
    for (fam, dt), v in sorted(cells.items()):
        print(f"{fam:24} {dt:5} n={len(v):3d} median |error| {statistics.median(v):5.1f}%")


if __name__ == "__main__":
    main()

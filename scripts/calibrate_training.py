"""Calibrate the training factors of every chip family on the measured training rows
(procedure: siliconomics.calibrate.train_fit). Run after scripts/calibrate_families.py.

    .venv/bin/python scripts/calibrate_training.py ../shared/validation/measured.csv [--write]

Prints per family the factors fitted, rows used, median |error| before/after and
leave-one-out. With --write it updates src/siliconomics/catalog/data/efficiency/<family>.toml
(train_* factors and their provenance); other fields are left as they are.
"""

from __future__ import annotations

import argparse
import statistics
import tomllib
from pathlib import Path

import tomli_w

from siliconomics import resolve
from siliconomics.calibrate.train_fit import TRAIN_FIT_PLAN, TRAIN_INHERIT, fit_train_family
from siliconomics.catalog.registry import efficiency_profiles
from siliconomics.catalog.schema import EfficiencyProfile, ModelSpec
from siliconomics.measured.training import TrainRow
from siliconomics.validate.train_rows import train_rows_by_family

EFF_DIR = Path(__file__).resolve().parents[1] / "src/siliconomics/catalog/data/efficiency"
FIELDS = ("train_gemm_efficiency", "train_lowp_gemm_efficiency", "train_comm_overlap")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("measured", type=Path)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--no-loo", action="store_true", help="skip leave-one-out (faster)")
    args = ap.parse_args()
    _, train_rows, catalog = resolve.measured(args.measured)
    by_family: dict[str, list[tuple[TrainRow, ModelSpec]]] = {}
    for tr, model, fam in train_rows_by_family(train_rows, catalog):
        if model is not None:
            by_family.setdefault(fam, []).append((tr, model))
    profiles: dict[str, EfficiencyProfile] = dict(efficiency_profiles())
    prov: dict[str, dict[str, str]] = {f: {} for f in profiles}
    src = args.measured.name
    print(f"{'family':18s} {'rows':>4s} {'before':>8s} {'after':>8s} {'LOO':>8s}  factors")
    fitted: list[str] = []
    for fam in sorted(profiles, key=lambda f: f in TRAIN_INHERIT):
        parent = TRAIN_INHERIT.get(fam)
        if parent:
            upd = {k: getattr(profiles[parent], k) for k in FIELDS}
            profiles[fam] = profiles[fam].model_copy(update=upd)
            for k, v in upd.items():
                if v is not None:
                    prov[fam][k] = f"inherited from {parent} (same software stack)"
        rows = by_family.get(fam, [])
        if not rows or fam not in TRAIN_FIT_PLAN:
            continue
        fit = fit_train_family(
            fam,
            rows,
            profiles[fam],
            catalog.with_profiles(profiles),
            leave_one_out=not args.no_loo,
        )
        profiles[fam] = profiles[fam].model_copy(update=fit.values)
        fitted.append(fam)
        for k in fit.params:
            prov[fam][k] = (
                f"fitted on {src} training rows, family {fam} (n={fit.n_rows}, joint "
                f"with {', '.join(p for p in fit.params if p != k) or '-'}; median |err| "
                f"{fit.median_abs_pct_before:.1f}% -> {fit.median_abs_pct_after:.1f}%, "
                f"leave-one-out {fit.loo_median_abs_pct:.1f}%)"
            )
        vals = ", ".join(f"{k}={v:.3g}" for k, v in fit.values.items())
        print(
            f"{fam:18s} {fit.n_rows:4d} {fit.median_abs_pct_before:7.1f}% "
            f"{fit.median_abs_pct_after:7.1f}% {fit.loo_median_abs_pct:7.1f}%  {vals}"
        )
    # Families without rows or parent: the overlap is the median of fitted families; GEMM
    # factors stay unset (the serving-stack factors apply).
    ov = [profiles[f].train_comm_overlap for f in fitted if profiles[f].train_comm_overlap]
    for fam, prof in profiles.items():
        if prof.train_comm_overlap is None and ov:
            profiles[fam] = prof.model_copy(update={"train_comm_overlap": statistics.median(ov)})
            prov[fam]["train_comm_overlap"] = (
                f"median of the calibrated families ({', '.join(fitted)}): no training rows "
                "for this family"
            )
    if args.write:
        for fam, prof in profiles.items():
            path = EFF_DIR / f"{fam}.toml"
            raw = tomllib.loads(path.read_text())
            for k in FIELDS:
                v = getattr(prof, k)
                if v is not None:
                    raw[k] = float(f"{v:.4g}")
            raw.setdefault("provenance", {}).update(prov[fam])
            path.write_text(tomli_w.dumps(raw))
        print(f"wrote training factors to {len(profiles)} profiles in {EFF_DIR}")


if __name__ == "__main__":
    main()

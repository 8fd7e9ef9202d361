"""Calibrate the efficiency profiles of every chip family (reproducible; see
siliconomics.calibrate.family_fit for the procedure).

    .venv/bin/python scripts/calibrate_families.py ../shared/validation/measured.csv [--write]

Prints per family: the factors fitted, rows used, median |error| before/after and leave-one-out.
With --write it updates src/siliconomics/catalog/data/efficiency/<family>.toml: fitted factors
get provenance 'fitted on <file> rows of <family> (...)', inherited ones 'inherited from <f>',
and families with neither data nor a parent take the median of the fitted families.
"""

from __future__ import annotations

import argparse
import statistics
import tomllib
from pathlib import Path

import tomli_w

from siliconomics import resolve
from siliconomics.calibrate.family_fit import BOUNDS, FIT_PLAN, INHERIT, fit_family
from siliconomics.catalog.catalog import Catalog
from siliconomics.catalog.registry import efficiency_profiles
from siliconomics.catalog.schema import EfficiencyProfile
from siliconomics.errors import SiliconomicsError
from siliconomics.measured.rows import MeasuredRow
from siliconomics.validate.run import run_row

EFF_DIR = Path(__file__).resolve().parents[1] / "src/siliconomics/catalog/data/efficiency"
FITTABLE = tuple(BOUNDS)


def runnable_rows(path: Path) -> tuple[dict[str, list[MeasuredRow]], Catalog]:
    rows, _, catalog = resolve.measured(path)
    by_family: dict[str, list[MeasuredRow]] = {}
    for row in rows:
        if row.kind != "inference" or not row.usable:
            continue
        try:
            run_row(row, catalog.model(row.model), catalog)
        except SiliconomicsError:
            continue
        by_family.setdefault(catalog.chip(row.chip).family, []).append(row)
    return by_family, catalog


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("measured", type=Path)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--no-loo", action="store_true", help="skip leave-one-out (faster)")
    args = ap.parse_args()
    by_family, catalog = runnable_rows(args.measured)
    profiles: dict[str, EfficiencyProfile] = dict(efficiency_profiles())
    prov: dict[str, dict[str, str]] = {f: dict(p.provenance) for f, p in profiles.items()}
    src = args.measured.name
    fitted_families: list[str] = []
    # Parents before children: a family fits on top of what it inherits.
    order = sorted(profiles, key=lambda f: (f in INHERIT, INHERIT.get(f, "") in INHERIT))
    print(f"{'family':18s} {'rows':>4s} {'before':>8s} {'after':>8s} {'LOO':>8s}  factors")
    for fam in order:
        parent = INHERIT.get(fam)
        if parent:
            upd = {k: getattr(profiles[parent], k) for k in FITTABLE}
            upd["lowp_gemm_efficiency"] = profiles[parent].lowp_gemm_efficiency
            for k in ("kernel_overhead_s", "collective_efficiency"):
                upd[k] = getattr(profiles[parent], k)
            profiles[fam] = profiles[fam].model_copy(update=upd)
            for k in upd:
                prov[fam][k] = (
                    f"inherited from {parent} (same software stack/vendor, no data of its own)"
                )
        rows = by_family.get(fam, [])
        plan = FIT_PLAN.get(fam, ())
        if rows and plan:
            fit = fit_family(
                fam,
                rows,
                profiles[fam],
                catalog.with_profiles(profiles),
                leave_one_out=not args.no_loo,
            )
            profiles[fam] = profiles[fam].model_copy(update=fit.values)
            for k in fit.params:
                prov[fam][k] = (
                    f"fitted on {src} rows of {fam} (n={fit.n_rows}, family-level, "
                    f"joint with {', '.join(p for p in fit.params if p != k) or '-'};"
                    f" median |err| {fit.median_abs_pct_before:.1f}% -> "
                    f"{fit.median_abs_pct_after:.1f}%, leave-one-out "
                    f"{fit.loo_median_abs_pct:.1f}%)"
                )
            fitted_families.append(fam)
            vals = ", ".join(f"{k}={v:.3g}" for k, v in fit.values.items())
            print(
                f"{fam:18s} {fit.n_rows:4d} {fit.median_abs_pct_before:7.1f}% "
                f"{fit.median_abs_pct_after:7.1f}% {fit.loo_median_abs_pct:7.1f}%  {vals}"
            )
    # Families with no rows and no parent: median of fitted families (stated as such).
    for fam in profiles:
        if fam in by_family or fam in INHERIT or fam in fitted_families:
            continue
        if fam.startswith("nvidia-"):
            continue  # op-level fitted (ops_fit) or inherited
        upd = {}
        for k in FITTABLE:
            vals = [
                getattr(profiles[f], k)
                for f in fitted_families
                if getattr(profiles[f], k) is not None
            ]
            upd[k] = statistics.median(vals)
            prov[fam][k] = (
                f"median of the calibrated families ({', '.join(fitted_families)}): "
                "no measured data for this family"
            )
        profiles[fam] = profiles[fam].model_copy(update=upd)
    if args.write:
        for fam, prof in profiles.items():
            path = EFF_DIR / f"{fam}.toml"
            raw = tomllib.loads(path.read_text())
            for k in (
                *FITTABLE,
                "lowp_gemm_efficiency",
                "kernel_overhead_s",
                "collective_efficiency",
            ):
                v = getattr(prof, k)
                if v is not None:
                    raw[k] = float(f"{v:.4g}")
            raw["provenance"] = {k: v for k, v in prov[fam].items() if k != "all"}
            path.write_text(tomli_w.dumps(raw))
        print(f"wrote {len(profiles)} profiles to {EFF_DIR}")


if __name__ == "__main__":
    main()

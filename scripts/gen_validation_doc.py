"""Generate docs/VALIDATION.md from `siliconomics validate` on a measured file.

    .venv/bin/python scripts/gen_validation_doc.py ../shared/validation/measured.csv \
        docs/VALIDATION.md

The numbers come from the same library call as the CLI; the leave-one-out column is the one recorded
in each profile's provenance by scripts/calibrate_families.py (fits started from the priors).
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path
from statistics import median

from siliconomics.api import validate
from siliconomics.calibrate.family_fit import FIT_PLAN
from siliconomics.catalog.registry import efficiency_profiles
from siliconomics.validate.rows import ValidationReport


def training_section(t: ValidationReport | None) -> list[str]:
    """Training rows (kind=training): same error definition, own calibration."""
    if t is None:
        return []
    loo: dict[str, str] = {}
    for fam, prof in efficiency_profiles().items():
        for k, text in prof.provenance.items():
            m = re.search(r"leave-one-out ([0-9.]+)%", text)
            if m and k.startswith("train_") and "training rows" in text:
                loo[fam] = f"{m.group(1)}%"
    out = [
        "",
        "## Training rows",
        "",
        f"**Median absolute error: {t.median_abs_pct:.1f}% over {len(t.results)} usable "
        f"training rows** (`siliconomics validate` prints `train_median_abs_pct_error`). "
        "Unstated knobs of a row (virtual stages, micro-batch, recomputation) take the fastest "
        "valid value that fits memory, listed per row. Training factors (`train_*` in the "
        "profiles) are fitted per family by `scripts/calibrate_training.py`; the leave-one-out "
        "column predicts each row with factors fitted without it. See docs/TRAINING.md.",
        "",
        "| family | rows | median abs | median signed | max abs | leave-one-out median abs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    out += [
        f"| {s.group} | {s.n} | {s.median_abs_pct:.1f}% | {s.median_signed_pct:+.1f}% | "
        f"{s.max_abs_pct:.1f}% | {loo.get(s.group, 'no fit (defaults)')} |"
        for s in t.by_family
    ]
    out += [
        "",
        "| id | chip | metric | measured | predicted | error | assumptions |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    out += [
        f"| {x.row.id} | {x.row.chip} | {x.row.metric} | {x.row.value:.4g} | "
        f"{x.predicted:.4g} | {x.signed_pct:+.1f}% | {'; '.join(x.assumptions) or '-'} |"
        for x in t.results
    ]
    out += [
        f"| {s.row.id} | {s.row.chip} | {s.row.metric} | {s.row.value:.4g} | - | - | "
        f"not run: {s.reason} |"
        for s in t.skipped
    ]
    return out


def serving_section(r: ValidationReport) -> list[str]:
    """Server rows (capacity search in the serving simulator) and offline rows simulated
    beside the static estimate (src/siliconomics/validate/serve_rows.py)."""
    server = [x for x in r.results if x.row.scenario == "server"]
    offline = [x for x in r.results if x.simulated is not None]
    if not server and not offline:
        return []
    out = [
        "",
        "## Serving simulator",
        "",
        "`server` rows (MLPerf Server/Interactive) run the simulator's capacity search: the "
        "highest Poisson rate whose p99 TTFT and p99 TPOT meet the row's limits, times the mean "
        "output length. Every `offline` row is also simulated (all requests at t = 0, "
        "steady-state throughput) and shown beside the static max-throughput estimate, which "
        "remains the row's prediction above. Engine settings and length shapes are the same "
        "for every row (docs/SERVING.md).",
        "",
        "| id | chip | measured | simulated | error | binds |",
        "|---|---|---:|---:|---:|---|",
    ]
    out += [
        f"| {x.row.id} | {x.row.chip} | {x.row.value:.4g} | {x.predicted:.4g} | "
        f"{x.signed_pct:+.1f}% | {x.bound} |"
        for x in server
    ]
    if offline:
        sim_err = [abs(100.0 * (x.simulated or 0.0) / x.row.value - 100.0) for x in offline]
        st_err = [x.abs_pct for x in offline]
        out += [
            "",
            f"Offline rows: median |error| {median(st_err):.1f}% static, "
            f"{median(sim_err):.1f}% simulated ({len(offline)} rows).",
            "",
            "| id | chip | measured | static | error | simulated | error |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        out += [
            f"| {x.row.id} | {x.row.chip} | {x.row.value:.4g} | {x.predicted:.4g} | "
            f"{x.signed_pct:+.1f}% | {x.simulated:.4g} | "
            f"{100.0 * (x.simulated or 0.0) / x.row.value - 100.0:+.1f}% |"
            for x in offline
        ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("measured", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    r = validate(args.measured).value
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "# Validation: predicted vs measured",
        "",
        "Generated by `make docs` (`scripts/gen_validation_doc.py`) from "
        f"`siliconomics validate {args.measured.name}` at commit `{commit}`. Do not edit by "
        "hand.",
        "",
        f"**Median absolute error: {r.median_abs_pct:.1f}% over {len(r.results)} usable "
        f"inference rows** ({len(r.skipped)} rows not run, listed at the end; "
        f"{r.not_inference} training rows belong to the training model).",
        "",
        "Error = (predicted - measured) / measured. Efficiency factors are calibrated per chip "
        "family (never per row): op-level factors for NVIDIA from the measured-ops kernel and "
        "NCCL timings, and the few family factors in the table below on all rows of that "
        "family. The leave-one-out column predicts each row with factors fitted without it: "
        "it is the honest estimate of error on measurements we do not have.",
        "",
        "## By chip family",
        "",
        "| family | rows | median abs | median signed | max abs | leave-one-out median abs "
        "| factors fitted on these rows |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    # Leave-one-out error as computed at calibration time, from the priors (re-fitting
    # from already-fitted values would leak the held-out row into the start point).
    loo: dict[str, str] = {}
    for fam, prof in efficiency_profiles().items():
        for text in prof.provenance.values():
            m = re.search(r"leave-one-out ([0-9.]+)%", text)
            if m and "rows of" in text:
                loo[fam] = f"{m.group(1)}%"
    for s in r.by_family:
        lines.append(
            f"| {s.group} | {s.n} | {s.median_abs_pct:.1f}% | {s.median_signed_pct:+.1f}% | "
            f"{s.max_abs_pct:.1f}% | {loo.get(s.group, 'no fit (op-level only)')} | "
            f"{', '.join(FIT_PLAN.get(s.group, ())) or '-'} |"
        )
    for title, groups in (("By metric", r.by_metric), ("By chip", r.by_chip)):
        lines += [
            "",
            f"## {title}",
            "",
            "| group | rows | median abs | median signed | max abs |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {s.group} | {s.n} | {s.median_abs_pct:.1f}% | {s.median_signed_pct:+.1f}% "
            f"| {s.max_abs_pct:.1f}% |"
            for s in groups
        ]
    lines += [
        "",
        "## Every row",
        "",
        "| id | chip | scenario | metric | measured | predicted | error | bound | assumptions |",
        "|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for x in r.results:
        lines.append(
            f"| {x.row.id} | {x.row.chip} | {x.row.scenario} | {x.row.metric} | "
            f"{x.row.value:.4g} | {x.predicted:.4g} | {x.signed_pct:+.1f}% | {x.bound} | "
            f"{'; '.join(x.assumptions) or '-'} |"
        )
    lines += ["", "## Rows not run", "", "| id | reason |", "|---|---|"]
    lines += [f"| {s.row.id} | {s.reason} |" for s in r.skipped]
    lines += training_section(r.training)
    lines += serving_section(r)
    lines += [
        "",
        "## Known gaps",
        "",
        "- No TPU row can run yet: the TPU rows use ShareGPT (JetStream) or CNN/DailyMail "
        "(GPT-J) length distributions whose mean token counts are not published in the file; "
        "TPU efficiency factors are the median of the calibrated families, not fitted.",
        "- `server` rows are predicted by the serving simulator from mean lengths and an "
        "assumed length shape (MLPerf publishes no per-sample output lengths in the file); its "
        "errors are not calibrated: no factor is fitted on server rows.",
        "- Families with two rows (amd-cdna3, aws-neuron-v3) are fitted with one factor; their "
        "leave-one-out error shows how little two rows constrain.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out} (median_abs_pct_error={r.median_abs_pct:.2f} rows={len(r.results)})")


if __name__ == "__main__":
    main()

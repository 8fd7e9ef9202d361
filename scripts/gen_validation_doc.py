"""Generate docs/VALIDATION.md from `siliconomics validate` and `validate --cv` on a measured
file (thin wrapper over siliconomics.report.validation_doc).

    .venv/bin/python scripts/gen_validation_doc.py ../shared/validation/measured.csv \
        docs/VALIDATION.md
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from siliconomics.api import validate as api_validate
from siliconomics.catalog.registry import efficiency_profiles
from siliconomics.report.validation_doc import render
from siliconomics.validate.cv import cross_validate, load_samples


def build(measured: Path, commit: str) -> str:
    samples, _ = load_samples([measured])
    cv = cross_validate(samples, efficiency_profiles())
    return render(measured.name, commit, api_validate(measured).value, cv)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("measured", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(build(args.measured, commit), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

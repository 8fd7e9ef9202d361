"""Generate docs/VALIDATION.md from `siliconomics validate` on a measured file and the
cross-validation report that `make calibrate` wrote (thin wrapper over
siliconomics.report.validation_doc).

    .venv/bin/python scripts/gen_validation_doc.py ../shared/validation/measured.csv \
        docs/data/cross_validation.json docs/VALIDATION.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from siliconomics.api import validate as api_validate
from siliconomics.report.validation_doc import render
from siliconomics.validate.cv import CVReport


def build(measured: Path, cv_json: Path, commit: str) -> str:
    cv = CVReport.from_json(json.loads(cv_json.read_text(encoding="utf-8")))
    return render(measured.name, commit, api_validate(measured).value, cv)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("measured", type=Path)
    ap.add_argument("cv_json", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(build(args.measured, args.cv_json, commit), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

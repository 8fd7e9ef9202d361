"""port-check: what ties a project to CUDA, what each target stack offers, effort, verdict.

This edge reads the project (a directory, a wheel or zip, an sdist tar, a requirements file,
a pyproject.toml or a single source file) into ``{path: text}`` and hands it to the pure
scanner. It never imports or runs the scanned code.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from ..catalog.registry import get_model
from ..errors import SiliconomicsError
from ..porting.assess import TargetReport, assess
from ..porting.findings import ScanResult
from ..porting.knowledge import STACKS, load_effort, load_stack
from ..porting.payback import (
    Payback,
    parse_weeks,
    payback,
)
from ..porting.scan import SKIP_DIRS, scan_files, wanted
from ..report import port_report
from ..report.html import write_html
from ..search.tco_study import TcoStudy
from .common import JsonOpt, app, emit_json, err, out

MAX_FILE_BYTES = 4 * 1024 * 1024
"""files larger than this are skipped (generated code, data)"""


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _read_dir(root: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if wanted(rel) and p.is_file() and p.stat().st_size <= MAX_FILE_BYTES:
                files[rel] = _decode(p.read_bytes())
    return files


def _read_zip(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {
            i.filename: _decode(z.read(i))
            for i in z.infolist()
            if not i.is_dir() and wanted(i.filename) and i.file_size <= MAX_FILE_BYTES
        }


def _read_tar(path: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    with tarfile.open(path) as t:
        for m in t:
            if m.isfile() and wanted(m.name) and m.size <= MAX_FILE_BYTES:
                f = t.extractfile(m)
                if f is not None:
                    files[m.name] = _decode(f.read())
    return files


def read_project(path: Path) -> dict[str, str]:
    """Every file of the project the scanner has a rule for, as text (never executed)."""
    if not path.exists():
        raise SiliconomicsError(f"PATH '{path}' does not exist")
    name = path.name.lower()
    try:
        if path.is_dir():
            return _read_dir(path)
        if name.endswith((".whl", ".zip")):
            return _read_zip(path)
        if name.endswith((".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")):
            return _read_tar(path)
        return {path.name: _decode(path.read_bytes())}
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as e:
        raise SiliconomicsError(f"PATH '{path}': cannot read: {e}") from None


def check_project(
    path: Path, targets: list[str], model: str | None = None
) -> tuple[ScanResult, list[TargetReport]]:
    files = read_project(path)
    scan = scan_files(files)
    if scan.files_scanned == 0:
        raise SiliconomicsError(
            f"PATH '{path}': no Python, requirements, pyproject or CUDA files found"
        )
    family = get_model(model).family if model else None
    effort = load_effort()
    reports = [assess(scan, load_stack(t), effort, model_family=family) for t in targets]
    return scan, reports


def parse_targets(text: str) -> list[str]:
    if text == "all":
        return list(STACKS)
    names = [t.strip() for t in text.split(",") if t.strip()]
    for t in names:
        if t not in STACKS:
            raise SiliconomicsError(
                f"--target '{t}' is not a stack; allowed: {', '.join(STACKS)} or all"
            )
    return names


@app.command("port-check")
def port_check_cmd(
    path: Annotated[
        Path, typer.Argument(help="project directory, wheel, sdist, requirements or pyproject")
    ],
    target: Annotated[
        str, typer.Option(help=f"target stack(s): {', '.join(STACKS)}, comma-separated, or all")
    ] = "all",
    model: Annotated[
        str | None, typer.Option(help="catalog model id: adds the stack's model-list support")
    ] = None,
    show: Annotated[int, typer.Option(min=0, help="findings listed per kind")] = 3,
    html: Annotated[Path | None, typer.Option(help="also write an HTML report")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find what ties a PyTorch/JAX project to CUDA (read statically, never run), what Neuron,
    TPU, Gaudi and ROCm offer instead, and the engineer-weeks to port (docs/PORTING.md)."""
    scan, reports = check_project(path, parse_targets(target), model)
    if html:
        write_html(html, port_report.port_html(str(path), scan, reports))
        err.print(f"wrote {html}", highlight=False)
    if as_json:
        emit_json(port_report.port_check_dict(str(path), scan, reports))
    else:
        port_report.render_port_check(out, scan, reports, show=show)


WeeksOpt = Annotated[
    str | None,
    typer.Option("--migration-weeks", help="port effort LOW-HIGH engineer-weeks, e.g. 6-10"),
]
PortCheckOpt = Annotated[
    Path | None,
    typer.Option("--port-check", help="take the port effort from port-check of this project"),
]
PortTargetOpt = Annotated[
    str | None, typer.Option("--port-target", help=f"stack for --port-check: {', '.join(STACKS)}")
]
EngRateOpt = Annotated[
    float,
    typer.Option("--eng-rate", min=1.0, help="loaded USD per engineer-week (docs/PORTING.md)"),
]
BaselineOpt = Annotated[
    str | None,
    typer.Option("--baseline-chip", help="the chip the workload runs on now (needs --model)"),
]
MonthlyTokensOpt = Annotated[
    float | None,
    typer.Option("--monthly-tokens", min=1.0, help="output tokens served per month, e.g. 5e10"),
]
MonthlySavingOpt = Annotated[
    float | None,
    typer.Option("--monthly-saving", help="monthly saving in USD, instead of a baseline chip"),
]
HorizonOpt = Annotated[float, typer.Option("--horizon", min=1.0, help="planning horizon in months")]


def _weeks(weeks: str | None, port_check: Path | None, target: str | None) -> tuple[float, float]:
    if weeks and port_check:
        raise SiliconomicsError("give --migration-weeks or --port-check, not both")
    if weeks:
        return parse_weeks(weeks)
    if target not in STACKS:
        raise SiliconomicsError(f"--port-check needs --port-target, one of: {', '.join(STACKS)}")
    assert port_check is not None and target is not None
    _, (rep,) = check_project(port_check, [target])
    return rep.weeks_low, rep.weeks_high


def _usd_per_m_output(study: TcoStudy) -> float:
    v = study.selected().usd_per_m_output
    if v is None:
        raise SiliconomicsError(
            f"--baseline-chip needs --model and a known {study.mode} price for {study.chip.id}"
        )
    return v


def monthly_saving_usd(study: TcoStudy, baseline: TcoStudy, monthly_output_tokens: float) -> float:
    """What serving ``monthly_output_tokens`` on the study's chip saves per month against the
    baseline chip, both at their cheapest layout and the same pricing mode."""
    per_m = _usd_per_m_output(baseline) - _usd_per_m_output(study)
    return per_m * monthly_output_tokens / 1e6


def tco_payback(
    study: TcoStudy,
    rerun: Callable[[str], TcoStudy],
    *,
    weeks: str | None,
    port_check: Path | None,
    target: str | None,
    eng_rate: float,
    baseline_chip: str | None,
    monthly_output_tokens: float | None,
    monthly_saving: float | None,
    horizon_months: float,
) -> Payback | None:
    """The payback that ``tco`` adds: None unless a migration effort is given."""
    if not weeks and port_check is None:
        return None
    w = _weeks(weeks, port_check, target)
    if monthly_saving is None:
        if not (baseline_chip and monthly_output_tokens):
            raise SiliconomicsError(
                "a migration estimate needs --monthly-saving, or --baseline-chip with "
                "--monthly-tokens (and --model)"
            )
        monthly_saving = monthly_saving_usd(study, rerun(baseline_chip), monthly_output_tokens)
    return payback(
        weeks=w,
        eng_rate_usd_per_week=eng_rate,
        monthly_saving_usd=monthly_saving,
        horizon_months=horizon_months,
    )

"""calibrate: fit efficiency profiles per (chip family, stack) on measured rows, with
leave-one-source-out cross-validation and the error-band table (docs/CALIBRATION.md)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import tomli_w
import typer

from .. import resolve
from ..calibrate.bands import to_toml_dict
from ..calibrate.hierarchy import with_provenance
from ..catalog.registry import efficiency_profiles
from ..catalog.schema import EfficiencyProfile
from ..catalog.stacks import ProfileSet, packaged_stack_profiles
from ..errors import SiliconomicsError
from ..resolve import profile_dir as load_profile_dir
from ..validate.cv import CVReport, cross_validate, make_samples
from ..validate.serve_rows import SERVER_REQUESTS
from .common import JsonOpt, app, emit_json, out
from .inputs import text_files_cb

CV_FILE = "cross_validation.json"
"""written beside the profiles: the cross-validation report (docs/VALIDATION.md is rendered
from it)"""


HELD_OUT = ("hybrid.csv",)
"""Corpus files ``--corpus`` leaves out of calibration, so that they test it: the first
measurements of an architecture added after the last calibration (``hybrid.csv``, the Gated
DeltaNet hybrids, 2026-12-02). ``validate`` predicts them like any file; give one
explicitly to fit on it."""


def corpus_files(*, held_out: bool = True) -> list[Path]:
    """The packaged measured corpus (``measured/corpus/*.csv`` in the measured-row schema:
    files with an ``id`` and a ``value`` column; ``models.csv`` and side tables are not);
    ``held_out=False`` leaves out :data:`HELD_OUT`."""
    d = Path(str(resources.files("siliconomics.measured") / "corpus"))
    out = []
    for p in sorted(d.glob("*.csv")) if d.is_dir() else []:
        if not held_out and p.name in HELD_OUT:
            continue
        head = p.read_text(encoding="utf-8").split("\n", 1)[0].split(",")
        if "id" in head and "value" in head and "metric" in head:
            out.append(p)
    return out


def measured_files(files: list[Path] | None, corpus: bool) -> list[Path]:
    paths = [*(files or []), *(corpus_files(held_out=False) if corpus else [])]
    if not paths:
        raise SiliconomicsError("give at least one measured CSV (or --corpus)")
    for p in paths:
        if not p.exists():
            raise SiliconomicsError(f"measured file not found: {p}")
    return paths


def _round(v: Any) -> Any:
    if isinstance(v, float) and math.isfinite(v):
        return float(f"{v:.4g}")
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    return v


def _profile_toml(p: EfficiencyProfile) -> str:
    raw = {k: _round(v) for k, v in p.model_dump(exclude_none=True).items()}
    return tomli_w.dumps(raw)


def fitted_families(rep: CVReport) -> set[str]:
    """Families with at least one factor fitted on the given rows."""
    return {r.family for r in rep.records if r.params}


def run_cv(
    paths: list[Path],
    *,
    level: float = 0.8,
    folds: int | None = None,
    fit_cap: int | None = None,
    server_requests: int = SERVER_REQUESTS,
    jobs: int = 1,
) -> CVReport:
    """Read measured files (deduplicated, :func:`siliconomics.resolve.measured_files`) and
    cross-validate on the packaged catalog plus their ``models.csv`` (``jobs`` > 1: the folds
    in that many processes; the result is the same)."""
    rows, trains, cat, _ = resolve.measured_files(paths)
    samples, skipped = make_samples(rows, trains, cat)
    kw: dict[str, Any] = {
        "level": level,
        "folds": folds,
        "fit_cap": fit_cap,
        "server_requests": server_requests,
    }
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs) as pool:
            rep = cross_validate(samples, cat, mapper=pool.map, **kw)
    else:
        rep = cross_validate(samples, cat, **kw)
    return replace(rep, skipped=(*skipped, *rep.skipped))


def write_calibration(
    rep: CVReport, out_dir: Path, source: str, *, all_families: bool = False
) -> list[Path]:
    """``<family>.toml`` per family fitted on the rows (every family with ``all_families``),
    ``stacks/<family>@<stack>.toml`` per fitted stack and ``bands.toml`` (the cross-validated
    residuals) under ``out_dir``. Families not written keep the packaged profiles when the
    directory is used with ``--profile``."""
    written: list[Path] = []
    keep = fitted_families(rep)
    assert rep.calibration is not None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "stacks").mkdir(exist_ok=True)
        for fam, prof in sorted(with_provenance(rep.calibration, source).items()):
            if not all_families and fam not in keep:
                continue
            path = out_dir / f"{fam}.toml"
            path.write_text(_profile_toml(prof), encoding="utf-8")
            written.append(path)
        for (fam, st), sp in sorted(rep.calibration.stacks.items()):
            path = out_dir / "stacks" / f"{fam}@{st}.toml"
            raw = sp.model_dump()
            raw["factors"] = {k: _round(v) for k, v in sp.factors.items()}
            path.write_text(tomli_w.dumps(raw), encoding="utf-8")
            written.append(path)
        meta = {
            "data": source,
            "level": str(rep.level),
            "method": f"cross-validated residuals ({rep.method}), log(measured/predicted) as a "
            "speed (siliconomics.calibrate.bands)",
        }
        bands = out_dir / "bands.toml"
        bands.write_text(tomli_w.dumps(to_toml_dict(rep.residuals(), meta)), encoding="utf-8")
        written.append(bands)
        cvj = out_dir / CV_FILE
        cvj.write_text(json.dumps(rep.to_json(), indent=1, sort_keys=True) + "\n", "utf-8")
        written.append(cvj)
    except OSError as e:
        raise SiliconomicsError(f"--out {out_dir}: cannot write: {e.strerror}") from None
    return written


def profiles_option(path: Path | None) -> ProfileSet | None:
    """``--profile DIR`` (None: the packaged calibration)."""
    if path is None:
        return None
    return load_profile_dir(path, efficiency_profiles())


def packaged_profile_set() -> ProfileSet:
    return ProfileSet(families=efficiency_profiles(), stacks=packaged_stack_profiles())


def cv_summary(rep: CVReport) -> dict[str, Any]:
    """The cross-validation report as JSON: per kind and group key."""
    keys = (None, "family", "model_class", "regime", "dtype", "stack")
    return {
        "level": rep.level,
        "groups": {
            kind: {(key or "all"): [s.__dict__ for s in rep.stats(kind, key)] for key in keys}
            for kind in ("inference", "training")
        },
        "method": rep.method,
        "band_scale": dict(rep.band_scale),
        "family_scale": dict(rep.family_scale),
        "fit_rows": dict(rep.fit_rows),
        "fits": [{**r.__dict__, "params": list(r.params)} for r in rep.records if r.params],
        "rows": [
            {
                "id": r.id,
                "kind": r.kind,
                "family": r.family,
                "stack": r.stack,
                "source_group": r.group,
                "measured": r.measured,
                "in_sample": r.in_sample,
                "cross_validated": r.cross_validated,
                "low": r.band.of(r.cross_validated, r.metric)[0],
                "high": r.band.of(r.cross_validated, r.metric)[1],
                "covered": r.covered,
            }
            for r in rep.rows
        ],
        "skipped": [{"id": s.row.id, "reason": s.reason} for s in rep.skipped],
    }


def render_cv(rep: CVReport) -> None:
    """Tables: cross-validated (headline) and in-sample (labelled) error and band coverage."""
    from rich.table import Table

    for kind in ("inference", "training"):
        t = Table(
            title=f"{kind}: leave-one-source-out error and {rep.level:.0%} band coverage",
        )
        for c in ("group", "rows", "sources", "CV median |err|", "CV signed", "coverage"):
            t.add_column(c, justify="left" if c == "group" else "right")
        t.add_column("in-sample |err| (fitted on these rows)", justify="right")
        for key in (None, "family", "model_class", "regime", "dtype", "stack"):
            for s in rep.stats(kind, key):
                t.add_row(
                    f"{s.key}={s.group}" if key else "ALL",
                    str(s.n),
                    str(s.sources),
                    f"{s.cv_median_abs_pct:.1f}%",
                    f"{s.cv_median_signed_pct:+.1f}%",
                    f"{s.coverage:.0%}",
                    f"{s.in_sample_median_abs_pct:.1f}%",
                )
        out.print(t)
    out.print(f"cross-validation: {rep.method}", highlight=False)
    for r in rep.records:
        if r.params or (r.note and r.level != "inherit"):
            vals = ", ".join(f"{k}={v:.4g}" for k, v in r.values.items()) or "-"
            bound = "".join(f" [{k} AT {b.upper()} BOUND]" for k, b in r.at_bound.items())
            out.print(
                f"{r.workload} {r.family} {r.stack} ({r.level}{' ' + r.chip if r.chip else ''}, "
                f"n={r.n_rows}): {vals}{bound}" + (f"  {r.note}" if r.note else ""),
                highlight=False,
            )


@app.command("calibrate")
def calibrate_cmd(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="measured results CSVs (shared SCHEMA.md)", callback=text_files_cb),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="directory to write profiles to")] = Path(
        "calibration"
    ),
    corpus: Annotated[
        bool,
        typer.Option(
            help="also use the packaged measured corpus (measured/corpus/*.csv; the held-out "
            "hybrid.csv only when given as a file)"
        ),
    ] = False,
    level: Annotated[float, typer.Option(min=0.5, max=0.99, help="band level")] = 0.8,
    folds: Annotated[
        int,
        typer.Option(
            min=0,
            help="grouped K-fold by source (0: leave one source out, each source its own fold)",
        ),
    ] = 0,
    fit_cap: Annotated[
        int,
        typer.Option(
            min=0, help="fit on at most this many rows per (source, chip, model) cell (0: all)"
        ),
    ] = 0,
    server_requests: Annotated[
        int,
        typer.Option(
            min=100, help="requests per capacity-search trial of a server row (simulator)"
        ),
    ] = SERVER_REQUESTS,
    jobs: Annotated[
        int, typer.Option(min=1, help="run the cross-validation folds in this many processes")
    ] = 1,
    all_families: Annotated[
        bool,
        typer.Option(
            help="write every family's profile (the packaged calibration), not only the "
            "families fitted on these rows"
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fit efficiency factors per (chip family, stack) on measured rows (hierarchical
    shrinkage: family from all chips, stack from its family), cross-validate leaving one
    source out, and write profiles and the error-band table to --out (use with --profile)."""
    paths = measured_files(files, corpus)
    rep = run_cv(
        paths,
        level=level,
        folds=folds or None,
        fit_cap=fit_cap or None,
        server_requests=server_requests,
        jobs=jobs,
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    written = write_calibration(
        rep, out_dir, f"{', '.join(p.name for p in paths)} ({stamp})", all_families=all_families
    )
    if as_json:
        emit_json({**cv_summary(rep), "written": [str(p) for p in written]})
        return
    render_cv(rep)
    for s in rep.skipped:
        out.print(f"  not used: {s.row.id}: {s.reason}", highlight=False)
    out.print(f"wrote {len(written)} files to {out_dir}", highlight=False)

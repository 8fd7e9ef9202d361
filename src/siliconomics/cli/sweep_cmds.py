"""sweep and results: run a study (here, on a process pool or on Ray) into a Parquet dataset,
and query it with DuckDB (docs/SWEEPS.md)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import SiliconomicsError
from .common import JsonOpt, app, emit_json, err, out
from .inputs import text_file_cb, writable_cb

ANALYTICAL = ("estimate", "train", "tco")


def _executor(command: str, workers: int | None, ray: str | None) -> Any:
    from ..sweep.executors import InProcess, Pool, Ray

    if ray is not None:
        if ray == "local":
            return Ray(address=None, num_cpus=workers or os.cpu_count())
        return Ray(address=ray)
    if workers is None:
        workers = 0 if command in ANALYTICAL else (os.cpu_count() or 1)
    return InProcess() if workers == 0 else Pool(workers=workers)


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A progress bar on stderr: points done, their rate and the time left."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cols = (
        TextColumn("sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*cols, console=err, transient=False) as bar:
        task = bar.add_task("sweep", total=None, rate="")

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.1f} points/s" if speed else "")

        yield update


@app.command("sweep")
def sweep_cmd(
    study_file: Annotated[
        Path, typer.Argument(help="study YAML (docs/SWEEPS.md)", callback=text_file_cb)
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="results dataset folder (created; runs are appended)")
    ] = Path("sweep-results"),
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="0: run in this process; N: a pool of N processes (default: in-process for "
            "estimate, train and tco, one process per CPU for simulate and plan); with "
            "--ray local: the local Ray's CPUs",
        ),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            help="run on Ray: 'auto' (the cluster this machine belongs to), an address "
            "(ray://HEAD:10001 or HEAD:6379), or 'local' (start one here); needs "
            "siliconomics[ray]"
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            help="summary HTML report (default: report.html in the run's folder)",
            callback=writable_cb,
        ),
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bar")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a study: a grid or seeded random sample over the inputs of estimate, train,
    simulate, plan or tco. Results are appended to a Parquet dataset (one folder per run); a
    killed sweep run again resumes where it stopped."""
    from ..report.html import write_html
    from ..report.sweep_report import sweep_html
    from ..sweep import query, store
    from ..sweep.runner import run_study
    from ..sweep.study import load_study

    study = load_study(study_file)
    if out_dir.exists() and not out_dir.is_dir():
        raise SiliconomicsError(f"--out '{out_dir}': is a file, expected a folder")
    ex = _executor(study.command, workers, ray)
    if hasattr(ex, "start"):
        ex.start()
    with _progress(not no_progress and not as_json) as update:
        summary = run_study(study, out_dir, ex, progress=update)
    con = query.connect(out_dir)
    manifest = store.read_manifest(out_dir, summary.run_id) or {}
    report = html or store.run_dir(out_dir, summary.run_id) / "report.html"
    write_html(report, sweep_html(con, manifest))
    best = (
        query.summary(con, "objective", run_id=summary.run_id, objective=study.objective)
        if study.objective
        else None
    )
    runs = query.summary(con, "runs", run_id=summary.run_id).dicts()[0]
    if as_json:
        emit_json(
            {
                "run_id": summary.run_id,
                "dataset": str(out_dir),
                "points": summary.points,
                "computed": summary.computed,
                "skipped": summary.skipped,
                "ok": runs["ok"],
                "errors": runs["errors"],
                "seconds": summary.seconds,
                "points_per_s": summary.points_per_s,
                "executor": summary.executor,
                "workers": summary.workers,
                "report": str(report),
                "objective": best.dicts() if best else None,
            }
        )
        return
    out.print(
        f"run {summary.run_id}: {summary.points} points ({summary.skipped} already done, "
        f"{summary.computed} computed in {summary.seconds:.1f} s, "
        f"{summary.points_per_s:,.1f} points/s, {summary.executor}); {runs['errors']} failed",
        highlight=False,
    )
    if best is not None:
        metric = study.objective.metric if study.objective else ""
        _print_table(best, f"objective: {metric}", drop=("run_id",))
    out.print(f"dataset {out_dir}; report {report}", highlight=False)


def _print_table(t: Any, title: str, drop: tuple[str, ...] = ()) -> None:
    from ..report.style import compact_table

    keep = [i for i, c in enumerate(t.columns) if c not in drop]
    table = compact_table(title)
    for i in keep:
        table.add_column(t.columns[i])
    for row in t.rows:
        r = [row[i] for i in keep]
        table.add_row(
            *(f"{v:.4g}" if isinstance(v, float) else ("-" if v is None else str(v)) for v in r)
        )
    out.print(table)


@app.command("results")
def results_cmd(
    dataset: Annotated[Path, typer.Argument(help="results dataset folder written by sweep")] = Path(
        "sweep-results"
    ),
    sql: Annotated[
        str | None,
        typer.Option(help="a DuckDB SQL query over the views 'points' and 'outputs'"),
    ] = None,
    summary: Annotated[
        str | None,
        typer.Option(help="a named summary: runs (default), errors, best-chip, objective"),
    ] = None,
    run: Annotated[str | None, typer.Option(help="only this run id (summaries)")] = None,
    metric: Annotated[
        str, typer.Option(help="output that best-chip minimises")
    ] = "usd_per_million_output_tokens",
    csv: Annotated[
        Path | None, typer.Option(help="also write the table as CSV", callback=writable_cb)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Query sweep results with DuckDB: raw SQL, or a named summary."""
    from ..sweep import query, store
    from ..sweep.study import Objective
    from .inputs import exclusive

    exclusive(sql=sql, summary=summary)
    con = query.connect(dataset)
    if sql is not None:
        t = query.sql(con, sql)
    else:
        name = summary or "runs"
        obj = None
        if name == "objective":
            rid = run or _only_run(query.run_ids(con))
            m = store.read_manifest(dataset, rid) or {}
            obj = Objective.model_validate(m["objective"]) if m.get("objective") else None
            run = rid
        t = query.summary(con, name, run_id=run, metric=metric, objective=obj)
    if csv is not None:
        _write_csv(csv, t)
    if as_json:
        emit_json(t.dicts())
        return
    _print_table(t, summary or ("sql" if sql else "runs"))


def _only_run(ids: Any) -> str:
    if len(ids) != 1:
        raise SiliconomicsError(
            f"--summary objective: the dataset holds {len(ids)} runs; pick one with --run ({', '.join(ids)})"
        )
    return str(ids[0])


def _write_csv(path: Path, t: Any) -> None:
    import csv as csv_mod
    import io

    from ..report.html import write_output

    buf = io.StringIO()
    w = csv_mod.writer(buf)
    w.writerow(t.columns)
    w.writerows(t.rows)
    write_output(path, buf.getvalue(), "--csv")

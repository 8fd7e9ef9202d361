"""Run a study: cut it into chunks, skip the chunks a previous (killed) run finished, run the
rest on an executor, write each finished chunk as a Parquet part, keep the manifest.

The chunks depend only on the study (never on the worker count): estimate points are grouped
so each vectorised ``api.estimate`` call sees the same batch whichever executor runs it, and a
simulation's seed comes from the study seed and the point's inputs. So the same study and seed
give the same rows on 1 process, 2 processes or a Ray cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import store
from .evaluate import Task, group_key
from .executors import InProcess, Stats
from .study import Study


class Executor(Protocol):
    stats: Stats
    name: str
    workers: int

    def run(self, tasks: dict[int, Task]) -> Any: ...


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    run_id: str
    dataset: Path
    points: int
    computed: int
    """points computed by this call (the rest were finished by an earlier, killed run)"""
    skipped: int
    errors: int
    seconds: float
    executor: str
    workers: int
    restarts: int

    @property
    def points_per_s(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else float("nan")


def run_id(study: Study) -> str:
    """The id of a study's run: its name and a hash of its points, the versions and the
    packaged calibration, so that running the same study again into the same dataset resumes
    it, and a new calibration starts a new run."""
    import hashlib
    import json
    import re

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", study.name).strip("-")[:40] or "study"
    h = hashlib.sha256(
        (
            study.study_hash + json.dumps(store.versions(), sort_keys=True) + store.calibration_id()
        ).encode()
    ).hexdigest()
    return f"{slug}-{h[:10]}"


def chunks(study: Study) -> list[Task]:
    """The study's tasks: estimate points grouped by everything but batch and lengths (in
    order of first appearance), then every group cut into pieces of ``study.chunk``."""
    groups: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
    for p in study.points:
        groups.setdefault(group_key(study.command, p.inputs), []).append((p.index, p.key, p.inputs))
    tasks = []
    for g in groups.values():
        for s in range(0, len(g), study.chunk):
            tasks.append(
                Task(
                    command=study.command,
                    outputs=study.outputs,
                    points=tuple(g[s : s + study.chunk]),
                )
            )
    return tasks


def _manifest(study: Study, rid: str, n_chunks: int, ex: Executor) -> dict[str, Any]:
    return {
        "run_id": rid,
        "study": study.name,
        "command": study.command,
        "seed": study.seed,
        "points": len(study.points),
        "chunks": n_chunks,
        "chunk_size": study.chunk,
        "outputs": list(study.outputs),
        "objective": study.objective.model_dump() if study.objective else None,
        "study_file": study.raw,
        "study_dir": study.base_dir,
        "versions": store.versions(),
        "calibration": store.calibration_id(),
        "status": "running",
        "started": store.now(),
        "executor": ex.name,
    }


FLUSH_ROWS = 4096
FLUSH_S = 2.0
"""finished chunks are written together, at least every FLUSH_S seconds: a kill loses at
most that much work"""


def _flush(dataset: Path, rid: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    if rows:
        first = min(r["chunk"] for r in rows)
        store.write_part(dataset, rid, first, store.to_table(rows, meta))


def run_study(
    study: Study,
    dataset: Path,
    executor: Executor | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    flush_rows: int = FLUSH_ROWS,
    flush_s: float = FLUSH_S,
) -> RunSummary:
    """Run ``study`` into ``dataset`` (a folder; created). ``progress(done, total)`` is called
    with points done after every chunk. A run of the same study already in the dataset is
    resumed: its finished chunks are not computed again. Finished chunks are written every
    ``flush_rows`` rows or ``flush_s`` seconds, whichever comes first."""
    ex: Executor = executor or InProcess()
    dataset.mkdir(parents=True, exist_ok=True)
    rid = run_id(study)
    with store.run_lock(dataset, rid):
        return _run(study, dataset, ex, rid, progress, flush_rows, flush_s)


def _run(
    study: Study,
    dataset: Path,
    ex: Executor,
    rid: str,
    progress: Callable[[int, int], None] | None,
    flush_rows: int,
    flush_s: float,
) -> RunSummary:
    tasks = chunks(study)
    done = store.done_chunks(dataset, rid)
    manifest = store.read_manifest(dataset, rid) or _manifest(study, rid, len(tasks), ex)
    manifest.update(status="running", executor=ex.name, resumed=bool(done))
    store.write_manifest(dataset, rid, manifest)
    todo = {i: t for i, t in enumerate(tasks) if i not in done}
    skipped = sum(len(t.points) for i, t in enumerate(tasks) if i in done)
    meta = {
        "run_id": rid,
        "study": study.name,
        "command": study.command,
        "seed": study.seed,
        "calibration": manifest["calibration"],
        "versions": store.versions(),
    }
    total, n_done, errors = len(study.points), skipped, 0
    if progress:
        progress(n_done, total)
    t0 = last = time.perf_counter()
    buffer: list[dict[str, Any]] = []
    results: Any = ex.run(todo)
    for i, rows in results:
        buffer += [{**r, "chunk": i} for r in rows]
        n_done += len(rows)
        errors += sum(r["status"] != "ok" for r in rows)
        if len(buffer) >= flush_rows or time.perf_counter() - last > flush_s:
            _flush(dataset, rid, buffer, meta)
            buffer, last = [], time.perf_counter()
        if progress:
            progress(n_done, total)
    _flush(dataset, rid, buffer, meta)
    seconds = time.perf_counter() - t0
    manifest.update(
        status="complete",
        finished=store.now(),
        workers=ex.workers,
        restarts=ex.stats.restarts,
        seconds_last_call=round(seconds, 3),
    )
    store.write_manifest(dataset, rid, manifest)
    return RunSummary(
        run_id=rid,
        dataset=dataset,
        points=total,
        computed=total - skipped,
        skipped=skipped,
        errors=errors,
        seconds=seconds,
        executor=ex.name,
        workers=ex.workers,
        restarts=ex.stats.restarts,
    )

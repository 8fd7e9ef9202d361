"""The results dataset: Parquet files, one per finished chunk, under one folder per run.

Layout (hive-partitioned by run, so DuckDB and pyarrow read every run at once)::

    DATASET/run_id=<run id>/manifest.json
    DATASET/run_id=<run id>/part-000000.parquet   # chunks finished together: their points, ok or error
    DATASET/run_id=<run id>/part-000001.parquet

A part holds one or more whole chunks (the runner writes what finished every few seconds); it
is written to a temporary name and renamed, so a killed sweep leaves only whole parts, and a
resumed sweep skips the chunks found in them. The columns are :data:`SCHEMA`
(docs/SWEEPS.md lists them).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import SiliconomicsError


def _pa() -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise SiliconomicsError(
            "sweeps need pyarrow and duckdb: pip install 'siliconomics[sweep]'"
        ) from None
    return pa


def schema() -> Any:
    """The fixed columns of every part file."""
    pa = _pa()
    num = pa.map_(pa.string(), pa.float64())
    return pa.schema(
        [
            ("run_id", pa.string()),
            ("study", pa.string()),
            ("command", pa.string()),
            ("chunk", pa.int64()),
            ("point_id", pa.int64()),
            ("point_key", pa.string()),
            ("inputs", pa.map_(pa.string(), pa.string())),
            ("inputs_json", pa.string()),
            ("status", pa.string()),
            ("error", pa.string()),
            ("outputs", num),
            ("low", num),
            ("high", num),
            ("labels", pa.map_(pa.string(), pa.string())),
            ("seed", pa.int64()),
            ("calibration", pa.string()),
            ("versions", pa.map_(pa.string(), pa.string())),
        ]
    )


def versions() -> dict[str, str]:
    """Versions that determine the numbers (recorded with every point)."""
    import numpy
    import scipy

    return {
        "siliconomics": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
    }


def calibration_id(inputs_: Mapping[str, Any] | None = None) -> str:
    """The calibration a point used: ``packaged:<hash>`` of the packaged efficiency profiles
    and band table, plus the stack or profile folder when the point names one."""
    h = hashlib.sha256()
    data = resources.files("siliconomics.catalog").joinpath("data")
    files = []
    for sub in ("efficiency", "efficiency/stacks"):
        d = data.joinpath(sub)
        if d.is_dir():
            files += [f for f in d.iterdir() if f.name.endswith(".toml")]
    files += [data.joinpath("bands.toml"), data.joinpath("stacks.toml")]
    for f in sorted(files, key=lambda f: f.name):
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    out = f"packaged:{h.hexdigest()[:12]}"
    for k in ("stack", "profile"):
        if inputs_ and inputs_.get(k) is not None:
            out += f";{k}={inputs_[k]}"
    return out


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)


def to_table(rows: Iterable[Mapping[str, Any]], meta: Mapping[str, Any]) -> Any:
    """Rows from :func:`..evaluate.run_task` as an Arrow table of :func:`schema`."""
    pa = _pa()
    cal, vers = meta["calibration"], meta["versions"]
    cols: dict[str, list[Any]] = {f.name: [] for f in schema()}
    for r in rows:
        inp = r["inputs"]
        cols["run_id"].append(meta["run_id"])
        cols["study"].append(meta["study"])
        cols["command"].append(meta["command"])
        cols["chunk"].append(r["chunk"])
        cols["point_id"].append(r["point_id"])
        cols["point_key"].append(r["point_key"])
        cols["inputs"].append([(k, _text(v)) for k, v in sorted(inp.items())])
        cols["inputs_json"].append(json.dumps(inp, sort_keys=True, default=str))
        cols["status"].append(r["status"])
        cols["error"].append(r.get("error"))
        for c in ("outputs", "low", "high", "labels"):
            cols[c].append(sorted((r.get(c) or {}).items()))
        cols["seed"].append(int(inp.get("seed", meta["seed"])))
        cols["calibration"].append(cal if "stack" not in inp else calibration_id(inp))
        cols["versions"].append(sorted(vers.items()))
    return pa.table(cols, schema=schema())


def run_dir(dataset: Path, run_id: str) -> Path:
    return dataset / f"run_id={run_id}"


def part_path(dataset: Path, run_id: str, chunk: int) -> Path:
    """The part whose first chunk is ``chunk`` (a chunk is written once, so names are unique)."""
    return run_dir(dataset, run_id) / f"part-{chunk:06d}.parquet"


def write_part(dataset: Path, run_id: str, chunk: int, table: Any) -> Path:
    """Write one chunk's table atomically (temporary file, then rename)."""
    import pyarrow.parquet as pq

    final = part_path(dataset, run_id, chunk)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, final)
    return final


def done_chunks(dataset: Path, run_id: str) -> set[int]:
    """Chunks of ``run_id`` already in a part file (finished before a kill)."""
    import pyarrow.parquet as pq

    d = run_dir(dataset, run_id)
    if not d.is_dir():
        return set()
    out: set[int] = set()
    for p in d.glob("part-*.parquet"):
        out.update(pq.read_table(p, columns=["chunk"]).column("chunk").to_pylist())
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def run_lock(dataset: Path, run_id: str) -> Iterator[None]:
    """Hold the run's lock file while writing it: a second driver of the same run on this
    machine is refused; a lock left by a killed driver is taken over."""
    d = run_dir(dataset, run_id)
    d.mkdir(parents=True, exist_ok=True)
    p = d / ".lock"
    for _ in range(2):
        try:
            fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            text = p.read_text(encoding="utf-8").strip()
            pid = int(text) if text.isdigit() else 0
            if pid and pid != os.getpid() and _alive(pid):
                raise SiliconomicsError(
                    f"run {run_id} is being written by process {pid} ({d}); wait for it or "
                    "stop it, then run the sweep again to resume"
                ) from None
            p.unlink(missing_ok=True)  # left by a killed sweep
    else:
        raise SiliconomicsError(f"run {run_id}: cannot take the lock {p}")
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    try:
        yield
    finally:
        p.unlink(missing_ok=True)


def read_manifest(dataset: Path, run_id: str) -> dict[str, Any] | None:
    p = run_dir(dataset, run_id) / "manifest.json"
    if not p.is_file():
        return None
    out: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
    return out


def write_manifest(dataset: Path, run_id: str, manifest: Mapping[str, Any]) -> Path:
    d = run_dir(dataset, run_id)
    d.mkdir(parents=True, exist_ok=True)
    p = d / "manifest.json"
    tmp = p.with_name(".manifest.json.tmp")
    tmp.write_text(
        json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
    )
    os.replace(tmp, p)
    return p


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

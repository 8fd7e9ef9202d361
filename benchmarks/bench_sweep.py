"""Sweep speed: points per second of one study, run as a plain loop over the public API, by
``siliconomics sweep`` in-process, on a local process pool of 1 and 2 workers, and on a local
Ray (2 CPUs), on this machine. Wall time includes starting the pool or Ray.

    .venv/bin/python benchmarks/bench_sweep.py [--study examples/sweeps/serving-sim.yaml] [--no-ray]

The plain loop calls ``api.<command>(**inputs)`` once per point and takes its ``to_dict()``
(no Parquet, no chunks, no output extraction). Every sweep writes to a fresh temporary dataset; the rows of every
executor are checked identical to the in-process run's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

from siliconomics.sweep import query
from siliconomics.sweep.evaluate import Task, call_point, run_task
from siliconomics.sweep.executors import InProcess, Pool, Ray
from siliconomics.sweep.runner import run_study
from siliconomics.sweep.study import load_study

ROOT = Path(__file__).resolve().parents[1]


def plain_loop(study) -> float:
    t0 = time.perf_counter()
    for p in study.points:
        with contextlib.suppress(Exception):
            call_point(study.command, p.inputs)
    return time.perf_counter() - t0


def rows(ds: Path) -> list[tuple]:
    con = query.connect(ds)
    sql = "SELECT point_id, status, outputs, labels FROM points ORDER BY point_id"
    return list(query.sql(con, sql).rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--study", type=Path, action="append")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    studies = args.study or [
        ROOT / "examples/sweeps/chat-chips.yaml",
        ROOT / "examples/sweeps/serving-sim.yaml",
    ]
    print(f"cpus: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}")
    for path in studies:
        s = load_study(path)
        run_task(
            Task(command=s.command, outputs=s.outputs, points=((0, "warm", s.points[0].inputs),))
        )
        n = len(s.points)
        print(f"\n{path.name}: {n} {s.command} points")
        print(f"  {'plain loop over api':<24} {n / plain_loop(s):9.1f} points/s")
        execs = [
            ("sweep in-process", InProcess()),
            ("sweep pool, 1 worker", Pool(workers=1)),
            ("sweep pool, 2 workers", Pool(workers=2)),
        ]
        if not args.no_ray:
            execs.append(("sweep Ray local, 2 CPUs", Ray(num_cpus=2)))
        ref = None
        with tempfile.TemporaryDirectory() as tmp:
            for i, (label, ex) in enumerate(execs):
                if isinstance(ex, Ray):
                    ex.start()  # Ray start-up (~10 s) is reported apart
                ds = Path(tmp) / str(i)
                t0 = time.perf_counter()
                run_study(s, ds, ex)
                dt = time.perf_counter() - t0
                got = rows(ds)
                ref = ref or got
                same = "same rows" if got == ref else "ROWS DIFFER"
                print(f"  {label:<24} {n / dt:9.1f} points/s  ({dt:.1f} s, {same})")
    if not args.no_ray:
        import ray

        ray.shutdown()


if __name__ == "__main__":
    main()

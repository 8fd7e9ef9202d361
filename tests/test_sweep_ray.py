"""A sweep on a real local Ray (``ray.init(num_cpus=2)``, not a mock) gives exactly the rows of
the in-process run (issue 15), also when a Ray worker is killed mid-chunk. One Ray start, a
few points."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import ray  # in the dev extra: this test runs in CI, never skipped

from siliconomics.sweep import query
from siliconomics.sweep.executors import InProcess, Ray
from siliconomics.sweep.runner import run_study
from siliconomics.sweep.study import make_study

STUDY = {
    "name": "ray-check",
    "command": "simulate",
    "seed": 5,
    "chunk": 2,
    "fixed": {"model": "llama-3.1-8b", "chip": "h100-sxm", "requests": 400},
    "grid": {"rate": [2.0, 6.0], "input_len": [256, 1024]},
}
ESTIMATE = {
    "name": "ray-estimate",
    "command": "estimate",
    "fixed": {"model": "llama-3.1-8b", "chip": "l4"},
    "grid": {"batch": [1, 16, 256], "input_len": [512, 4096]},
}


def _rows(ds):
    con = query.connect(ds)
    return query.sql(
        con,
        "SELECT point_id, status, error, outputs, low, high, labels, seed FROM points "
        "ORDER BY point_id",
    ).rows


def _ray_task_pids() -> list[int]:
    """Ray worker processes running a chunk now (Ray titles them 'ray::run_task')."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().startswith(b"ray::run_task"):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def test_ray_gives_the_in_process_results(tmp_path):
    studies = [make_study(json.loads(json.dumps(s)), base_dir=tmp_path) for s in (STUDY, ESTIMATE)]
    ex = Ray(num_cpus=2)
    killed: list[int] = []
    stop = threading.Event()

    def kill_a_worker() -> None:
        # once, mid-sweep: kill a Ray worker in the middle of its chunk; Ray reruns the task
        while not stop.is_set() and not killed:
            for pid in _ray_task_pids()[:1]:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.01)

    try:
        for i, s in enumerate(studies):
            ref = run_study(s, tmp_path / f"ref{i}", InProcess())
            killer = threading.Thread(target=kill_a_worker, daemon=True)
            if i == 0:
                killer.start()
            got = run_study(s, tmp_path / f"ray{i}", ex, flush_rows=1)
            stop.set()
            assert got.run_id == ref.run_id and got.executor == "ray" and ex.workers == 2
            assert _rows(tmp_path / f"ray{i}") == _rows(tmp_path / f"ref{i}")
        assert killed, "no Ray worker was mid-chunk to kill"
        # the estimate study has points that do not fit: recorded the same way on Ray
        assert any(r[1] == "error" for r in _rows(tmp_path / "ray1"))
    finally:
        ray.shutdown()

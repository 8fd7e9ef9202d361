"""Where chunks run: this process, a local process pool, or a Ray cluster.

Each executor takes the chunks still to do and yields ``(chunk index, rows)`` as they finish
(in any order; the runner writes each chunk's part file and the results do not depend on the
order). A worker that dies mid-chunk loses only that chunk's work: the chunk runs again (a
process pool is rebuilt; Ray retries the task). A chunk that kills its worker every time is
recorded as errors, one per point, after :data:`MAX_TRIES` tries.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from ..errors import SiliconomicsError
from .evaluate import Task, run_task

MAX_TRIES = 3
"""tries of a chunk whose worker dies before it is recorded as failed"""

Done = tuple[int, list[dict[str, Any]]]


def died_rows(task: Task, why: str) -> list[dict[str, Any]]:
    """Every point of a chunk whose worker kept dying, recorded with the reason."""
    return [
        {"point_id": i, "point_key": k, "inputs": inp, "status": "error", "error": why}
        for i, k, inp in task.points
    ]


@dataclass
class Stats:
    """What happened while running (for the manifest and the tests)."""

    restarts: int = 0
    """process pools rebuilt, or Ray tasks retried, after a worker died"""
    failed_chunks: int = 0


@dataclass
class InProcess:
    """Run every chunk here, one after the other (analytical points: no start-up cost)."""

    stats: Stats = field(default_factory=Stats)
    name: str = "in-process"
    workers: int = 1

    def run(self, tasks: Mapping[int, Task]) -> Iterator[Done]:
        for i, t in tasks.items():
            yield i, run_task(t)


@dataclass
class Pool:
    """A local pool of ``workers`` processes (simulations). Workers start from a forkserver
    that has the package imported already."""

    workers: int
    stats: Stats = field(default_factory=Stats)
    name: str = "process-pool"
    _ex: ProcessPoolExecutor | None = field(default=None, repr=False)

    def worker_pids(self) -> list[int]:
        """Process ids of the running pool's workers (to watch them, or to kill one in a test)."""
        procs = getattr(self._ex, "_processes", None) or {}
        return sorted(procs)

    def _pool(self, n: int) -> ProcessPoolExecutor:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["siliconomics.sweep.evaluate"])
        return ProcessPoolExecutor(max_workers=n, mp_context=ctx)

    def run(self, tasks: Mapping[int, Task]) -> Iterator[Done]:
        todo = dict(tasks)
        suspect: dict[int, int] = {}
        while todo:
            alone = [i for i in todo if suspect.get(i, 0) >= MAX_TRIES - 1]
            for i in alone:  # a chunk seen at every death: run it by itself, once more
                yield i, self._alone(todo.pop(i))
            if todo:
                yield from self._round(todo, suspect)

    def _round(self, todo: dict[int, Task], suspect: dict[int, int]) -> Iterator[Done]:
        """Run ``todo`` until it is empty or the pool breaks (a worker died)."""
        window = 4 * self.workers
        queue = list(todo)
        with self._pool(self.workers) as ex:
            self._ex = ex
            running: dict[Future[list[dict[str, Any]]], int] = {}
            try:
                while queue or running:
                    while queue and len(running) < window:
                        i = queue.pop(0)
                        running[ex.submit(run_task, todo[i])] = i
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for f in finished:
                        i = running.pop(f)
                        rows = f.result()
                        del todo[i]
                        yield i, rows
            except BrokenProcessPool:
                self.stats.restarts += 1
                for i in running.values():
                    suspect[i] = suspect.get(i, 0) + 1

    def _alone(self, task: Task) -> list[dict[str, Any]]:
        with self._pool(1) as ex:
            try:
                return ex.submit(run_task, task).result()
            except BrokenProcessPool:
                self.stats.failed_chunks += 1
                return died_rows(
                    task, f"WorkerDied: the worker process died {MAX_TRIES} times on this chunk"
                )


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SiliconomicsError("--ray needs Ray: pip install 'siliconomics[ray]'") from None
    return ray


@dataclass
class Ray:
    """Chunks as Ray tasks on a cluster (``address``: ``auto``, ``ray://host:10001`` or
    ``host:6379``), or on a local Ray started here (``address=None``, ``num_cpus`` CPUs).
    Ray retries a task whose worker died; a chunk that fails :data:`MAX_TRIES` times is
    recorded as errors."""

    address: str | None = None
    num_cpus: int | None = None
    stats: Stats = field(default_factory=Stats)
    name: str = "ray"
    workers: int = 0

    def start(self) -> None:
        """Connect to (or start) Ray now, so a wrong address fails before the run begins."""
        self._init()

    def _init(self) -> Any:
        ray = _ray()
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None:
                kw["num_cpus"] = self.num_cpus
            else:
                kw["address"] = self.address
            try:
                ray.init(**kw)
            except ConnectionError as e:
                raise SiliconomicsError(f"--ray {self.address}: cannot connect: {e}") from None
        self.workers = int(ray.cluster_resources().get("CPU", 1))
        return ray

    def run(self, tasks: Mapping[int, Task]) -> Iterator[Done]:
        ray = self._init()
        remote = ray.remote(max_retries=MAX_TRIES - 1, num_cpus=1)(run_task)
        queue = list(tasks)
        window = 4 * max(self.workers, 1)
        running: dict[Any, int] = {}
        while queue or running:
            while queue and len(running) < window:
                i = queue.pop(0)
                running[remote.remote(tasks[i])] = i
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                i = running.pop(ref)
                try:
                    rows = ray.get(ref)
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as e:
                    self.stats.failed_chunks += 1
                    rows = died_rows(tasks[i], f"WorkerDied: {' '.join(str(e).split())[:300]}")
                yield i, rows

"""Jobs: long work run in its own process, tracked in SQLite so a restart loses nothing.

A job is submitted (``queued``), started when a slot is free (``running``, in a process of its
own so that it can be cancelled at once and cannot disturb the server), and ends ``done`` (its
result stored), ``failed`` (its one-line error stored) or ``cancelled``. When the server starts
it marks every job the previous server left queued or running as ``interrupted`` with the
reason; such a job can be re-run (a new job with the same inputs).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..errors import SiliconomicsError

FINAL = ("done", "failed", "cancelled", "interrupted")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  params TEXT NOT NULL,
  status TEXT NOT NULL,
  created REAL NOT NULL,
  started REAL,
  finished REAL,
  stage TEXT,
  done INTEGER NOT NULL DEFAULT 0,
  total INTEGER NOT NULL DEFAULT 0,
  result TEXT,
  error TEXT,
  reason TEXT,
  rerun_of TEXT
)
"""


@dataclass(frozen=True, kw_only=True)
class Job:
    id: str
    kind: str
    params: dict[str, Any]
    status: str
    created: float
    started: float | None
    finished: float | None
    stage: str | None
    done: int
    total: int
    error: str | None
    reason: str | None
    rerun_of: str | None

    @property
    def fraction(self) -> float:
        if self.status == "done":
            return 1.0
        return self.done / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "params": self.params,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "progress": {"stage": self.stage, "done": self.done, "total": self.total},
            "fraction": self.fraction,
            "error": self.error,
            "reason": self.reason,
            "rerun_of": self.rerun_of,
            "url": f"/api/jobs/{self.id}",
            "result_url": f"/api/jobs/{self.id}/result",
            "page_url": f"/jobs/{self.id}",
        }


class Store:
    """The SQLite file of jobs and results (stdlib sqlite3; one connection per call)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def mark_interrupted(self, now: float) -> int:
        """Jobs a previous server left queued or running: interrupted, with the reason."""
        with self._db() as db:
            cur = db.execute(
                "UPDATE jobs SET status='interrupted', finished=?, reason=CASE status "
                "WHEN 'running' THEN 'the server stopped while the job was running' "
                "ELSE 'the server stopped before the job started' END "
                "WHERE status IN ('queued', 'running')",
                (now,),
            )
            return cur.rowcount

    def add(self, kind: str, params: dict[str, Any], now: float, rerun_of: str | None) -> str:
        job_id = secrets.token_urlsafe(12)  # unguessable: a result URL can be shared
        with self._db() as db:
            db.execute(
                "INSERT INTO jobs (id, kind, params, status, created, rerun_of) "
                "VALUES (?, ?, ?, 'queued', ?, ?)",
                (job_id, kind, json.dumps(params), now, rerun_of),
            )
        return job_id

    def get(self, job_id: str) -> Job | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def result(self, job_id: str) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute("SELECT result FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None or row["result"] is None else json.loads(row["result"])

    def newest(self, limit: int = 50) -> list[Job]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,))
            return [_job(r) for r in rows.fetchall()]

    def count(self, statuses: tuple[str, ...]) -> int:
        marks = ",".join("?" * len(statuses))
        with self._db() as db:
            row = db.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", statuses)
            return int(row.fetchone()[0])

    def queued(self) -> list[Job]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM jobs WHERE status='queued' ORDER BY created")
            return [_job(r) for r in rows.fetchall()]

    def update(self, job_id: str, **fields: Any) -> None:
        if "result" in fields and fields["result"] is not None:
            fields["result"] = json.dumps(fields["result"], allow_nan=False)
        cols = ", ".join(f"{k}=?" for k in fields)
        with self._db() as db:
            db.execute(f"UPDATE jobs SET {cols} WHERE id=?", (*fields.values(), job_id))

    def claim(self, job_id: str, now: float) -> bool:
        """queued -> running, atomically (False: it was cancelled meanwhile)."""
        with self._db() as db:
            cur = db.execute(
                "UPDATE jobs SET status='running', started=? WHERE id=? AND status='queued'",
                (now, job_id),
            )
            return cur.rowcount == 1


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        params=json.loads(row["params"]),
        status=row["status"],
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        stage=row["stage"],
        done=row["done"],
        total=row["total"],
        error=row["error"],
        reason=row["reason"],
        rerun_of=row["rerun_of"],
    )


# --- the worker process ----------------------------------------------------------------------


def _watch_parent(ppid: int) -> None:
    """End this worker when the process that started it is gone (the server was killed)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != ppid:
            os._exit(3)


def work(conn: Connection, kind: str, kw: dict[str, Any]) -> None:
    """The job process: run one checked request, send progress and the result back."""
    from .kinds import run

    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    def progress(stage: str, done: int, total: int) -> None:
        conn.send(("progress", stage, int(done), int(total)))

    try:
        conn.send(("done", run(kind, kw, progress)))
    except SiliconomicsError as e:
        conn.send(("failed", " ".join(str(e).split())))
    except Exception as e:
        conn.send(("failed", f"internal error: {type(e).__name__}: {' '.join(str(e).split())}"))
    finally:
        conn.close()


def _context() -> Any:
    """Processes from a fork server preloaded with the library: a job starts in milliseconds
    after the first, and never forks the server's own threads."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["siliconomics.web.kinds"])
    return ctx


class Runner:
    """Starts queued jobs when a slot is free and follows each in a thread of the server."""

    def __init__(
        self, store: Store, max_running: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.store, self.max_running, self.clock = store, max_running, clock
        self._lock = threading.Lock()
        self._procs: dict[str, Any] = {}
        self._cancel: set[str] = set()
        self._ctx: Any = None
        self._stopping = False

    def submit(self, kind: str, kw: dict[str, Any], rerun_of: str | None = None) -> str:
        job_id = self.store.add(kind, kw, self.clock(), rerun_of)
        self.dispatch()
        return job_id

    def dispatch(self) -> None:
        with self._lock:
            for job in self.store.queued():
                if len(self._procs) >= self.max_running:
                    return
                if self.store.claim(job.id, self.clock()):
                    self._start(job)

    def _start(self, job: Job) -> None:
        if self._ctx is None:
            self._ctx = _context()
        parent, child = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=work, args=(child, job.kind, job.params), daemon=True)
        proc.start()
        child.close()
        self._procs[job.id] = proc
        threading.Thread(target=self._follow, args=(job.id, proc, parent), daemon=True).start()

    def _follow(self, job_id: str, proc: Any, conn: Connection) -> None:
        last = 0.0
        outcome: tuple[str, Any] | None = None
        while outcome is None:
            try:
                if not conn.poll(0.2):
                    ended = job_id in self._cancel or not proc.is_alive()
                    if ended and not conn.poll(0):
                        break
                    continue
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if msg[0] == "progress":
                now = self.clock()
                if now - last > 0.2 or msg[2] >= msg[3]:
                    self.store.update(job_id, stage=msg[1], done=msg[2], total=msg[3])
                    last = now
            else:
                outcome = (msg[0], msg[1])
        self._finish(job_id, proc, conn, outcome)

    def _finish(self, job_id: str, proc: Any, conn: Connection, outcome: Any) -> None:
        if proc.is_alive():
            proc.terminate()
        proc.join(5)
        conn.close()
        now = self.clock()
        if self._stopping:
            return  # shutdown() marked it interrupted
        if job_id in self._cancel:
            self.store.update(job_id, status="cancelled", finished=now, reason="cancelled")
        elif outcome is None:
            self.store.update(
                job_id,
                status="failed",
                finished=now,
                error=f"the job's process ended without a result (exit code {proc.exitcode})",
            )
        elif outcome[0] == "done":
            self.store.update(job_id, status="done", finished=now, result=outcome[1])
        else:
            self.store.update(job_id, status="failed", finished=now, error=outcome[1])
        with self._lock:
            self._procs.pop(job_id, None)
            self._cancel.discard(job_id)
        self.dispatch()

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job (a running one's process is ended)."""
        job = self.store.get(job_id)
        if job is None or job.status in FINAL:
            return False
        with self._lock:
            proc = self._procs.get(job_id)
            if proc is None:
                self.store.update(
                    job_id, status="cancelled", finished=self.clock(), reason="cancelled"
                )
                return True
            self._cancel.add(job_id)
        proc.terminate()
        return True

    def shutdown(self) -> None:
        """End every running job (the server is stopping): they are marked interrupted."""
        with self._lock:
            self._stopping = True
            procs = dict(self._procs)
        for job_id, proc in procs.items():
            proc.terminate()
            self.store.update(
                job_id,
                status="interrupted",
                finished=self.clock(),
                reason="the server stopped while the job was running",
            )

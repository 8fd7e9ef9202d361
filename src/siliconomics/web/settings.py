"""Settings of the web app: where it binds, its token, its job store and its work limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Work limits: a request past one gets a 4xx naming the limit."""

    max_body_bytes: int = 2 * 1024**2
    """request body (a plan spec, an uploaded CSV) in bytes (413 past it)"""
    max_in_flight: int = 64
    """requests being answered at once (429 past it)"""
    max_chips: int = 64
    """chips named in one request"""
    max_train_chips: int = 1_000_000
    """chips of one training job"""
    max_top: int = 50
    """plans listed by one training search"""
    max_sim_requests: int = 20_000
    """simulated requests in one simulation"""
    max_plan_cells: int = 400
    """plan sweep: workloads x candidate chips"""
    max_validate_rows: int = 5_000
    """lines of an uploaded measured-results CSV"""
    max_queued_jobs: int = 32
    """jobs waiting or running at once (429 past it)"""
    max_running_jobs: int = 2
    """jobs running at once (each in its own process); the rest wait"""


@dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    """bearer token every request must carry (required when not bound to localhost)"""
    db_path: Path = field(default_factory=lambda: Path("siliconomics-web.sqlite3"))
    """the SQLite file of jobs and results"""
    cors_origins: tuple[str, ...] = ()
    """origins allowed to call the API from a browser (none by default)"""
    limits: Limits = field(default_factory=Limits)

    @property
    def local(self) -> bool:
        return self.host in LOCAL_HOSTS

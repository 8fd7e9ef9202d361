"""`siliconomics serve` as a real server on the loopback: a load test (50 concurrent clients of
estimate/compare for a bounded time: no error, no lost job; p50/p99 latency printed) and a
fault test (the server is killed mid-job and restarted: every finished result is still there
and the job it was running is marked interrupted, and can be re-run)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from tests.test_web_api import LONG_SPEC  # noqa: E402

FINAL = ("done", "failed", "cancelled", "interrupted")
ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 50
LOAD_SECONDS = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(db: Path, *extra: str) -> Iterator[tuple[str, subprocess.Popen]]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "siliconomics.cli",
            "serve",
            "--port",
            str(port),
            "--db",
            str(db),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise AssertionError(f"serve exited: {proc.stderr.read() if proc.stderr else ''}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait(url: str, job_id: str, until: tuple[str, ...], seconds: float = 120) -> dict:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        j = httpx.get(f"{url}/api/jobs/{job_id}", timeout=30).json()
        if j["status"] in until:
            return j
        if j["status"] in FINAL:
            raise AssertionError(f"job {job_id} ended {j['status']}: {j['error'] or j['reason']}")
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {j['status']}")


def test_load_50_concurrent_clients(tmp_path):
    """Each client loops estimate and compare requests for LOAD_SECONDS; every other client
    also submits a job. Counts and latencies go to stdout (docs/WEB.md quotes them)."""
    estimate = [
        {"model": "llama-3.1-8b", "chip": chip, "batch": b}
        for chip in ("h100-sxm", "h200-sxm", "a100-sxm-80gb", "b200")
        for b in (1, 8, 32)
    ]
    compare = {"model": "llama-3.1-8b", "chips": ["l4", "h100-sxm", "tpu-v5e"], "tpot": "50ms"}
    lat: list[float] = []
    errors: list[str] = []
    jobs: list[str] = []
    lock = threading.Lock()

    def client(i: int, url: str, stop: float) -> None:
        with httpx.Client(base_url=url, timeout=60) as cl:
            if i % 2 == 0:
                r = cl.post("/api/jobs", json={"kind": "estimate", "params": estimate[i % 12]})
                with lock:
                    (jobs.append(r.json()["id"]) if r.status_code == 202 else errors.append(r.text))
            n = i
            while n == i or time.monotonic() < stop:  # at least one request per client
                path, body = (
                    ("/api/compare", compare) if n % 5 == 0 else ("/api/estimate", estimate[n % 12])
                )
                t0 = time.perf_counter()
                r = cl.post(path, json=body)
                dt = time.perf_counter() - t0
                with lock:
                    lat.append(dt)
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.text[:200]}")
                n += 1

    with server(tmp_path / "load.sqlite3") as (url, _):
        stop = time.monotonic() + LOAD_SECONDS
        threads = [threading.Thread(target=client, args=(i, url, stop)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done = [_wait(url, j, FINAL) for j in jobs]
    assert not errors, errors[:5]
    assert len(jobs) == CLIENTS // 2
    assert [j["status"] for j in done] == ["done"] * len(jobs)  # no lost job
    lat.sort()
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(
        f"\nload: {CLIENTS} clients, {LOAD_SECONDS:g} s, {len(lat)} requests, 0 errors, "
        f"{len(jobs)} jobs all done; latency p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms"
    )
    assert len(lat) >= CLIENTS


def test_kill_mid_job_and_restart(tmp_path):
    db = tmp_path / "fault.sqlite3"
    with server(db) as (url, proc):
        quick = httpx.post(f"{url}/api/tco", json={"chip": "h100-sxm"}, timeout=60)
        assert quick.status_code == 200
        job = httpx.post(
            f"{url}/api/jobs",
            json={"kind": "tco", "params": {"chip": "h100-sxm", "model": "llama-3.1-8b"}},
            timeout=60,
        ).json()
        finished = _wait(url, job["id"], ("done",))
        result = httpx.get(f"{url}/api/jobs/{job['id']}/result", timeout=30).json()
        long = httpx.post(
            f"{url}/api/plan", json={"spec": LONG_SPEC, "sensitivity": True}, timeout=60
        ).json()
        _wait(url, long["id"], ("running",))
        os.kill(proc.pid, signal.SIGKILL)  # the server dies with the plan half done
        proc.wait(10)
    with server(db) as (url, _):
        again = httpx.get(f"{url}/api/jobs/{job['id']}", timeout=30).json()
        assert again["status"] == "done" and again["finished"] == finished["finished"]
        assert httpx.get(f"{url}/api/jobs/{job['id']}/result", timeout=30).json() == result
        lost = httpx.get(f"{url}/api/jobs/{long['id']}", timeout=30).json()
        assert lost["status"] == "interrupted"
        assert lost["reason"] == "the server stopped while the job was running"
        time.sleep(1.5)  # the orphaned job process notices its server is gone and ends
        assert httpx.get(f"{url}/api/jobs/{long['id']}", timeout=30).json() == lost
        rerun = httpx.post(f"{url}/api/jobs/{long['id']}/rerun", timeout=30)
        assert rerun.status_code == 202 and rerun.json()["params"] == lost["params"]
        cancelled = httpx.post(f"{url}/api/jobs/{rerun.json()['id']}/cancel", timeout=30)
        assert cancelled.json()["status"] == "cancelled"
    assert json.dumps(result)  # strict JSON


def test_serve_refuses_a_public_bind_without_token(tmp_path, monkeypatch, capsys):
    from siliconomics.cli import main

    monkeypatch.delenv("SILICONOMICS_TOKEN", raising=False)
    with pytest.raises(SystemExit) as e:
        main(["serve", "--host", "0.0.0.0", "--db", str(tmp_path / "x.sqlite3")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.strip().count("\n") == 0 and "needs a token" in err


def test_serve_without_the_web_extra_says_how_to_install(tmp_path, monkeypatch, capsys):
    from siliconomics.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed: import fails
    with pytest.raises(SystemExit) as e:
        main(["serve", "--db", str(tmp_path / "x.sqlite3")])
    assert e.value.code == 2
    assert "pip install 'siliconomics[web]'" in capsys.readouterr().err

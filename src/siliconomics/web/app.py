"""The FastAPI application: the JSON API under ``/api``, the pages, the static files.

Safe by default: it answers only requests addressed to the host it is bound to (localhost
unless told otherwise), a bearer token is checked on every request when one is set (required
off localhost, see :mod:`siliconomics.cli.serve_cmds`), request bodies and concurrent requests
are bounded, no endpoint takes a server-side path, and no CORS header is sent unless origins
are named.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from .. import __version__, api, resolve
from ..errors import SiliconomicsError
from ..report import serialize
from . import kinds
from .jobs import FINAL, Runner, Store
from .settings import LOCAL_HOSTS, Settings

COOKIE = "siliconomics_token"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status, headers=headers)


def validation_message(errors: list[Any]) -> str:
    """One line naming the first bad field and what is wrong with it."""
    e = errors[0]
    loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc) or "body"
    msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
    if e.get("type") == "extra_forbidden":
        msg = "not a field of this request"
    if e.get("type") == "json_invalid":
        return f"body: not valid JSON ({e.get('ctx', {}).get('error', msg)})"
    return f"field '{field}': {msg}"


class _Compute:
    """Runs requests one at a time (the library keeps per-process state such as installed
    efficiency profiles) and remembers recent answers (the same request gives the same one;
    concurrent identical requests are computed once)."""

    def __init__(self, size: int = 256) -> None:
        self.lock = threading.Lock()
        self.size = size
        self._cache: OrderedDict[str, str] = OrderedDict()

    def __call__(self, kind: str, kw: dict[str, Any]) -> Any:
        key = json.dumps([kind, kw], sort_keys=True)
        text = self._cache.get(key)  # a hit does not wait for a computation in progress
        if text is None:
            with self.lock:
                text = self._cache.get(key)  # computed meanwhile by an identical request?
                if text is None:
                    text = json.dumps(kinds.run(kind, kw), allow_nan=False)
                    self._cache[key] = text
                    if len(self._cache) > self.size:
                        self._cache.popitem(last=False)  # the oldest answer
        return json.loads(text)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (default: localhost, no token, ``./siliconomics-web.sqlite3``).
    Jobs a previous server left running are marked interrupted here."""
    st = settings or Settings()
    if not st.local and not st.token:
        raise SiliconomicsError(
            f"--host {st.host}: binding beyond localhost needs a token (--token or "
            "SILICONOMICS_TOKEN)"
        )
    store = Store(st.db_path)
    if multiprocessing.parent_process() is None:  # not in a job process re-importing a script
        store.mark_interrupted(time.time())
    runner = Runner(store, st.limits.max_running_jobs)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        runner.shutdown()

    app = FastAPI(
        title="siliconomics",
        version=__version__,
        description="Speed, cost and energy of LLM training and serving on GPUs and AI ASICs. "
        "Every endpoint takes the inputs of the matching CLI command and returns its --json.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # the interactive docs load scripts from a CDN: not served
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings, app.state.store, app.state.runner = st, store, runner
    app.state.compute = _Compute()
    _guards(app, st)
    _handlers(app)
    _api_routes(app)
    from .pages import add_pages

    add_pages(app)
    return app


# --- guards: host, token, body size, requests in flight --------------------------------------


def _guards(app: FastAPI, st: Settings) -> None:
    in_flight = [0]
    lim = st.limits

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
        if st.local and host not in LOCAL_HOSTS:
            # a page of another site cannot reach this server through a name it controls
            return _error(400, f"host '{host}' is not served; use http://127.0.0.1:{st.port}")
        denied = _auth(request, st.token)
        if denied is not None:
            return denied
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > lim.max_body_bytes):
            return _error(413, f"request body over the {lim.max_body_bytes // 1024} KiB allowed")
        if request.method == "POST" and size is None:
            body = await request.body()
            if len(body) > lim.max_body_bytes:
                return _error(
                    413, f"request body over the {lim.max_body_bytes // 1024} KiB allowed"
                )
        if in_flight[0] >= lim.max_in_flight:
            return _error(
                429,
                f"more than {lim.max_in_flight} requests in flight; retry shortly",
                {"Retry-After": "1"},
            )
        in_flight[0] += 1
        try:
            response = await call_next(request)
        finally:
            in_flight[0] -= 1
        if st.token and request.query_params.get("token") == st.token:
            response.set_cookie(COOKIE, st.token, httponly=True, samesite="strict")
        return response

    if st.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(st.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )


def _auth(request: Request, token: str | None) -> JSONResponse | None:
    if token is None or request.url.path == "/api/health":
        return None
    header = request.headers.get("authorization", "")
    given = (
        header.removeprefix("Bearer ").strip()
        if header.startswith("Bearer ")
        else request.cookies.get(COOKIE) or request.query_params.get("token") or ""
    )
    if secrets.compare_digest(given.encode(), token.encode()):
        return None
    return _error(
        401,
        "a token is required: send 'Authorization: Bearer TOKEN' (pages: open ?token=TOKEN once)",
        {"WWW-Authenticate": "Bearer"},
    )


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, validation_message(list(exc.errors())))

    @app.exception_handler(ValidationError)
    async def bad_model(request: Request, exc: ValidationError) -> JSONResponse:
        return _error(422, validation_message(list(exc.errors())))

    @app.exception_handler(SiliconomicsError)
    async def bad_input(request: Request, exc: SiliconomicsError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"internal error: {type(exc).__name__}: {exc} (a bug; please report it)")


# --- the JSON API ----------------------------------------------------------------------------


def submit(app: FastAPI, kind: str, body: BaseModel, rerun_of: str | None = None) -> str:
    """Check a request and queue it as a job; its id."""
    st: Settings = app.state.settings
    kw = kinds.check(kind, body, st.limits)
    store: Store = app.state.store
    if store.count(("queued", "running")) >= st.limits.max_queued_jobs:
        raise HTTPException(
            429, f"{st.limits.max_queued_jobs} jobs are queued or running; retry when one ends"
        )
    runner: Runner = app.state.runner
    return runner.submit(kind, kw, rerun_of)


def compute(app: FastAPI, kind: str, body: BaseModel) -> Any:
    """Check and answer a request now (the quick kinds)."""
    kw = kinds.check(kind, body, app.state.settings.limits)
    return app.state.compute(kind, kw)


def _job_response(app: FastAPI, job_id: str) -> JSONResponse:
    job = app.state.store.get(job_id)
    return JSONResponse(job.to_dict(), status_code=202, headers={"Location": f"/api/jobs/{job_id}"})


def _kind_route(app: FastAPI, kind: str) -> None:
    model = kinds.REQUESTS[kind]
    job_only = kind in kinds.JOB_ONLY

    def endpoint(body: Any) -> Any:
        if job_only:
            return _job_response(app, submit(app, kind, body))
        return compute(app, kind, body)

    endpoint.__annotations__ = {"body": model, "return": Any}
    doc = (getattr(api, kind).__doc__ or "").strip()
    app.post(
        f"/api/{kind}",
        name=kind,
        summary=f"{kind}: the --json of 'siliconomics {kind}'"
        + (" (submits a job: 202 and its URL)" if job_only else ""),
        description=doc,
        tags=["jobs" if job_only else "compute"],
        status_code=202 if job_only else 200,
    )(endpoint)


def _api_routes(app: FastAPI) -> None:
    @app.get("/api/health", tags=["catalog"])
    def health() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

    @app.get("/api/chips", tags=["catalog"], summary="the --json of 'siliconomics chips'")
    def chips() -> list[dict[str, Any]]:
        return [kinds.clean(serialize.chip_dict(c)) for c in resolve.packaged().chips.values()]

    @app.get("/api/models", tags=["catalog"], summary="the --json of 'siliconomics models'")
    def models() -> list[dict[str, Any]]:
        return [kinds.clean(serialize.model_dict(m)) for m in resolve.packaged().models.values()]

    @app.get("/api/corpus", tags=["catalog"], summary="packaged measured-results files")
    def corpus() -> list[str]:
        return kinds.corpus_files()

    for kind in kinds.KINDS:
        _kind_route(app, kind)
    _job_routes(app)


class JobRequest(BaseModel):
    kind: str
    params: dict[str, Any] = {}


def _job_routes(app: FastAPI) -> None:
    store: Store = app.state.store

    def get(job_id: str) -> Any:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job '{job_id}'")
        return job

    @app.post("/api/jobs", tags=["jobs"], status_code=202, summary="submit any kind as a job")
    def submit_job(body: JobRequest) -> JSONResponse:
        if body.kind not in kinds.KINDS:
            raise SiliconomicsError(
                f"field 'kind': '{body.kind}'; allowed: {', '.join(kinds.KINDS)}"
            )
        req = kinds.REQUESTS[body.kind].model_validate(body.params)
        return _job_response(app, submit(app, body.kind, req))

    @app.get("/api/jobs", tags=["jobs"], summary="the newest jobs")
    def list_jobs() -> list[dict[str, Any]]:
        return [j.to_dict() for j in store.newest()]

    @app.get("/api/jobs/{job_id}", tags=["jobs"], summary="a job's status and progress")
    def job(job_id: str) -> dict[str, Any]:
        d: dict[str, Any] = get(job_id).to_dict()
        return d

    @app.get("/api/jobs/{job_id}/result", tags=["jobs"], summary="a finished job's result")
    def result(job_id: str) -> Any:
        j = get(job_id)
        if j.status != "done":
            why = j.error or j.reason or f"the job is {j.status}"
            raise HTTPException(409 if j.status not in FINAL else 410, f"no result: {why}")
        return store.result(job_id)

    _job_actions(app, get)


def _job_actions(app: FastAPI, get: Callable[[str], Any]) -> None:
    store: Store = app.state.store
    runner: Runner = app.state.runner

    @app.post("/api/jobs/{job_id}/cancel", tags=["jobs"], summary="cancel a queued or running job")
    def cancel(job_id: str) -> dict[str, Any]:
        j = get(job_id)
        if not runner.cancel(job_id):
            raise HTTPException(409, f"the job is already {j.status}")
        for _ in range(50):  # a running job's process ends within a moment
            if (now := get(job_id)).status in FINAL:
                break
            time.sleep(0.1)
        d: dict[str, Any] = now.to_dict()
        return d

    @app.post("/api/jobs/{job_id}/rerun", tags=["jobs"], status_code=202, summary="run again")
    def rerun(job_id: str) -> JSONResponse:
        j = get(job_id)
        if j.status not in FINAL:
            raise HTTPException(409, f"the job is still {j.status}")
        new = runner.submit(j.kind, j.params, rerun_of=j.id)
        return _job_response(app, new)

    @app.get("/api/jobs/{job_id}/events", tags=["jobs"], summary="progress as server-sent events")
    async def events(job_id: str) -> StreamingResponse:
        get(job_id)
        return StreamingResponse(_events(store, job_id), media_type="text/event-stream")


async def _events(store: Store, job_id: str) -> AsyncIterator[str]:
    """``progress`` events while the job moves, one ``end`` event when it is over."""
    last = None
    while True:
        job = await run_in_threadpool(store.get, job_id)
        if job is None:
            return
        d = job.to_dict()
        snap = (job.status, job.stage, job.done, job.total)
        if job.status in FINAL:
            yield f"event: end\ndata: {json.dumps(d)}\n\n"
            return
        if snap != last:
            yield f"event: progress\ndata: {json.dumps(d)}\n\n"
            last = snap
        await asyncio.sleep(0.25)

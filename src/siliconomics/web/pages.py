"""The web app's pages: server-rendered Jinja2 templates, htmx for partial updates, plotly
charts (plotly.js served from the installed plotly package; no CDN).

A quick page (compare, estimate, TCO) is a GET form: its URL holds the inputs, so a result
can be shared as a link. Long work (plan, validation) is submitted as a job and its page,
``/jobs/<id>``, shows the progress bar and then the result, at a URL that lasts.
"""

from __future__ import annotations

import typing
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from ..errors import SiliconomicsError
from . import figures as figs
from . import kinds
from .app import compute, submit, validation_message
from .jobs import FINAL, Job, Store

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _num(v: Any, digits: int = 3) -> str:
    """A number for a table: thousands separated, ``digits`` significant digits below that."""
    if v is None or isinstance(v, bool) or not isinstance(v, int | float):
        return "–" if v is None else str(v)
    if v != v or v in (float("inf"), float("-inf")):
        return "–"
    if abs(v) >= 10 ** max(digits, 3):
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _op_bound(op: dict[str, Any]) -> str:
    parts = {"compute": "t_compute_s", "memory": "t_memory_s", "communication": "t_comm_s"}
    return max(parts, key=lambda k: op.get(parts[k]) or 0.0)


def _when(t: float | None) -> str:
    import datetime as dt

    if t is None:
        return "–"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.env.filters.update(num=_num, op_bound=_op_bound, when=_when)

DEFAULT_SPEC = """\
# A plan spec (docs/PLANNING.md): the cheapest fleet for this traffic within the targets.
name: Llama-3.1-8B chat
pricing: on-demand
chips: [l4, l40s, h100-sxm, inf2, tpu-v5e]
workloads:
  - name: chat
    model: llama-3.1-8b
    rate_rps: 20
    input: {mean: 1000, sigma: 1.0, max: 16000}
    output: {mean: 250, sigma: 0.7, max: 2000}
    slo: {ttft: 2s, tpot: 50ms, percentile: 99}
"""

PAGES = {
    "compare": "Compare chips",
    "estimate": "Estimate one configuration",
    "plan": "Plan a fleet",
    "tco": "Rent or buy",
    "validate": "Validation",
    "jobs": "Jobs",
}


def _plotly_js() -> Path:
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():  # pragma: no cover - a broken plotly install
        raise HTTPException(404, "plotly.min.js is missing from the installed plotly package")
    return path


def _params(kind: str, query: Any) -> dict[str, Any]:
    """The request fields present in a form's query string (empty ones: the default)."""
    model = kinds.REQUESTS[kind]
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if typing.get_origin(field.annotation) is not None and "list" in str(field.annotation):
            vals = [v for v in query.getlist(name) if v]
            if vals:
                out[name] = vals
        elif query.get(name) not in (None, ""):
            out[name] = query.get(name)
    return out


def _context(request: Request, page: str, **extra: Any) -> dict[str, Any]:
    cat = kinds.catalogs()
    return {
        "request": request,
        "page": page,
        "pages": PAGES,
        "chips": cat.chips,
        "models": cat.models,
        "corpus": kinds.corpus_files(),
        **extra,
    }


def _result_figures(kind: str, result: dict[str, Any] | None) -> dict[str, str]:
    if not result:
        return {}
    if kind == "compare":
        return figs.figures(compare=figs.compare_chart(result))
    if kind == "estimate":
        return figs.figures(ops=figs.ops_chart(result))
    if kind == "tco":
        return figs.figures(tco=figs.tco_chart(result))
    if kind == "plan":
        fleet = result.get("fleet") or {}
        return figs.figures(
            pareto=figs.pareto_chart(fleet), tornado=figs.tornado(result.get("sensitivity") or [])
        )
    if kind == "validate":
        return figs.figures(validation=figs.validation_chart(result))
    return {}


def _quick_page(app: FastAPI, request: Request, kind: str) -> Response:
    q = request.query_params
    result, error, status = None, None, 200
    if q.get("run"):
        params = _params(kind, q)
        if kind == "tco" and "breakeven_price" in kinds.REQUESTS[kind].model_fields:
            params.setdefault("breakeven_price", True)
        try:
            result = compute(app, kind, kinds.REQUESTS[kind].model_validate(params))
        except ValidationError as e:
            error, status = validation_message(list(e.errors())), 422
        except SiliconomicsError as e:
            error, status = " ".join(str(e).split()), 422
    ctx = _context(
        request,
        kind,
        values=dict(q),
        chosen=q.getlist("chips"),
        result=result,
        error=error,
        figures=_result_figures(kind, result),
    )
    return templates.TemplateResponse(request, f"{kind}.html", ctx, status_code=status)


def add_pages(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(HERE / "static"), check_dir=True), name="static")
    store: Store = app.state.store

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(_plotly_js(), media_type="text/javascript")

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def index(request: Request) -> Response:
        return templates.TemplateResponse(request, "index.html", _context(request, "index"))

    for kind in ("compare", "estimate", "tco"):

        def page(request: Request, kind: str = kind) -> Response:
            return _quick_page(app, request, kind)

        app.get(f"/{kind}", include_in_schema=False, response_class=HTMLResponse)(page)

    @app.get("/plan", include_in_schema=False, response_class=HTMLResponse)
    def plan_form(request: Request) -> Response:
        ctx = _context(request, "plan", spec=DEFAULT_SPEC, error=None)
        return templates.TemplateResponse(request, "plan.html", ctx)

    @app.post("/plan", include_in_schema=False)
    async def plan_submit(
        request: Request,
        spec: str = Form(""),
        spec_file: UploadFile | None = File(None),
        sensitivity: bool = Form(False),
    ) -> Response:
        text = spec
        if spec_file is not None and spec_file.filename:
            text = (await spec_file.read()).decode("utf-8", errors="replace")
        params = {"spec": text, "sensitivity": sensitivity}
        return _submit_page(app, request, "plan", params, {"spec": text})

    @app.get("/validate", include_in_schema=False, response_class=HTMLResponse)
    def validate_form(request: Request) -> Response:
        return templates.TemplateResponse(
            request, "validate.html", _context(request, "validate", error=None)
        )

    @app.post("/validate", include_in_schema=False)
    async def validate_submit(
        request: Request, corpus: str = Form(""), csv_file: UploadFile | None = File(None)
    ) -> Response:
        params: dict[str, Any] = {"corpus": corpus or None}
        if csv_file is not None and csv_file.filename:
            params = {"csv": (await csv_file.read()).decode("utf-8", errors="replace")}
        return _submit_page(app, request, "validate", params, {})

    _job_pages(app, store)


def _submit_page(
    app: FastAPI, request: Request, kind: str, params: dict[str, Any], keep: dict[str, Any]
) -> Response:
    try:
        job_id = submit(app, kind, kinds.REQUESTS[kind].model_validate(params))
    except ValidationError as e:
        error = validation_message(list(e.errors()))
    except SiliconomicsError as e:
        error = " ".join(str(e).split())
    else:
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)
    ctx = _context(request, kind, error=error, **keep)
    return templates.TemplateResponse(request, f"{kind}.html", ctx, status_code=422)


def _job_pages(app: FastAPI, store: Store) -> None:
    def get(job_id: str) -> Job:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job '{job_id}'")
        return job

    @app.get("/jobs", include_in_schema=False, response_class=HTMLResponse)
    def jobs(request: Request) -> Response:
        ctx = _context(request, "jobs", jobs=store.newest())
        return templates.TemplateResponse(request, "jobs.html", ctx)

    @app.get("/jobs/{job_id}", include_in_schema=False, response_class=HTMLResponse)
    def job_page(request: Request, job_id: str) -> Response:
        job = get(job_id)
        result = store.result(job_id) if job.status == "done" else None
        ctx = _context(
            request,
            job.kind,
            job=job,
            result=result,
            figures=_result_figures(job.kind, result),
            values=job.params,
            final=job.status in FINAL,
        )
        return templates.TemplateResponse(request, "job.html", ctx)

    @app.get("/jobs/{job_id}/progress", include_in_schema=False, response_class=HTMLResponse)
    def job_progress(request: Request, job_id: str) -> Response:
        job = get(job_id)
        headers = {"HX-Refresh": "true"} if job.status in FINAL else {}
        ctx = {"request": request, "job": job}
        return templates.TemplateResponse(request, "_progress.html", ctx, headers=headers)

    @app.post("/jobs/{job_id}/rerun", include_in_schema=False)
    def job_rerun(job_id: str) -> Response:
        job = get(job_id)
        if job.status not in FINAL:
            raise HTTPException(409, f"the job is still {job.status}")
        new = app.state.runner.submit(job.kind, job.params, rerun_of=job.id)
        return RedirectResponse(f"/jobs/{new}", status_code=303)

    @app.post("/jobs/{job_id}/cancel", include_in_schema=False)
    def job_cancel(job_id: str) -> Response:
        get(job_id)
        app.state.runner.cancel(job_id)
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)

    @app.get("/jobs/{job_id}/json", include_in_schema=False, response_class=HTMLResponse)
    def job_json(request: Request, job_id: str) -> Response:
        return RedirectResponse(f"/api/jobs/{job_id}/result", status_code=307)

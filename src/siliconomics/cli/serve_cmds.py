"""serve: the HTTP API and the web app (docs/WEB.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ..errors import SiliconomicsError
from .common import app, err
from .inputs import writable_path

INSTALL_HINT = (
    "'siliconomics serve' needs the web extra, which is not installed: "
    "pip install 'siliconomics[web]' (from a checkout: pip install -e '.[web]')"
)


@app.command("serve")
def serve_cmd(
    host: Annotated[
        str, typer.Option(help="address to bind; beyond localhost a token is required")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            help="bearer token every request must carry (default: $SILICONOMICS_TOKEN); "
            "required when --host is not localhost"
        ),
    ] = None,
    db: Annotated[
        Path, typer.Option(help="SQLite file of jobs and results (created when missing)")
    ] = Path("siliconomics-web.sqlite3"),
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(help="allow browser calls from this origin (repeat); none by default"),
    ] = None,
    max_running_jobs: Annotated[
        int, typer.Option(min=1, max=64, help="jobs run at once, each in its own process")
    ] = 2,
) -> None:
    """Serve the HTTP API (/api, OpenAPI at /api/openapi.json) and the web app: compare,
    estimate, plan, TCO and validation pages; long work runs as jobs kept in --db."""
    try:
        import uvicorn

        from ..web import Limits, Settings, create_app
    except ImportError:
        raise SiliconomicsError(INSTALL_HINT) from None
    writable_path(db, "--db")
    settings = Settings(
        host=host,
        port=port,
        token=token or os.environ.get("SILICONOMICS_TOKEN") or None,
        db_path=db,
        cors_origins=tuple(cors_origin or ()),
        limits=Limits(max_running_jobs=max_running_jobs),
    )
    web_app = create_app(settings)
    shown = f"[{host}]" if ":" in host else host
    err.print(f"siliconomics web app on http://{shown}:{port}/ (Ctrl-C stops)", highlight=False)
    uvicorn.run(web_app, host=host, port=port, log_level="warning")

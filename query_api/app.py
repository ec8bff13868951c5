"""FastAPI application factory: `create_app(store, ready)` builds the API; importing starts nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from collector import __version__, receive_gati
from collector.ingest import Ingestor
from collector.settings import Settings
from collector.store import Store
from query_api import agents, events, metrics, runs, sessions, sql_endpoint
from query_api.models import Health, Root
from query_api.sql_endpoint import SqlLimits

log = logging.getLogger("agent_collector.api")


def create_app(
    store: Store,
    ready: Callable[[], bool] = lambda: True,
    *,
    cors_origins: Sequence[str] = (),
    max_request_bytes: int = Settings.max_request_bytes,
    sql_limits: SqlLimits | None = None,
) -> FastAPI:
    """The read API and the GATI shim over `store`. Turns off DuckDB's external access for the
    store's database (see `query_api.sql_endpoint`)."""
    app = FastAPI(
        title="agent-collector",
        version=__version__,
        description="Read API over AI-agent traces ingested by agent-collector (GATI-compatible), "
        "and the GATI SDK ingest endpoint. Times are ISO 8601 UTC, durations ms, costs USD.",
    )
    app.state.store = store
    app.state.ready = ready
    app.state.ingestor = Ingestor(store)
    app.state.max_request_bytes = max_request_bytes
    app.state.sql_limits = sql_limits or SqlLimits()
    sql_endpoint.disable_external_access(store)

    if cors_origins:
        wildcard = "*" in cors_origins
        app.add_middleware(
            CORSMiddleware,
            allow_origins=["*"] if wildcard else list(cors_origins),
            allow_credentials=not wildcard,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, 500)

    @app.get("/", response_model=Root, tags=["health"])
    def root():
        return {"name": "agent-collector", "version": __version__, "status": "running", "docs": "/docs"}

    @app.get("/health", response_model=Health, tags=["health"], responses={503: {"description": "Starting"}})
    def health():
        if not ready():
            return JSONResponse({"status": "starting", "database": "connected", "version": __version__}, 503)
        return {"status": "healthy", "database": "connected", "version": __version__}

    for module in (receive_gati, agents, runs, events, sessions, metrics, sql_endpoint):
        app.include_router(module.router)
    return app

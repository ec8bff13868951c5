"""FastAPI application factory: `create_app(store, ready)` builds the API; importing starts nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import Scope

from collector import __version__, receive_gati
from collector.auth import NO_KEYS, ApiKeys
from collector.http_guard import HttpGuard
from collector.ingest import Ingestor
from collector.rate_limit import RateLimiter
from collector.request_id import RequestIdMiddleware
from collector.settings import Settings
from collector.store import Store
from query_api import agents, events, metrics, runs, sessions, sql_endpoint
from query_api.middleware import InternalErrors, SecurityHeaders
from query_api.models import Health, Root
from query_api.sql_endpoint import SqlLimits

OPEN_PATHS = ("/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")


def create_app(
    store: Store,
    ready: Callable[[], bool] = lambda: True,
    *,
    cors_origins: Sequence[str] = (),
    max_request_bytes: int = Settings.max_request_bytes,
    max_header_bytes: int = Settings.max_header_bytes,
    sql_limits: SqlLimits | None = None,
    ingestor: Ingestor | None = None,
    api_keys: ApiKeys = NO_KEYS,
    ingest_limiter: RateLimiter | None = None,
    query_limiter: RateLimiter | None = None,
) -> FastAPI:
    """The read API and the GATI shim over `store`. Turns off file access for analysts' SQL at once
    (database-wide on the embedded file; see `query_api.sql_endpoint`). Pass the receivers' `ingestor` so the shim
    shares their backpressure bound."""
    app = FastAPI(
        title="agent-collector",
        version=__version__,
        description="Read API over AI-agent traces ingested by agent-collector (GATI-compatible), "
        "and the GATI SDK ingest endpoint. Times are ISO 8601 UTC, durations ms, costs USD.",
    )
    app.state.store = store
    app.state.ready = ready
    app.state.ingestor = ingestor or Ingestor(store)
    app.state.max_request_bytes = max_request_bytes
    app.state.sql_limits = sql_limits or SqlLimits()
    sql_endpoint.disable_external_access(store)

    # The last middleware added runs first: request id, security headers, the catch-all for errors,
    # CORS (so a browser's preflight needs no key), then key and rate limit, then the routes.
    def limiter_for(scope: Scope) -> RateLimiter | None:
        return ingest_limiter if scope["method"] == "POST" and scope["path"] == "/api/events" else query_limiter

    app.add_middleware(HttpGuard, keys=api_keys, limiter_for=limiter_for, reject=_json_error, open_paths=OPEN_PATHS,
                       max_head_bytes=max_header_bytes)
    if cors_origins:
        wildcard = "*" in cors_origins
        app.add_middleware(
            CORSMiddleware,
            allow_origins=["*"] if wildcard else list(cors_origins),
            allow_credentials=not wildcard,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )

    app.add_middleware(InternalErrors)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestIdMiddleware)

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


def _json_error(request: Request, status: int, message: str, headers: dict[str, str]) -> JSONResponse:
    return JSONResponse({"detail": message}, status, headers=headers)

"""FastAPI application factory: `create_app(store, ready)` builds the API; importing starts nothing."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from collector import __version__
from collector.store import Store
from query_api import runs


def create_app(store: Store, ready: Callable[[], bool] = lambda: True) -> FastAPI:
    app = FastAPI(
        title="agent-collector",
        version=__version__,
        description="Read API over AI-agent traces ingested by agent-collector (GATI-compatible).",
    )
    app.state.store = store
    app.state.ready = ready

    @app.get("/health", tags=["health"])
    def health():
        from fastapi.responses import JSONResponse

        if not ready():
            return JSONResponse({"status": "starting", "database": "connected", "version": __version__}, 503)
        return {"status": "healthy", "database": "connected", "version": __version__}

    app.include_router(runs.router)
    return app

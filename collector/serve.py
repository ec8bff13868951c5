"""`serve(settings)`: one process running the OTLP/gRPC, OTLP/HTTP and API listeners over one store.

SIGTERM or SIGINT drains: listeners stop taking requests, in-flight exports finish, every queued
span is committed and acknowledged, the database is checkpointed, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading

import duckdb
import uvicorn

from collector.ingest import Ingestor
from collector.receive_events_grpc import add_to_server as add_events_service
from collector.receive_grpc import build_server
from collector.receive_http import create_otlp_http_app
from collector.settings import Settings
from collector.store import Store
from query_api.app import create_app

log = logging.getLogger("agent_collector")


class StartupError(RuntimeError):
    pass


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `serve`, which owns the shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def open_store(settings: Settings) -> Store:
    try:
        return Store(
            settings.db,
            max_queue_rows=settings.max_queue_spans,
            max_group_rows=settings.max_group_spans,
            checkpoint_threshold=settings.checkpoint_threshold,
        )
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise StartupError(
                f"database {settings.db} is locked by another process (is another collector running?): {exc}"
            ) from None
        raise StartupError(f"cannot open database {settings.db}: {exc}") from None
    except duckdb.Error as exc:
        raise StartupError(f"cannot open database {settings.db} (left untouched): {exc}") from None


def serve(settings: Settings) -> int:
    # Many gRPC threads map spans under the GIL; a short switch interval lets the writer thread,
    # which needs the GIL briefly between DuckDB calls, get it back without waiting 5 ms each time.
    sys.setswitchinterval(0.0005)
    store = open_store(settings)
    store.start()
    ingestor = Ingestor(store)
    ready = threading.Event()
    try:
        grpc_server, grpc_port = build_server(
            ingestor, settings.host, settings.grpc_port,
            max_message_bytes=settings.max_request_bytes, workers=settings.grpc_workers,
            extra_servicers=[add_events_service(ingestor)],
        )
    except OSError as exc:
        store.close()
        raise StartupError(str(exc)) from None
    grpc_server.start()
    log.info("OTLP/gRPC listening on %s:%d", settings.host, grpc_port)
    try:
        asyncio.run(_serve_http(settings, ingestor, store, ready, grpc_server))
    finally:
        grpc_server.stop(grace=30).wait()
        store.close()
        log.info("drained and closed %s", settings.db)
    return 0


async def _serve_http(settings: Settings, ingestor: Ingestor, store: Store, ready: threading.Event,
                      grpc_server) -> None:
    common = dict(host=settings.host, log_config=None, log_level="warning", access_log=False, lifespan="off",
                  timeout_graceful_shutdown=30)
    otlp = _Server(uvicorn.Config(create_otlp_http_app(ingestor, settings.max_request_bytes),
                                  port=settings.http_port, **common))
    api_app = create_app(store, ready.is_set, cors_origins=settings.cors_origins,
                         max_request_bytes=settings.max_request_bytes)
    api = _Server(uvicorn.Config(api_app, port=settings.api_port, **common))
    servers = (otlp, api)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tasks = [asyncio.create_task(server.serve()) for server in servers]
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            for server in servers:
                server.should_exit = True
            await asyncio.gather(*tasks, return_exceptions=True)
            raise StartupError("an HTTP listener failed to start (port in use?); see the log above")
        await asyncio.sleep(0.02)
    log.info("OTLP/HTTP listening on http://%s:%d/v1/traces", settings.host, settings.http_port)
    log.info("read API listening on http://%s:%d (docs at /docs)", settings.host, settings.api_port)
    ready.set()
    await stop.wait()
    log.info("shutting down: draining queued spans")
    ready.clear()
    grpc_server.stop(grace=30)
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)

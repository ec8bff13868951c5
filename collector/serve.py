"""`serve(settings)`: one process running the OTLP/gRPC, OTLP/HTTP and API listeners over one store.

SIGTERM or SIGINT drains: listeners stop taking requests, in-flight exports finish, every queued
span is committed and acknowledged, the database is checkpointed, and the process exits 0.
Every listener shares one `Access` (API keys, rate limiters) and, when configured, one TLS
certificate; the TLS files are checked before the database is opened, so a bad pair fails fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys
import threading
from pathlib import Path
from typing import NamedTuple

import duckdb
import uvicorn
from starlette.applications import Starlette

from collector.auth import ApiKeys
from collector.grpc_guard import GrpcGuard
from collector.http_protocol import protocol_with_deadline
from collector.ingest import Ingestor
from collector.lake import LakeBackend, LakeError
from collector.maintenance import Maintenance, MaintenancePolicy
from collector.map_otlp import Limits
from collector.rate_limit import RateLimiter
from collector.receive_events_grpc import add_to_server as add_events_service
from collector.receive_grpc import build_server
from collector.receive_http import create_otlp_http_app
from collector.settings import Settings
from collector.store import Store
from query_api.app import create_app

log = logging.getLogger("agent_collector")


class StartupError(RuntimeError):
    pass


class Access(NamedTuple):
    keys: ApiKeys
    ingest: RateLimiter | None
    query: RateLimiter | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        def limiter(rate: float) -> RateLimiter | None:
            return RateLimiter(rate) if rate else None

        return cls(ApiKeys(settings.api_keys), limiter(settings.ingest_rate_limit), limiter(settings.query_rate_limit))


def read_tls(settings: Settings) -> tuple[bytes, bytes] | None:
    """(certificate chain PEM, private key PEM), checked to be a matching pair; None for plaintext."""
    if not settings.tls_cert and not settings.tls_key:
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise StartupError("TLS needs both --tls-cert and --tls-key (AGENT_COLLECTOR_TLS_CERT / _TLS_KEY)")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(settings.tls_cert, settings.tls_key)
        return Path(settings.tls_cert).read_bytes(), Path(settings.tls_key).read_bytes()
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"cannot use TLS certificate {settings.tls_cert} with key {settings.tls_key}: {exc}") from None


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `serve`, which owns the shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def open_store(settings: Settings) -> Store:
    if settings.role == "api" and settings.store != "ducklake":
        raise StartupError("--role api is a read-only replica of a lake: it needs --store ducklake "
                           "(an embedded DuckDB file has exactly one process)")
    if settings.store == "ducklake":
        return _open_lake(settings)
    try:
        return Store(
            settings.db,
            max_queue_rows=settings.max_queue_spans,
            max_group_rows=settings.max_group_spans,
            checkpoint_threshold=settings.checkpoint_threshold,
        )
    except duckdb.IOException as exc:
        if "could not set lock" in str(exc).lower():  # not just "lock": a corrupt block's message says "block"
            raise StartupError(
                f"database {settings.db} is locked by another process (is another collector running?): {exc}"
            ) from None
        raise StartupError(f"cannot open database {settings.db}: {exc}") from None
    except duckdb.Error as exc:
        raise StartupError(f"cannot open database {settings.db} (left untouched): {exc}") from None


def _open_lake(settings: Settings) -> Store:
    if not settings.catalog:
        raise StartupError("--store ducklake needs --catalog (AGENT_COLLECTOR_CATALOG), "
                           "e.g. 'postgres:dbname=agents host=127.0.0.1 user=collector'")
    backend = LakeBackend(settings.catalog, settings.data_path, writable=settings.role == "all")
    try:
        return Store(backend=backend, max_queue_rows=settings.max_queue_spans,
                     max_group_rows=settings.max_group_spans)
    except (LakeError, duckdb.Error) as exc:
        raise StartupError(str(exc)) from None


def limit_memory(store: Store, limit: str) -> None:
    try:
        with store.cursor() as cursor:
            cursor.execute("SET memory_limit = $1", [limit])
    except duckdb.Error as exc:
        store.close()
        raise StartupError(f"AGENT_COLLECTOR_MEMORY_LIMIT={limit!r}: {exc}") from None


def start_maintenance(settings: Settings, store: Store) -> Maintenance | None:
    """Every writer replica of a lake takes part; the catalog's lock lets one run each cycle."""
    if settings.store != "ducklake" or not store.writable or not settings.maintenance_interval:
        return None
    policy = MaintenancePolicy(settings.maintenance_interval, settings.retention_days, settings.snapshot_retention)
    locks = store.backend.locks
    if locks is None:
        raise StartupError(f"{store.path}: the lake's catalog locks are not open, so maintenance cannot run")
    maintenance = Maintenance(store.cursor(), locks, policy)
    maintenance.start()
    return maintenance


def serve(settings: Settings) -> int:
    # Many gRPC threads map spans under the GIL; a short switch interval lets the writer thread,
    # which needs the GIL briefly between DuckDB calls, get it back without waiting 5 ms each time.
    sys.setswitchinterval(0.0005)
    if settings.max_attribute_chars < 64:
        raise StartupError("AGENT_COLLECTOR_MAX_ATTRIBUTE_CHARS must be at least 64: shorter cuts would cut "
                           "the collector's own markers and field names")
    tls = read_tls(settings)
    access = Access.from_settings(settings)
    store = open_store(settings)
    if settings.memory_limit:
        limit_memory(store, settings.memory_limit)
    store.start()
    ingestor = Ingestor(store, max_queue_bytes=settings.max_queue_bytes,
                        limits=Limits(settings.max_attributes, settings.max_attribute_chars))
    ready = threading.Event()
    grpc_server = None
    if store.writable:
        try:
            grpc_server, grpc_port = build_server(
                ingestor, settings.host, settings.grpc_port,
                max_message_bytes=settings.max_request_bytes, workers=settings.grpc_workers,
                extra_servicers=[add_events_service(ingestor)],
                interceptors=[GrpcGuard(access.keys, access.ingest)], tls=tls,
            )
        except OSError as exc:
            store.close()
            raise StartupError(str(exc)) from None
        grpc_server.start()
        log.info("OTLP/gRPC listening on %s:%d", settings.host, grpc_port)
    else:
        log.info("read-only API replica of %s: no OTLP listeners", store.path)
    maintenance = start_maintenance(settings, store)
    try:
        asyncio.run(_serve_http(settings, ingestor, store, ready, grpc_server, access))
    finally:
        if grpc_server is not None:
            grpc_server.stop(grace=30).wait()
        if maintenance is not None:
            maintenance.stop()
        store.close()
        log.info("drained and closed %s", store.path)
    return 0


async def _serve_http(settings: Settings, ingestor: Ingestor, store: Store, ready: threading.Event,
                      grpc_server, access: Access) -> None:
    http = protocol_with_deadline(settings.request_timeout)

    def config(app: Starlette, port: int) -> uvicorn.Config:
        return uvicorn.Config(
            app, port=port, host=settings.host, log_config=None, log_level="warning", access_log=False,
            lifespan="off", timeout_graceful_shutdown=30, http=http,
            h11_max_incomplete_event_size=settings.max_header_bytes,
            ssl_certfile=settings.tls_cert or None, ssl_keyfile=settings.tls_key or None,
        )

    api_app = create_app(store, ready.is_set, cors_origins=settings.cors_origins,
                         max_request_bytes=settings.max_request_bytes, max_header_bytes=settings.max_header_bytes,
                         ingestor=ingestor, api_keys=access.keys,
                         ingest_limiter=access.ingest, query_limiter=access.query)
    api = _Server(config(api_app, settings.api_port))
    servers: tuple[_Server, ...] = (api,)
    if grpc_server is not None:
        otlp_app = create_otlp_http_app(ingestor, settings.max_request_bytes, keys=access.keys, limiter=access.ingest,
                                        max_header_bytes=settings.max_header_bytes)
        otlp = _Server(config(otlp_app, settings.http_port))
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
    scheme = "https" if settings.tls_cert else "http"
    if grpc_server is not None:
        log.info("OTLP/HTTP listening on %s://%s:%d/v1/traces", scheme, settings.host, settings.http_port)
    log.info("read API listening on %s://%s:%d (docs at /docs)", scheme, settings.host, settings.api_port)
    ready.set()
    await stop.wait()
    log.info("shutting down: draining queued spans")
    ready.clear()
    if grpc_server is not None:
        grpc_server.stop(grace=30)
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)

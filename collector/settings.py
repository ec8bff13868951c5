"""All settings in one table: name, environment variable, default, type, help.

Read once at the entry point (`Settings.load`); a command-line flag beats the environment
variable, which beats the default. README's configuration table is checked against this one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    kind: type
    help: str

    @property
    def env(self) -> str:
        return "AGENT_COLLECTOR_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS = (
    Setting("db", "./agent-collector.duckdb", str, "DuckDB database file (created if missing)."),
    Setting("host", "127.0.0.1", str, "Address every listener binds to."),
    Setting("grpc_port", 4317, int, "OTLP/gRPC port (TraceService/Export)."),
    Setting("http_port", 4318, int, "OTLP/HTTP port (/v1/traces, /v1/metrics, /v1/logs)."),
    Setting("api_port", 8000, int, "Read API and GATI shim port (FastAPI)."),
    Setting("max_request_bytes", 64 * 1024 * 1024, int,
            "Largest request accepted, on the wire and after decompression (bytes)."),
    Setting("max_queue_spans", 200_000, int,
            "Spans waiting for commit before ingest answers UNAVAILABLE / 503 (backpressure)."),
    Setting("max_group_spans", 50_000, int, "Most spans the writer commits in one transaction."),
    Setting("checkpoint_threshold", "256MB", str,
            "DuckDB WAL size that triggers a checkpoint; larger means fewer re-compressions at ingest."),
    Setting("grpc_workers", 32, int,
            "Threads serving gRPC calls. Each holds its call until the spans are committed, so this many "
            "concurrent calls get an immediate answer (UNAVAILABLE when the queue is full); more wait in gRPC."),
    Setting("log_level", "INFO", str, "Python logging level."),
    Setting("cors_origins", (), tuple,
            "Comma-separated browser origins allowed to call the read API (CORS), e.g. "
            "http://localhost:3000; empty allows none; * allows any origin, without credentials."),
    Setting("max_queue_bytes", 128 * 1024 * 1024, int,
            "Approximate bytes of spans in flight (mapped, queued or committing) before ingest answers "
            "UNAVAILABLE / 503 (backpressure)."),
    Setting("max_attributes", 1024, int,
            "Attributes kept per span, span event, link, resource and scope, and items per array or map value; "
            "the rest are dropped and counted in dropped_attributes_count."),
    Setting("max_attribute_chars", 1024 * 1024, int,
            "Longest attribute key or string value kept (characters, at least 64); longer ones are cut and "
            "end in '…[truncated N chars]'."),
    Setting("api_keys", frozenset(), frozenset,
            "Comma-separated API keys; when set, OTLP gRPC and HTTP, the GATI shim and the read API require "
            "'Authorization: Bearer <key>' (or 'X-API-Key: <key>'); /health and /docs stay open."),
    Setting("tls_cert", "", str, "PEM certificate file; with tls_key set too, every listener serves TLS only."),
    Setting("tls_key", "", str, "PEM private key file for tls_cert."),
    Setting("ingest_rate_limit", 0.0, float,
            "Ingest requests per second per API key (per client address when keys are off), with bursts of one "
            "second's worth; above it 429 / RESOURCE_EXHAUSTED with a retry delay. 0 means unlimited."),
    Setting("query_rate_limit", 0.0, float,
            "Read API requests per second per API key (or client address); as ingest_rate_limit. 0 means unlimited."),
    Setting("request_timeout", 30.0, float,
            "Seconds an HTTP client has to send a request's headers and body; slower connections are closed."),
    Setting("max_header_bytes", 32 * 1024, int,
            "Largest HTTP request head (request line and headers, bytes); a larger one gets 431 (or 400 while "
            "it is still arriving)."),
    Setting("memory_limit", "", str,
            "DuckDB's memory limit, e.g. 512MB (its buffer pool caches what it wrote and read); empty keeps "
            "DuckDB's default of 80% of RAM. With max_queue_bytes it bounds the collector's memory."),
    Setting("store", "duckdb", str,
            "Storage: duckdb (one embedded file, --db) or ducklake (Parquet files and a catalog shared by "
            "several replicas: --catalog, --data-path)."),
    Setting("catalog", "", str,
            "DuckLake catalog, e.g. 'postgres:dbname=agents host=10.0.0.5 user=collector' (libpq keywords; "
            "the password from PGPASSWORD or ~/.pgpass). A DuckDB file path works for one process."),
    Setting("data_path", "", str,
            "Directory every replica sees (shared disk) where DuckLake writes Parquet files; needed by "
            "init-store, then remembered by the catalog."),
    Setting("role", "all", str,
            "all: OTLP receivers, GATI shim and read API; api: read-only API replica of a lake (no OTLP "
            "listeners, no writes, POST /api/events answers 503)."),
    Setting("maintenance_interval", 300.0, float,
            "Seconds between lake maintenance cycles (duplicate removal, run folding, retention, file "
            "compaction, snapshot expiry), run by one replica at a time; 0 turns it off on this replica."),
    Setting("retention_days", 0, int,
            "Lake: maintenance deletes runs that ended more than this many days ago; 0 keeps everything."),
    Setting("snapshot_retention", 3600, int,
            "Lake: seconds snapshots (time travel) and replaced Parquet files are kept before maintenance "
            "removes them; readers older than this may fail."),
)

CHOICES = {"store": ("duckdb", "ducklake"), "role": ("all", "api")}


@dataclass(frozen=True)
class Settings:
    db: str = "./agent-collector.duckdb"
    host: str = "127.0.0.1"
    grpc_port: int = 4317
    http_port: int = 4318
    api_port: int = 8000
    max_request_bytes: int = 64 * 1024 * 1024
    max_queue_spans: int = 200_000
    max_group_spans: int = 50_000
    checkpoint_threshold: str = "256MB"
    grpc_workers: int = 32
    log_level: str = "INFO"
    cors_origins: tuple[str, ...] = ()
    max_queue_bytes: int = 128 * 1024 * 1024
    max_attributes: int = 1024
    max_attribute_chars: int = 1024 * 1024
    api_keys: frozenset[str] = field(default=frozenset(), repr=False)
    tls_cert: str = ""
    tls_key: str = ""
    ingest_rate_limit: float = 0.0
    query_rate_limit: float = 0.0
    request_timeout: float = 30.0
    max_header_bytes: int = 32 * 1024
    memory_limit: str = ""
    store: str = "duckdb"
    catalog: str = ""
    data_path: str = ""
    role: str = "all"
    maintenance_interval: float = 300.0
    retention_days: int = 0
    snapshot_retention: int = 3600

    @classmethod
    def load(cls, flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        flags = flags or {}
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            if flags.get(setting.name) is not None:
                values[setting.name] = _convert(setting, flags[setting.name], setting.flag)
            elif setting.env in environ:
                values[setting.name] = _convert(setting, environ[setting.env], setting.env)
            else:
                values[setting.name] = setting.default
        return cls(**values)


def _convert(setting: Setting, raw: Any, source: str) -> Any:
    if setting.kind is tuple:
        return _origins(str(raw), source)
    if setting.kind is frozenset:
        return frozenset(part.strip() for part in str(raw).split(",") if part.strip())
    if setting.kind is float:
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{source}={raw!r}: expected a number") from None
        if not 0 <= number < float("inf"):
            raise SettingsError(f"{source}={raw!r}: out of range")
        return number
    if setting.kind is int:
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{source}={raw!r}: expected a whole number") from None
        if value < 0 or (setting.name.endswith("_port") and value > 65535):
            raise SettingsError(f"{source}={raw!r}: out of range")
        return value
    text = str(raw)
    if not text:
        raise SettingsError(f"{source} must not be empty")
    if setting.name in CHOICES and text not in CHOICES[setting.name]:
        raise SettingsError(f"{source}={raw!r}: expected one of {', '.join(CHOICES[setting.name])}")
    return text


def _origins(raw: str, source: str) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s?#]+", origin):
            raise SettingsError(f"{source}={raw!r}: {origin!r} is not an origin like http://host:port or *")
    return origins


assert [s.name for s in SETTINGS] == [f.name for f in fields(Settings)]
assert all(s.default == f.default for s, f in zip(SETTINGS, fields(Settings)))

"""All settings in one table: name, environment variable, default, type, help.

Read once at the entry point (`Settings.load`); a command-line flag beats the environment
variable, which beats the default. README's configuration table is checked against this one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
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
    Setting("grpc_workers", 8, int, "Threads serving gRPC calls."),
    Setting("log_level", "INFO", str, "Python logging level."),
    Setting("cors_origins", (), tuple,
            "Comma-separated browser origins allowed to call the read API (CORS), e.g. "
            "http://localhost:3000; empty allows none; * allows any origin, without credentials."),
)


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
    grpc_workers: int = 8
    log_level: str = "INFO"
    cors_origins: tuple[str, ...] = ()

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
    if setting.kind is int:
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{source}={raw!r}: expected a whole number") from None
        if value < 0 or (setting.name.endswith("_port") and value > 65535):
            raise SettingsError(f"{source}={raw!r}: out of range")
        return value
    value = str(raw)
    if not value:
        raise SettingsError(f"{source} must not be empty")
    return value


def _origins(raw: str, source: str) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s?#]+", origin):
            raise SettingsError(f"{source}={raw!r}: {origin!r} is not an origin like http://host:port or *")
    return origins


assert [s.name for s in SETTINGS] == [f.name for f in fields(Settings)]
assert all(s.default == f.default for s, f in zip(SETTINGS, fields(Settings)))

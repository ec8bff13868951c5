"""The one owner of the database and its write path, over either backend: the embedded DuckDB file
(`EmbeddedBackend`, the default) or a DuckLake shared by several replicas (`collector.lake`).

Contract:
- `submit(rows)` may be called from any thread. It converts the rows to Arrow in the calling
  thread (so the single writer does no per-row Python work) and never blocks on the database: it returns a
  `Future` that resolves to a `WriteResult` only after the rows are committed (DuckDB syncs its
  WAL on commit), or raises `Overloaded` at once when the queue is full.
- Exactly one writer thread touches the write connection. It drains the queue, writes everything
  it took in one transaction (group commit), and resolves every future of that group together.
- Writes are idempotent: an event whose (run_id, event_id) is already stored, or appears twice in
  a group, is stored once and counted once in its run. This does not rely on keys or indexes.
- `cursor()` gives a read connection for the calling thread; readers never block the writer.
  `sql_cursor()` gives one for analysts' SQL, which cannot reach files or change settings.
- A store on a read-only backend (an API replica of a lake) has no writer: `submit` raises
  `StoreClosed`.
- A commit that loses to a concurrent replica's (DuckLake) is retried as a whole, dedupe included.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from collector.rows import EventRow

if TYPE_CHECKING:
    from collector.catalog_locks import CatalogLocks

log = logging.getLogger("agent_collector.store")

_STR = pa.string()
_I64 = pa.int64()
_U64 = pa.uint64()
_ARROW_TYPES = {
    "start_ns": _I64, "end_ns": _I64, "duration_ns": _I64, "received_ns": _I64,
    "tokens_in": _I64, "tokens_out": _I64, "tokens_total": _I64, "cache_read_tokens": _I64,
    "cache_write_tokens": _I64, "reasoning_tokens": _I64, "cost": pa.float64(),
    "flags": _U64, "dropped_attributes_count": _U64, "dropped_events_count": _U64,
    "dropped_links_count": _U64,
}
ARROW_SCHEMA = pa.schema([(name, _ARROW_TYPES.get(name, _STR)) for name in EventRow._fields])


class Overloaded(Exception):
    """The ingest queue is full; the client should retry later."""


class StoreClosed(Exception):
    pass


@dataclass(frozen=True)
class WriteResult:
    stored: int
    duplicates: int


@dataclass
class _Pending:
    table: pa.Table
    future: Future


def schema_sql(backend: str = "duckdb") -> str:
    """schema.sql's parts for `backend` (duckdb | ducklake): those marked `-- [both]` and its own."""
    text = resources.files("collector").joinpath("schema.sql").read_text()
    parts = re.split(r"^-- \[(both|duckdb|ducklake)\]\n", text, flags=re.MULTILINE)
    return "".join(body for tag, body in zip(parts[1::2], parts[2::2]) if tag in ("both", backend))


class Backend(Protocol):
    """Where the store's rows go. `connect` is called once; the writer thread calls `write_gate`,
    `record_runs` and `is_conflict`; any thread calls `cursor` and `sql_connection`."""

    kind: str
    name: str
    writable: bool
    locks: CatalogLocks | None  # the lake's catalog locks once connected; None for a single-file store

    def connect(self) -> duckdb.DuckDBPyConnection: ...
    def cursor(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection: ...
    def write_gate(self) -> contextlib.AbstractContextManager[None]: ...
    def is_conflict(self, exc: BaseException) -> bool: ...
    def record_runs(self, con: duckdb.DuckDBPyConnection, delta_select: str, now: int) -> None: ...
    def sql_connection(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection: ...
    def close(self, con: duckdb.DuckDBPyConnection) -> None: ...


class EmbeddedBackend:
    """One DuckDB file, written by this process only; `runs` is a table updated in place."""

    kind = "duckdb"
    writable = True
    locks: CatalogLocks | None = None

    def __init__(self, path: str | Path, checkpoint_threshold: str = "256MB") -> None:
        self.path = str(path)
        self.name = self.path
        self.checkpoint_threshold = checkpoint_threshold
        self._sql_lock = threading.Lock()
        self._locked_down = False

    def connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(self.path, config={"checkpoint_threshold": self.checkpoint_threshold})
        con.execute(schema_sql("duckdb"))
        return con

    def cursor(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        return con.cursor()

    def write_gate(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    @staticmethod
    def is_conflict(exc: BaseException) -> bool:
        return False

    def record_runs(self, con: duckdb.DuckDBPyConnection, delta_select: str, now: int) -> None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE delta AS {delta_select}")
        con.execute(_RUNS_UPDATE_SQL, [now])
        con.execute(_RUNS_INSERT_SQL, [now])

    def sql_connection(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """In DuckDB 1.5 `enable_external_access` can be turned off but never back on while the
        database is open, and only database-wide; the collector needs no external access (the
        writer scans registered Arrow tables), so it is turned off for the whole database, and
        the configuration is then locked so no statement can change a setting."""
        with self._sql_lock:
            if not self._locked_down:
                con.execute("SET enable_external_access = false")
                con.execute("SET lock_configuration = true")
                self._locked_down = True
        return con.cursor()

    def close(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()


class Store:
    def __init__(
        self,
        path: str | Path | None = None,
        *,
        backend: Backend | None = None,
        max_queue_rows: int = 200_000,
        max_group_rows: int = 50_000,
        checkpoint_threshold: str = "256MB",
        max_conflict_retries: int = 20,
    ) -> None:
        if backend is None:
            if path is None:
                raise ValueError("Store needs a path or a backend")
            backend = EmbeddedBackend(path, checkpoint_threshold)
        self.backend = backend
        self.path = backend.name
        self.writable = backend.writable
        self.max_queue_rows = max_queue_rows
        self.max_group_rows = max_group_rows
        self.max_conflict_retries = max_conflict_retries
        self._con = backend.connect()
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self.stats = {"commits": 0, "stored": 0, "duplicates": 0, "failed_groups": 0, "conflicts": 0,
                      "writer_busy_s": 0.0}

    def start(self) -> None:
        if not self.writable:
            return
        self._thread = threading.Thread(target=self._run, name="duckdb-writer", daemon=True)
        self._thread.start()

    def submit(self, rows: list[EventRow]) -> Future:
        future: Future = Future()
        if not rows:
            future.set_result(WriteResult(0, 0))
            return future
        table = to_arrow(rows)
        with self._cond:
            if self._closing:
                raise StoreClosed("the collector is shutting down")
            if not self.writable:
                raise StoreClosed("this replica serves the read API only (role api); send data to a collector")
            if self._queued_rows and self._queued_rows + len(rows) > self.max_queue_rows:
                raise Overloaded(f"ingest queue full ({self._queued_rows} rows waiting)")
            self._queue.append(_Pending(table, future))
            self._queued_rows += len(rows)
            self._cond.notify()
        return future

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.backend.cursor(self._con)

    def sql_cursor(self) -> duckdb.DuckDBPyConnection:
        return self.backend.sql_connection(self._con)

    def close(self) -> None:
        """Commit everything queued, resolve its futures, checkpoint and close."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        if self.writable:
            log.info("writer: %(stored)d events stored, %(duplicates)d duplicates, %(commits)d commits, "
                     "%(conflicts)d retried after a conflict, %(failed_groups)d failed, busy %(writer_busy_s).1fs",
                     self.stats)
        self.backend.close(self._con)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                group: list[_Pending] = []
                taken = 0
                while self._queue and (not group or taken + self._queue[0].table.num_rows <= self.max_group_rows):
                    pending = self._queue.popleft()
                    group.append(pending)
                    taken += pending.table.num_rows
                self._queued_rows -= taken
            self._commit_group(group)

    def _commit_group(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            stored = self._write_retrying(group)
        except Exception as exc:
            log.exception("commit of %d requests failed", len(group))
            self.stats["failed_groups"] += 1
            for pending in group:
                pending.future.set_exception(exc)
            return
        self.stats["commits"] += 1
        self.stats["writer_busy_s"] += time.perf_counter() - started
        for pending, count in zip(group, stored):
            sent = pending.table.num_rows
            self.stats["stored"] += count
            self.stats["duplicates"] += sent - count
            pending.future.set_result(WriteResult(count, sent - count))

    def _write_retrying(self, group: list[_Pending]) -> list[int]:
        for attempt in range(self.max_conflict_retries + 1):
            try:
                with self.backend.write_gate():
                    return self._write(group)
            except duckdb.Error as exc:
                if not self.backend.is_conflict(exc) or attempt == self.max_conflict_retries:
                    raise
                self.stats["conflicts"] += 1
                log.info("commit lost to a concurrent one, retrying (%d): %s", attempt + 1, exc)
                time.sleep(min(0.01 * 2**attempt, 1.0))
        raise AssertionError("unreachable")

    def _write(self, group: list[_Pending]) -> list[int]:
        """Store the group's new events in one transaction; returns how many each request added."""
        con = self._con
        incoming = pa.concat_tables([pending.table for pending in group])
        stored = [pending.table.num_rows for pending in group]
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("incoming", incoming)
            bounds = pc.min_max(incoming["start_ns"])
            seen = set(con.execute(_SEEN_SQL, [bounds["min"].as_py(), bounds["max"].as_py()]).fetchall())
            keys = pc.binary_join_element_wise(incoming["run_id"], incoming["event_id"], "\x00")
            repeated = incoming.num_rows - pc.count_distinct(keys).as_py()
            if seen or repeated:
                incoming, stored = _drop_duplicates(group, seen)
                con.register("incoming", incoming)
            if incoming.num_rows:
                con.execute("INSERT INTO events BY NAME SELECT * FROM incoming")
                self.backend.record_runs(con, DELTA_SELECT, time.time_ns())
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
        finally:
            con.unregister("incoming")
        return stored


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """A COMMIT that failed (a DuckLake conflict) has already ended the transaction."""
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass


def to_arrow(rows: list[EventRow]) -> pa.Table:
    columns = list(zip(*rows))
    return pa.Table.from_arrays(
        [pa.array(col, type=ARROW_SCHEMA.field(i).type) for i, col in enumerate(columns)], schema=ARROW_SCHEMA
    )


def _drop_duplicates(group: list[_Pending], seen: set[tuple[str, str]]) -> tuple[pa.Table, list[int]]:
    """The rare path: keep rows not stored yet, first occurrence only, counting what each request added."""
    taken: set[tuple[str, str]] = set()
    kept: list[pa.Table] = []
    stored: list[int] = []
    for pending in group:
        keys = zip(pending.table["run_id"].to_pylist(), pending.table["event_id"].to_pylist())
        mask = []
        for key in keys:
            fresh = key not in taken and key not in seen
            if fresh:
                taken.add(key)
            mask.append(fresh)
        kept.append(pending.table.filter(pa.array(mask, type=pa.bool_())))
        stored.append(sum(mask))
    return pa.concat_tables(kept), stored


# Resent spans carry the same start time, so bounding the stored side by the group's start range
# lets DuckDB's zone maps skip almost every stored row group: no index is needed.
_SEEN_SQL = """
SELECT DISTINCT i.run_id, i.event_id FROM incoming i
WHERE EXISTS (
    SELECT 1 FROM events e
    WHERE e.start_ns BETWEEN $1 AND $2 AND e.run_id = i.run_id AND e.event_id = i.event_id
)
"""


# One row per run of the group: what its new events add. The embedded backend applies it to `runs`
# in place; the lake backend appends it to `run_deltas`.
DELTA_SELECT = """
SELECT run_id,
       any_value(agent_name) FILTER (WHERE parent_event_id IS NULL AND agent_name IS NOT NULL) AS root_agent,
       arg_min(agent_name, start_ns) FILTER (WHERE agent_name IS NOT NULL) AS any_agent,
       any_value(service_name) FILTER (WHERE parent_event_id IS NULL AND service_name IS NOT NULL) AS root_service,
       arg_min(service_name, start_ns) FILTER (WHERE service_name IS NOT NULL) AS any_service,
       any_value(source) AS source,
       min(start_ns) AS start_ns,
       max(greatest(start_ns, coalesce(end_ns, start_ns))) AS end_ns,
       coalesce(bool_or(closes_run = 'failed'), false) AS failed,
       coalesce(bool_or(closes_run = 'completed'), false) AS completed,
       count(*) AS event_count,
       count(*) FILTER (WHERE status = 'error') AS error_count,
       coalesce(sum(tokens_in), 0) AS tokens_in,
       coalesce(sum(tokens_out), 0) AS tokens_out,
       coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
       coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens,
       coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
       coalesce(sum(cost), 0) AS total_cost,
       arg_min(session_id, start_ns) FILTER (WHERE session_id IS NOT NULL) AS session_id,
       arg_min(user_id, start_ns) FILTER (WHERE user_id IS NOT NULL) AS user_id,
       arg_min(environment, start_ns) FILTER (WHERE environment IS NOT NULL) AS environment
FROM incoming
GROUP BY run_id
"""

_RUNS_UPDATE_SQL = """
UPDATE runs SET
    agent_attr = coalesce(d.root_agent, runs.agent_attr, d.any_agent),
    service_name = coalesce(d.root_service, runs.service_name, d.any_service),
    agent_name = coalesce(d.root_agent, runs.agent_attr, d.any_agent,
                          d.root_service, runs.service_name, d.any_service, 'unknown'),
    start_ns = least(runs.start_ns, d.start_ns),
    end_ns = greatest(runs.end_ns, d.end_ns),
    status = CASE WHEN d.failed OR runs.status = 'failed' THEN 'failed'
                  WHEN d.completed THEN 'completed' ELSE runs.status END,
    event_count = runs.event_count + d.event_count,
    error_count = runs.error_count + d.error_count,
    tokens_in = runs.tokens_in + d.tokens_in,
    tokens_out = runs.tokens_out + d.tokens_out,
    cache_read_tokens = runs.cache_read_tokens + d.cache_read_tokens,
    cache_write_tokens = runs.cache_write_tokens + d.cache_write_tokens,
    reasoning_tokens = runs.reasoning_tokens + d.reasoning_tokens,
    total_cost = runs.total_cost + d.total_cost,
    session_id = coalesce(runs.session_id, d.session_id),
    user_id = coalesce(runs.user_id, d.user_id),
    environment = coalesce(runs.environment, d.environment),
    updated_ns = $1
FROM delta d
WHERE runs.run_id = d.run_id
"""

_RUNS_INSERT_SQL = """
INSERT INTO runs BY NAME
SELECT d.run_id,
       coalesce(d.root_agent, d.any_agent, d.root_service, d.any_service, 'unknown') AS agent_name,
       coalesce(d.root_agent, d.any_agent) AS agent_attr,
       coalesce(d.root_service, d.any_service) AS service_name,
       d.source, d.start_ns, d.end_ns,
       CASE WHEN d.failed THEN 'failed' WHEN d.completed THEN 'completed' ELSE 'running' END AS status,
       d.event_count, d.error_count, d.tokens_in, d.tokens_out, d.cache_read_tokens,
       d.cache_write_tokens, d.reasoning_tokens, d.total_cost, d.session_id, d.user_id,
       d.environment, $1 AS updated_ns
FROM delta d
WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = d.run_id)
"""

"""Read-only SQL for analysts: `POST /api/sql` runs one SELECT over agents, runs, events, spans.

The guards, and why each is needed:
- DuckDB parses the text first: exactly one statement, of type SELECT, so SET, ATTACH, COPY,
  PRAGMA, INSTALL and friends never run.
- The SELECT runs on its own cursor inside `BEGIN TRANSACTION READ ONLY`: writing fails.
- The SELECT runs on the store's `sql_cursor()`, where file access is off
  (`enable_external_access = false`), so read_csv('/etc/passwd'), glob() and read_text() fail.
  On the embedded file that setting is database-wide (DuckDB 1.5 cannot scope it to a cursor, nor
  turn it back on); the collector needs no external access, so `create_app` turns it off at once.
  On a lake, DuckLake reads Parquet files, so analysts get a second DuckDB instance that attaches
  the lake read-only and may read only the lake's data directory (`collector.lake`).
- Table functions with side effects are refused by name, found in DuckDB's own parse tree
  (`json_serialize_sql`): a SELECT can call them. `postgres_execute` / `postgres_query` run any
  SQL on a catalog's PostgreSQL server, ducklake_* maintenance functions rewrite or delete files,
  and `query` / `query_table` would hide such a call inside a string.
- A timer thread interrupts the cursor at the time limit; rows past the cap are never fetched.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from collector.store import Store
from query_api.models import SqlQuery, SqlResult

router = APIRouter(tags=["sql"])


@dataclass(frozen=True)
class SqlLimits:
    max_rows: int = 10_000
    timeout_s: float = 10.0


_SIDE_EFFECTS = re.compile(r"postgres_.*|ducklake_.*|query|query_table")
_READ_ONLY_LAKE_FUNCTIONS = frozenset({
    "ducklake_snapshots", "ducklake_table_info", "ducklake_list_files", "ducklake_table_changes",
    "ducklake_table_insertions", "ducklake_table_deletions", "ducklake_current_snapshot",
    "ducklake_last_committed_snapshot", "ducklake_settings", "ducklake_options",
})


def disable_external_access(store: Store) -> None:
    """Prepare the analysts' connection now, so that file access is off before any request."""
    store.sql_cursor().close()


@router.post(
    "/api/sql",
    response_model=SqlResult,
    responses={400: {"description": "Not one SELECT, or it failed"}},
    summary="Run one read-only SELECT",
)
def run_sql(query: SqlQuery, request: Request) -> Response:
    limits: SqlLimits = request.app.state.sql_limits
    text = _single_select(query.sql)
    cap = min(query.max_rows or limits.max_rows, limits.max_rows)
    started = time.perf_counter()
    with request.app.state.store.sql_cursor() as cursor:
        _refuse_side_effects(cursor, text)
        cursor.execute("BEGIN TRANSACTION READ ONLY")
        timer = threading.Timer(limits.timeout_s, _interrupt, (cursor,))
        timer.start()
        try:
            relation = cursor.sql(text).limit(cap + 1)
            table = relation.to_arrow_table()
        except duckdb.InterruptException:
            raise HTTPException(400, f"query stopped at the {limits.timeout_s:g} s time limit") from None
        except duckdb.Error as exc:
            raise HTTPException(400, f"{type(exc).__name__}: {exc}") from None
        finally:
            timer.cancel()
            timer.join()
        columns = [{"name": name, "type": str(kind)} for name, kind in zip(relation.columns, relation.types)]
    rows = _rows(table.slice(0, cap))
    body = {
        "columns": columns,
        "rows": rows,
        "row_count": len(rows),
        "truncated": table.num_rows > cap,
        "elapsed_ms": (time.perf_counter() - started) * 1000,
    }
    return Response(orjson.dumps(body, default=_json_default), media_type="application/json")


def _single_select(text: str) -> str:
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise HTTPException(400, f"cannot parse the query: {exc}") from None
    if len(statements) != 1:
        raise HTTPException(400, f"send exactly one statement (got {len(statements)})")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise HTTPException(400, f"only SELECT is allowed (got {kind.name})")
    return statements[0].query


def _refuse_side_effects(cursor: duckdb.DuckDBPyConnection, text: str) -> None:
    row = cursor.execute("SELECT json_serialize_sql($1)", [text]).fetchone()
    if row is None:
        raise RuntimeError("json_serialize_sql returned no row")
    tree = orjson.loads(row[0])
    if tree.get("error"):
        raise HTTPException(400, f"cannot check the query: {tree.get('error_message', 'unsupported')}")
    refused = sorted(
        name for name in _function_names(tree)
        if _SIDE_EFFECTS.fullmatch(name) and name not in _READ_ONLY_LAKE_FUNCTIONS
    )
    if refused:
        raise HTTPException(400, f"only SELECT without side effects is allowed (refused: {', '.join(refused)})")


def _function_names(node: Any) -> set[str]:
    names: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            name = item.get("function_name")
            if isinstance(name, str):
                names.add(name.lower())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return names


def _interrupt(cursor: duckdb.DuckDBPyConnection) -> None:
    try:
        cursor.interrupt()
    except duckdb.Error:
        pass


def _rows(table: pa.Table) -> list[list[Any]]:
    """Times as ISO 8601 UTC text at their own precision (ns columns would not fit a datetime)."""
    columns = []
    for column in table.columns:
        if pa.types.is_timestamp(column.type):
            if column.type.tz is None:
                column = column.cast(pa.timestamp(column.type.unit, "UTC"))
            column = pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
        columns.append(column.to_pylist())
    return [list(row) for row in zip(*columns)]


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and abs(value) < 2**63:
            return int(value)
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)

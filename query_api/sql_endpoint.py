"""Read-only SQL for analysts: `POST /api/sql` runs one SELECT over agents, runs, events, spans.

The guards, and why each is needed:
- DuckDB parses the text first: exactly one statement, of type SELECT, so SET, ATTACH, COPY,
  PRAGMA, INSTALL and friends never run.
- The SELECT runs on its own cursor inside `BEGIN TRANSACTION READ ONLY`: writing fails.
- File access is off for the whole database (`disable_external_access`, called by `create_app`):
  in DuckDB 1.5 `enable_external_access` is a global setting that can be turned off but never back
  on while the database is open, so it cannot be scoped to one cursor. The collector needs no
  external access: the writer scans registered Arrow tables, and DuckDB still reaches its own
  database, WAL and temp files. So read_csv('/etc/passwd'), glob() and read_text() fail.
- A timer thread interrupts the cursor at the time limit; rows past the cap are never fetched.
"""

from __future__ import annotations

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


def disable_external_access(store: Store) -> None:
    with store.cursor() as cursor:
        cursor.execute("SET enable_external_access = false")


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
    with request.app.state.store.cursor() as cursor:
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

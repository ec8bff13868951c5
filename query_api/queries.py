"""Named read queries: each is a `.sql` file in `sql/`, run with bound parameters only."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import duckdb


@cache
def sql(name: str) -> str:
    return resources.files("query_api").joinpath("sql", f"{name}.sql").read_text()


def fetch_all(cursor: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None) -> list[dict]:
    result = cursor.execute(sql(name), params or {})
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row)) for row in result.fetchall()]


def fetch_one(cursor: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None) -> dict | None:
    rows = fetch_all(cursor, name, params)
    return rows[0] if rows else None

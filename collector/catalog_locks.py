"""Locks shared by every replica of one lake: PostgreSQL advisory locks on the catalog database.

- The commit gate: a writer holds it shared for the length of each of its lake transactions;
  maintenance holds it exclusive while it deletes. DuckLake aborts an insert that overlaps a
  concurrent delete on the same table (and the other way round), so without the gate a busy lake
  would keep failing maintenance's deletes and the writers' commits. PostgreSQL queues a new shared
  request behind a waiting exclusive one, so maintenance is not starved.
- Maintenance leadership: one cycle at a time across replicas (`pg_try_advisory_xact_lock`).

Both are transaction-level locks taken through the postgres extension inside a DuckDB transaction,
which pins one PostgreSQL connection until COMMIT: the pool resets a connection's session when it
takes it back (a session-level lock would be lost), and a crashed replica's locks go with its
connection. For a catalog other than PostgreSQL (a DuckDB or SQLite file, one process only)
in-process locks give the same guarantees.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import duckdb

_CLASS = 0x41434C4B  # "ACLK": the advisory-lock namespace of agent-collector
_GATE = 1
_LEADER = 2


class CatalogLocks:
    def shared_gate(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def exclusive_gate(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def leadership(self) -> contextlib.AbstractContextManager[bool]:
        """Yields True when this replica may run a maintenance cycle now; held until the block ends."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class PostgresLocks(CatalogLocks):
    def __init__(self, dsn: str, open_duckdb: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._con = open_duckdb()
        quoted = "'" + dsn.replace("'", "''") + "'"
        self._con.execute(f"ATTACH {quoted} AS pg (TYPE postgres)")

    @contextlib.contextmanager
    def _locked(self, function: str, key: int) -> Iterator[bool]:
        cursor = self._con.cursor()
        try:
            cursor.execute("BEGIN TRANSACTION")
            sql = f"SELECT {function}({_CLASS}, {key})::TEXT"
            row = cursor.execute("SELECT * FROM postgres_query('pg', $1)", [sql]).fetchone()
            if row is None:
                raise RuntimeError(f"{function} returned no row")
            got = row[0]
            try:
                yield got != "false"
            finally:
                cursor.execute("COMMIT")
        finally:
            cursor.close()

    @contextlib.contextmanager
    def shared_gate(self) -> Iterator[None]:
        with self._locked("pg_advisory_xact_lock_shared", _GATE):
            yield

    @contextlib.contextmanager
    def exclusive_gate(self) -> Iterator[None]:
        with self._locked("pg_advisory_xact_lock", _GATE):
            yield

    def leadership(self) -> contextlib.AbstractContextManager[bool]:
        return self._locked("pg_try_advisory_xact_lock", _LEADER)

    def close(self) -> None:
        self._con.close()


class LocalLocks(CatalogLocks):
    """The same contract within one process."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._leader = threading.Lock()

    @contextlib.contextmanager
    def shared_gate(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive_gate(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            self._cond.wait_for(lambda: not self._writer and not self._readers)
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()

    @contextlib.contextmanager
    def leadership(self) -> Iterator[bool]:
        got = self._leader.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                self._leader.release()


def catalog_locks(catalog: str, open_duckdb: Callable[[], duckdb.DuckDBPyConnection]) -> CatalogLocks:
    if catalog.startswith("postgres:"):
        return PostgresLocks(catalog.removeprefix("postgres:"), open_duckdb)
    return LocalLocks()

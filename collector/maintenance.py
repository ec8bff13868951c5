"""Lake maintenance: one cycle at a time across all replicas (the catalog's leadership lock).

A cycle, in order, with its figures logged:
1. Duplicates: two replicas can each store a copy of a span resent between them (each writer's
   anti-join only sees what was committed before its own transaction). Every copy after the first
   is deleted and a negative run delta takes its counts and tokens back out of `runs`.
2. Folding: each commit appended one `run_deltas` row per run; a run's rows become one, so the
   `runs` view aggregates about one row per run.
3. Retention: runs that ended more than `retention_days` ago are deleted with their events.
4. Inlined rows are flushed to Parquet, small adjacent files are merged (sorted by run_id, so
   a trace lookup reads one row group per file), files with many deletes are rewritten, snapshots
   older than `snapshot_retention` expire and their files are removed.

Rows to delete are chosen by `rowid` in one snapshot, outside any lock, and deleted under the
exclusive commit gate, where no writer can commit: rowids are stable in DuckLake and only this
cycle deletes, so nothing a writer added meanwhile is touched, and the gate is held only briefly.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import duckdb

from collector.catalog_locks import CatalogLocks
from collector.lake import LAKE, is_conflict

log = logging.getLogger("agent_collector.maintenance")

NS_PER_DAY = 86_400 * 10**9
# A copy received up to this long before the previous cycle may have been committed after it
# (queueing, commit retries, clocks of replicas a little apart): the duplicate scan looks back this far.
DUPLICATE_LOOKBACK_NS = 15 * 60 * 10**9


@dataclass(frozen=True)
class MaintenancePolicy:
    interval_s: float = 300.0
    retention_days: int = 0
    snapshot_retention_s: int = 3600


class Maintenance:
    """Owns one DuckDB connection to the lake; `run_once` may be called from any single thread."""

    def __init__(self, con: duckdb.DuckDBPyConnection, locks: CatalogLocks, policy: MaintenancePolicy) -> None:
        self._con = con
        self.locks = locks
        self.policy = policy
        self._duplicates_since_ns = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="lake-maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._con.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.policy.interval_s):
            try:
                self.run_once()
            except Exception:
                log.exception("maintenance cycle failed")

    def run_once(self) -> dict | None:
        """One cycle if no other replica is running one; returns its figures, or None."""
        with self.locks.leadership() as leading:
            if not leading:
                log.debug("maintenance: another replica is running a cycle")
                return None
            started = time.perf_counter()
            cycle_start_ns = time.time_ns()
            figures = {
                "duplicates_removed": self._remove_duplicates(),
                **self._fold_run_deltas(),
                **self._retain(cycle_start_ns),
                **self._compact(),
            }
            self._duplicates_since_ns = cycle_start_ns - DUPLICATE_LOOKBACK_NS
            figures["seconds"] = round(time.perf_counter() - started, 3)
            log.info("maintenance: %s", " ".join(f"{key}={value}" for key, value in figures.items()))
            return figures

    def _remove_duplicates(self) -> int:
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(_DUPLICATES_SQL, [self._duplicates_since_ns])
            count = _one(con.execute("SELECT count(*) FROM dup_rows"))[0]
        finally:
            con.execute("COMMIT")
        if count:
            self._gated(
                "DELETE FROM events WHERE rowid IN (SELECT row_id FROM dup_rows)",
                _CORRECTION_SQL,
            )
        return count

    def _fold_run_deltas(self) -> dict:
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(_FOLD_ROWS_SQL)
            con.execute(_FOLDED_SQL)
            rows, runs = _one(con.execute("SELECT count(*), count(DISTINCT run_id) FROM fold_rows"))
        finally:
            con.execute("COMMIT")
        if rows:
            self._gated(
                "DELETE FROM run_deltas WHERE rowid IN (SELECT row_id FROM fold_rows)",
                "INSERT INTO run_deltas BY NAME SELECT * FROM folded",
            )
        return {"run_deltas_folded": rows, "runs_folded": runs}

    def _retain(self, now_ns: int) -> dict:
        if not self.policy.retention_days:
            return {}
        cutoff = now_ns - self.policy.retention_days * NS_PER_DAY
        con = self._con
        con.execute("CREATE OR REPLACE TEMP TABLE expired_runs AS SELECT run_id FROM runs WHERE end_ns < $1", [cutoff])
        runs = _one(con.execute("SELECT count(*) FROM expired_runs"))[0]
        events = 0
        if runs:
            events = self._gated(
                "DELETE FROM events WHERE start_ns < $1 AND run_id IN (SELECT run_id FROM expired_runs)",
                "DELETE FROM run_deltas WHERE run_id IN (SELECT run_id FROM expired_runs)",
                params=[cutoff],
            )
        return {"runs_expired": runs, "events_expired": events}

    def _compact(self) -> dict:
        """Each call materialises its whole result: an autocommit statement whose result is left
        unfetched is rolled back by the next one (measured: merges and expiries silently lost)."""
        con = self._con
        with self.locks.exclusive_gate():
            flushed = con.execute("SELECT coalesce(sum(rows_flushed), 0)::BIGINT FROM ducklake_flush_inlined_data($1)",
                                  [LAKE]).fetchall()[0][0]
        merged = con.execute("SELECT coalesce(sum(files_processed), 0)::BIGINT, coalesce(sum(files_created), 0)::BIGINT "
                             "FROM ducklake_merge_adjacent_files($1)", [LAKE]).fetchall()[0]
        rewritten = con.execute("SELECT coalesce(sum(files_processed), 0)::BIGINT "
                                "FROM ducklake_rewrite_data_files($1)", [LAKE]).fetchall()[0][0]
        older_than = f"now() - INTERVAL {int(self.policy.snapshot_retention_s)} SECOND"
        expired = con.execute(
            f"SELECT count(*) FROM ducklake_expire_snapshots($1, older_than => {older_than})", [LAKE]
        ).fetchall()[0][0]
        removed = con.execute(
            f"SELECT count(*) FROM ducklake_cleanup_old_files($1, older_than => {older_than})", [LAKE]
        ).fetchall()[0][0]
        files, size = con.execute(
            "SELECT file_count, file_size_bytes FROM ducklake_table_info($1) WHERE table_name = 'events'", [LAKE]
        ).fetchall()[0]
        return {"rows_flushed": flushed, "files_merged": merged[0], "files_written": merged[1],
                "files_rewritten": rewritten, "snapshots_expired": expired, "files_removed": removed,
                "event_files": files, "event_bytes": size}

    def _gated(self, *statements: str, params: list | None = None) -> int:
        """Run `statements` in one transaction while no writer can commit; returns rows changed by
        the first. Retried if a commit that started before the gate (another maintenance step of an
        older collector version, a manual session) wins the race."""
        con = self._con
        for attempt in range(5):
            with self.locks.exclusive_gate():
                con.execute("BEGIN TRANSACTION")
                try:
                    changed = _one(con.execute(statements[0], params or []))[0]
                    for statement in statements[1:]:
                        con.execute(statement, params if "$1" in statement else [])
                    con.execute("COMMIT")
                    return changed
                except duckdb.Error as exc:
                    try:
                        con.execute("ROLLBACK")
                    except duckdb.TransactionException:
                        pass
                    if not is_conflict(exc) or attempt == 4:
                        raise
            time.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")


# Copies of keys received since the last cycle, every copy but the first (by arrival) chosen; the
# stored side is bounded by the start times of those keys, so old files are skipped.
_DUPLICATES_SQL = """
CREATE OR REPLACE TEMP TABLE dup_rows AS
WITH recent AS (
    SELECT DISTINCT run_id, event_id, start_ns FROM events WHERE received_ns >= $1
), copies AS (
    SELECT e.rowid AS row_id, e.run_id, e.status, e.tokens_in, e.tokens_out, e.cache_read_tokens,
           e.cache_write_tokens, e.reasoning_tokens, e.cost,
           row_number() OVER (PARTITION BY e.run_id, e.event_id ORDER BY e.received_ns, e.rowid) AS copy
    FROM events e
    WHERE e.start_ns BETWEEN (SELECT min(start_ns) FROM recent) AND (SELECT max(start_ns) FROM recent)
      AND (e.run_id, e.event_id) IN (SELECT run_id, event_id FROM recent)
)
SELECT * FROM copies WHERE copy > 1
"""

_CORRECTION_SQL = """
INSERT INTO run_deltas BY NAME
SELECT run_id, false AS failed, false AS completed,
       -count(*) AS event_count,
       -count(*) FILTER (WHERE status = 'error') AS error_count,
       -coalesce(sum(tokens_in), 0) AS tokens_in,
       -coalesce(sum(tokens_out), 0) AS tokens_out,
       -coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
       -coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens,
       -coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
       -coalesce(sum(cost), 0) AS total_cost,
       epoch_ns(now()) AS first_ns, epoch_ns(now()) AS last_ns
FROM dup_rows
GROUP BY run_id
"""

_FOLD_ROWS_SQL = """
CREATE OR REPLACE TEMP TABLE fold_rows AS
SELECT rowid AS row_id, run_id FROM run_deltas
WHERE run_id IN (SELECT run_id FROM run_deltas GROUP BY run_id HAVING count(*) > 1)
"""

# run_totals restricted to the chosen rows: the folded row is a delta equal to their sum.
_FOLDED_SQL = """
CREATE OR REPLACE TEMP TABLE folded AS
SELECT * FROM run_totals WHERE run_id IN (SELECT run_id FROM fold_rows)
"""


def _one(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The row of a statement that always returns exactly one (an aggregate, a DELETE's count)."""
    row = result.fetchone()
    if row is None:
        raise RuntimeError("a maintenance statement returned no row")
    return row

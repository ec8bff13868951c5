"""The DuckLake backend of the store: events and run deltas as Parquet files, the catalog in PostgreSQL.

Several collector replicas write one lake and several API replicas read it. What differs from the
embedded DuckDB file, and why:
- DuckLake has no keys, and an UPDATE is a delete plus an insert that conflicts with any concurrent
  insert into the same table. So writers only append: events, and one `run_deltas` row per run per
  commit; `runs` is a view summing the deltas (schema.sql, part `[ducklake]`).
- Appends from several replicas never conflict with each other. Deletes (maintenance: duplicates,
  folding deltas, retention, flushing inlined rows) conflict with every concurrent append, so they
  run behind an exclusive commit gate that writers take shared (`collector.catalog_locks`).
- Analyst SQL runs on a second DuckDB instance that attaches the lake read-only, may read only the
  lake's data directory, and cannot change its settings (`sql_connection`).

Extensions are installed offline from the pip packages `duckdb-extension-ducklake` and
`duckdb-extension-postgres` into a per-process extension directory; nothing is downloaded.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import re
import shutil
import tempfile
import threading
from pathlib import Path

import duckdb

from collector.catalog_locks import CatalogLocks, catalog_locks

log = logging.getLogger("agent_collector.lake")

LAKE = "lake"
TABLES = ("events", "run_deltas")
VIEWS = ("run_totals", "runs", "agents", "spans")

# Commits from several replicas collide on the next snapshot id; DuckLake then retries the commit
# in the catalog without rewriting files. The defaults (10 retries, 100 ms growing 1.5x) give up
# too early with three busy writers.
_RETRY_SETTINGS = {"ducklake_max_retry_count": 100, "ducklake_retry_wait_ms": 10, "ducklake_retry_backoff": 1.2}

_EXTENSIONS = (("duckdb_extension_postgres", "postgres", "postgres_scanner"),
               ("duckdb_extension_ducklake", "ducklake", "ducklake"))
_install_lock = threading.Lock()
_extension_dir: str | None = None


class LakeError(RuntimeError):
    """The lake cannot be opened (no catalog, not initialised, extensions missing); the message says why."""


def is_conflict(exc: BaseException) -> bool:
    """A DuckLake commit lost to a concurrent one; the whole transaction can be retried."""
    return isinstance(exc, duckdb.TransactionException) or "Transaction conflict" in str(exc)


def open_duckdb() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB instance with the postgres and ducklake extensions loaded, offline."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False, "autoload_known_extensions": False,
        "extension_directory": _installed_extensions(),
    }
    con = duckdb.connect(config=config)
    for _, _, name in _EXTENSIONS:
        con.execute(f"LOAD {name}")
    # DuckLake never changes a Parquet file once written, so caching footers is safe, and saves
    # re-reading a merged file's row-group statistics on every trace lookup.
    con.execute("SET GLOBAL parquet_metadata_cache = true")
    return con


def _installed_extensions() -> str:
    """INSTALL copies each extension file once per process into a private directory (replicas
    starting together never race on a shared one); later instances only LOAD."""
    global _extension_dir
    with _install_lock:
        if _extension_dir is None:
            directory = tempfile.mkdtemp(prefix="agent-collector-ext-")
            atexit.register(shutil.rmtree, directory, True)
            con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                         "autoload_known_extensions": False, "extension_directory": directory})
            try:
                for package, stem, _ in _EXTENSIONS:
                    path = _extension_file(package, stem)
                    con.execute(f"INSTALL '{path}'")
            finally:
                con.close()
            _extension_dir = directory
        return _extension_dir


def _extension_file(package: str, stem: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise LakeError(f"the DuckLake store needs the Python package {package.replace('_', '-')}=={duckdb.__version__}")
    found = sorted(Path(spec.origin).parent.glob(f"extensions/v{duckdb.__version__}/{stem}.duckdb_extension"))
    if not found:
        raise LakeError(f"{package} holds no {stem} extension built for DuckDB {duckdb.__version__}; "
                        f"install {package.replace('_', '-')}=={duckdb.__version__}")
    return found[0]


def attach(con: duckdb.DuckDBPyConnection, catalog: str, data_path: str = "", *, read_only: bool = False,
           create: bool = False) -> None:
    options = [f"CREATE_IF_NOT_EXISTS {'true' if create else 'false'}"]
    if data_path:
        options.append(f"DATA_PATH {_quote(data_path)}")
    if read_only:
        options.append("READ_ONLY")
    try:
        con.execute(f"ATTACH {_quote('ducklake:' + catalog)} AS {LAKE} ({', '.join(options)})")
    except duckdb.Error as exc:
        hint = " (run `agent-collector init-store` once first)" if "does not exist" in str(exc) else ""
        raise LakeError(f"cannot attach the DuckLake catalog {redact(catalog)!r}: {exc}{hint}") from None
    con.execute(f"USE {LAKE}")


def init_store(catalog: str, data_path: str, schema: str) -> list[str]:
    """Create the catalog (if new) and every table and view; idempotent. Run once, not by each
    replica: several replicas creating a catalog at the same moment fail but one."""
    if not data_path and not catalog.endswith((".ducklake", ".duckdb", ".db")):
        raise LakeError("init-store needs --data-path (the directory or URL where Parquet files go)")
    if data_path and "://" not in data_path:
        Path(data_path).mkdir(parents=True, exist_ok=True)
    con = open_duckdb()
    try:
        attach(con, catalog, data_path, create=True)
        con.execute("BEGIN TRANSACTION")
        con.execute(schema)
        con.execute("COMMIT")
        return sorted(row[0] for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = $1 UNION ALL "
            "SELECT view_name FROM duckdb_views() WHERE database_name = $1", [LAKE]).fetchall())
    finally:
        con.close()


class LakeBackend:
    """The store's backend on DuckLake. Thread-safety: `connect` once; the Store's writer thread
    calls `record_runs` and `write_gate`; request threads use `sql_connection` cursors."""

    kind = "ducklake"

    def __init__(self, catalog: str, data_path: str = "", *, writable: bool = True,
                 locks: CatalogLocks | None = None) -> None:
        self.catalog = catalog
        self.data_path = data_path
        self.writable = writable
        self.locks = locks
        self.name = f"DuckLake {redact(catalog)}"
        self._sql_con: duckdb.DuckDBPyConnection | None = None
        self._sql_lock = threading.Lock()

    def connect(self) -> duckdb.DuckDBPyConnection:
        con = open_duckdb()
        try:
            attach(con, self.catalog, self.data_path, read_only=not self.writable)
            missing = set(TABLES + VIEWS) - {row[0] for row in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = $1 UNION ALL "
                "SELECT view_name FROM duckdb_views() WHERE database_name = $1", [LAKE]).fetchall()}
            if missing:
                raise LakeError(f"the lake has no {', '.join(sorted(missing))}: run `agent-collector init-store` first")
            for name, value in _RETRY_SETTINGS.items():
                con.execute(f"SET {name} = {value}")
            row = con.execute("SELECT data_path FROM ducklake_settings($1)", [LAKE]).fetchone()
            if row is None:
                raise LakeError(f"the lake at {self.catalog} reports no data path")
            self.data_path = row[0]
        except BaseException:
            con.close()
            raise
        if self.locks is None:
            self.locks = catalog_locks(self.catalog, open_duckdb)
        return con

    @staticmethod
    def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """A cursor is a new connection: it starts in the in-memory database, not the lake."""
        cursor = con.cursor()
        cursor.execute(f"USE {LAKE}")
        return cursor

    def write_gate(self):
        assert self.locks is not None
        return self.locks.shared_gate()

    is_conflict = staticmethod(is_conflict)

    def record_runs(self, con: duckdb.DuckDBPyConnection, delta_select: str, now: int) -> None:
        con.execute(f"INSERT INTO run_deltas BY NAME SELECT *, $1 AS first_ns, $1 AS last_ns FROM ({delta_select})",
                    [now])

    def sql_connection(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """A cursor for analyst SQL that can read no file outside the lake's data directory (DuckLake
        reads its Parquet files through it). With a PostgreSQL catalog it is a separate instance that
        attaches the lake READ_ONLY (so the metadata catalog is read-only too) with its settings
        locked. A file catalog can be open once per process, so there the instance is shared and
        file access is restricted for it as a whole."""
        with self._sql_lock:
            if self._sql_con is None:
                shared = not self.catalog.startswith("postgres:")
                analyst = con if shared else open_duckdb()
                if not shared:
                    attach(analyst, self.catalog, read_only=True)
                if "://" not in self.data_path:
                    analyst.execute("SET allowed_directories = $1", [[self.data_path]])
                analyst.execute("SET enable_external_access = false")
                if not shared:
                    analyst.execute("SET lock_configuration = true")
                self._sql_con = analyst
            return self.cursor(self._sql_con)

    def close(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            con.close()
        finally:
            if self._sql_con is not None and self._sql_con is not con:
                self._sql_con.close()
            if self.locks is not None:
                self.locks.close()


def redact(catalog: str) -> str:
    """The catalog string without its password, for logs and errors."""
    return re.sub(r"(password\s*=\s*)(\S+)", r"\1***", catalog, flags=re.IGNORECASE)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

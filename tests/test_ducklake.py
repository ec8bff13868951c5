"""The DuckLake store: the store's contract on a lake, maintenance, the catalog's locks, and two
collector replicas plus one API replica on a real PostgreSQL catalog, driven concurrently by the
real OTLP exporters and the GATI shim."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as ProtoHttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from collector.catalog_locks import PostgresLocks
from collector.lake import LakeBackend, init_store, open_duckdb
from collector.maintenance import Maintenance, MaintenancePolicy
from collector.store import Store, schema_sql
from query_api.app import create_app
from tests.conftest import CollectorProcess, free_port
from tests.test_store import (  # noqa: F401 - the store's contract, run again on a lake
    row,
    run,
    test_agent_fallbacks,
    test_agent_from_root_beats_children_and_service,
    test_concurrent_submitters_lose_nothing,
    test_costs_sum_and_null_costs_do_not_zero_the_total,
    test_duplicates_within_and_across_commits_are_stored_once,
    test_failed_is_final,
    test_run_is_running_until_its_root_arrives,
    test_same_event_id_in_another_run_is_not_a_duplicate,
)


@pytest.fixture
def store(tmp_path):
    """A lake on a DuckDB-file catalog (one process): the same store contract without PostgreSQL."""
    catalog = str(tmp_path / "meta.ducklake")
    init_store(catalog, str(tmp_path / "data"), schema_sql("ducklake"))
    s = Store(backend=LakeBackend(catalog))
    s.start()
    yield s
    s.close()


def query(store: Store, sql: str, params=None) -> list[tuple]:
    with store.cursor() as cursor:
        return cursor.execute(sql, params or []).fetchall()


def test_maintenance_removes_duplicates_and_folds_runs_without_changing_them(store):
    store.submit([row(event_id="root", closes_run="completed", agent_name="planner", tokens_in=10, cost=0.5)]).result()
    store.submit([row(event_id="c1", parent_event_id="root", status="error", tokens_in=3)]).result()
    store.submit([row(event_id="c2", parent_event_id="root", tokens_in=4)]).result()
    before = run(store)
    # A copy stored by another replica whose anti-join ran before this one's commit.
    query(store, "INSERT INTO events SELECT * FROM events WHERE event_id = 'c1'")
    query(store, "INSERT INTO run_deltas BY NAME SELECT run_id, false AS failed, false AS completed, "
                 "1 AS event_count, 1 AS error_count, 3 AS tokens_in, 0 AS tokens_out, 0 AS cache_read_tokens, "
                 "0 AS cache_write_tokens, 0 AS reasoning_tokens, 0.0 AS total_cost, 9 AS first_ns, 9 AS last_ns "
                 "FROM run_deltas LIMIT 1")
    assert run(store)["event_count"] == 4

    figures = Maintenance(store.cursor(), store.backend.locks, MaintenancePolicy()).run_once()

    assert figures["duplicates_removed"] == 1
    assert figures["runs_folded"] == 1
    assert query(store, "SELECT count(*) FROM run_deltas") == [(1,)]
    assert query(store, "SELECT event_id, count(*) FROM events GROUP BY ALL ORDER BY 1") == [
        ("c1", 1), ("c2", 1), ("root", 1)]
    after = run(store)
    assert {k: v for k, v in after.items() if k != "updated_ns"} == {
        k: v for k, v in before.items() if k != "updated_ns"}
    assert (after["agent_name"], after["status"], after["event_count"], after["error_count"], after["tokens_in"]) == (
        "planner", "completed", 3, 1, 17)


def test_retention_deletes_old_runs_with_their_events(store):
    now = time.time_ns()
    store.submit([row("old", "e1", start_ns=1_000, end_ns=2_000), row("new", "e1", start_ns=now, end_ns=now)]).result()
    figures = Maintenance(store.cursor(), store.backend.locks, MaintenancePolicy(retention_days=1)).run_once()
    assert (figures["runs_expired"], figures["events_expired"]) == (1, 1)
    assert query(store, "SELECT run_id FROM runs") == [("new",)]
    assert query(store, "SELECT run_id FROM events") == [("new",)]


def test_sql_endpoint_on_a_lake(store, tmp_path):
    store.submit([row(event_id="a", agent_name="x")]).result()
    api = TestClient(create_app(store))
    ok = api.post("/api/sql", json={"sql": "SELECT agent_name, event_count FROM runs"})
    assert ok.json()["rows"] == [["x", 1]]
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    for sql in (f"SELECT * FROM read_text('{secret}')",
                "SELECT * FROM ducklake_expire_snapshots('lake', older_than => now())",
                "SELECT * FROM ducklake_cleanup_old_files('lake', cleanup_all => true)",
                "SELECT * FROM query('SELECT 1')"):
        response = api.post("/api/sql", json={"sql": sql})
        assert response.status_code == 400, sql
        assert "hunter2" not in response.text
    assert api.post("/api/sql", json={"sql": "SELECT count(*) FROM ducklake_snapshots('lake')"}).status_code == 200
    assert api.get("/api/runs/r1/trace").json()["event_count"] == 1


def test_serving_an_uninitialised_lake_says_to_run_init_store(tmp_path):
    with pytest.raises(Exception, match="init-store"):
        Store(backend=LakeBackend(str(tmp_path / "none.ducklake")))


# --- a real PostgreSQL catalog ---------------------------------------------------------------------

def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


PG_BIN = _postgres_bin()
needs_postgres = pytest.mark.skipif(
    PG_BIN is None,
    reason="!!! PostgreSQL SERVER BINARIES NOT FOUND (initdb, pg_ctl): the multi-replica DuckLake tests "
           "did NOT run. Install them: apt-get install -y postgresql !!!",
)


class PostgresServer:
    """A throwaway PostgreSQL on 127.0.0.1 and a free port; as the `postgres` user when run by root,
    because the server refuses to run as root."""

    def __init__(self) -> None:
        # Directly under /tmp: pytest's own tmp directories are private to root.
        self.root = Path(tempfile.mkdtemp(prefix="agent-collector-pg-"))
        self.data = self.root / "pgdata"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "pg.log"),
                  "-w", "start")
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "lake")
        return self

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"],
                       check=False, capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def catalog(self, dbname: str = "lake") -> str:
        return f"postgres:dbname={dbname} host=127.0.0.1 port={self.port} user=postgres"


@pytest.fixture(scope="module")
def postgres():
    if PG_BIN is None:
        pytest.skip(needs_postgres.kwargs["reason"])
    server = PostgresServer().start()
    yield server
    server.stop()


@needs_postgres
def test_one_maintenance_cycle_at_a_time_and_deletes_wait_for_writers(postgres):
    first, second = PostgresLocks(postgres.catalog().removeprefix("postgres:"), open_duckdb), \
        PostgresLocks(postgres.catalog().removeprefix("postgres:"), open_duckdb)
    with first.leadership() as leading:
        assert leading
        with second.leadership() as also:
            assert not also
    with second.leadership() as leading:
        assert leading
    waited = []
    with first.shared_gate():
        def delete():
            started = time.monotonic()
            with second.exclusive_gate():
                waited.append(time.monotonic() - started)
        deleter = threading.Thread(target=delete)
        deleter.start()
        time.sleep(0.3)
    deleter.join(10)
    assert waited and waited[0] >= 0.25
    first.close()
    second.close()


def lake_env(postgres: PostgresServer, data: Path, **extra: str) -> dict[str, str]:
    return {"AGENT_COLLECTOR_STORE": "ducklake", "AGENT_COLLECTOR_CATALOG": postgres.catalog(),
            "AGENT_COLLECTOR_DATA_PATH": str(data), "AGENT_COLLECTOR_MAINTENANCE_INTERVAL": "1",
            "AGENT_COLLECTOR_MAX_GROUP_SPANS": "2000", **extra}


def make_spans(agent: str, runs: int) -> list:
    """Finished SDK spans of `runs` small agent runs (a root, two chats, a tool call each)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": f"{agent}-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("lake-test")
    for i in range(runs):
        with tracer.start_as_current_span(f"invoke_agent {agent}", kind=SpanKind.INTERNAL) as root:
            root.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent})
            for call in range(2):
                with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as chat:
                    chat.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                         "gen_ai.usage.input_tokens": 100 + i, "gen_ai.usage.output_tokens": 10})
            with tracer.start_as_current_span("execute_tool search") as tool:
                tool.set_attributes({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"})
    provider.shutdown()
    return list(memory.get_finished_spans())


def key(span) -> tuple[str, str]:
    return format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")


class Acked:
    """What the collectors acknowledged: (run_id, event_id) -> tokens_in, thread-safe."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()

    def export(self, exporter, spans: list, batch: int = 40) -> None:
        for start in range(0, len(spans), batch):
            chunk = spans[start:start + batch]
            assert exporter.export(chunk) == SpanExportResult.SUCCESS
            with self.lock:
                for span in chunk:
                    self.events[key(span)] = span.attributes.get("gen_ai.usage.input_tokens") or 0

    def post_gati(self, url: str, run_prefix: str, runs: int) -> None:
        for r in range(runs):
            events = [{"run_id": f"{run_prefix}-{r}", "event_id": f"{run_prefix}-{r}-{e}", "event_type": "llm_call",
                       "agent_name": "gati_agent", "timestamp": "2025-01-02T03:04:05Z",
                       "data": {"model": "gpt-4", "tokens_in": 7}} for e in range(5)]
            response = httpx.post(f"{url}/api/events", json={"events": events}, timeout=60)
            assert response.status_code == 200, response.text
            with self.lock:
                for event in events:
                    self.events[(event["run_id"], event["event_id"])] = 7


def sql(api: str, text: str) -> list[list]:
    response = httpx.post(f"{api}/api/sql", json={"sql": text, "max_rows": 10_000}, timeout=60)
    assert response.status_code == 200, response.text
    assert not response.json()["truncated"]
    return response.json()["rows"]


@needs_postgres
def test_two_collectors_and_an_api_replica_store_every_acknowledged_span_once(postgres, tmp_path):
    data = tmp_path / "lake-data"
    init = [sys.executable, "-m", "collector.cli", "init-store", "--catalog", postgres.catalog(),
            "--data-path", str(data)]
    for _ in range(2):
        done = subprocess.run(init, check=False, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    env = lake_env(postgres, data)
    collectors = [CollectorProcess(tmp_path / f"c{i}.duckdb", tmp_path / f"c{i}.log", env) for i in range(2)]
    api = CollectorProcess(tmp_path / "api.duckdb", tmp_path / "api.log", {**env, "AGENT_COLLECTOR_ROLE": "api"})
    for proc in (*collectors, api):
        proc.start(timeout=60)
    try:
        acked = Acked()
        grpc0 = GrpcExporter(endpoint=collectors[0].grpc_target, insecure=True)
        grpc1 = GrpcExporter(endpoint=collectors[1].grpc_target, insecure=True)
        http0 = ProtoHttpExporter(endpoint=f"{collectors[0].otlp_http}/v1/traces")
        http1 = ProtoHttpExporter(endpoint=f"{collectors[1].otlp_http}/v1/traces")
        resent = make_spans("resender", 30)
        start = threading.Barrier(6)

        def job(target, *args):
            def run_job():
                start.wait()
                target(*args)
            return threading.Thread(target=run_job)

        jobs = [
            job(acked.export, grpc0, make_spans("grpc-agent", 60)),
            job(acked.export, http1, make_spans("http-agent", 60)),
            job(acked.post_gati, collectors[0].api, "gati-a", 30),
            job(acked.post_gati, collectors[1].api, "gati-b", 30),
            # The same spans to both replicas at once: an exporter retrying against another replica.
            job(acked.export, grpc1, resent, 10),
            job(acked.export, http0, resent, 10),
        ]
        for thread in jobs:
            thread.start()
        for thread in jobs:
            thread.join(300)
        acked.export(grpc0, resent[:40])

        expected = len(acked.events)
        assert expected == 60 * 4 * 2 + 30 * 5 * 2 + 30 * 4
        deadline = time.monotonic() + 120
        while True:
            total, distinct = sql(api.api, "SELECT count(*), count(DISTINCT (run_id, event_id)) FROM events")[0]
            run_total = sql(api.api, "SELECT coalesce(sum(event_count), 0) FROM runs")[0][0]
            if total == distinct == run_total == expected or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert (total, distinct, run_total) == (expected, expected, expected)

        stored = sql(api.api, "SELECT run_id, event_id, coalesce(tokens_in, 0) FROM events")
        assert {(r, e): t for r, e, t in stored} == acked.events
        per_run: dict[str, int] = {}
        tokens: dict[str, int] = {}
        for (run_id, _), tokens_in in acked.events.items():
            per_run[run_id] = per_run.get(run_id, 0) + 1
            tokens[run_id] = tokens.get(run_id, 0) + tokens_in
        runs = sql(api.api, "SELECT run_id, event_count, tokens_in, status FROM runs")
        assert {r: (n, t) for r, n, t, _ in runs} == {r: (per_run[r], tokens[r]) for r in per_run}

        trace_id = key(resent[0])[0]
        trace = httpx.get(f"{api.api}/api/runs/{trace_id}/trace", timeout=30).json()
        assert trace["agent_name"] == "resender" and trace["event_count"] == 4
        assert trace["status"] == "completed"
        assert httpx.get(f"{api.api}/api/runs/gati-b-3", timeout=30).json()["event_count"] == 5
        assert httpx.get(f"{api.api}/api/agents/grpc-agent", timeout=30).status_code == 200

        event = {"run_id": "x", "event_id": "y", "event_type": "llm_call", "agent_name": "a",
                 "timestamp": "2025-01-02T03:04:05Z"}
        refused = httpx.post(f"{api.api}/api/events", json={"events": [event]}, timeout=30)
        assert refused.status_code == 503
        for text in ("SELECT * FROM postgres_execute('__ducklake_metadata_lake', 'CREATE TABLE pwn (a int)')",
                     "SELECT * FROM postgres_query('__ducklake_metadata_lake', 'SELECT 1')",
                     "SELECT * FROM read_text('/etc/passwd')"):
            assert httpx.post(f"{api.api}/api/sql", json={"sql": text}, timeout=30).status_code == 400
    finally:
        codes = [proc.stop() for proc in (*collectors, api)]
    assert codes == [0, 0, 0], [proc.log_text()[-3000:] for proc in (*collectors, api)]
    logs = "".join(proc.log_text() for proc in collectors)
    assert "maintenance: duplicates_removed=" in logs
    assert "maintenance:" not in api.log_text()

"""POST /api/sql (query_api/sql_endpoint.py): one read-only SELECT over agents, runs, events,
spans, with a row cap and a time limit; everything else answers 400 and changes nothing."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collector.ingest import Ingestor
from query_api.app import create_app
from query_api.sql_endpoint import SqlLimits

TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SPAN_ID = bytes.fromhex("b7ad6b7169203331")


def otlp_span() -> ExportTraceServiceRequest:
    span = Span(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        name="chat gpt-4o",
        start_time_unix_nano=1_730_716_200_123_456_789,
        end_time_unix_nano=1_730_716_201_000_000_000,
        attributes=[
            KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
            KeyValue(key="gen_ai.agent.name", value=AnyValue(string_value="otel_agent")),
        ],
    )
    resource_spans = ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])
    resource_spans.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="svc"))
    )
    return ExportTraceServiceRequest(resource_spans=[resource_spans])


@pytest.fixture
def data(store):
    Ingestor(store).export_otlp(otlp_span(), timeout=10)
    api = TestClient(create_app(store))
    events = [
        {
            "run_id": f"g{i}",
            "event_id": f"e{i}",
            "event_type": "llm_call",
            "agent_name": "gati_agent",
            "timestamp": "2024-11-04T10:30:00Z",
            "data": {"model": "gpt-4", "cost": 0.5, "tokens_in": 10},
        }
        for i in range(3)
    ]
    assert api.post("/api/events", json={"events": events}).json()["count"] == 3
    return store


@pytest.fixture
def api(data):
    return TestClient(create_app(data, sql_limits=SqlLimits(max_rows=5, timeout_s=0.5)))


def sql(api, text, **extra):
    return api.post("/api/sql", json={"sql": text, **extra})


def ok(api, text, **extra):
    response = sql(api, text, **extra)
    assert response.status_code == 200, response.text
    return response.json()


def count(store, table):
    with store.cursor() as cursor:
        return cursor.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_select_over_the_views(api):
    agents = ok(api, "SELECT agent_name, total_runs, total_cost FROM agents ORDER BY agent_name")
    assert agents["columns"] == [
        {"name": "agent_name", "type": "VARCHAR"},
        {"name": "total_runs", "type": "BIGINT"},
        {"name": "total_cost", "type": "DOUBLE"},
    ]
    assert agents["rows"] == [["gati_agent", 3, 1.5], ["otel_agent", 1, 0.0]]
    assert (agents["row_count"], agents["truncated"]) == (2, False)
    assert ok(api, "SELECT count(*) FROM runs")["rows"] == [[4]]
    assert ok(api, "SELECT sum(tokens_in) FROM events WHERE source = 'gati'")["rows"] == [[30]]
    spans = ok(api, 'SELECT "TraceId", "SpanId", "ServiceName", "Timestamp", "SpanAttributes" FROM spans')
    assert spans["rows"] == [
        [
            TRACE_ID.hex(),
            SPAN_ID.hex(),
            "svc",
            "2024-11-04T10:30:00.123456789Z",
            '{"gen_ai.operation.name":"chat","gen_ai.agent.name":"otel_agent"}',
        ]
    ]


def test_discovery_statements_that_duckdb_treats_as_select(data):
    api = TestClient(create_app(data))
    tables = ok(api, "SHOW TABLES")["rows"]
    assert {"agents", "events", "runs", "spans"} <= {row[0] for row in tables}
    assert ["run_id", "VARCHAR"] == ok(api, "DESCRIBE runs")["rows"][0][:2]


def test_with_cte_and_json_functions(api):
    body = ok(
        api,
        "WITH c AS (SELECT attributes->>'model' AS m FROM events WHERE source = 'gati') "
        "SELECT m, count(*) AS n FROM c GROUP BY m",
    )
    assert body["rows"] == [["gpt-4", 3]]


def test_value_types_become_json(api):
    body = ok(
        api,
        "SELECT 1.25::DECIMAL(5,2) AS d, 12::HUGEINT AS h, '\\x01\\xff'::BLOB AS b, "
        "DATE '2024-01-02' AS day, TIMESTAMPTZ '2024-01-02 03:04:05+00' AS ts, [1, 2] AS l, "
        "{'k': 'v'} AS s, NULL AS n",
    )
    assert body["rows"] == [
        [1.25, 12, "01ff", "2024-01-02", "2024-01-02T03:04:05.000000Z", [1, 2], {"k": "v"}, None]
    ]


def test_row_cap(api):
    capped = ok(api, "SELECT range FROM range(100)")
    assert (capped["row_count"], capped["truncated"], capped["rows"][-1]) == (5, True, [4])
    exact = ok(api, "SELECT range FROM range(5)")
    assert (exact["row_count"], exact["truncated"]) == (5, False)
    smaller = ok(api, "SELECT range FROM range(100) ORDER BY range DESC", max_rows=2)
    assert (smaller["rows"], smaller["truncated"]) == ([[99], [98]], True)
    assert ok(api, "SELECT range FROM range(100)", max_rows=50)["row_count"] == 5


def test_time_limit_interrupts_the_query(api):
    started = time.monotonic()
    response = sql(api, "SELECT count(*) FROM range(100000) a, range(100000) b WHERE a.range + b.range = -1")
    assert time.monotonic() - started < 10
    assert response.status_code == 400
    assert "0.5 s time limit" in response.json()["detail"]
    assert ok(api, "SELECT 42")["rows"] == [[42]]


@pytest.mark.parametrize(
    "text",
    [
        "INSERT INTO runs SELECT * FROM runs",
        "DELETE FROM events",
        "UPDATE runs SET status = 'failed'",
        "DROP TABLE runs",
        "CREATE TABLE stolen AS SELECT * FROM events",
        "CREATE OR REPLACE VIEW agents AS SELECT 1",
        "SET enable_external_access = true",
        "RESET enable_external_access",
        "ATTACH '/tmp/other.duckdb' AS other",
        "COPY runs TO '/tmp/runs.csv'",
        "EXPORT DATABASE '/tmp/dump'",
        "PRAGMA enable_profiling",
        "PRAGMA threads = 1",
        "PRAGMA force_checkpoint",
        "INSTALL httpfs",
        "LOAD httpfs",
        "CHECKPOINT",
        "BEGIN TRANSACTION",
        "EXPLAIN SELECT 1",
        "SELECT 1; DELETE FROM runs",
        "SELECT 1; SELECT 2",
        "",
    ],
)
def test_only_one_select_is_allowed(api, data, text):
    runs, events = count(data, "runs"), count(data, "events")
    response = sql(api, text)
    assert response.status_code == 400
    assert "SELECT" in response.json()["detail"] or "one statement" in response.json()["detail"]
    assert (count(data, "runs"), count(data, "events")) == (runs, events)


@pytest.mark.parametrize(
    "template",
    [
        "SELECT * FROM read_text('{path}')",
        "SELECT * FROM read_csv('{path}')",
        "SELECT * FROM read_json_auto('{path}')",
        "SELECT * FROM read_blob('{path}')",
        "SELECT * FROM glob('{dir}/*')",
        "SELECT * FROM '{path}'",
        "SELECT * FROM query('SELECT * FROM read_text(''{path}'')')",
    ],
)
def test_files_cannot_be_read(api, tmp_path, template):
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    response = sql(api, template.format(path=secret, dir=tmp_path))
    assert response.status_code == 400
    assert "hunter2" not in response.text and "secret.csv" not in str(response.json().get("rows"))


def test_errors_answer_400_with_the_reason(api):
    response = sql(api, "SELECT no_such_column FROM runs")
    assert response.status_code == 400 and "no_such_column" in response.json()["detail"]
    response = sql(api, "SELEC 1")
    assert response.status_code == 400 and "parse" in response.json()["detail"]
    assert api.post("/api/sql", json={}).status_code == 422
    assert sql(api, "SELECT 1", max_rows=0).status_code == 422


def test_ingest_keeps_working_with_external_access_off(api, data):
    assert sql(api, "SELECT * FROM read_text('/etc/hostname')").status_code == 400
    event = {
        "run_id": "after",
        "event_type": "agent_end",
        "agent_name": "late",
        "timestamp": "2024-11-04T11:00:00Z",
    }
    assert api.post("/api/events", json={"events": [event]}).json()["count"] == 1
    assert ok(api, "SELECT status FROM runs WHERE run_id = 'after'")["rows"] == [["completed"]]


def test_sql_against_the_real_server(collector):
    event = {
        "run_id": "e2e",
        "event_type": "agent_start",
        "agent_name": "e2e_agent",
        "timestamp": "2024-11-04T10:30:00Z",
    }
    httpx.post(f"{collector.api}/api/events", json={"events": [event]})
    body = httpx.post(f"{collector.api}/api/sql", json={"sql": "SELECT agent_name, status FROM runs"}).json()
    assert body["rows"] == [["e2e_agent", "running"]]
    refused = httpx.post(f"{collector.api}/api/sql", json={"sql": "SELECT * FROM read_text('/etc/passwd')"})
    assert refused.status_code == 400

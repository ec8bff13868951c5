"""The GATI SDK shim: the pure mapping (collector/map_gati.py) and POST /api/events
(collector/receive_gati.py), in process against a real store and end to end against `serve`."""

from __future__ import annotations

import gzip
import json
import re
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from collector import pricing
from collector.map_gati import MAX_EVENTS, InvalidBatch, map_events
from collector.store import Store
from query_api.app import create_app
from tests.seed_examples import EXAMPLES, assert_like_seed, example

SEEDS_DIR = Path(__file__).resolve().parents[2] / "shared" / "seeds"
T0 = "2024-11-04T10:30:00Z"
T0_NS = 1_730_716_200 * 10**9


@pytest.fixture
def api(store):
    return TestClient(create_app(store))


def event(**fields):
    base = {
        "event_type": "llm_call",
        "run_id": "run-1",
        "agent_name": "my_agent",
        "timestamp": T0,
        "data": {},
    }
    return {**base, **fields}


def one_row(ev):
    batch = map_events({"events": [ev]}, received_ns=7)
    assert batch.rejected == 0, batch.errors
    return batch.rows[0]


def stored(store, run_id):
    with store.cursor() as cursor:
        result = cursor.execute(
            "SELECT * FROM events WHERE run_id = $r ORDER BY start_ns, event_id", {"r": run_id}
        )
        columns = [d[0] for d in result.description]
        return [dict(zip(columns, row)) for row in result.fetchall()]


def run_row(store, run_id):
    with store.cursor() as cursor:
        result = cursor.execute("SELECT * FROM runs WHERE run_id = $r", {"r": run_id})
        columns = [d[0] for d in result.description]
        row = result.fetchone()
        return dict(zip(columns, row)) if row else None


# --- the fixtures are the seeds' own examples -------------------------------------------------


@pytest.mark.skipif(not SEEDS_DIR.is_dir(), reason="seeds are not checked out beside the repo")
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_seed_fixture_is_a_verbatim_copy(name):
    seed, kind, index = EXAMPLES[name]["where"]
    text = (SEEDS_DIR / f"{seed}.txt").read_text()
    pattern = r"```json\n(.*?)```" if kind == "json" else r"-d '(\{.*?\})'"
    assert json.loads(re.findall(pattern, text, re.DOTALL)[index]) == example(name)


# --- pure mapping ------------------------------------------------------------------------------


def test_ids_event_type_and_agent_are_kept_as_sent():
    row = one_row(event(event_id="Ev-1", run_id="Run-X", event_type="My_Custom_Type", agent_name="Agent A"))
    assert (row.event_id, row.run_id, row.event_type, row.agent_name) == (
        "Ev-1",
        "Run-X",
        "My_Custom_Type",
        "Agent A",
    )
    assert (row.source, row.convention) == ("gati", "gati")


def test_numeric_ids_are_kept_as_their_text():
    row = one_row(event(event_id=42, run_id=123))
    assert (row.event_id, row.run_id) == ("42", "123")


def test_event_without_id_gets_a_uuid4():
    rows = map_events({"events": [event(), event(event_id=None), event(event_id="")]}, 0).rows
    ids = [row.event_id for row in rows]
    assert len(set(ids)) == 3
    assert all(uuid.UUID(i).version == 4 for i in ids)


@pytest.mark.parametrize(
    ("fields", "parent"),
    [
        ({"parent_event_id": "p1"}, "p1"),
        ({"data": {"parent_run_id": "p2"}}, "p2"),
        ({"parent_event_id": "p1", "data": {"parent_run_id": "p2"}}, "p1"),
        ({"parent_event_id": None, "data": {"parent_run_id": ""}}, None),
        ({}, None),
    ],
    ids=["parent_event_id", "data.parent_run_id", "top-level-wins", "empty", "none"],
)
def test_parent(fields, parent):
    assert one_row(event(**fields)).parent_event_id == parent


def test_agent_name_from_data_when_not_on_the_event():
    assert one_row(event(agent_name=None, data={"agent_name": "ResearchAgent"})).agent_name == "ResearchAgent"
    assert one_row(event(agent_name="", data={"agent_name": "ResearchAgent"})).agent_name == "ResearchAgent"
    assert one_row(event(agent_name="top", data={"agent_name": "inner"})).agent_name == "top"


@pytest.mark.parametrize(
    ("timestamp", "expected_ns"),
    [
        ("2024-11-04T10:30:00Z", T0_NS),
        ("2024-11-04T10:30:00+00:00", T0_NS),
        ("2024-11-04T11:30:00+01:00", T0_NS),
        ("2024-11-04T10:30:00", T0_NS),
        ("2024-11-04T10:30:00.123456", T0_NS + 123_456_000),
    ],
    ids=["Z", "offset0", "offset+1", "naive-is-utc", "micros"],
)
def test_timestamp(timestamp, expected_ns):
    assert one_row(event(timestamp=timestamp)).start_ns == expected_ns


def test_missing_timestamp_is_the_receive_time():
    ev = event()
    del ev["timestamp"]
    assert map_events({"events": [ev]}, received_ns=123).rows[0].start_ns == 123


def test_llm_call_fields_from_data():
    row = one_row(
        event(
            data={
                "model": "gpt-4",
                "provider": "openai",
                "tokens_in": 100,
                "tokens_out": "50",
                "cost": 0.005,
                "latency_ms": 1500.5,
                "prompt": "hi",
                "completion": {"text": "hello"},
                "session_id": "s1",
                "user_id": "u1",
                "environment": "production",
            }
        )
    )
    assert (row.model, row.provider, row.tokens_in, row.tokens_out, row.tokens_total) == (
        "gpt-4",
        "openai",
        100,
        50,
        150,
    )
    assert (row.cost, row.cost_source) == (0.005, "client")
    assert row.duration_ns == 1_500_500_000 and row.end_ns == T0_NS + 1_500_500_000
    assert (row.input, row.output) == ("hi", '{"text":"hello"}')
    assert (row.session_id, row.user_id, row.environment) == ("s1", "u1", "production")


def test_tool_call_fields_from_data():
    row = one_row(
        event(event_type="tool_call", data={"tool_name": "search", "input": {"q": "x"}, "duration_ms": 20})
    )
    assert (row.tool_name, row.name, row.input, row.duration_ns) == (
        "search",
        "search",
        '{"q":"x"}',
        20_000_000,
    )


def test_cost_is_computed_when_none_was_sent():
    row = one_row(event(data={"model": "gpt-4o", "tokens_in": 1000, "tokens_out": 500}))
    expected = pricing.price("gpt-4o", None, 1000, 500, 0, 0, T0_NS)
    assert expected is not None and expected > 0
    assert (row.cost, row.cost_source) == (pytest.approx(expected), "computed")


def test_a_sent_cost_wins_even_when_zero():
    row = one_row(event(data={"model": "gpt-4o", "tokens_in": 1000, "tokens_out": 500, "cost": 0}))
    assert (row.cost, row.cost_source) == (0.0, "client")


def test_agent_end_total_cost_is_not_an_event_cost():
    row = one_row(event(event_type="agent_end", data={"total_cost": 3.5, "total_duration_ms": 100}))
    assert row.cost is None


@pytest.mark.parametrize(
    ("event_type", "data", "status", "closes"),
    [
        ("agent_end", {}, "unset", "completed"),
        ("agent_end", {"status": "success"}, "ok", "completed"),
        ("agent_end", {"status": "failed"}, "error", "failed"),
        ("error", {"error": "boom"}, "error", "failed"),
        ("llm_call", {"status": "completed"}, "ok", None),
        ("tool_call", {"status": "error"}, "error", None),
        ("agent_start", {}, "unset", None),
    ],
)
def test_status_and_run_closing(event_type, data, status, closes):
    row = one_row(event(event_type=event_type, data=data))
    assert (row.status, row.closes_run) == (status, closes)


def test_attributes_are_data_plus_unknown_top_level_fields():
    row = one_row(event(run_name="run 7", data={"model": "gpt-4", "nested": {"a": [1, 2]}}))
    assert orjson.loads(row.attributes) == {"run_name": "run 7", "model": "gpt-4", "nested": {"a": [1, 2]}}


def test_unparseable_numbers_are_kept_in_attributes_only():
    row = one_row(event(data={"tokens_in": "lots", "cost": "free"}))
    assert (row.tokens_in, row.cost) == (None, None)
    assert orjson.loads(row.attributes) == {"tokens_in": "lots", "cost": "free"}


def test_bad_events_are_rejected_alone_naming_index_and_field():
    payload = {
        "events": [
            event(event_id="ok-0"),
            event(run_id=None),
            "not an object",
            event(timestamp="yesterday"),
            event(event_type=""),
            event(data=[1]),
            event(parent_event_id={"id": 1}),
            event(event_id="ok-7"),
        ]
    }
    batch = map_events(payload, 0)
    assert [row.event_id for row in batch.rows] == ["ok-0", "ok-7"]
    assert batch.rejected == 6
    assert batch.errors == [
        "events[1].run_id: required",
        "events[2]: must be an object",
        "events[3].timestamp: not an ISO 8601 time: 'yesterday'",
        "events[4].event_type: required, a non-empty string",
        "events[5].data: must be an object",
        "events[6].parent_event_id: must be a string, got dict",
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "body must be a JSON object"),
        ({}, "events: required"),
        ({"events": {}}, "events: required"),
        ({"events": []}, "events: must not be empty"),
        (
            {"events": [{}] * (MAX_EVENTS + 1)},
            f"at most {MAX_EVENTS} events per request (got {MAX_EVENTS + 1})",
        ),
    ],
    ids=["list", "no-events", "events-object", "empty", "too-many"],
)
def test_invalid_batches(payload, message):
    with pytest.raises(InvalidBatch, match=re.escape(message)):
        map_events(payload, 0)


# --- POST /api/events in process ---------------------------------------------------------------


def test_v1_seed_request_gets_the_seed_response(api, store):
    response = api.post("/api/events", json=example("v1_ingest_request"))
    assert response.status_code == 200
    assert_like_seed(response.json(), example("v1_ingest_response"))
    [row] = stored(store, "123e4567-e89b-12d3-a456-426614174000")
    assert (row["agent_name"], row["model"], row["tokens_in"], row["tokens_out"], row["cost"]) == (
        "my_agent",
        "gpt-4",
        100,
        50,
        0.005,
    )


def test_v0_seed_request_gets_the_seed_response(api, store):
    response = api.post("/api/events", json=example("v0_ingest_request"))
    assert response.status_code == 200
    assert_like_seed(response.json(), example("v0_ingest_response"))
    [row] = stored(store, "uuid")
    assert (row["event_id"], row["parent_event_id"], row["event_type"], row["agent_name"]) == (
        "uuid",
        "uuid or null",
        "agent_start",
        "ResearchAgent",
    )
    assert orjson.loads(row["input"]) == {"query": "What is AI?"}


def test_troubleshooting_seed_request_is_accepted(api, store):
    response = api.post("/api/events", json=example("v1_troubleshooting_request"))
    assert response.json()["count"] == 1
    assert run_row(store, "123")["agent_name"] == "test"


def test_success_means_committed(api, store):
    events = [event(event_id=f"e{i}", run_id=f"r{i % 7}") for i in range(500)]
    assert api.post("/api/events", json={"events": events}).json()["count"] == 500
    with store.cursor() as cursor:
        assert cursor.execute("SELECT count(*) FROM events").fetchone()[0] == 500
        assert cursor.execute("SELECT sum(event_count) FROM runs").fetchone()[0] == 500


def test_partial_failure_stores_the_good_events_and_reports_the_bad(api, store):
    response = api.post(
        "/api/events", json={"events": [event(event_id="good"), event(run_id=""), event(data=5)]}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["count"], body["failed"], body["events_received"]) == ("success", 1, 2, 3)
    assert body["errors"] == ["events[1].run_id: required", "events[2].data: must be an object"]
    assert [row["event_id"] for row in stored(store, "run-1")] == ["good"]


def test_a_batch_with_no_storable_event_answers_422(api, store):
    response = api.post("/api/events", json={"events": [event(run_id=None), event(timestamp=12)]})
    assert response.status_code == 422
    body = response.json()
    assert "events[0].run_id: required" in body["detail"]
    assert "events[1].timestamp: must be an ISO 8601 string" in body["detail"]
    assert body["failed"] == 2
    with store.cursor() as cursor:
        assert cursor.execute("SELECT count(*) FROM events").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"{not json", 400, "body is not valid JSON"),
        (b"[1, 2]", 422, "body must be a JSON object"),
        (b'{"events": []}', 422, "events: must not be empty"),
        (orjson.dumps({"events": [{}] * (MAX_EVENTS + 1)}), 422, "at most 10000 events"),
    ],
    ids=["not-json", "not-object", "empty", "too-many"],
)
def test_request_level_errors(api, body, status, detail):
    response = api.post("/api/events", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert detail in response.json()["detail"]


def test_10000_events_in_one_request(api, store):
    events = [event(event_id=f"e{i}", run_id=f"r{i % 100}") for i in range(MAX_EVENTS)]
    assert api.post("/api/events", json={"events": events}).json()["count"] == MAX_EVENTS
    with store.cursor() as cursor:
        assert cursor.execute("SELECT count(*), sum(event_count) FROM runs").fetchone() == (100, MAX_EVENTS)


def test_gzip_body(api, store):
    body = gzip.compress(orjson.dumps({"events": [event(event_id="gz")]}))
    response = api.post(
        "/api/events", content=body, headers={"content-type": "application/json", "content-encoding": "gzip"}
    )
    assert response.json()["count"] == 1
    assert stored(store, "run-1")[0]["event_id"] == "gz"


def test_body_over_the_limit_answers_413(store):
    api = TestClient(create_app(store, max_request_bytes=1000))
    response = api.post("/api/events", json={"events": [event(data={"input": "x" * 2000})]})
    assert response.status_code == 413
    assert "1000 byte limit" in response.json()["detail"]


def test_resent_events_are_stored_once(api, store):
    batch = {"events": [event(event_id="a", data={"cost": 0.5}), event(event_id="b", data={"cost": 0.25})]}
    assert api.post("/api/events", json=batch).json()["count"] == 2
    assert api.post("/api/events", json=batch).json()["count"] == 2
    run = run_row(store, "run-1")
    assert (run["event_count"], run["total_cost"]) == (2, 0.75)


def test_runs_are_created_on_first_sight_and_closed_by_agent_end(api, store):
    api.post("/api/events", json={"events": [event(event_type="agent_start", event_id="s")]})
    assert run_row(store, "run-1")["status"] == "running"
    api.post(
        "/api/events",
        json={"events": [event(event_type="agent_end", event_id="e", timestamp="2024-11-04T10:30:05Z")]},
    )
    run = run_row(store, "run-1")
    assert (run["status"], run["agent_name"], run["end_ns"] - run["start_ns"]) == (
        "completed",
        "my_agent",
        5 * 10**9,
    )


def test_an_error_event_fails_the_run(api, store):
    api.post(
        "/api/events",
        json={
            "events": [
                event(event_type="agent_start", event_id="s"),
                event(event_type="error", event_id="x", data={"error": "rate limited"}),
                event(event_type="agent_end", event_id="e"),
            ]
        },
    )
    run = run_row(store, "run-1")
    assert (run["status"], run["error_count"]) == ("failed", 1)
    assert [r["status_message"] for r in stored(store, "run-1") if r["event_id"] == "x"] == ["rate limited"]


def test_run_without_agent_name_is_unknown(api, store):
    api.post("/api/events", json={"events": [event(agent_name=None)]})
    assert run_row(store, "run-1")["agent_name"] == "unknown"


@pytest.fixture
def stalled_store(tmp_path):
    """A store whose writer never runs, with room for 10 queued rows: the next request overflows."""
    s = Store(tmp_path / "stalled.duckdb", max_queue_rows=10)
    yield s
    s.close()


def test_queue_full_answers_503_with_retry_after(stalled_store):
    api = TestClient(create_app(stalled_store))
    stalled_store.submit(map_events({"events": [event(event_id=f"q{i}") for i in range(10)]}, 0).rows)
    response = api.post("/api/events", json={"events": [event(event_id="late")]})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "queue full" in response.json()["detail"]


def test_closed_store_answers_503(tmp_path):
    s = Store(tmp_path / "closed.duckdb")
    s.start()
    api = TestClient(create_app(s))
    s.close()
    response = api.post("/api/events", json={"events": [event()]})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


def test_openapi_documents_the_batch_format(api):
    operation = api.get("/openapi.json").json()["paths"]["/api/events"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["events"]["maxItems"] == MAX_EVENTS
    assert {"run_id", "event_type", "parent_event_id", "data"} <= set(
        schema["properties"]["events"]["items"]["properties"]
    )
    assert {"200", "422", "503"} <= set(operation["responses"])


# --- end to end: `agent-collector serve` ---------------------------------------------------------


def test_seed_requests_against_the_real_server(collector):
    health = httpx.get(f"{collector.api}/health").json()
    assert_like_seed(health, example("v0_health_response") | {"version": health["version"]})
    assert_like_seed(health, example("v1_health_response"))
    response = httpx.post(f"{collector.api}/api/events", json=example("v1_ingest_request"))
    assert response.status_code == 200
    assert_like_seed(response.json(), example("v1_ingest_response"))
    response = httpx.post(f"{collector.api}/api/events", json=example("v0_ingest_request"))
    assert_like_seed(response.json(), example("v0_ingest_response"))
    run = httpx.get(f"{collector.api}/api/runs/123e4567-e89b-12d3-a456-426614174000").json()
    assert (run["agent_name"], run["tokens_in"], run["tokens_out"], run["total_cost"], run["source"]) == (
        "my_agent",
        100,
        50,
        0.005,
        "gati",
    )

"""The read API (query_api/): GATI endpoints compared with the seeds' examples, run search,
sessions, time series, conventions; and OTLP- and GATI-ingested runs side by side end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from collector.settings import Settings, SettingsError
from query_api.app import create_app
from tests.seed_examples import assert_like_seed, example

T0 = datetime(2024, 11, 4, 10, 30, tzinfo=UTC)
SEED_RUN = "123e4567-e89b-12d3-a456-426614174000"

# DESIGN.md: every trace/timeline node's `data` carries these normalised fields.
CONTRACT_DATA_FIELDS = {"name", "model", "provider", "tokens_in", "tokens_out", "cost", "tool_name", "status",
                        "duration_ms"}


@pytest.fixture
def api(store):
    return TestClient(create_app(store))


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def ev(run_id, event_type, seconds, agent="my_agent", **fields):
    return {
        "run_id": run_id,
        "event_type": event_type,
        "agent_name": agent,
        "timestamp": at(seconds),
        "data": fields.pop("data", {}),
        **fields,
    }


def a_run(
    run_id,
    agent,
    start,
    *,
    events=4,
    cost=0.0,
    tokens=(100, 50),
    duration=10.0,
    end="agent_end",
    model="gpt-4",
    data=None,
):
    """agent_start, one llm_call carrying the run's cost and tokens, steps, and `end` at start+duration."""
    body = [
        ev(run_id, "agent_start", start, agent, event_id=f"{run_id}-start", data=dict(data or {})),
        ev(
            run_id,
            "llm_call",
            start + 1,
            agent,
            event_id=f"{run_id}-llm",
            data={
                "model": model,
                "tokens_in": tokens[0],
                "tokens_out": tokens[1],
                "cost": cost,
                "parent_run_id": f"{run_id}-start",
            },
        ),
    ]
    body += [
        ev(run_id, "step", start + 2, agent, event_id=f"{run_id}-step{i}", data={"step_name": f"step {i}"})
        for i in range(events - 3)
    ]
    if end:
        body.append(ev(run_id, end, start + duration, agent, event_id=f"{run_id}-end"))
    return body


def post(api, events):
    response = api.post("/api/events", json={"events": events})
    assert response.status_code == 200 and response.json()["failed"] == 0, response.text
    return response.json()


# --- GATI endpoints against the seeds' examples ------------------------------------------------


@pytest.fixture
def my_agent(api):
    """The seed's my_agent: its run 123e4567-... (8 events, 5 s, $0.30, production) built on the
    seed's own ingest example, plus four more runs: 5 runs, 42 events, $1.50 in all."""
    post(api, example("v1_ingest_request")["events"])
    post(
        api,
        [
            ev(SEED_RUN, "agent_start", 0, event_id="start", data={"environment": "production"}),
            *[
                ev(
                    SEED_RUN,
                    "tool_call",
                    1 + i,
                    event_id=f"tool-{i}",
                    data={"tool_name": "search", "cost": 0.059},
                )
                for i in range(5)
            ],
            ev(SEED_RUN, "agent_end", 5, event_id="end"),
        ],
    )
    for k, count in enumerate((8, 8, 9, 9), start=1):
        post(api, a_run(f"run-{k}", "my_agent", 60 * k, events=count, cost=0.3))
    return api


def test_agents_list_matches_the_seed(my_agent):
    assert_like_seed(my_agent.get("/api/agents").json(), example("v1_agents_response"))


def test_agent_stats_match_the_seed(my_agent):
    assert_like_seed(my_agent.get("/api/agents/my_agent").json(), example("v1_agent_stats_response"))


def test_run_detail_matches_the_seed(my_agent):
    assert_like_seed(my_agent.get(f"/api/runs/{SEED_RUN}").json(), example("v1_run_response"))


def test_summary_matches_the_seed(api):
    """The seed's summary: 3 agents, 25 runs, 512 events, $7.50, 2,500 / 1,250 tokens, 2.5 hours."""
    runs = [("my_agent", 10, 0.3), ("another_agent", 8, 2.5 / 8), ("third_agent", 7, 2.0 / 7)]
    index = 0
    for agent, count, cost in runs:
        for _ in range(count):
            post(
                api,
                a_run(
                    f"{agent}-{index}",
                    agent,
                    400 * index,
                    events=21 if index < 12 else 20,
                    cost=cost,
                    duration=360,
                ),
            )
            index += 1
    assert_like_seed(api.get("/api/metrics/summary?top=2").json(), example("v1_summary_response"))
    body = api.get("/api/metrics/summary").json()
    assert [a["agent_name"] for a in body["top_agents_by_cost"]] == [
        "my_agent",
        "another_agent",
        "third_agent",
    ]
    assert [a["runs"] for a in body["top_agents_by_runs"]] == [10, 8, 7]
    assert body["avg_tokens_in_per_run"] == 100 and body["avg_tokens_out_per_run"] == 50


def test_trace_matches_the_seed(api):
    seed = example("v1_trace_response")
    events = []

    def flatten(nodes):
        for node in nodes:
            data = {**node.get("data", {}), "parent_run_id": node["parent_run_id"]}
            events.append(
                {
                    "event_id": node["event_id"],
                    "event_type": node["event_type"],
                    "run_id": seed["run_id"],
                    "agent_name": seed["agent_name"],
                    "timestamp": node["timestamp"],
                    "data": data,
                }
            )
            flatten(node["children"])

    flatten(seed["execution_tree"])
    post(api, events)
    trace = api.get(f"/api/runs/{seed['run_id']}/trace").json()
    assert_like_seed(trace, seed)
    llm = trace["execution_tree"][0]["children"][0]
    assert (llm["model"], llm["status"], llm["data"]["status"]) == ("gpt-4", "ok", "completed")


def test_timeline_is_in_time_order_with_contract_fields(my_agent):
    timeline = my_agent.get(f"/api/runs/{SEED_RUN}/timeline").json()
    assert timeline["total_events"] == 8 and len(timeline["events"]) == 8
    stamps = [e["timestamp"] for e in timeline["events"]]
    assert stamps == sorted(stamps) and stamps[0] == "2024-11-04T10:30:00Z"
    assert (timeline["status"], timeline["total_duration_ms"]) == ("completed", 5000)
    tool = next(e for e in timeline["events"] if e["event_id"] == "tool-0")
    assert CONTRACT_DATA_FIELDS <= tool["data"].keys()
    assert (tool["tool_name"], tool["data"]["cost"]) == ("search", 0.059)


def test_root(api):
    body = api.get("/").json()
    assert (body["name"], body["status"], body["docs"]) == ("agent-collector", "running", "/docs")


# --- agents ---------------------------------------------------------------------------------------


def test_agent_runs_paging_and_status(api):
    post(
        api,
        a_run("r-done-1", "bot", 0)
        + a_run("r-done-2", "bot", 100)
        + a_run("r-fail", "bot", 200, end="error")
        + a_run("r-open", "bot", 300, end=None)
        + a_run("other", "someone_else", 400),
    )

    def ids(query):
        return [r["run_id"] for r in api.get(f"/api/agents/bot/runs{query}").json()]

    assert ids("") == ["r-open", "r-fail", "r-done-2", "r-done-1"]
    assert ids("?limit=2") == ["r-open", "r-fail"]
    assert ids("?limit=2&offset=2") == ["r-done-2", "r-done-1"]
    assert ids("?status=failed") == ids("?status=error") == ["r-fail"]
    assert ids("?status=running") == ids("?status=active") == ["r-open"]
    assert ids("?status=completed") == ["r-done-2", "r-done-1"]
    assert api.get("/api/agents/bot/runs?status=bogus").status_code == 400
    assert api.get("/api/agents/bot/runs?limit=1001").status_code == 422
    assert api.get("/api/agents/bot/runs?limit=1000").status_code == 200
    assert api.get("/api/agents/nobody/runs").status_code == 404


def test_agent_metrics(api):
    post(
        api,
        a_run("m1", "bot", 0, cost=1.0, tokens=(10, 20), duration=10)
        + a_run("m2", "bot", 100, cost=2.0, tokens=(30, 40), duration=20)
        + a_run("m3", "bot", 200, cost=3.0, tokens=(50, 60), duration=30, end="error"),
    )
    body = api.get("/api/agents/bot/metrics").json()
    assert (body["agent_name"], body["total_runs"], body["total_events"]) == ("bot", 3, 12)
    assert body["total_cost"] == pytest.approx(6.0) and body["avg_cost_per_run"] == pytest.approx(2.0)
    assert (body["total_tokens_in"], body["total_tokens_out"]) == (90, 120)
    assert (body["avg_tokens_in"], body["avg_tokens_out"]) == (30, 40)
    assert (body["total_duration_ms"], body["avg_duration_ms"], body["p50_duration_ms"]) == (
        60_000,
        20_000,
        20_000,
    )
    assert body["p99_duration_ms"] == pytest.approx(29_800)
    assert (body["completed_runs"], body["failed_runs"], body["running_runs"]) == (2, 1, 0)
    assert body["error_rate"] == pytest.approx(1 / 3)
    assert (body["first_seen_at"], body["last_seen_at"]) == (at(0), at(230))
    assert api.get("/api/agents/nobody/metrics").status_code == 404


def test_agents_from_several_sources_and_unknown(api):
    post(api, a_run("x1", "alpha", 0) + a_run("x2", "beta", 50) + [ev("x3", "agent_start", 60, agent=None)])
    names = [a["name"] for a in api.get("/api/agents").json()]
    assert names == ["unknown", "beta", "alpha"]


def test_names_and_ids_with_slashes_stay_reachable(api):
    post(
        api,
        a_run("tenant/run/7", "crew/researcher", 0, cost=0.5)
        + [
            ev(
                "tenant/run/7",
                "tool_call",
                3,
                "crew/researcher",
                event_id="a/b",
                parent_event_id="tenant/run/7-start",
            ),
        ],
    )
    assert api.get("/api/runs/tenant/run/7").json()["run_id"] == "tenant/run/7"
    assert api.get("/api/runs/tenant/run/7/timeline").json()["total_events"] == 5
    assert (
        api.get("/api/runs/tenant/run/7/trace").json()["execution_tree"][0]["event_id"]
        == "tenant/run/7-start"
    )
    assert api.get("/api/agents/crew/researcher").json()["total_cost"] == 0.5
    assert [r["run_id"] for r in api.get("/api/agents/crew%2Fresearcher/runs").json()] == ["tenant/run/7"]
    assert api.get("/api/agents/crew/researcher/metrics").json()["total_runs"] == 1
    children = api.get("/api/events/tenant/run/7-start/children").json()["children"]
    assert sorted(c["event_id"] for c in children) == ["a/b", "tenant/run/7-llm"]


# --- events ---------------------------------------------------------------------------------------


def test_event_children(api):
    post(
        api,
        [
            ev("c", "agent_start", 0, event_id="root"),
            ev("c", "llm_call", 2, event_id="second", parent_event_id="root"),
            ev("c", "llm_call", 1, event_id="first", parent_event_id="root"),
            ev("c", "tool_call", 3, event_id="grandchild", data={"parent_run_id": "first"}),
        ],
    )
    body = api.get("/api/events/root/children").json()
    assert [c["event_id"] for c in body["children"]] == ["first", "second"]
    assert (body["count"], body["run_ids"]) == (2, ["c"])
    assert [c["event_id"] for c in api.get("/api/events/first/children").json()["children"]] == ["grandchild"]
    assert api.get("/api/events/grandchild/children").json()["count"] == 0
    assert api.get("/api/events/root/children?run_id=other").status_code == 404
    assert api.get("/api/events/missing/children").status_code == 404


def test_event_ids_repeated_across_runs(api):
    post(
        api,
        [
            ev("r1", "agent_start", 0, event_id="same"),
            ev("r1", "llm_call", 1, event_id="a", parent_event_id="same"),
            ev("r2", "agent_start", 5, event_id="same"),
            ev("r2", "llm_call", 6, event_id="b", parent_event_id="same"),
        ],
    )
    assert [c["event_id"] for c in api.get("/api/events/same/children").json()["children"]] == ["a", "b"]
    assert [c["event_id"] for c in api.get("/api/events/same/children?run_id=r2").json()["children"]] == ["b"]


# --- run search -----------------------------------------------------------------------------------


@pytest.fixture
def searchable(api):
    post(
        api,
        a_run(
            "s1",
            "alpha",
            0,
            cost=0.10,
            duration=5,
            model="gpt-4o",
            data={"session_id": "chat-1", "user_id": "ann"},
        ),
    )
    post(
        api,
        a_run(
            "s2",
            "alpha",
            100,
            cost=0.50,
            duration=50,
            model="claude-3-5-haiku",
            data={"session_id": "chat-1", "user_id": "ann"},
        ),
    )
    post(
        api,
        a_run(
            "s3", "beta", 200, cost=1.00, duration=20, model="gpt-4o", end="error", data={"user_id": "bob"}
        ),
    )
    post(api, a_run("s4", "beta", 300, cost=0.00, duration=1, end=None, data={"session_id": "chat-2"}))
    return api


def search(api, query=""):
    response = api.get(f"/api/runs{query}")
    assert response.status_code == 200, response.text
    return [run["run_id"] for run in response.json()["runs"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["s4", "s3", "s2", "s1"]),
        ("?agent=alpha", ["s2", "s1"]),
        ("?status=failed", ["s3"]),
        ("?status=running", ["s4"]),
        ("?model=gpt-4o", ["s3", "s1"]),
        ("?session=chat-1", ["s2", "s1"]),
        ("?user=bob", ["s3"]),
        ("?source=gati", ["s4", "s3", "s2", "s1"]),
        ("?source=otlp", []),
        (f"?since={at(100)}", ["s4", "s3", "s2"]),
        (f"?until={at(200)}", ["s2", "s1"]),
        (f"?since={at(100)}&until={at(300)}", ["s3", "s2"]),
        ("?since=2024-11-04T11:31:40%2B01:00", ["s4", "s3", "s2"]),
        ("?min_cost=0.5", ["s3", "s2"]),
        ("?min_duration_ms=20000", ["s3", "s2"]),
        ("?q=STEP", ["s4", "s3", "s2", "s1"]),
        ("?q=agent_end", ["s2", "s1"]),
        ("?agent=beta&model=gpt-4o&min_cost=0.9", ["s3"]),
        ("?agent=nobody", []),
    ],
)
def test_run_search_filters(searchable, query, expected):
    assert search(searchable, query) == expected


def test_run_search_cursor_pages_through_everything_once(api):
    for i in range(7):
        post(api, a_run(f"p{i}", "pager", 10 * (i // 2)))  # pairs share a start time: run_id breaks the tie
    everything = search(api, "?limit=1000")
    assert everything == ["p6", "p5", "p4", "p3", "p2", "p1", "p0"]
    seen, cursor = [], None
    while True:
        body = api.get("/api/runs", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen += [run["run_id"] for run in body["runs"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == everything


def test_run_search_cursor_with_filters_and_bad_cursor(searchable):
    first = searchable.get("/api/runs?agent=alpha&limit=1").json()
    assert [r["run_id"] for r in first["runs"]] == ["s2"] and first["next_cursor"]
    second = searchable.get(f"/api/runs?agent=alpha&limit=1&cursor={first['next_cursor']}").json()
    assert [r["run_id"] for r in second["runs"]] == ["s1"] and second["next_cursor"] is None
    for bad in ("nonsense", "bm9uc2Vuc2U", "WzEsMl0"):
        response = searchable.get(f"/api/runs?cursor={bad}")
        assert response.status_code == 400 and "cursor" in response.json()["detail"]


# --- sessions -------------------------------------------------------------------------------------


def test_session(searchable):
    body = searchable.get("/api/sessions/chat-1").json()
    assert [r["run_id"] for r in body["runs"]] == ["s1", "s2"]
    assert (body["run_count"], body["agents"], body["user_ids"], body["event_count"]) == (
        2,
        ["alpha"],
        ["ann"],
        8,
    )
    assert body["total_cost"] == pytest.approx(0.6)
    assert (body["started_at"], body["ended_at"]) == (at(0), at(150))
    assert searchable.get("/api/sessions/nope").status_code == 404


# --- time series ----------------------------------------------------------------------------------


@pytest.fixture
def hours(api):
    """Hour 0: alpha runs of 10 s and 30 s (one failed); hour 1: one alpha and one beta run."""
    post(api, a_run("h1", "alpha", 0, duration=10, cost=1.0, tokens=(10, 1)))
    post(api, a_run("h2", "alpha", 600, duration=30, cost=2.0, tokens=(20, 2), end="error", model="gpt-4o"))
    post(api, a_run("h3", "alpha", 3600, duration=20, cost=4.0, tokens=(40, 4)))
    post(api, a_run("h4", "beta", 3700, duration=40, cost=8.0, tokens=(80, 8), model="gpt-4o"))
    return api


def test_timeseries_by_agent(hours):
    body = hours.get("/api/metrics/timeseries?bucket=1h&group_by=agent").json()
    assert (body["bucket_seconds"], body["group_by"], body["latency"]) == (3600, "agent", "run duration")
    series = {s["group"]: s["points"] for s in body["series"]}
    assert set(series) == {"alpha", "beta"}
    hour0, hour1 = series["alpha"]
    assert (hour0["timestamp"], hour1["timestamp"]) == ("2024-11-04T10:00:00Z", "2024-11-04T11:00:00Z")
    assert (hour0["runs"], hour0["events"], hour0["tokens_in"], hour0["tokens_out"]) == (2, 8, 30, 3)
    assert hour0["cost"] == pytest.approx(3.0) and hour0["error_rate"] == pytest.approx(0.5)
    assert (hour0["latency_p50_ms"], hour0["latency_p95_ms"]) == (
        pytest.approx(20_000),
        pytest.approx(29_000),
    )
    assert (hour1["runs"], hour1["error_rate"], hour1["latency_p99_ms"]) == (1, 0.0, 20_000)
    assert [p["cost"] for p in series["beta"]] == [8.0]


def test_timeseries_by_model_and_ungrouped(hours):
    body = hours.get("/api/metrics/timeseries?bucket=1d&group_by=model").json()
    series = {s["group"]: s["points"] for s in body["series"]}
    assert set(series) == {"gpt-4", "gpt-4o"}
    [gpt4o] = series["gpt-4o"]
    assert (gpt4o["runs"], gpt4o["events"], gpt4o["tokens_in"], gpt4o["cost"]) == (2, 2, 100, 10.0)
    assert body["latency"] == "model call duration"
    flat = hours.get("/api/metrics/timeseries?bucket=30m&group_by=none").json()
    [only] = flat["series"]
    assert only["group"] is None
    assert [p["runs"] for p in only["points"]] == [2, 2]
    alpha = hours.get("/api/metrics/timeseries?bucket=1d&group_by=model&agent=beta").json()
    assert [s["group"] for s in alpha["series"]] == ["gpt-4o"]


def test_timeseries_time_range(hours):
    body = hours.get(f"/api/metrics/timeseries?bucket=1h&group_by=none&since={at(3600)}").json()
    assert [(p["timestamp"], p["runs"]) for p in body["series"][0]["points"]] == [("2024-11-04T11:00:00Z", 2)]


@pytest.mark.parametrize("bucket", ["0m", "1w", "h", "-1h", "1.5h"])
def test_timeseries_rejects_bad_buckets(hours, bucket):
    response = hours.get(f"/api/metrics/timeseries?bucket={bucket}")
    assert response.status_code == 400 and "bucket" in response.json()["detail"]


def test_timeseries_refuses_too_many_buckets(hours):
    post(hours, a_run("late", "alpha", 5 * 3600))
    response = hours.get("/api/metrics/timeseries?bucket=1s")
    assert response.status_code == 400 and "at most 10000" in response.json()["detail"]
    assert (
        hours.get("/api/metrics/timeseries?bucket=1s&group_by=model&until=2024-11-04T11:00:00Z").status_code
        == 200
    )


# --- conventions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/nope",
        "/api/runs/nope/timeline",
        "/api/runs/nope/trace",
        "/api/agents/nope",
        "/api/agents/nope/runs",
        "/api/agents/nope/metrics",
        "/api/events/nope/children",
        "/api/sessions/nope",
        "/api/no-such-route",
    ],
)
def test_unknown_ids_answer_404_json(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["detail"], str)


def test_timestamps_are_iso_8601_utc(my_agent):
    run = my_agent.get(f"/api/runs/{SEED_RUN}").json()
    for field in ("created_at", "started_at", "ended_at"):
        assert run[field].endswith("Z")
        assert datetime.fromisoformat(run[field]).utcoffset() == timedelta(0)
    assert run["ended_at"] == "2024-11-04T10:30:05Z"


def test_internal_errors_are_json(tmp_path):
    from collector.store import Store

    store = Store(tmp_path / "gone.duckdb")
    app = create_app(store)
    store.close()
    response = TestClient(app, raise_server_exceptions=False).get("/api/agents")
    assert response.status_code == 500
    assert response.json()["detail"].startswith("internal error")


def test_openapi_documents_every_endpoint_with_a_response_model(api):
    assert api.get("/docs").status_code == 200
    spec = api.get("/openapi.json").json()
    expected = {
        "/": "Root",
        "/health": "Health",
        "/api/agents": "Agent",
        "/api/agents/{name}": "AgentStats",
        "/api/agents/{name}/runs": "Run",
        "/api/agents/{name}/metrics": "AgentMetrics",
        "/api/runs": "RunPage",
        "/api/runs/{run_id}": "Run",
        "/api/runs/{run_id}/timeline": "Timeline",
        "/api/runs/{run_id}/trace": "Trace",
        "/api/events/{event_id}/children": "Children",
        "/api/sessions/{session_id}": "Session",
        "/api/metrics/summary": "Summary",
        "/api/metrics/timeseries": "Timeseries",
    }
    for path, model in expected.items():
        schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert f"#/components/schemas/{model}" in str(schema), path
    assert "/api/sql" in spec["paths"] and "/api/events" in spec["paths"]


# --- CORS -----------------------------------------------------------------------------------------


def preflight(client, origin):
    return client.options("/api/agents", headers={"Origin": origin, "Access-Control-Request-Method": "GET"})


def test_cors_allows_only_configured_origins_with_credentials(store):
    client = TestClient(create_app(store, cors_origins=("http://localhost:3000",)))
    allowed = preflight(client, "http://localhost:3000")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    refused = preflight(client, "http://evil.example")
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers


def test_cors_wildcard_never_allows_credentials(store):
    client = TestClient(create_app(store, cors_origins=("*",)))
    response = client.get("/api/agents", headers={"Origin": "http://anywhere.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


def test_no_cors_headers_by_default(api):
    assert (
        "access-control-allow-origin"
        not in api.get("/api/agents", headers={"Origin": "http://localhost:3000"}).headers
    )


def test_cors_origins_setting():
    env = {"AGENT_COLLECTOR_CORS_ORIGINS": " http://localhost:3000 ,https://app.example.com/,"}
    assert Settings.load(environ=env).cors_origins == ("http://localhost:3000", "https://app.example.com")
    assert Settings.load(environ={}).cors_origins == ()
    assert Settings.load({"cors_origins": "*"}, environ=env).cors_origins == ("*",)
    with pytest.raises(SettingsError, match="AGENT_COLLECTOR_CORS_ORIGINS='localhost:3000'"):
        Settings.load(environ={"AGENT_COLLECTOR_CORS_ORIGINS": "localhost:3000"})


# --- end to end: OTLP and GATI side by side -------------------------------------------------------


def test_otlp_and_gati_runs_side_by_side(collector):
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-service"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector.otlp_http + "/v1/traces"))
    )
    tracer = provider.get_tracer("side-by-side")
    with tracer.start_as_current_span(
        "invoke_agent planner",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "otel_agent",
            "gen_ai.conversation.id": "conv-9",
        },
    ) as root:
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.provider.name": "openai",
                "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 30,
                "gen_ai.usage.cost": 0.25,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "execute_tool search",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
        ) as tool:
            tool.set_status(Status(StatusCode.ERROR, "timeout"))
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    root_id = format(root.get_span_context().span_id, "016x")

    response = httpx.post(f"{collector.api}/api/events", json=example("v1_ingest_request"))
    assert response.json()["count"] == 1

    agents = {a["name"]: a for a in httpx.get(f"{collector.api}/api/agents").json()}
    assert {"otel_agent", "my_agent"} <= agents.keys()
    assert (agents["otel_agent"]["total_events"], agents["otel_agent"]["total_cost"]) == (3, 0.25)

    runs = {r["run_id"]: r for r in httpx.get(f"{collector.api}/api/runs").json()["runs"]}
    assert (runs[trace_id]["source"], runs[trace_id]["agent_name"], runs[trace_id]["status"]) == (
        "otlp",
        "otel_agent",
        "completed",
    )
    assert (runs[SEED_RUN]["source"], runs[SEED_RUN]["agent_name"]) == ("gati", "my_agent")
    assert [r["run_id"] for r in httpx.get(f"{collector.api}/api/runs?source=otlp").json()["runs"]] == [
        trace_id
    ]
    assert [r["run_id"] for r in httpx.get(f"{collector.api}/api/runs?model=gpt-4o").json()["runs"]] == [
        trace_id
    ]
    assert httpx.get(f"{collector.api}/api/sessions/conv-9").json()["agents"] == ["otel_agent"]

    trace = httpx.get(f"{collector.api}/api/runs/{trace_id}/trace").json()
    [node] = trace["execution_tree"]
    assert (node["event_id"], node["event_type"], node["parent_run_id"], node["depth"]) == (
        root_id,
        "agent",
        None,
        1,
    )
    llm, tool_node = node["children"]
    assert (llm["event_type"], llm["parent_run_id"], llm["depth"]) == ("llm_call", root_id, 2)
    assert CONTRACT_DATA_FIELDS | {"gen_ai.request.model"} <= llm["data"].keys()
    assert (llm["data"]["model"], llm["data"]["tokens_in"], llm["data"]["cost"]) == ("gpt-4o", 120, 0.25)
    assert (tool_node["data"]["tool_name"], tool_node["status"]) == ("search", "error")

    summary = httpx.get(f"{collector.api}/api/metrics/summary").json()
    assert (summary["total_agents"], summary["total_runs"], summary["total_events"]) == (2, 2, 4)
    assert summary["total_cost"] == pytest.approx(0.255)

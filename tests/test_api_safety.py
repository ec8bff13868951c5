"""Read API safety: request ids, security headers, rate limits, the SQL endpoint's three guards,
and errors that never carry a stack trace."""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import grpc
import httpx
import pytest
from fastapi.testclient import TestClient
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from collector.auth import ApiKeys
from collector.rate_limit import RateLimiter
from collector.request_id import RequestIdLogFilter
from collector.store import Store
from query_api.app import create_app
from tests.conftest import CollectorProcess, running
from tests.test_receivers import request_with

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


@pytest.fixture
def api(store):
    return TestClient(create_app(store))


# --- request ids ----------------------------------------------------------------------------------


def test_a_request_id_is_generated_when_absent(api):
    first, second = api.get("/api/agents"), api.get("/api/agents")
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123_X.y", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("a b", False),
        ("a\tb", False),
        ("é", False),
        ("", False),
    ],
)
def test_a_clients_request_id_is_echoed_only_when_it_is_a_safe_token(api, sent, kept):
    got = api.get("/api/agents", headers={"X-Request-ID": sent.encode("utf-8")}).headers["x-request-id"]
    assert (got == sent) is kept
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,128}", got)


@pytest.mark.parametrize("path", ["/health", "/api/agents", "/api/runs/nope", "/no/such/path"])
def test_every_response_has_a_request_id_and_security_headers(api, path):
    response = api.get(path)
    assert response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.inline_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            if attrs.get("src"):
                self.scripts.append(attrs["src"])
            else:
                self.inline_script = True
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.styles.append(attrs["href"])


def policy(header: str) -> dict[str, list[str]]:
    return {name: sources for name, *sources in (part.split() for part in header.split(";") if part.strip())}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_keep_working_under_their_csp(api, page):
    response = api.get(page)
    assert response.status_code == 200
    csp = policy(response.headers["content-security-policy"])
    assets = _Assets()
    assets.feed(response.text)
    assert assets.scripts, "the page loads no script: the check below would prove nothing"
    for url, directive in [(u, "script-src") for u in assets.scripts] + [
        (u, "style-src") for u in assets.styles
    ]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "'self'"
        assert origin in csp[directive], (url, csp[directive])
    if assets.inline_script:
        assert "'unsafe-inline'" in csp["script-src"]
    assert csp["default-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert api.get("/openapi.json").headers["content-security-policy"].startswith("default-src 'none'")


# --- errors ---------------------------------------------------------------------------------------


def test_an_unhandled_error_is_a_bare_500_naming_the_request_id_in_the_body_and_the_log(tmp_path, caplog):
    store = Store(tmp_path / "gone.duckdb")
    client = TestClient(create_app(store), raise_server_exceptions=False)
    store.close()
    caplog.handler.addFilter(RequestIdLogFilter())
    with caplog.at_level(logging.ERROR, logger="agent_collector.api"):
        response = client.get("/api/agents", headers={"X-Request-ID": "trace-me-42"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error", "request_id": "trace-me-42"}
    assert "Traceback" not in response.text and "Error" not in response.text
    assert response.headers["x-request-id"] == "trace-me-42"
    logged = [r for r in caplog.records if r.name == "agent_collector.api"]
    assert logged and all(r.request_id == "trace-me-42" for r in logged)
    assert logged[0].exc_info is not None


def test_log_lines_of_the_real_process_carry_the_request_id_field(collector):
    httpx.get(f"{collector.api}/health")
    assert collector.stop() == 0
    lines = [line for line in collector.log_text().splitlines() if " INFO agent_collector" in line]
    assert lines and all(re.search(r" INFO agent_collector\S* \[[^\]]+\] ", line) for line in lines)


# --- rate limits ----------------------------------------------------------------------------------


def test_token_bucket_allows_a_burst_then_the_rate():
    now = [100.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0
    now[0] += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(0.5)


def test_token_bucket_forgets_the_least_recent_client_first():
    limiter = RateLimiter(1, max_clients=2, clock=lambda: 0.0)
    assert limiter.acquire("a") == limiter.acquire("b") == 0.0
    assert limiter.acquire("a") > 0
    assert limiter.acquire("c") == 0.0
    assert limiter.acquire("b") == 0.0, "b was the least recently seen and should have been forgotten"
    assert limiter.acquire("c") > 0, "c was seen recently and should be remembered"


def test_query_rate_limit_is_per_key(store):
    keys = ("key-a", "key-b")
    client = TestClient(create_app(store, api_keys=ApiKeys(keys), query_limiter=RateLimiter(2)))
    a, b = ({"Authorization": f"Bearer {key}"} for key in keys)
    assert [client.get("/api/agents", headers=a).status_code for _ in range(2)] == [200, 200]
    refused = client.get("/api/agents", headers=a)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "rate limit" in refused.json()["detail"] and refused.headers["x-request-id"]
    assert client.get("/api/agents", headers=b).status_code == 200
    assert client.get("/health").status_code == 200


def test_ingest_and_query_have_separate_limits(store):
    client = TestClient(create_app(store, ingest_limiter=RateLimiter(1), query_limiter=RateLimiter(100)))
    events = {"events": [{"run_id": "r", "event_type": "agent_start"}]}
    assert client.post("/api/events", json=events).status_code == 200
    assert client.post("/api/events", json=events).status_code == 429
    assert client.get("/api/agents").status_code == 200


@pytest.fixture(scope="module")
def throttled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("throttled")
    with running(
        CollectorProcess(
            tmp / "c.duckdb", tmp / "c.log", extra_env={"AGENT_COLLECTOR_INGEST_RATE_LIMIT": "1"}
        )
    ) as proc:
        yield proc
        proc.stop()


def test_otlp_http_rate_limit_is_429_with_retry_after(throttled):
    body = request_with([(TRACE, bytes.fromhex("1111111111111111"))]).SerializeToString()
    headers = {"Content-Type": "application/x-protobuf"}
    codes = [httpx.post(f"{throttled.otlp_http}/v1/traces", content=body, headers=headers) for _ in range(3)]
    assert codes[0].status_code == 200
    refused = codes[-1]
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "rate limit" in status_pb2.Status.FromString(refused.content).message


def test_grpc_rate_limit_is_resource_exhausted_with_retry_info(throttled):
    with grpc.insecure_channel(throttled.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        errors = []
        for n in range(3):
            try:
                stub.Export(request_with([(TRACE, (n + 2).to_bytes(8, "big"))]), timeout=10)
            except grpc.RpcError as exc:
                errors.append(exc)
    assert errors and errors[-1].code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    retry = error_details_pb2.RetryInfo.FromString(
        dict(errors[-1].trailing_metadata())["google.rpc.retryinfo-bin"]
    )
    assert 0 < retry.retry_delay.ToTimedelta().total_seconds() <= 1


# --- the SQL endpoint, one guard at a time ---------------------------------------------------------


def sql(client, text):
    return client.post("/api/sql", json={"sql": text})


@pytest.mark.parametrize(
    "text",
    [
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "CALL enable_profiling()",
        "ATTACH ':memory:' AS x",
    ],
)
def test_guard_one_only_a_single_select_is_parsed_through(api, text):
    response = sql(api, text)
    assert response.status_code == 400 and "only SELECT" in response.json()["detail"]


def test_guard_two_a_select_that_writes_fails_in_the_read_only_transaction(store, api):
    with store.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE IF NOT EXISTS probe")
    response = sql(api, "SELECT nextval('probe')")
    assert response.status_code == 400 and "read-only" in response.json()["detail"]
    with store.cursor() as cursor:
        assert cursor.execute("SELECT nextval('probe')").fetchone() == (1,), "the refused SELECT advanced it"


def test_guard_three_no_file_access_even_from_a_select(api, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    assert sql(api, f"SELECT * FROM read_text('{secret}')").status_code == 400
    profile = tmp_path / "profile.json"
    sql(api, f"SELECT * FROM enable_profiling(format='json', save_location='{profile}')")
    sql(api, "SELECT 42")
    assert not profile.exists()


def test_guard_three_cannot_be_turned_back_on(store, api):
    with store.sql_cursor() as cursor, pytest.raises(Exception, match="(?i)external access|lock"):
        cursor.execute("SET enable_external_access = true")
    assert sql(api, "SELECT * FROM glob('/*')").status_code == 400

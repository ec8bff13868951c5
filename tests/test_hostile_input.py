"""Hostile input, table-driven, against one real collector: each case asserts the documented
answer and that /health is still healthy after it. Then a bounded hypothesis fuzz of the OTLP/HTTP
and GATI shim handlers: no input may get a 5xx or take the collector down."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import orjson
import pytest
from google.rpc import status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from agentcollector.v1 import events_pb2
from tests.conftest import CollectorProcess, running
from tests.test_receivers import request_with

MAX_REQUEST = 8 << 20
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
INGEST = "/agentcollector.v1.EventService/Ingest"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    with running(
        CollectorProcess(
            tmp / "c.duckdb", tmp / "c.log", extra_env={"AGENT_COLLECTOR_MAX_REQUEST_BYTES": str(MAX_REQUEST)}
        )
    ) as proc:
        yield proc
        proc.stop()


# --- payload builders ----------------------------------------------------------------------------


def trace_hex(n: int) -> str:
    return f"{0xAB000000 + n:032x}"


def otlp_json(spans: list[dict], resource_attributes: list | None = None) -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": resource_attributes
                        or [{"key": "service.name", "value": {"stringValue": "hostile"}}]
                    },
                    "scopeSpans": [{"scope": {"name": "h"}, "spans": spans}],
                }
            ]
        }
    )


def span(n: int, span_id: str = "1111111111111111", **fields) -> dict:
    return {
        "traceId": trace_hex(n),
        "spanId": span_id,
        "name": f"span-{n}",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
        **fields,
    }


def text_attr(key: str, value: str) -> dict:
    return {"key": key, "value": {"stringValue": value}}


def deep_attribute_span(n: int, depth: int) -> bytes:
    """A span whose one attribute is an array nested `depth` times, written out by hand: JSON
    encoders refuse to go that deep."""
    value = '{"arrayValue": {"values": [' * depth + '{"stringValue": "bottom"}' + "]}}" * depth
    document = otlp_json([span(n, attributes=[{"key": "deep", "value": "PLACEHOLDER"}])]).decode()
    return document.replace('"PLACEHOLDER"', value).encode()


def protobuf_spans(ids: list[tuple[bytes, bytes]]) -> bytes:
    return request_with(ids).SerializeToString()


def ending_at(n: int, end_ns: int) -> bytes:
    request = request_with([(bytes.fromhex(trace_hex(n)), bytes.fromhex("1111111111111111"))])
    request.resource_spans[0].scope_spans[0].spans[0].end_time_unix_nano = end_ns
    return request.SerializeToString()


VALID_PB = protobuf_spans([(bytes.fromhex(trace_hex(40)), bytes.fromhex("1111111111111111"))])
INVALID_UTF8_NAME = (  # ExportTraceServiceRequest > ResourceSpans > ScopeSpans > Span{ids, name=b"\xff"}
    b"\x0a\x2a\x12\x28\x12\x26\x0a\x10"
    + bytes.fromhex(trace_hex(41))
    + b"\x12\x08"
    + bytes.fromhex("1111111111111111")
    + b"\x2a\x02\xc3\x28"
)
GATI_EVENT = {
    "run_id": "hostile-run",
    "event_id": "e1",
    "event_type": "llm_call",
    "timestamp": "2024-11-04T10:30:00Z",
}


def gati(*events: dict) -> bytes:
    return orjson.dumps({"events": list(events)})


# --- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    via: str  # http | grpc | events-grpc | shim | api
    payload: Any = b""
    headers: dict | None = None
    expect: int | str = 200
    message: str = ""
    path: str = "/v1/traces"
    method: str = "POST"


CASES = [
    # OTLP/HTTP, protobuf
    Case("http-pb-empty-body-is-an-empty-export", "http", b"", PROTOBUF, 200),
    Case("http-pb-garbage", "http", b"\xff\xfe\xfd\xfc", PROTOBUF, 400, "invalid OTLP protobuf"),
    Case("http-pb-truncated", "http", VALID_PB[: len(VALID_PB) // 2], PROTOBUF, 400, "invalid OTLP protobuf"),
    Case("http-pb-invalid-utf8-string", "http", INVALID_UTF8_NAME, PROTOBUF, 400, "invalid OTLP protobuf"),
    Case("http-pb-invalid-wire-type", "http", b"\x0f\x00", PROTOBUF, 400, "invalid OTLP protobuf"),
    # OTLP/HTTP, JSON
    Case("http-json-empty-body", "http", b"", JSON, 400, "invalid JSON"),
    Case("http-json-null", "http", b"null", JSON, 400, "must be a JSON object"),
    Case("http-json-array", "http", b"[1, 2]", JSON, 400, "must be a JSON object"),
    Case("http-json-string", "http", b'"resourceSpans"', JSON, 400, "must be a JSON object"),
    Case("http-json-invalid-utf8", "http", b'{"resourceSpans": "\xff\xfe"}', JSON, 400, "invalid JSON"),
    Case(
        "http-json-lone-surrogate",
        "http",
        b'{"resourceSpans": [{"x": "\\ud800"}]}',
        JSON,
        400,
        "invalid JSON",
    ),
    Case("http-json-deeply-nested-document", "http", b"[" * 50_000, JSON, 400, "invalid JSON"),
    Case(
        "http-json-resource-spans-not-a-list", "http", b'{"resourceSpans": 5}', JSON, 400, "must be an array"
    ),
    Case(
        "http-json-span-not-an-object",
        "http",
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [1]}]}]}',
        JSON,
        400,
        "expected an object",
    ),
    Case("http-json-name-is-a-number", "http", otlp_json([span(1, name=5)]), JSON, 400, "invalid OTLP/JSON"),
    Case(
        "http-json-time-overflows-uint64",
        "http",
        otlp_json([span(2, startTimeUnixNano="99999999999999999999999")]),
        JSON,
        400,
        "invalid OTLP/JSON",
    ),
    Case(
        "http-json-time-beyond-int64",
        "http",
        otlp_json([span(14, startTimeUnixNano=str(2**63))]),
        JSON,
        "rejected:1",
    ),
    Case(
        "http-json-zero-trace-id", "http", otlp_json([{**span(3), "traceId": "0" * 32}]), JSON, "rejected:1"
    ),
    Case("http-json-short-span-id", "http", otlp_json([span(4, span_id="abcd")]), JSON, "rejected:1"),
    Case(
        "http-json-non-hex-id", "http", otlp_json([span(5, span_id="zzzzzzzzzzzzzzzz")]), JSON, "rejected:1"
    ),
    Case("http-json-duplicate-spans-stored-once", "http", otlp_json([span(6), span(6)]), JSON, "stored:6:1"),
    Case(
        "http-json-negative-duration",
        "http",
        otlp_json([span(7, startTimeUnixNano="1700000002000000000", endTimeUnixNano="1700000001000000000")]),
        JSON,
        "no-duration:7",
    ),
    Case(
        "http-json-sql-looking-values",
        "http",
        otlp_json([span(8, name="'; DROP TABLE events; --", attributes=[text_attr("q", "1' OR '1'='1")])]),
        JSON,
        "name:8:'; DROP TABLE events; --",
    ),
    Case(
        "http-json-huge-attribute-is-truncated",
        "http",
        otlp_json([span(9, attributes=[text_attr("big", "b" * (3 << 20))])]),
        JSON,
        "truncated:9",
    ),
    Case(
        "http-json-5000-attributes",
        "http",
        otlp_json([span(10, attributes=[text_attr(f"k{i}", "v") for i in range(5000)])]),
        JSON,
        "dropped:10:3976",
    ),
    Case(
        "http-json-attribute-nested-45-deep-is-capped", "http", deep_attribute_span(11, 45), JSON, "capped:11"
    ),
    Case("http-json-attribute-nested-400-deep", "http", deep_attribute_span(13, 400), JSON, 400, "invalid"),
    Case(
        "http-json-attribute-value-wrong-type",
        "http",
        otlp_json([span(12, attributes=[{"key": "x", "value": {"intValue": "not a number"}}])]),
        JSON,
        400,
        "invalid OTLP/JSON",
    ),
    # OTLP/HTTP, transport
    Case(
        "http-gzip-not-gzip", "http", b"plain", {**PROTOBUF, "Content-Encoding": "gzip"}, 400, "invalid gzip"
    ),
    Case(
        "http-gzip-truncated",
        "http",
        gzip.compress(VALID_PB)[:-8],
        {**PROTOBUF, "Content-Encoding": "gzip"},
        400,
        "invalid gzip",
    ),
    Case(
        "http-gzip-bomb",
        "http",
        gzip.compress(b"\0" * (MAX_REQUEST * 4)),
        {**PROTOBUF, "Content-Encoding": "gzip"},
        413,
        "exceeds",
    ),
    Case("http-body-over-the-limit", "http", b"\0" * (MAX_REQUEST + 1), PROTOBUF, 413, "exceeds"),
    Case(
        "http-unknown-encoding",
        "http",
        VALID_PB,
        {**PROTOBUF, "Content-Encoding": "zstd"},
        415,
        "Content-Encoding",
    ),
    Case("http-no-content-type", "http", VALID_PB, {}, 415, "unsupported Content-Type"),
    Case(
        "http-xml-content-type",
        "http",
        b"<spans/>",
        {"Content-Type": "application/xml"},
        415,
        "unsupported Content-Type",
    ),
    Case("http-wrong-method", "http", b"", JSON, 405, "not allowed", method="PUT"),
    Case("http-unknown-path", "http", b"{}", JSON, 404, "no such path", path="/v1/../../etc/passwd"),
    # OTLP/gRPC
    Case("grpc-garbage", "grpc", b"\xff\xff\xff", expect="INVALID_ARGUMENT", message="invalid OTLP protobuf"),
    Case("grpc-invalid-utf8-string", "grpc", INVALID_UTF8_NAME, expect="INVALID_ARGUMENT"),
    Case("grpc-empty-export", "grpc", b"", expect="OK"),
    Case(
        "grpc-zero-and-short-ids",
        "grpc",
        protobuf_spans(
            [(bytes(16), bytes.fromhex("1111111111111111")), (bytes.fromhex(trace_hex(42)), b"\x01")]
        ),
        expect="OK",
        message="rejected:2",
    ),
    Case("grpc-time-beyond-int64", "grpc", ending_at(44, 2**64 - 1), expect="OK", message="rejected:1"),
    Case(
        "grpc-duplicate-spans",
        "grpc",
        protobuf_spans([(bytes.fromhex(trace_hex(43)), bytes.fromhex("1111111111111111"))] * 3),
        expect="OK",
        message="stored:43:1",
    ),
    Case(
        "grpc-over-the-limit",
        "grpc",
        request_with([]).SerializeToString() + b"\x0a\x00" * (MAX_REQUEST // 2 + 1),
        expect="RESOURCE_EXHAUSTED",
    ),
    Case(
        "grpc-unknown-method",
        "grpc",
        b"",
        expect="UNIMPLEMENTED",
        path="/opentelemetry.proto.collector.trace.v1.TraceService/Delete",
    ),
    Case(
        "events-grpc-garbage",
        "events-grpc",
        b"\xff\xff",
        expect="INVALID_ARGUMENT",
        message="invalid protobuf",
    ),
    Case(
        "events-grpc-empty-batch",
        "events-grpc",
        events_pb2.IngestRequest().SerializeToString(),
        expect="INVALID_ARGUMENT",
        message="must not be empty",
    ),
    # GATI shim
    Case("shim-not-json", "shim", b"{nope", JSON, 400, "not valid JSON"),
    Case("shim-invalid-utf8", "shim", b'{"events": ["\xff"]}', JSON, 400, "not valid JSON"),
    Case("shim-deeply-nested", "shim", b'{"events": ' + b"[" * 5000, JSON, 400, "not valid JSON"),
    Case(
        "shim-events-not-a-list", "shim", b'{"events": {"run_id": "x"}}', JSON, 422, "a list of event objects"
    ),
    Case("shim-empty-batch", "shim", b'{"events": []}', JSON, 422, "must not be empty"),
    Case("shim-wrong-types", "shim", gati({"run_id": 5, "event_type": ["x"]}), JSON, 422, "events[0]"),
    Case(
        "shim-bad-timestamp",
        "shim",
        gati({**GATI_EVENT, "timestamp": "yesterday-ish"}),
        JSON,
        422,
        "timestamp",
    ),
    Case(
        "shim-sql-looking-ids",
        "shim",
        gati({**GATI_EVENT, "run_id": "x'); DROP TABLE runs; --", "event_id": "1 OR 1=1"}),
        JSON,
        "gati:x'); DROP TABLE runs; --",
    ),
    Case(
        "shim-token-count-beyond-int64-drops-only-that-field",
        "shim",
        gati({**GATI_EVENT, "data": {"tokens_in": 2**63}}),
        JSON,
        200,
        "Ingested 1 events",
    ),
    Case("shim-duplicate-events", "shim", gati(GATI_EVENT, GATI_EVENT), JSON, 200),
    Case(
        "shim-huge-data",
        "shim",
        gati({**GATI_EVENT, "event_id": "big", "data": {"input": "i" * (2 << 20)}}),
        JSON,
        200,
    ),
    Case(
        "shim-form-content-type",
        "shim",
        b"events=1",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
    ),
    # read API
    Case(
        "api-path-traversal-encoded", "api", expect=404, path="/api/runs/..%2F..%2Fetc%2Fpasswd", method="GET"
    ),
    Case("api-path-traversal-dots", "api", expect=404, path="/api/runs/../../etc/passwd/trace", method="GET"),
    Case("api-nul-in-id", "api", expect=404, path="/api/runs/%00", method="GET"),
    Case("api-sql-looking-run-id", "api", expect=404, path="/api/runs/" + quote("' OR '1'='1"), method="GET"),
    Case(
        "api-sql-looking-agent", "api", expect=404, path="/api/agents/" + quote('x" OR 1=1 --'), method="GET"
    ),
    Case("api-huge-id", "api", expect=404, path="/api/runs/" + "r" * 20_000, method="GET"),
    Case("api-negative-limit", "api", expect=422, path="/api/runs?limit=-1", method="GET"),
    Case("api-limit-not-a-number", "api", expect=422, path="/api/runs?limit=ten", method="GET"),
    Case("api-bad-cursor", "api", expect=400, path="/api/runs?cursor=%27%3B--", method="GET"),
    Case("api-sql-not-a-string", "api", b'{"sql": 5}', JSON, 422, path="/api/sql"),
    Case("api-sql-not-json", "api", b"SELECT 1", {"Content-Type": "text/plain"}, 422, path="/api/sql"),
    Case(
        "api-sql-injection-stacked",
        "api",
        b'{"sql": "SELECT 1; DROP TABLE runs"}',
        JSON,
        400,
        "one statement",
        path="/api/sql",
    ),
    Case("api-head-too-large", "api", expect=431, path="/api/runs?q=" + "a" * 40_000, method="GET"),
    Case("api-wrong-method", "api", expect=405, path="/api/runs", method="DELETE"),
]


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


def grpc_call(target: CollectorProcess, path: str, payload: bytes) -> tuple[str, str, Any]:
    with grpc.insecure_channel(target.grpc_target, options=[("grpc.max_send_message_length", -1)]) as channel:
        call = channel.unary_unary(path)
        try:
            response = call(payload, timeout=30)
        except grpc.RpcError as exc:
            return exc.code().name, exc.details() or "", None
    return "OK", "", response


def run_sql(target: CollectorProcess, text: str) -> list:
    response = httpx.post(f"{target.api}/api/sql", json={"sql": text}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def check_outcome(target: CollectorProcess, outcome: str, body: Any) -> None:
    """Outcomes beyond a status: what was stored, read back through the API."""
    kind, _, arg = outcome.partition(":")
    if kind == "rejected":
        rejected = (
            body["partialSuccess"]["rejectedSpans"]
            if isinstance(body, dict)
            else trace_service_pb2.ExportTraceServiceResponse.FromString(body).partial_success.rejected_spans
        )
        assert int(rejected) == int(arg)
    elif kind == "stored":
        n, count = arg.split(":")
        assert run_sql(target, f"SELECT count(*) FROM events WHERE run_id = '{trace_hex(int(n))}'") == [
            [int(count)]
        ]
        assert run_sql(target, f"SELECT event_count FROM runs WHERE run_id = '{trace_hex(int(n))}'") == [
            [int(count)]
        ]
    elif kind == "no-duration":
        (event,) = httpx.get(f"{target.api}/api/runs/{trace_hex(int(arg))}/timeline").json()["events"]
        assert event["duration_ms"] in (None, 0)
    elif kind == "name":
        n, name = arg.split(":", 1)
        (event,) = httpx.get(f"{target.api}/api/runs/{trace_hex(int(n))}/timeline").json()["events"]
        assert event["name"] == name
        assert run_sql(target, "SELECT count(*) > 0 FROM events") == [[True]]
    elif kind == "truncated":
        rows = run_sql(
            target,
            "SELECT length(attributes->>'big'), (attributes->>'big')[-40:] FROM events "
            f"WHERE run_id = '{trace_hex(int(arg))}'",
        )
        assert rows[0][0] < (3 << 20) and "…[truncated" in rows[0][1]
    elif kind == "capped":
        rows = run_sql(target, f"SELECT attributes FROM events WHERE run_id = '{trace_hex(int(arg))}'")
        assert '"[nested too deep]"' in rows[0][0] and "bottom" not in rows[0][0]
    elif kind == "dropped":
        n, dropped = arg.split(":")
        rows = run_sql(
            target, f"SELECT dropped_attributes_count FROM events WHERE run_id = '{trace_hex(int(n))}'"
        )
        assert rows == [[int(dropped)]]
    elif kind == "gati":
        run = httpx.get(f"{target.api}/api/runs/{quote(arg, safe='')}").json()
        assert run["run_id"] == arg and run["event_count"] == 1
    else:
        raise AssertionError(f"unknown outcome {outcome}")


def send(target: CollectorProcess, case: Case) -> tuple[int | str, str, Any]:
    if case.via in ("grpc", "events-grpc"):
        path = (
            case.path if case.path.startswith("/opentelemetry") else EXPORT if case.via == "grpc" else INGEST
        )
        return grpc_call(target, path, case.payload)
    base = target.otlp_http if case.via == "http" else target.api
    path = "/api/events" if case.via == "shim" else case.path
    response = httpx.request(
        case.method, f"{base}{path}", content=case.payload or None, headers=case.headers or {}, timeout=30
    )
    if response.headers.get("content-type") == "application/x-protobuf":
        body: Any = response.content
        message = (
            status_pb2.Status.FromString(response.content).message if response.status_code != 200 else ""
        )
    else:
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = response.text
        message = json.dumps(body)
    return response.status_code, message, body


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input(target, case):
    status, message, body = send(target, case)
    if isinstance(case.expect, int):
        assert status == case.expect, message
        if case.message:
            assert case.message in message
    elif case.expect in ("OK", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "UNIMPLEMENTED"):
        assert status == case.expect, message
        if case.message and status != "OK":
            assert case.message in message
        elif case.message:
            check_outcome(target, case.message, body)
    else:
        assert status == 200, message
        check_outcome(target, case.expect, body)
    assert httpx.get(f"{target.api}/health", timeout=10).json()["status"] == "healthy"


# --- fuzz ----------------------------------------------------------------------------------------

TRIED = {"otlp-json": 0, "otlp-protobuf": 0, "shim": 0}
OTLP_KEYS = (
    "resourceSpans",
    "scopeSpans",
    "spans",
    "traceId",
    "spanId",
    "parentSpanId",
    "name",
    "kind",
    "startTimeUnixNano",
    "endTimeUnixNano",
    "attributes",
    "key",
    "value",
    "stringValue",
    "intValue",
    "arrayValue",
    "kvlistValue",
    "values",
    "events",
    "links",
    "status",
    "code",
    "resource",
    "scope",
)
GATI_KEYS = (
    "events",
    "run_id",
    "event_id",
    "parent_event_id",
    "event_type",
    "agent_name",
    "timestamp",
    "data",
    "model",
    "tokens_in",
    "tokens_out",
    "cost",
    "latency_ms",
    "status",
    "input",
    "output",
    "tool_name",
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["", "0" * 32, "f" * 16, "2024-11-04T10:30:00Z", "NaN", "1e999"]),
)


def documents(keys: tuple[str, ...]):
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5),
            st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=8)), inner, max_size=6),
        ),
        max_leaves=30,
    )


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=30) as http:
        yield http


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@FUZZ
@given(document=documents(OTLP_KEYS))
def test_fuzz_otlp_http_json(target, client, document):
    TRIED["otlp-json"] += 1
    if not isinstance(document, dict) or document.keys() & {"resourceSpans"} == set():
        document = {"resourceSpans": [{"scopeSpans": [{"spans": [document]}]}]}
    response = client.post(
        f"{target.otlp_http}/v1/traces", content=json.dumps(document).encode(), headers=JSON
    )
    assert response.status_code in (200, 400), response.text


@FUZZ
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda at, junk: VALID_PB[:at] + junk + VALID_PB[at + len(junk) :],
            st.integers(min_value=0, max_value=len(VALID_PB)),
            st.binary(min_size=1, max_size=8),
        ),
    )
)
def test_fuzz_otlp_http_protobuf(target, client, raw):
    TRIED["otlp-protobuf"] += 1
    response = client.post(f"{target.otlp_http}/v1/traces", content=raw, headers=PROTOBUF)
    assert response.status_code in (200, 400), response.text


@FUZZ
@given(
    document=st.one_of(
        documents(GATI_KEYS),
        st.lists(documents(GATI_KEYS), min_size=1, max_size=5).map(lambda e: {"events": e}),
    )
)
def test_fuzz_gati_shim(target, client, document):
    TRIED["shim"] += 1
    response = client.post(f"{target.api}/api/events", content=json.dumps(document).encode(), headers=JSON)
    assert response.status_code in (200, 400, 422), response.text


def test_fuzz_left_the_collector_healthy(target):
    assert httpx.get(f"{target.api}/health").json()["status"] == "healthy"
    print(f"fuzz inputs tried: {TRIED} ({sum(TRIED.values())} in all), no 5xx")
    assert all(TRIED.values()), "the fuzz tests did not run before this check"

"""The OTLP receivers on the wire: partial success, content types, gzip, chunked bodies, limits."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import duckdb
import grpc
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.conftest import CollectorProcess

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")


def request_with(span_ids: list[tuple[bytes, bytes]]) -> trace_service_pb2.ExportTraceServiceRequest:
    request = trace_service_pb2.ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    request.resource_spans[0].resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="partial")))
    for n, (trace_id, span_id) in enumerate(span_ids):
        span = scope.spans.add(trace_id=trace_id, span_id=span_id, name=f"span-{n}",
                               start_time_unix_nano=1_700_000_000_000_000_000 + n,
                               end_time_unix_nano=1_700_000_001_000_000_000)
        span.attributes.append(KeyValue(key="n", value=AnyValue(int_value=n)))
    return request


BAD_BATCH = [
    (TRACE, bytes.fromhex("1111111111111111")),
    (TRACE[:15], bytes.fromhex("2222222222222222")),
    (TRACE, bytes(8)),
    (TRACE, bytes.fromhex("3333333333333333")),
]


def stored_span_ids(collector) -> list[str]:
    run = httpx.get(f"{collector.api}/api/runs/{TRACE.hex()}/timeline").json()
    return sorted(event["event_id"] for event in run["events"])


def test_grpc_partial_success_rejects_only_bad_spans(collector):
    with grpc.insecure_channel(collector.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        response = stub.Export(request_with(BAD_BATCH), timeout=10)
    assert response.partial_success.rejected_spans == 2
    assert "trace_id must be 16 bytes" in response.partial_success.error_message
    assert "span_id must be 8 bytes" in response.partial_success.error_message
    assert stored_span_ids(collector) == ["1111111111111111", "3333333333333333"]


def test_grpc_full_success_has_no_partial_success(collector):
    with grpc.insecure_channel(collector.grpc_target) as channel:
        response = trace_service_pb2_grpc.TraceServiceStub(channel).Export(request_with(BAD_BATCH[:1]), timeout=10)
    assert not response.HasField("partial_success")


def test_http_protobuf_partial_success(collector):
    response = httpx.post(f"{collector.otlp_http}/v1/traces", content=request_with(BAD_BATCH).SerializeToString(),
                          headers={"Content-Type": "application/x-protobuf"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    decoded = trace_service_pb2.ExportTraceServiceResponse.FromString(response.content)
    assert decoded.partial_success.rejected_spans == 2
    assert stored_span_ids(collector) == ["1111111111111111", "3333333333333333"]


def otlp_json(spans: list[dict]) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]},
                               "scopeSpans": [{"scope": {"name": "manual"}, "spans": spans}],
                               "someFutureField": {"ignored": True}}]}


def test_http_json_hex_ids_int64_strings_enum_ints_unknown_fields(collector):
    spans = [
        {"traceId": TRACE.hex(), "spanId": "1111111111111111", "name": "root", "kind": 1,
         "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": 1700000002000000000,
         "status": {"code": 2, "message": "boom"}, "unknownSpanField": 1,
         "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
                        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                        {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 3}]}}}]},
        {"traceId": "not-hex-at-all", "spanId": "2222222222222222", "name": "bad"},
    ]
    response = httpx.post(f"{collector.otlp_http}/v1/traces", json=otlp_json(spans))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["partialSuccess"]["rejectedSpans"] in ("1", 1)
    run = httpx.get(f"{collector.api}/api/runs/{TRACE.hex()}").json()
    assert run["status"] == "failed" and run["tokens_in"] == 42 and run["total_duration_ms"] == 2000
    (node,) = httpx.get(f"{collector.api}/api/runs/{TRACE.hex()}/trace").json()["execution_tree"]
    assert node["event_type"] == "llm_call" and node["data"]["tags"] == ["a", 3]


def test_http_gzip_chunked_body_without_content_length(collector):
    body = gzip.compress(request_with(BAD_BATCH[:1]).SerializeToString())

    def chunks():
        for i in range(0, len(body), 7):
            yield body[i:i + 7]

    response = httpx.post(f"{collector.otlp_http}/v1/traces", content=chunks(),
                          headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert stored_span_ids(collector) == ["1111111111111111"]


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({"Content-Type": "text/plain"}, b"hello", 415, "unsupported Content-Type"),
        ({"Content-Type": "application/x-protobuf"}, b"\xff\xff\xff", 400, "invalid OTLP protobuf"),
        ({"Content-Type": "application/json"}, b"{nope", 400, "invalid JSON"),
        ({"Content-Type": "application/json"}, b"[1,2]", 400, "must be a JSON object"),
        ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, b"not gzip", 400, "invalid gzip"),
        ({"Content-Type": "application/json", "Content-Encoding": "br"}, b"{}", 415, "Content-Encoding"),
        ({"Content-Type": "application/json", "Content-Encoding": "gzip"},
         gzip.compress(b" " * (65 * 1024 * 1024)), 413, "exceeds"),
    ],
)
def test_http_bad_requests_get_a_clear_error(collector, headers, body, status, message):
    response = httpx.post(f"{collector.otlp_http}/v1/traces", content=body, headers=headers)
    assert response.status_code == status
    assert message in error_message(response)
    assert httpx.get(f"{collector.api}/health").json()["status"] == "healthy"


def error_message(response: httpx.Response) -> str:
    if response.headers["content-type"] == "application/x-protobuf":
        return status_pb2.Status.FromString(response.content).message
    return response.json()["message"]


def test_http_error_body_is_a_status_in_the_request_content_type(collector):
    response = httpx.post(f"{collector.otlp_http}/v1/traces", content=b"\xff\xff",
                          headers={"Content-Type": "application/x-protobuf"})
    assert response.status_code == 400
    assert "invalid OTLP protobuf" in status_pb2.Status.FromString(response.content).message


def test_wrong_method_is_405(collector):
    assert httpx.get(f"{collector.otlp_http}/v1/traces").status_code == 405


@pytest.mark.parametrize("signal_path", ["/v1/metrics", "/v1/logs"])
def test_other_signals_are_accepted(collector, signal_path):
    response = httpx.post(f"{collector.otlp_http}{signal_path}", content=b"",
                          headers={"Content-Type": "application/x-protobuf"})
    assert response.status_code == 200


def test_second_collector_cannot_share_the_grpc_port(collector, tmp_path):
    other = CollectorProcess(tmp_path / "other.duckdb", tmp_path / "other.log")
    other.grpc_port = collector.grpc_port
    with pytest.raises(RuntimeError, match="cannot bind OTLP/gRPC"):
        other.start(timeout=20)


def test_locked_database_fails_fast_with_a_clear_message(collector):
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "serve", "--db", str(collector.db), "--grpc-port", "0",
         "--http-port", "0", "--api-port", "0"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert "locked by another process" in result.stderr


def test_analysts_read_the_file_with_plain_duckdb(collector):
    httpx.post(f"{collector.otlp_http}/v1/traces", content=request_with(BAD_BATCH[:1]).SerializeToString(),
               headers={"Content-Type": "application/x-protobuf"})
    assert collector.stop() == 0
    with duckdb.connect(str(collector.db), read_only=True) as con:
        rows = con.sql('SELECT "TraceId", "SpanId", "ServiceName", "SpanAttributes" FROM spans').fetchall()
    assert rows == [(TRACE.hex(), "1111111111111111", "partial", json.dumps({"n": 0}, separators=(",", ":")))]

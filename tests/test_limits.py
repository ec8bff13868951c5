"""Limits before work: attribute caps in the mapping, the byte bound in the Ingestor, request
sizes on the wire and while inflating (HTTP and gRPC), header size, slow clients, and the
status each refusal answers."""

from __future__ import annotations

import gzip
import socket
import time

import grpc
import httpx
import orjson
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from collector.ingest import Ingestor, approx_bytes
from collector.map_otlp import Limits, map_request
from collector.store import Overloaded, Store
from tests.conftest import CollectorProcess, running
from tests.test_receivers import request_with

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SMALL = Limits(max_attributes=3, max_chars=32, max_depth=2)


def one_span(**span_fields) -> trace_service_pb2.ExportTraceServiceRequest:
    request = request_with([(TRACE, bytes.fromhex("b7ad6b7169203331"))])
    span = request.resource_spans[0].scope_spans[0].spans[0]
    del span.attributes[:]
    for name, value in span_fields.items():
        if name == "attributes":
            span.attributes.extend(value)
        else:
            setattr(span, name, value)
    return request


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def text(value: str) -> AnyValue:
    return AnyValue(string_value=value)


def mapped(request, limits=SMALL):
    (row,) = map_request(request, 1, limits).rows
    return row, orjson.loads(row.attributes)


# --- mapping caps (pure) --------------------------------------------------------------------------


def test_attributes_past_the_count_are_dropped_and_counted():
    request = one_span(
        attributes=[kv(f"k{i}", AnyValue(int_value=i)) for i in range(5)], dropped_attributes_count=2
    )
    row, attrs = mapped(request)
    assert attrs == {"k0": 0, "k1": 1, "k2": 2}
    assert row.dropped_attributes_count == 2 + 2


def test_long_values_keys_and_names_are_cut_and_marked():
    request = one_span(
        name="n" * 40,
        attributes=[
            kv("short", text("x" * 32)),
            kv("long", text("y" * 40)),
            kv("K" * 34, AnyValue(int_value=1)),
        ],
    )
    row, attrs = mapped(request)
    assert attrs == {
        "short": "x" * 32,
        "long": "y" * 32 + "…[truncated 8 chars]",
        "K" * 32 + "…[truncated 2 chars]": 1,
    }
    assert row.name == "n" * 32 + "…[truncated 8 chars]"


def test_arrays_maps_bytes_and_depth_are_bounded():
    deep = text("bottom")
    for _ in range(4):
        deep = AnyValue(array_value=ArrayValue(values=[deep]))
    request = one_span(
        attributes=[
            kv("list", AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=i) for i in range(5)]))),
            kv(
                "map",
                AnyValue(kvlist_value=KeyValueList(values=[kv(f"m{i}", text("z" * 33)) for i in range(4)])),
            ),
            kv("deep", deep),
        ]
    )
    _, attrs = mapped(request)
    assert attrs["list"] == [0, 1, 2, "…[truncated 2 items]"]
    assert attrs["map"] == {
        "m0": "z" * 32 + "…[truncated 1 chars]",
        "m1": "z" * 32 + "…[truncated 1 chars]",
        "m2": "z" * 32 + "…[truncated 1 chars]",
        "…": "[truncated 1 entries]",
    }
    assert attrs["deep"] == [["[nested too deep]"]]
    bytes_request = one_span(attributes=[kv("blob", AnyValue(bytes_value=b"\x00" * 30))])
    assert mapped(bytes_request)[1]["blob"] == "A" * 32 + "…[truncated 8 chars]"


def test_strings_are_measured_only_in_a_long_document():
    """One long value among short ones is still cut: the document holding it is long too."""
    request = one_span(attributes=[kv("a", text("s")), kv("b", text("t" * 33)), kv("c", text("u"))])
    assert mapped(request)[1] == {"a": "s", "b": "t" * 32 + "…[truncated 1 chars]", "c": "u"}


def test_span_event_and_link_attributes_are_capped_too():
    request = one_span(attributes=[])
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.events.add(name="e", attributes=[kv(f"e{i}", text("v")) for i in range(4)])
    span.links.add(
        trace_id=TRACE,
        span_id=bytes.fromhex("1111111111111111"),
        attributes=[kv(f"l{i}", text("v")) for i in range(5)],
    )
    row, _ = mapped(request)
    (event,) = orjson.loads(row.span_events)
    (link,) = orjson.loads(row.links)
    assert (len(event["attributes"]), event["dropped_attributes_count"]) == (3, 1)
    assert (len(link["attributes"]), link["dropped_attributes_count"]) == (3, 2)


def test_default_limits_keep_ordinary_spans_whole():
    request = one_span(attributes=[kv("gen_ai.input.messages", text("m" * 100_000))])
    _, attrs = mapped(request, Limits())
    assert attrs["gen_ai.input.messages"] == "m" * 100_000


# --- byte bound (real store) ----------------------------------------------------------------------


def test_byte_bound_refuses_while_earlier_batches_are_in_flight(tmp_path):
    store = Store(tmp_path / "b.duckdb")
    ingestor = Ingestor(store, max_queue_bytes=1)
    first = request_with([(TRACE, (i + 1).to_bytes(8, "big")) for i in range(10)])
    batch, future = ingestor.begin_otlp(first)
    assert ingestor.bytes_in_flight == approx_bytes(batch.rows) > 10 * 256
    with pytest.raises(Overloaded, match="ingest queue full"):
        ingestor.begin_otlp(request_with([(TRACE, bytes.fromhex("2222222222222222"))]))
    store.start()
    future.result(10)
    assert ingestor.bytes_in_flight == 0
    assert ingestor.export_otlp(request_with([(TRACE, bytes.fromhex("2222222222222222"))]), 10).stored == 1
    store.close()


# --- on the wire ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A collector with a 1 MiB request limit, 8 KiB headers and a 1 s request deadline."""
    tmp = tmp_path_factory.mktemp("limits")
    with running(
        CollectorProcess(
            tmp / "c.duckdb",
            tmp / "c.log",
            extra_env={
                "AGENT_COLLECTOR_MAX_REQUEST_BYTES": str(1 << 20),
                "AGENT_COLLECTOR_MAX_HEADER_BYTES": "8192",
                "AGENT_COLLECTOR_REQUEST_TIMEOUT": "1",
            },
        )
    ) as proc:
        yield proc
        proc.stop()


def healthy(proc) -> bool:
    return httpx.get(f"{proc.api}/health", timeout=5).json()["status"] == "healthy"


def big_request(chars: int) -> trace_service_pb2.ExportTraceServiceRequest:
    return one_span(attributes=[kv("padding", text("a" * chars))])


def test_grpc_message_over_the_limit_is_resource_exhausted(small):
    with grpc.insecure_channel(small.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Export(big_request(2 << 20), timeout=10)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert healthy(small)


def test_grpc_gzip_bomb_is_refused_after_inflating_at_most_the_limit(small):
    bomb = big_request(64 << 20)
    with grpc.insecure_channel(small.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Export(bomb, timeout=30, compression=grpc.Compression.Gzip)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in raised.value.details()
    assert healthy(small)


def test_grpc_bad_protobuf_is_invalid_argument(small):
    with grpc.insecure_channel(small.grpc_target) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as raised:
            export(b"\xff\xff\xff\xff", timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid OTLP protobuf" in raised.value.details()


def test_http_gzip_bomb_is_413(small):
    body = gzip.compress(big_request(64 << 20).SerializeToString())
    assert len(body) < 1 << 20
    response = httpx.post(
        f"{small.otlp_http}/v1/traces",
        content=body,
        timeout=30,
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413
    assert "exceeds the 1048576 byte limit" in status_pb2.Status.FromString(response.content).message
    assert healthy(small)


@pytest.mark.parametrize("base", ["otlp_http", "api"])
@pytest.mark.parametrize(("size", "status"), [(16_000, 431), (400_000, 400)], ids=["whole", "streamed"])
def test_oversized_request_head_is_refused(small, base, size, status):
    """A head that arrives in one read is measured by HttpGuard (431); one still arriving past the
    limit is cut off by h11 (400, and the connection closed, so the client may see only a reset)."""
    try:
        response = httpx.get(f"{getattr(small, base)}/health", headers={"X-Padding": "p" * size}, timeout=5)
    except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
        assert status == 400
    else:
        assert response.status_code == status
    assert healthy(small)


def raw_exchange(port: int, payload: bytes, wait: float) -> tuple[bytes, float]:
    """Send `payload` and keep the socket open; returns what came back and when the server closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(payload)
        started = time.monotonic()
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except TimeoutError:
            return received, float("inf")
        return received, time.monotonic() - started


@pytest.mark.parametrize(
    "payload",
    [
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Ty",
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        b"",
    ],
    ids=["slow-headers", "slow-body", "silent"],
)
def test_slow_clients_are_disconnected_at_the_request_timeout(small, payload):
    received, closed_after = raw_exchange(small.http_port, payload, wait=10)
    assert closed_after < 5, "the server kept a slow client's connection open"
    assert b"200 OK" not in received
    assert healthy(small)


def test_wrong_method_and_path_answer_a_status_with_a_message(small):
    wrong_method = httpx.get(f"{small.otlp_http}/v1/traces", headers={"Content-Type": "application/json"})
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["message"] == "method GET not allowed; use POST"
    unknown = httpx.post(
        f"{small.otlp_http}/v2/traces", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert unknown.status_code == 404 and "POST /v1/traces" in unknown.json()["message"]


def test_shim_refuses_other_content_types_with_415(small):
    response = httpx.post(
        f"{small.api}/api/events",
        content=b"events=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]

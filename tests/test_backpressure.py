"""Backpressure instead of memory growth: a full queue answers UNAVAILABLE with RetryInfo (gRPC) or
503 with Retry-After (HTTP); the real OpenTelemetry exporters retry it and every span they were
refused arrives; and at 5x overload the collector's memory stays under a cap."""

from __future__ import annotations

import logging
import threading
import time

import duckdb
import grpc
import httpx
import psutil
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import CollectorProcess
from tests.test_receivers import request_with

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def sdk_spans(batches: int, size: int) -> list[list]:
    """Real SDK spans, finished and grouped as a BatchSpanProcessor would hand them to an exporter."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "backpressure"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for _ in range(batches * size):
        with tracer.start_as_current_span("work") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("payload", "x" * 200)
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    return [spans[i : i + size] for i in range(0, len(spans), size)]


def stored_ids(db) -> set[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return set(con.sql("SELECT run_id, event_id FROM events").fetchall())


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_real_exporters_retry_a_full_queue_and_everything_arrives(tmp_path, caplog, spawn, transport):
    # Room for two or three 50-span batches in flight (~35 KB each): eight exporters starting
    # together overflow it, and so do their retries now and then.
    collector = spawn(
        CollectorProcess(
            tmp_path / "c.duckdb",
            tmp_path / "c.log",
            extra_env={
                "AGENT_COLLECTOR_MAX_QUEUE_SPANS": "100",
                "AGENT_COLLECTOR_MAX_QUEUE_BYTES": "100000",
            },
        )
    )
    batches = sdk_spans(batches=24, size=50)
    results: list[SpanExportResult] = []
    start = threading.Barrier(8)

    def send(worker: int) -> None:
        # One exporter per sender, as eight processes each with a BatchSpanProcessor would have:
        # an exporter is not meant to be called from several threads at once.
        if transport == "grpc":
            exporter = GrpcExporter(endpoint=collector.grpc_target, insecure=True, timeout=20)
        else:
            exporter = HttpExporter(endpoint=f"{collector.otlp_http}/v1/traces", timeout=20)
        start.wait()
        for batch in batches[worker::8]:
            results.append(exporter.export(batch))
        exporter.shutdown()

    caplog.set_level(logging.WARNING)
    threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert collector.stop() == 0

    retries = [r for r in caplog.records if "Transient error" in r.getMessage()]
    assert retries, "no export was refused: the queue bound was never hit"
    assert any(
        ("Service Unavailable" in r.getMessage()) or ("UNAVAILABLE" in r.getMessage()) for r in retries
    )
    assert results == [SpanExportResult.SUCCESS] * len(batches)
    sent = {
        (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")) for b in batches for s in b
    }
    assert stored_ids(collector.db) == sent


def wide_request(batch_no: int, spans: int, attribute_bytes: int) -> bytes:
    trace_id = (batch_no + 1).to_bytes(16, "big")
    request = request_with([(trace_id, (i + 1).to_bytes(8, "big")) for i in range(spans)])
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.attributes.add(key="payload").value.string_value = f"{batch_no}:" + "p" * attribute_bytes
    return request.SerializeToString()


def test_memory_stays_under_the_cap_at_5x_overload(tmp_path, spawn):
    queue_bytes, duckdb_bytes = 3 << 20, 64 << 20
    collector = spawn(
        CollectorProcess(
            tmp_path / "c.duckdb",
            tmp_path / "c.log",
            extra_env={
                "AGENT_COLLECTOR_MAX_QUEUE_BYTES": str(queue_bytes),
                "AGENT_COLLECTOR_MEMORY_LIMIT": f"{duckdb_bytes >> 20}MiB",
                "AGENT_COLLECTOR_CHECKPOINT_THRESHOLD": "16MB",
                "AGENT_COLLECTOR_MAX_REQUEST_BYTES": str(4 << 20),
            },
        )
    )
    server = psutil.Process(collector.proc.pid)
    body = wide_request(0, 500, 2000)
    with grpc.insecure_channel(collector.grpc_target) as channel:
        channel.unary_unary(EXPORT)(body, timeout=30)
    idle_rss = server.memory_info().rss
    senders = 16
    # The cap, from the configuration: the resting process; DuckDB's buffer pool, twice (a checkpoint
    # compresses row groups outside it); each concurrent call's message 12 times (gRPC's receive
    # buffers, Python's copy, the parsed message, rows and Arrow, and the allocator arenas of the
    # thread serving it: ~10x measured on this machine); the queue bound 8 times; 64 MiB of slack.
    cap = idle_rss + 2 * duckdb_bytes + senders * 12 * len(body) + 8 * queue_bytes + (64 << 20)

    bodies = [wide_request(n, 500, 2000) for n in range(1, senders * 60)]
    assert senders * len(body) >= 5 * queue_bytes * 0.9, "offered load in flight is not 5x the queue bound"
    peak = [0]
    attempts, accepted, refused = [0], [0], [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], server.memory_info().rss)
            time.sleep(0.01)

    def send(worker: int) -> None:
        with grpc.insecure_channel(collector.grpc_target) as channel:
            export = channel.unary_unary(EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
            for body in bodies[worker::senders]:
                if stop.is_set():
                    return
                attempts[0] += 1
                try:
                    export(body, timeout=30)
                    accepted[0] += 1
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
                    refused[0] += 1

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=send, args=(w,)) for w in range(senders)]
    for thread in threads:
        thread.start()
    time.sleep(8)
    stop.set()
    for thread in threads:
        thread.join()
    sampler.join()
    health = httpx.get(f"{collector.api}/health", timeout=10).json()
    assert collector.stop() == 0
    print(
        f"idle {idle_rss >> 20} MiB, peak {peak[0] >> 20} MiB, cap {cap >> 20} MiB; "
        f"{attempts[0]} attempts, {accepted[0]} accepted, {refused[0]} refused"
    )
    assert refused[0] >= 4 * accepted[0], "the collector was not overloaded 5x"
    assert peak[0] < cap
    assert health["status"] == "healthy"

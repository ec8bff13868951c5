"""Acknowledged means durable: kill -9 after acknowledgement loses nothing; SIGTERM drains."""

from __future__ import annotations

import signal
import threading

import duckdb
import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from tests.conftest import CollectorProcess
from tests.test_receivers import request_with


def spans_batch(batch_no: int, size: int):
    trace_id = batch_no.to_bytes(16, "big")
    return request_with([(trace_id, (batch_no * 10_000 + i + 1).to_bytes(8, "big")) for i in range(size)])


def count_stored(db) -> tuple[int, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        events = con.sql("SELECT count(*) FROM events").fetchone()[0]
        in_runs = con.sql("SELECT coalesce(sum(event_count), 0) FROM runs").fetchone()[0]
    return events, in_runs


def test_acknowledged_spans_survive_kill_9(tmp_path):
    db = tmp_path / "c.duckdb"
    acknowledged = 0
    for cycle in range(3):
        collector = CollectorProcess(db, tmp_path / "c.log").start()
        with grpc.insecure_channel(collector.grpc_target) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            for batch in range(5):
                stub.Export(spans_batch(cycle * 100 + batch + 1, 200), timeout=30)
                acknowledged += 200
        assert collector.stop(signal.SIGKILL) == -signal.SIGKILL
        assert count_stored(db) == (acknowledged, acknowledged)


def test_sigterm_drains_in_flight_exports_and_exits_0(tmp_path):
    db = tmp_path / "c.duckdb"
    collector = CollectorProcess(db, tmp_path / "c.log").start()
    acknowledged = []
    failures = []
    started = threading.Barrier(5)

    def send(worker: int) -> None:
        with grpc.insecure_channel(collector.grpc_target) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            started.wait()
            for batch in range(50):
                try:
                    stub.Export(spans_batch(worker * 1000 + batch + 1, 500), timeout=30)
                except grpc.RpcError as exc:
                    failures.append(exc.code())
                    return
                acknowledged.append(500)

    workers = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    started.wait()
    while len(acknowledged) < 8:
        threading.Event().wait(0.01)
    assert collector.stop(signal.SIGTERM) == 0
    for worker in workers:
        worker.join()
    assert "drained and closed" in collector.log_text()
    assert set(failures) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, failures
    stored, in_runs = count_stored(db)
    assert stored >= sum(acknowledged) and stored == in_runs

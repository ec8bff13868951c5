"""Acknowledged means durable: kill -9 after acknowledgement loses nothing; SIGTERM drains."""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import threading
import time
from typing import Self

import duckdb
import grpc
import httpx
import pytest
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


def test_acknowledged_spans_survive_kill_9(tmp_path, spawn):
    db = tmp_path / "c.duckdb"
    acknowledged = 0
    for cycle in range(3):
        collector = spawn(CollectorProcess(db, tmp_path / "c.log"))
        with grpc.insecure_channel(collector.grpc_target) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            for batch in range(5):
                stub.Export(spans_batch(cycle * 100 + batch + 1, 200), timeout=30)
                acknowledged += 200
        assert collector.stop(signal.SIGKILL) == -signal.SIGKILL
        assert count_stored(db) == (acknowledged, acknowledged)


def test_sigterm_drains_in_flight_exports_and_exits_0(tmp_path, spawn):
    db = tmp_path / "c.duckdb"
    collector = spawn(CollectorProcess(db, tmp_path / "c.log"))
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


# --- kill -9 under concurrent load, on every ingest path ------------------------------------------


def stored_keys(db) -> set[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return set(con.sql("SELECT run_id, event_id FROM events").fetchall())


class Load:
    """Senders on OTLP/gRPC, OTLP/HTTP and the GATI shim, each recording what was acknowledged."""

    def __init__(self, collector: CollectorProcess, cycle: int) -> None:
        self.collector = collector
        self.cycle = cycle
        self.acknowledged: set[tuple[str, str]] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=target, args=(n,)) for n, target in
                        enumerate((self.grpc, self.grpc, self.http, self.shim))]

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def acked(self, keys) -> None:
        with self.lock:
            self.acknowledged.update(keys)

    def batches(self, sender: int):
        batch = 0
        while not self.stop.is_set():
            batch += 1
            yield (self.cycle * 100 + sender) * 100_000 + batch

    def otlp(self, batch_no: int):
        request = spans_batch(batch_no, 100)
        keys = {(s.trace_id.hex(), s.span_id.hex()) for s in request.resource_spans[0].scope_spans[0].spans}
        return request, keys

    def grpc(self, sender: int) -> None:
        with grpc.insecure_channel(self.collector.grpc_target) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            for batch_no in self.batches(sender):
                request, keys = self.otlp(batch_no)
                try:
                    stub.Export(request, timeout=10)
                except grpc.RpcError:
                    continue
                self.acked(keys)

    def http(self, sender: int) -> None:
        with httpx.Client(timeout=10) as client:
            for batch_no in self.batches(sender):
                request, keys = self.otlp(batch_no)
                try:
                    response = client.post(f"{self.collector.otlp_http}/v1/traces", content=request.SerializeToString(),
                                           headers={"Content-Type": "application/x-protobuf"})
                except httpx.HTTPError:
                    continue
                if response.status_code == 200:
                    self.acked(keys)

    def shim(self, sender: int) -> None:
        with httpx.Client(timeout=10) as client:
            for batch_no in self.batches(sender):
                events = [{"run_id": f"gati-{batch_no}", "event_id": f"e{i}", "event_type": "llm_call",
                           "timestamp": "2024-11-04T10:30:00Z"} for i in range(50)]
                try:
                    response = client.post(f"{self.collector.api}/api/events", json={"events": events})
                except httpx.HTTPError:
                    continue
                if response.status_code == 200:
                    self.acked({(e["run_id"], e["event_id"]) for e in events})


def test_ten_kill_9_cycles_under_concurrent_load_lose_no_acknowledged_span(tmp_path, spawn):
    db = tmp_path / "c.duckdb"
    acknowledged: set[tuple[str, str]] = set()
    for cycle in range(10):
        collector = spawn(CollectorProcess(db, tmp_path / "c.log"))
        with Load(collector, cycle) as load:
            deadline = time.monotonic() + 10
            while len(load.acknowledged) < 1000 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert collector.stop(signal.SIGKILL) == -signal.SIGKILL
        acknowledged |= load.acknowledged
        stored = stored_keys(db)
        lost = acknowledged - stored
        assert not lost, f"cycle {cycle}: {len(lost)} acknowledged spans lost"
    events, in_runs = count_stored(db)
    assert events == in_runs == len(stored)
    print(f"10 kill -9 cycles: {len(acknowledged)} acknowledged, 0 lost, {events} stored")


# --- disk full ------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 32 MiB tmpfs: the real ENOSPC, then room again. Needs root (or CAP_SYS_ADMIN)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(path) -> None:
    with open(path, "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * (1 << 16))
                filler.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_disk_full_answers_retryable_errors_never_success_and_recovers(small_disk, tmp_path, spawn):
    db = small_disk / "c.duckdb"
    collector = spawn(CollectorProcess(db, tmp_path / "c.log"))
    acknowledged: set[tuple[str, str]] = set()
    outcomes: list[str] = []
    batch_no = 0

    def send_grpc(stub) -> str:
        nonlocal batch_no
        batch_no += 1
        request = spans_batch(batch_no, 200)
        try:
            stub.Export(request, timeout=10)
        except grpc.RpcError as exc:
            return exc.code().name
        acknowledged.update((s.trace_id.hex(), s.span_id.hex()) for s in request.resource_spans[0].scope_spans[0].spans)
        return "OK"

    def send_http() -> int:
        nonlocal batch_no
        batch_no += 1
        request = spans_batch(batch_no, 200)
        response = httpx.post(f"{collector.otlp_http}/v1/traces", content=request.SerializeToString(),
                              headers={"Content-Type": "application/x-protobuf"}, timeout=10)
        if response.status_code == 200:
            acknowledged.update((s.trace_id.hex(), s.span_id.hex())
                                for s in request.resource_spans[0].scope_spans[0].spans)
        else:
            assert response.headers["retry-after"]
        return response.status_code

    with grpc.insecure_channel(collector.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        assert send_grpc(stub) == "OK"
        fill(small_disk / "filler")
        for _ in range(10):
            outcomes.append(send_grpc(stub))
            outcomes.append(str(send_http()))
        (small_disk / "filler").unlink()
        recovered = [send_grpc(stub), str(send_http())]
    assert set(outcomes) <= {"OK", "200", "UNAVAILABLE", "503"}, outcomes
    assert {"UNAVAILABLE", "503"} <= set(outcomes), f"a full disk never refused a batch: {outcomes}"
    assert recovered == ["OK", "200"]
    assert httpx.get(f"{collector.api}/health").json()["status"] == "healthy"
    assert collector.stop(signal.SIGKILL) == -signal.SIGKILL
    assert acknowledged <= stored_keys(db)
    restarted = spawn(CollectorProcess(db, tmp_path / "c2.log"))
    assert restarted.stop() == 0
    assert acknowledged <= stored_keys(db)


# --- files the collector must not take over -------------------------------------------------------


def serve_once(db, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", "serve", "--db", str(db), "--grpc-port", "0",
         "--http-port", "0", "--api-port", "0"],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


@pytest.mark.parametrize(
    "content",
    [
        b"this is not a database\n" * 1000,
        b"SQLite format 3\x00" + bytes(range(256)) * 64,
        b"\x00" * 8 + b"DUCK" + b"\xff" * 8192,
    ],
    ids=["text", "sqlite", "truncated-duckdb-header"],
)
def test_a_corrupt_file_is_never_deleted_or_recreated(tmp_path, content):
    db = tmp_path / "c.duckdb"
    db.write_bytes(content)
    started = time.monotonic()
    result = serve_once(db)
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < 20
    assert f"cannot open database {db}" in result.stderr
    assert db.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.duckdb"]


def test_a_database_locked_by_another_process_fails_fast(tmp_path):
    db = tmp_path / "c.duckdb"
    script = f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('ready', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        started = time.monotonic()
        result = serve_once(db)
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert "is locked by another process" in result.stderr
    assert elapsed < 10

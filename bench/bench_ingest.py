"""Ingest throughput over OTLP/gRPC: pre-serialised 1000-span requests of realistic GenAI spans
sent over 4 concurrent channels to a real `agent-collector serve` process.

A span counts only once acknowledged (which means committed); after each run the collector is
stopped and the database is opened with plain DuckDB to check every acknowledged span is there.
Baseline, in the same process: the pure mapping stage alone (decode + map_request, one thread),
which is the ceiling the whole pipeline is compared against.

    python bench/bench_ingest.py [--runs 3] [--requests 120] [--channels 4]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import grpc
import psutil
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.workload import make_request
from collector.map_otlp import map_request
from tests.conftest import CollectorProcess

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def payloads(count: int, spans: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    start = 1_763_000_000 * 10**9
    return [make_request(spans, rng, start + i * 10**9).SerializeToString() for i in range(count)]


def baseline_map(bodies: list[bytes]) -> float:
    started = time.perf_counter()
    spans = 0
    for body in bodies:
        spans += len(map_request(ExportTraceServiceRequest.FromString(body), time.time_ns()).rows)
    return spans / (time.perf_counter() - started)


def sample_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], process.memory_info().rss)
        except psutil.Error:
            return
        time.sleep(0.02)


def one_run(bodies: list[bytes], spans_per_request: int, channels: int, workdir: Path) -> dict:
    collector = CollectorProcess(workdir / "bench.duckdb", workdir / "bench.log").start()
    peak = [0]
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(collector.proc.pid, stop, peak))
    sampler.start()
    acked = [0] * channels
    errors: list[str] = []

    def send(worker: int) -> None:
        with grpc.insecure_channel(collector.grpc_target, options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
            export = ch.unary_unary(EXPORT, request_serializer=None,
                                    response_deserializer=ExportTraceServiceResponse.FromString)
            for body in bodies[worker::channels]:
                try:
                    response = export(body, timeout=60)
                except grpc.RpcError as exc:
                    errors.append(f"{exc.code()}: {exc.details()}")
                    continue
                acked[worker] += spans_per_request - response.partial_success.rejected_spans

    threads = [threading.Thread(target=send, args=(w,)) for w in range(channels)]
    server = psutil.Process(collector.proc.pid)
    cpu_before = sum(server.cpu_times()[:2])
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cpu = sum(server.cpu_times()[:2]) - cpu_before
    stop.set()
    sampler.join()
    assert collector.stop() == 0, collector.log_text()
    with duckdb.connect(str(collector.db), read_only=True) as con:
        stored = con.sql("SELECT count(*) FROM events").fetchone()[0]
    size = os.path.getsize(collector.db)
    return {"spans_per_s": sum(acked) / elapsed, "acked": sum(acked), "stored": stored, "errors": len(errors),
            "peak_rss_mb": peak[0] / 2**20, "server_cpu_pct": 100 * cpu / elapsed, "db_bytes_per_span": size / max(stored, 1), "elapsed_s": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=120)
    parser.add_argument("--spans", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=4)
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
          f"{args.requests} requests x {args.spans} spans over {args.channels} gRPC channels, {args.runs} runs")
    bodies = payloads(args.requests, args.spans, seed=7)
    print(f"request size: {statistics.median(len(b) for b in bodies) / 1024:.0f} KiB (median)")
    base = baseline_map(bodies[:20])
    print(f"baseline (decode + map only, 1 thread): {base:,.0f} spans/s")
    results = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            result = one_run(bodies, args.spans, args.channels, Path(tmp))
        results.append(result)
        print(f"run {run + 1}: {result['spans_per_s']:,.0f} spans/s acknowledged in {result['elapsed_s']:.2f}s; "
              f"stored {result['stored']:,} of {result['acked']:,} acknowledged; errors {result['errors']}; "
              f"peak RSS {result['peak_rss_mb']:.0f} MiB; collector CPU {result['server_cpu_pct']:.0f}%; "
              f"{result['db_bytes_per_span']:.0f} B/span on disk")
        assert result["stored"] == result["acked"], "acknowledged spans missing from the database"
    median = statistics.median(r["spans_per_s"] for r in results)
    print(f"median: {median:,.0f} spans/s ({median / base:.2f}x the single-thread mapping baseline); "
          f"peak RSS max {max(r['peak_rss_mb'] for r in results):.0f} MiB")


if __name__ == "__main__":
    main()

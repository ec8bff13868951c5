"""DuckLake scale-out: ingest spans/s with 1, 2 and 3 writer replicas on one lake, and the time to
fetch a trace from a lake of at least 1,000,000 spans before and after maintenance compacts it.

Everything is real and local: a throwaway PostgreSQL catalog on 127.0.0.1 (as in
tests/test_ducklake.py), `agent-collector serve --store ducklake` replicas, pre-serialised
1000-span OTLP/gRPC requests (bench/workload.py) spread over the replicas, and an `--role api`
replica answering GET /api/runs/{id}/trace. A span counts once acknowledged; after each run the
lake is read to check that every acknowledged span is stored exactly once. Maintenance is off
during the ingest runs and is then run once, in-process, as a replica would.

    python bench/bench_lake.py [--requests 200] [--lake-spans 1000000] [--channels-per-replica 4]

About 4 minutes on a 2-core machine with the defaults.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import httpx
import psutil
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.workload import make_request
from collector.lake import LakeBackend
from collector.maintenance import Maintenance, MaintenancePolicy
from collector.store import Store
from tests.conftest import CollectorProcess
from tests.test_ducklake import PG_BIN, PostgresServer

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def payloads(count: int, spans: int, seed: int, first: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    start = 1_763_000_000 * 10**9
    return [make_request(spans, rng, start + (first + i) * 10**9).SerializeToString() for i in range(count)]


def send(targets: list[str], bodies: list[bytes], spans: int, channels_per_target: int) -> tuple[int, float, int]:
    """Send `bodies` over `channels_per_target` gRPC channels to each target; (acked, seconds, errors)."""
    channels = [t for t in targets for _ in range(channels_per_target)]
    acked = [0] * len(channels)
    errors = [0]

    def worker(index: int) -> None:
        with grpc.insecure_channel(channels[index], options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
            export = ch.unary_unary(EXPORT, request_serializer=None,
                                    response_deserializer=ExportTraceServiceResponse.FromString)
            for body in bodies[index::len(channels)]:
                for _ in range(60):
                    try:
                        response = export(body, timeout=120)
                    except grpc.RpcError as exc:
                        if exc.code() == grpc.StatusCode.UNAVAILABLE:
                            time.sleep(0.5)
                            continue
                        print(f"    export failed: {exc.code()}: {exc.details()}")
                        errors[0] += 1
                        break
                    acked[index] += spans - response.partial_success.rejected_spans
                    break
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(channels))]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(acked), time.perf_counter() - started, errors[0]


def lake_counts(catalog: str) -> tuple[int, int, int]:
    store = Store(backend=LakeBackend(catalog, writable=False))
    try:
        with store.cursor() as cursor:
            return cursor.execute(
                "SELECT (SELECT count(*) FROM events), (SELECT count(DISTINCT (run_id, event_id)) FROM events), "
                "(SELECT sum(event_count) FROM runs)").fetchone()
    finally:
        store.close()


def lake_files(catalog: str) -> tuple[int, int]:
    store = Store(backend=LakeBackend(catalog, writable=False))
    try:
        with store.cursor() as cursor:
            return cursor.execute("SELECT count(*), sum(data_file_size_bytes)::BIGINT "
                                  "FROM ducklake_list_files('lake', 'events')").fetchone()
    finally:
        store.close()


def start_replicas(workdir: Path, env: dict[str, str], count: int, role: str = "all") -> list[CollectorProcess]:
    replicas = []
    for i in range(count):
        proc = CollectorProcess(workdir / f"{role}{i}.duckdb", workdir / f"{role}{i}.log",
                                {**env, "AGENT_COLLECTOR_ROLE": role})
        replicas.append(proc.start(timeout=120))
    return replicas


def init_lake(postgres: PostgresServer, name: str, workdir: Path) -> tuple[str, dict[str, str]]:
    subprocess.run([*postgres.as_user, str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(postgres.port),
                    "-U", "postgres", name], check=True, capture_output=True)
    catalog = postgres.catalog(name)
    data = workdir / f"{name}-data"
    subprocess.run([sys.executable, "-m", "collector.cli", "init-store", "--catalog", catalog,
                    "--data-path", str(data)], check=True, capture_output=True)
    env = {"AGENT_COLLECTOR_STORE": "ducklake", "AGENT_COLLECTOR_CATALOG": catalog,
           "AGENT_COLLECTOR_DATA_PATH": str(data), "AGENT_COLLECTOR_MAINTENANCE_INTERVAL": "0"}
    return catalog, env


def writer_summary(proc: CollectorProcess) -> str:
    lines = [line for line in proc.log_text().splitlines() if "writer:" in line]
    return lines[-1].split("writer:", 1)[1].strip() if lines else "no writer summary"


def fetch_times(api: str, run_ids: list[str]) -> list[float]:
    times = []
    with httpx.Client(timeout=120) as client:
        for run_id in run_ids:
            started = time.perf_counter()
            response = client.get(f"{api}/api/runs/{run_id}/trace")
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200 and response.json()["event_count"] == 20, response.text
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    return (f"median {statistics.median(ordered):.0f} ms, p95 {ordered[int(0.95 * (len(ordered) - 1))]:.0f} ms, "
            f"max {ordered[-1]:.0f} ms over {len(ordered)} traces")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200, help="1000-span requests per ingest run")
    parser.add_argument("--lake-spans", type=int, default=1_000_000)
    parser.add_argument("--channels-per-replica", type=int, default=4)
    parser.add_argument("--traces", type=int, default=30, help="traces fetched before and after compaction")
    args = parser.parse_args()
    if PG_BIN is None:
        sys.exit("PostgreSQL server binaries not found: apt-get install -y postgresql")
    spans = 1000
    began = time.perf_counter()
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
          f"{args.requests} requests x {spans} spans per run, {args.channels_per_replica} gRPC channels per replica")
    bodies = payloads(args.requests, spans, seed=11)
    postgres = PostgresServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            for replicas in (1, 2, 3):
                catalog, env = init_lake(postgres, f"lake{replicas}", workdir)
                procs = start_replicas(workdir, env, replicas)
                acked, seconds, errors = send([p.grpc_target for p in procs], bodies, spans,
                                              args.channels_per_replica)
                for proc in procs:
                    assert proc.stop() == 0, proc.log_text()
                    print("   ", writer_summary(proc))
                stored, distinct, in_runs = lake_counts(catalog)
                print(f"{replicas} writer replica(s): {acked / seconds:,.0f} spans/s acknowledged "
                      f"({acked:,} in {seconds:.1f}s, errors {errors}); stored {stored:,}, distinct {distinct:,}, "
                      f"counted in runs {in_runs:,}")
                assert stored == distinct == in_runs == acked, "acknowledged spans missing or duplicated"

            more = -(-max(0, args.lake_spans - stored) // spans) + 2
            procs = start_replicas(workdir, env, 3)
            filled = time.perf_counter()
            bulk = payloads(more, spans, seed=12, first=args.requests)
            acked, seconds, errors = send([p.grpc_target for p in procs], bulk, spans, args.channels_per_replica)
            for proc in procs:
                assert proc.stop() == 0, proc.log_text()
            stored, distinct, in_runs = lake_counts(catalog)
            files, size = lake_files(catalog)
            print(f"filled the 3-replica lake to {stored:,} spans ({acked / seconds:,.0f} spans/s, errors {errors}, "
                  f"{time.perf_counter() - filled:.0f}s): {files:,} event files, {size / 2**20:.0f} MiB")
            assert stored == distinct == in_runs == args.requests * spans + acked

            api = start_replicas(workdir, env, 1, role="api")[0]
            with httpx.Client(timeout=120) as client:
                rows = client.post(f"{api.api}/api/sql", json={
                    "sql": f"SELECT run_id FROM runs ORDER BY hash(run_id) LIMIT {args.traces}"}).json()["rows"]
            run_ids = [r[0] for r in rows]
            fetch_times(api.api, run_ids[:3])
            before = fetch_times(api.api, run_ids)
            print(f"trace fetch before compaction ({files:,} files): {summary(before)}")

            store = Store(backend=LakeBackend(catalog))
            maintenance = Maintenance(store.cursor(), store.backend.locks, MaintenancePolicy(snapshot_retention_s=0))
            started = time.perf_counter()
            figures = maintenance.run_once()
            print(f"maintenance took {time.perf_counter() - started:.1f}s: {figures}")
            store.close()
            files, size = lake_files(catalog)
            after = fetch_times(api.api, run_ids)
            print(f"trace fetch after compaction ({files:,} files, {size / 2**20:.0f} MiB): {summary(after)}")
            assert api.stop() == 0
            stored_after, distinct_after, in_runs_after = lake_counts(catalog)
            assert stored_after == distinct_after == in_runs_after == stored
    finally:
        postgres.stop()
    print(f"bench took {time.perf_counter() - began:.0f}s")


if __name__ == "__main__":
    main()

"""Read API latency at 1,000,000 stored events, through HTTP against a real `agent-collector serve`.

The database is filled through the store's own write path (mapping, dedupe, run maintenance) with
realistic 20-span agent runs spread over 7 days. Then each endpoint is requested 20 times and the
median is reported; the baseline is `GET /health` in the same process (HTTP + framework cost alone).

    python bench/bench_query.py [--events 1000000] [--requests 20]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.workload import make_request
from collector.map_otlp import map_request
from collector.store import Store
from tests.conftest import CollectorProcess

DAY_NS = 86_400 * 10**9


def fill(db: Path, events: int, per_request: int = 1000) -> str:
    """Returns the id of one stored 20-event run."""
    store = Store(db)
    store.start()
    rng = random.Random(11)
    start = 1_763_000_000 * 10**9
    requests = events // per_request
    pending = []
    sample_run = None
    began = time.perf_counter()
    for i in range(requests):
        batch = map_request(make_request(per_request, rng, start + i * (7 * DAY_NS // requests)), time.time_ns())
        sample_run = sample_run or batch.rows[0].run_id
        pending.append(store.submit(batch.rows))
        if len(pending) >= 20:
            for future in pending:
                future.result()
            pending.clear()
        if (i + 1) % 100 == 0:
            print(f"  filled {(i + 1) * per_request:,} events ({time.perf_counter() - began:.0f}s)", flush=True)
    for future in pending:
        future.result()
    store.close()
    return sample_run


def median_ms(client: httpx.Client, url: str, count: int) -> float:
    client.get(url).raise_for_status()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
          f"{args.events:,} events, median of {args.requests} HTTP requests each")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        began = time.perf_counter()
        run_id = fill(db, args.events)
        print(f"filled in {time.perf_counter() - began:.0f}s; {os.path.getsize(db) / args.events:.0f} bytes/event "
              f"({os.path.getsize(db) / 2**20:.0f} MiB)")
        collector = CollectorProcess(db, Path(tmp) / "collector.log").start(timeout=120)
        api = collector.api
        with httpx.Client(timeout=60) as client:
            agent = client.get(f"{api}/api/runs/{run_id}").json()["agent_name"]
            targets = [
                ("baseline GET /health", f"{api}/health", None),
                ("run detail (20-event run)", f"{api}/api/runs/{run_id}", 20),
                ("run trace (20-event run)", f"{api}/api/runs/{run_id}/trace", 20),
                ("run timeline (20-event run)", f"{api}/api/runs/{run_id}/timeline", 20),
                ("agent list", f"{api}/api/agents", 100),
                ("metrics summary", f"{api}/api/metrics/summary", 100),
                ("agent runs page", f"{api}/api/agents/{agent}/runs", None),
                ("run search (agent + min cost)", f"{api}/api/runs?agent={agent}&min_cost=0.01&limit=50", None),
                ("timeseries 1h over all data", f"{api}/api/metrics/timeseries?bucket=1h", 300),
                ("timeseries 1d by model", f"{api}/api/metrics/timeseries?bucket=1d&group_by=model", 300),
            ]
            for label, url, target in targets:
                value = median_ms(client, url, args.requests)
                verdict = "" if target is None else f" (target < {target} ms: {'met' if value < target else 'MISSED'})"
                print(f"{label:34s} {value:8.1f} ms{verdict}")
        collector.stop()


if __name__ == "__main__":
    main()

"""The store's contract: commit before acknowledgement, idempotent writes, incremental run totals."""

from __future__ import annotations

import threading

import pytest

from collector.rows import EventRow
from collector.store import Overloaded, Store, StoreClosed

BASE = dict.fromkeys(EventRow._fields)
BASE.update(source="otlp", convention="otel_genai", event_type="span", status="ok", attributes="{}",
            received_ns=1, start_ns=1_000, end_ns=2_000)


def row(run_id="r1", event_id="e1", **fields) -> EventRow:
    return EventRow(**{**BASE, "run_id": run_id, "event_id": event_id, **fields})


def run(store: Store, run_id: str = "r1") -> dict:
    with store.cursor() as cur:
        result = cur.execute("SELECT * FROM runs WHERE run_id = ?", [run_id])
        names = [d[0] for d in result.description]
        rows = result.fetchall()
    assert len(rows) == 1, rows
    return dict(zip(names, rows[0]))


def events(store: Store) -> int:
    with store.cursor() as cur:
        return cur.execute("SELECT count(*) FROM events").fetchone()[0]


def test_duplicates_within_and_across_commits_are_stored_once(store):
    first = [row(event_id="a", tokens_in=5), row(event_id="a", tokens_in=5), row(event_id="b", tokens_in=7)]
    result = store.submit(first).result()
    assert (result.stored, result.duplicates) == (2, 1)
    again = store.submit([row(event_id="b", tokens_in=7), row(event_id="c", tokens_in=1)]).result()
    assert (again.stored, again.duplicates) == (1, 1)
    assert events(store) == 3
    r = run(store)
    assert r["event_count"] == 3 and r["tokens_in"] == 13


def test_same_event_id_in_another_run_is_not_a_duplicate(store):
    store.submit([row("r1", "x"), row("r2", "x")]).result()
    assert events(store) == 2


def test_run_is_running_until_its_root_arrives(store):
    store.submit([row(event_id="child", parent_event_id="root", start_ns=1_500, end_ns=1_600)]).result()
    assert run(store)["status"] == "running"
    store.submit([row(event_id="root", closes_run="completed", start_ns=1_000, end_ns=3_000)]).result()
    r = run(store)
    assert (r["status"], r["start_ns"], r["end_ns"], r["event_count"]) == ("completed", 1_000, 3_000, 2)


def test_failed_is_final(store):
    store.submit([row(event_id="e", closes_run="failed", status="error")]).result()
    store.submit([row(event_id="end", closes_run="completed")]).result()
    r = run(store)
    assert r["status"] == "failed" and r["error_count"] == 1


def test_agent_from_root_beats_children_and_service(store):
    store.submit([row(event_id="c1", parent_event_id="root", agent_name="sub-agent", service_name="svc")]).result()
    assert run(store)["agent_name"] == "sub-agent"
    store.submit([row(event_id="root", agent_name="planner", service_name="svc")]).result()
    assert run(store)["agent_name"] == "planner"


@pytest.mark.parametrize(
    ("fields", "agent"),
    [({"service_name": "billing"}, "billing"), ({}, "unknown"), ({"agent_name": "x", "service_name": "s"}, "x")],
)
def test_agent_fallbacks(store, fields, agent):
    store.submit([row(**fields)]).result()
    assert run(store)["agent_name"] == agent


def test_costs_sum_and_null_costs_do_not_zero_the_total(store):
    store.submit([row(event_id="a", cost=0.25), row(event_id="b", cost=None), row(event_id="c", cost=0.5)]).result()
    assert run(store)["total_cost"] == pytest.approx(0.75)


def test_concurrent_submitters_lose_nothing(store):
    def worker(w):
        for batch in range(20):
            store.submit([row(f"run-{w}", f"e-{batch}-{i}") for i in range(25)]).result()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert events(store) == 6 * 20 * 25
    assert sum(run(store, f"run-{w}")["event_count"] for w in range(6)) == 3000


def test_full_queue_refuses_instead_of_growing(tmp_path):
    s = Store(tmp_path / "q.duckdb", max_queue_rows=10)
    first = s.submit([row(event_id=f"e{i}") for i in range(8)])
    with pytest.raises(Overloaded):
        s.submit([row(event_id=f"f{i}") for i in range(5)])
    s.start()
    assert first.result().stored == 8
    s.close()


def test_close_commits_what_was_queued_then_refuses(tmp_path):
    s = Store(tmp_path / "c.duckdb")
    pending = s.submit([row(event_id=f"e{i}") for i in range(100)])
    s.start()
    s.close()
    assert pending.result().stored == 100
    with pytest.raises(StoreClosed):
        s.submit([row(event_id="late")])
    reopened = Store(tmp_path / "c.duckdb")
    assert events(reopened) == 100
    reopened.close()

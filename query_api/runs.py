"""Run endpoints: detail, timeline, hierarchical trace."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from query_api import shape
from query_api.queries import fetch_all, fetch_one

router = APIRouter(tags=["runs"])


def _run_or_404(cursor, run_id: str) -> dict:
    row = fetch_one(cursor, "run_detail", {"run_id": run_id})
    if row is None:
        raise HTTPException(404, f"run {run_id!r} not found")
    return row


def _events(cursor, run: dict) -> list[dict]:
    return fetch_all(
        cursor, "run_events", {"run_id": run["run_id"], "start_ns": run["start_ns"], "end_ns": run["end_ns"]}
    )


@router.get("/api/runs/{run_id}")
def run_detail(run_id: str, request: Request):
    with request.app.state.store.cursor() as cursor:
        return shape.run_json(_run_or_404(cursor, run_id))


@router.get("/api/runs/{run_id}/timeline")
def run_timeline(run_id: str, request: Request):
    with request.app.state.store.cursor() as cursor:
        run = _run_or_404(cursor, run_id)
        events = _events(cursor, run)
    return {
        "run_id": run_id,
        "agent_name": run["agent_name"],
        "events": [shape.event_json(row) for row in events],
        "total_events": len(events),
    }


@router.get("/api/runs/{run_id}/trace")
def run_trace(run_id: str, request: Request):
    with request.app.state.store.cursor() as cursor:
        run = _run_or_404(cursor, run_id)
        events = _events(cursor, run)
    return {
        "run_id": run_id,
        "agent_name": run["agent_name"],
        "status": run["status"],
        "execution_tree": shape.build_tree(events),
        "total_cost": run["total_cost"],
        "total_duration_ms": shape.ms(run["end_ns"] - run["start_ns"]),
        "event_count": run["event_count"],
    }

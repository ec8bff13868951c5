"""Run endpoints: search with cursor pagination, detail, timeline, hierarchical trace.

A GATI run id is kept as sent and may hold "/": ids are matched as paths, and the routes with a
suffix are registered before the bare one.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, HTTPException, Query, Request

from query_api import shape
from query_api.models import Run, RunPage, Timeline, Trace
from query_api.queries import fetch_all, fetch_one

router = APIRouter(tags=["runs"])

MAX_NS = 2**63 - 1
STATUS_ALIASES = {"success": "completed", "error": "failed", "active": "running"}
RUN_STATUSES = ("running", "completed", "failed")


def run_status(status: str | None) -> str | None:
    """GATI backends called the states success/error/active; both spellings are accepted."""
    if status is None:
        return None
    status = STATUS_ALIASES.get(status.lower(), status.lower())
    if status not in RUN_STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(RUN_STATUSES)} (got {status!r})")
    return status


def run_or_404(cursor, run_id: str) -> dict:
    row = fetch_one(cursor, "run_detail", {"run_id": run_id})
    if row is None:
        raise HTTPException(404, f"run {run_id!r} not found")
    return row


def _events(cursor, run: dict) -> list[dict]:
    return fetch_all(
        cursor, "run_events", {"run_id": run["run_id"], "start_ns": run["start_ns"], "end_ns": run["end_ns"]}
    )


@router.get("/api/runs", response_model=RunPage, summary="Search runs, newest first")
def search_runs(
    request: Request,
    agent: Annotated[str | None, Query(description="Agent name.")] = None,
    status: Annotated[str | None, Query(description="running | completed | failed")] = None,
    model: Annotated[str | None, Query(description="Runs with at least one event on this model.")] = None,
    session: Annotated[str | None, Query(description="Session (conversation) id.")] = None,
    user: Annotated[str | None, Query(description="User id.")] = None,
    source: Annotated[str | None, Query(description="otlp | gati")] = None,
    since: Annotated[
        datetime | None, Query(description="Runs started at or after this time (ISO 8601).")
    ] = None,
    until: Annotated[datetime | None, Query(description="Runs started before this time (ISO 8601).")] = None,
    min_cost: Annotated[float | None, Query(ge=0, description="USD.")] = None,
    min_duration_ms: Annotated[float | None, Query(ge=0)] = None,
    q: Annotated[
        str | None, Query(min_length=1, description="Text contained in an event name, any case.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
):
    after_start, after_run = _decode_cursor(cursor) if cursor else (None, None)
    params = {
        "agent_name": agent,
        "status": run_status(status),
        "source": source,
        "session_id": session,
        "user_id": user,
        "since_ns": shape.to_ns(since) or 0,
        "until_ns": shape.to_ns(until) or MAX_NS,
        "min_cost": min_cost,
        "min_duration_ns": round(min_duration_ms * 1_000_000) if min_duration_ms is not None else None,
        "after_start_ns": after_start,
        "after_run_id": after_run,
        "model": model,
        "text": q,
        "limit": limit + 1,
    }
    with request.app.state.store.cursor() as db:
        rows = fetch_all(db, "run_search", params)
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1]) if len(rows) > limit else None
    return {"runs": [shape.run_json(row) for row in page], "next_cursor": next_cursor, "limit": limit}


def _encode_cursor(row: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([row["start_ns"], row["run_id"]])).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[int, str]:
    try:
        start_ns, run_id = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(start_ns, int) and isinstance(run_id, str):
            return start_ns, run_id
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError):
        pass
    raise HTTPException(400, "cursor is not one this API returned")


@router.get("/api/runs/{run_id:path}/timeline", response_model=Timeline)
def run_timeline(run_id: str, request: Request):
    with request.app.state.store.cursor() as cursor:
        run = run_or_404(cursor, run_id)
        events = _events(cursor, run)
    return {
        "run_id": run_id,
        "agent_name": run["agent_name"],
        "status": run["status"],
        "total_duration_ms": shape.ms(run["end_ns"] - run["start_ns"]),
        "created_at": shape.iso(run["start_ns"]),
        "events": [shape.event_json(row) for row in events],
        "total_events": len(events),
    }


@router.get("/api/runs/{run_id:path}/trace", response_model=Trace)
def run_trace(run_id: str, request: Request):
    with request.app.state.store.cursor() as cursor:
        run = run_or_404(cursor, run_id)
        events = _events(cursor, run)
    return {
        "run_id": run_id,
        "agent_name": run["agent_name"],
        "status": run["status"],
        "execution_tree": shape.build_tree(events),
        "total_cost": run["total_cost"],
        "total_duration_ms": shape.ms(run["end_ns"] - run["start_ns"]),
        "total_tokens_in": run["tokens_in"],
        "total_tokens_out": run["tokens_out"],
        "event_count": run["event_count"],
    }


@router.get("/api/runs/{run_id:path}", response_model=Run)
def run_detail(run_id: str, request: Request):
    with request.app.state.store.cursor() as cursor:
        return shape.run_json(run_or_404(cursor, run_id))

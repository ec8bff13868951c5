"""Session endpoint: the runs of one conversation (`gen_ai.conversation.id`, `session.id`, ...)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from query_api import shape
from query_api.models import Session
from query_api.queries import fetch_all

router = APIRouter(tags=["sessions"])


@router.get(
    "/api/sessions/{session_id:path}", response_model=Session, summary="The runs of one session, oldest first"
)
def session(session_id: str, request: Request):
    with request.app.state.store.cursor() as cursor:
        runs = fetch_all(cursor, "session_runs", {"session_id": session_id})
    if not runs:
        raise HTTPException(404, f"session {session_id!r} not found")
    return {
        "session_id": session_id,
        "user_ids": sorted({run["user_id"] for run in runs if run["user_id"]}),
        "agents": sorted({run["agent_name"] for run in runs}),
        "run_count": len(runs),
        "event_count": sum(run["event_count"] for run in runs),
        "total_cost": sum(run["total_cost"] for run in runs),
        "tokens_in": sum(run["tokens_in"] for run in runs),
        "tokens_out": sum(run["tokens_out"] for run in runs),
        "started_at": shape.iso(min(run["start_ns"] for run in runs)),
        "ended_at": shape.iso(max(run["end_ns"] for run in runs)),
        "runs": [shape.run_json(run) for run in runs],
    }

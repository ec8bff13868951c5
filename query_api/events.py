"""Event endpoints: the direct children of one operation (GATI distributed tracing)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from query_api import shape
from query_api.models import Children
from query_api.queries import fetch_all

router = APIRouter(tags=["events"])


@router.get(
    "/api/events/{event_id:path}/children", response_model=Children, summary="Direct children of an event"
)
def event_children(
    event_id: str,
    request: Request,
    run_id: Annotated[
        str | None, Query(description="Only in this run (span ids are unique per trace only).")
    ] = None,
):
    children = []
    with request.app.state.store.cursor() as cursor:
        runs = [
            run
            for run in fetch_all(cursor, "event_runs", {"event_id": event_id})
            if run_id is None or run["run_id"] == run_id
        ]
        if not runs:
            raise HTTPException(404, f"event {event_id!r} not found")
        for run in runs:
            params = {
                "run_id": run["run_id"],
                "event_id": event_id,
                "start_ns": run["start_ns"],
                "end_ns": run["end_ns"],
            }
            children.extend(fetch_all(cursor, "event_children", params))
    return {
        "event_id": event_id,
        "run_ids": [run["run_id"] for run in runs],
        "children": [shape.event_json(row) for row in children],
        "count": len(children),
    }

"""Agent endpoints (GATI-compatible): list, statistics, runs, metrics. They read only `runs`.

Names are matched as paths so that a name with "/" stays reachable; the routes with a suffix are
registered before the bare one for that reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from query_api import shape
from query_api.models import Agent, AgentMetrics, AgentStats, Run
from query_api.queries import fetch_all, fetch_one
from query_api.runs import run_status

router = APIRouter(tags=["agents"])


def _agent_or_404(cursor, name: str) -> dict:
    row = fetch_one(cursor, "agent", {"agent_name": name})
    if row is None:
        raise HTTPException(404, f"agent {name!r} not found")
    return row


@router.get("/api/agents", response_model=list[Agent], summary="Every agent seen, newest first")
def list_agents(request: Request):
    with request.app.state.store.cursor() as cursor:
        return [shape.agent_json(row) for row in fetch_all(cursor, "agents")]


@router.get(
    "/api/agents/{name:path}/runs", response_model=list[Run], summary="The agent's runs, newest first"
)
def agent_runs(
    name: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: Annotated[str | None, Query(description="running | completed | failed")] = None,
):
    params = {"agent_name": name, "status": run_status(status), "limit": limit, "offset": offset}
    with request.app.state.store.cursor() as cursor:
        _agent_or_404(cursor, name)
        rows = fetch_all(cursor, "agent_runs", params)
    return [shape.run_json(row) for row in rows]


@router.get("/api/agents/{name:path}/metrics", response_model=AgentMetrics)
def agent_metrics(name: str, request: Request):
    with request.app.state.store.cursor() as cursor:
        row = fetch_one(cursor, "agent_metrics", {"agent_name": name})
    if not row or not row["total_runs"]:
        raise HTTPException(404, f"agent {name!r} not found")
    p50, p95, p99 = row.pop("duration_quantiles_ms")
    first_seen, last_seen = row.pop("first_seen_ns"), row.pop("last_seen_ns")
    return {
        **row,
        "agent_name": name,
        "p50_duration_ms": p50,
        "p95_duration_ms": p95,
        "p99_duration_ms": p99,
        "error_rate": row["failed_runs"] / row["total_runs"],
        "first_seen_at": shape.iso(first_seen),
        "last_seen_at": shape.iso(last_seen),
    }


@router.get("/api/agents/{name:path}", response_model=AgentStats)
def agent_stats(name: str, request: Request):
    with request.app.state.store.cursor() as cursor:
        row = _agent_or_404(cursor, name)
    return {**shape.agent_json(row), "avg_cost": row["total_cost"] / row["total_runs"]}

"""Metrics endpoints: the GATI global summary, and series over time by agent or model."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request

from query_api import shape
from query_api.models import Summary, Timeseries
from query_api.queries import fetch_all, fetch_one
from query_api.runs import MAX_NS

router = APIRouter(tags=["metrics"])

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
MAX_BUCKETS = 10_000
LATENCY = {
    "none": "run duration",
    "agent": "run duration",
    "model": "model call duration",
}


@router.get("/api/metrics/summary", response_model=Summary, summary="Totals over every run and agent")
def summary(
    request: Request,
    top: Annotated[int, Query(ge=1, le=100, description="Length of the top-agent lists.")] = 5,
):
    with request.app.state.store.cursor() as cursor:
        totals = fetch_one(cursor, "summary")
        if totals is None:
            raise RuntimeError("the summary query returned no row")
        agents = fetch_all(cursor, "agents")
    by_cost = sorted(agents, key=lambda a: (-a["total_cost"], a["agent_name"]))[:top]
    by_runs = sorted(agents, key=lambda a: (-a["total_runs"], a["agent_name"]))[:top]
    return {
        **totals,
        "total_duration_hours": totals["total_duration_ms"] / 3_600_000,
        "error_rate": totals["failed_runs"] / totals["total_runs"] if totals["total_runs"] else 0.0,
        "top_agents_by_cost": [{"agent_name": a["agent_name"], "cost": a["total_cost"]} for a in by_cost],
        "top_agents_by_runs": [{"agent_name": a["agent_name"], "runs": a["total_runs"]} for a in by_runs],
    }


@router.get(
    "/api/metrics/timeseries",
    response_model=Timeseries,
    summary="Runs, tokens, cost, errors, latency over time",
)
def timeseries(
    request: Request,
    bucket: Annotated[
        str, Query(description="Bucket width: a number and s, m, h or d, e.g. 1m, 15m, 1h, 1d.")
    ] = "1h",
    group_by: Literal["none", "agent", "model"] = "agent",
    since: Annotated[
        datetime | None, Query(description="From this time (ISO 8601); default: all data.")
    ] = None,
    until: Annotated[datetime | None, Query(description="Before this time (ISO 8601).")] = None,
    agent: Annotated[str | None, Query(description="Only this agent's runs.")] = None,
):
    bucket_s = _bucket_seconds(bucket)
    bucket_ns = bucket_s * 1_000_000_000
    since_ns, until_ns = shape.to_ns(since) or 0, shape.to_ns(until) or MAX_NS
    window = {"since_ns": since_ns, "until_ns": until_ns}
    with request.app.state.store.cursor() as cursor:
        bounds = fetch_one(cursor, "run_bounds", window)
        if bounds is None:
            raise RuntimeError("the run_bounds query returned no row")
        if bounds["first_ns"] is not None:
            buckets = (bounds["last_ns"] - bounds["first_ns"]) // bucket_ns + 1
            if buckets > MAX_BUCKETS:
                raise HTTPException(
                    400,
                    f"bucket {bucket} gives {buckets} buckets over this range "
                    f"(at most {MAX_BUCKETS}); use a wider bucket or a shorter range",
                )
        params = {**window, "bucket_ns": bucket_ns, "agent_name": agent}
        if group_by == "model":
            rows = fetch_all(cursor, "timeseries_models", params)
        else:
            rows = fetch_all(cursor, "timeseries_runs", {**params, "by_agent": group_by == "agent"})
    series: dict[str | None, list[dict]] = {}
    for row in rows:
        p50, p95, p99 = row["latency_ms"] or (None, None, None)
        series.setdefault(row["grp"], []).append(
            {
                "timestamp": shape.iso(row["bucket_ns"]),
                "runs": row["runs"],
                "events": row["events"],
                "tokens_in": row["tokens_in"],
                "tokens_out": row["tokens_out"],
                "cost": row["cost"],
                "error_rate": row["error_rate"],
                "latency_p50_ms": p50,
                "latency_p95_ms": p95,
                "latency_p99_ms": p99,
            }
        )
    return {
        "bucket": bucket,
        "bucket_seconds": bucket_s,
        "group_by": group_by,
        "latency": LATENCY[group_by],
        "series": [{"group": group, "points": points} for group, points in series.items()],
    }


def _bucket_seconds(bucket: str) -> int:
    match = re.fullmatch(r"(\d{1,6})([smhd])", bucket.strip().lower())
    if not match or int(match[1]) == 0:
        raise HTTPException(
            400, f"bucket must be a positive number followed by s, m, h or d (got {bucket!r})"
        )
    return int(match[1]) * UNIT_SECONDS[match[2]]

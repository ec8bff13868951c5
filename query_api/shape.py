"""Turning stored rows into the API's JSON shapes (GATI-compatible): times, nodes, trees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NODE_FIELDS = ("name", "model", "provider", "tokens_in", "tokens_out", "cost", "tool_name", "status")


def iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return (
        datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC)
        .replace(microsecond=(ns % 1_000_000_000) // 1000)
        .isoformat()
        .replace("+00:00", "Z")
    )


def ms(ns: int | None) -> float | None:
    return None if ns is None else ns / 1_000_000


def to_ns(moment: datetime | None) -> int | None:
    """A query parameter's time; without an offset it is UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def run_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": row["run_id"],
        "agent_name": row["agent_name"],
        "environment": row["environment"],
        "status": row["status"],
        "total_duration_ms": ms(row["end_ns"] - row["start_ns"]),
        "total_cost": row["total_cost"],
        "tokens_in": row["tokens_in"],
        "tokens_out": row["tokens_out"],
        "cache_read_tokens": row["cache_read_tokens"],
        "cache_write_tokens": row["cache_write_tokens"],
        "reasoning_tokens": row["reasoning_tokens"],
        "event_count": row["event_count"],
        "error_count": row["error_count"],
        "session_id": row["session_id"],
        "user_id": row["user_id"],
        "service_name": row["service_name"],
        "source": row["source"],
        "created_at": iso(row["start_ns"]),
        "started_at": iso(row["start_ns"]),
        "ended_at": iso(row["end_ns"]),
    }


def agent_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["agent_name"],
        "description": f"Auto-created agent: {row['agent_name']}",
        "created_at": iso(row["first_seen_ns"]),
        "last_seen_at": iso(row["last_seen_ns"]),
        "total_runs": row["total_runs"],
        "total_events": row["total_events"],
        "total_cost": row["total_cost"],
        "tokens_in": row["tokens_in"],
        "tokens_out": row["tokens_out"],
        "failed_runs": row["failed_runs"],
    }


def event_data(row: dict[str, Any]) -> dict[str, Any]:
    """The attributes as the client sent them, plus each normalised field under a name they do not
    use: a GATI event's own `status`, `input` or `cost` stays as sent."""
    data = orjson.loads(row["attributes"]) if row["attributes"] else {}
    if not isinstance(data, dict):
        data = {"value": data}
    normalised = {field: row[field] for field in NODE_FIELDS}
    normalised.update(
        duration_ms=ms(row["duration_ns"]),
        tokens_total=row["tokens_total"],
        cache_read_tokens=row["cache_read_tokens"],
        cache_write_tokens=row["cache_write_tokens"],
        reasoning_tokens=row["reasoning_tokens"],
        cost_source=row["cost_source"],
        tool_call_id=row["tool_call_id"],
        convention=row["convention"],
        agent_name=row["agent_name"],
        input=row["input"],
        output=row["output"],
        parent_run_id=row["parent_event_id"],
    )
    for field, value in normalised.items():
        data.setdefault(field, value)
    return data


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": row["run_id"],
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "parent_event_id": row["parent_event_id"],
        "parent_run_id": row["parent_event_id"],
        "timestamp": iso(row["start_ns"]),
        "end_timestamp": iso(row["end_ns"]),
        "duration_ms": ms(row["duration_ns"]),
        "name": row["name"],
        "status": row["status"],
        "model": row["model"],
        "provider": row["provider"],
        "tokens_in": row["tokens_in"],
        "tokens_out": row["tokens_out"],
        "cost": row["cost"],
        "tool_name": row["tool_name"],
        "data": event_data(row),
    }


def build_tree(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parent/child forest in time order. A child whose parent never arrived is a root flagged
    `orphan`; events caught in a parent cycle are shown once, the cycle broken at its earliest event."""
    nodes: dict[Any, dict[str, Any]] = {}
    for row in rows:
        node = event_json(row)
        node.update(orphan=False, cycle=False, children=[])
        nodes.setdefault(row["event_id"], node)
    roots = []
    for event_id, node in nodes.items():
        parent = node["parent_event_id"]
        if parent is None or parent == event_id:
            roots.append(node)
        elif parent not in nodes:
            node["orphan"] = True
            roots.append(node)
        else:
            nodes[parent]["children"].append(node)
    placed: set[str] = set()
    _set_depths(roots, placed)
    for event_id, node in nodes.items():
        if event_id not in placed:
            nodes[node["parent_event_id"]]["children"].remove(node)
            node["cycle"] = True
            roots.append(node)
            _set_depths([node], placed)
    return roots


def _set_depths(roots: list[dict[str, Any]], placed: set[str]) -> None:
    stack = [(node, 1) for node in reversed(roots)]
    while stack:
        node, depth = stack.pop()
        if node["event_id"] in placed:
            continue
        placed.add(node["event_id"])
        node["depth"] = depth
        stack.extend((child, depth + 1) for child in reversed(node["children"]))

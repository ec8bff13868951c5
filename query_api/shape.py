"""Turning stored rows into the API's JSON shapes (GATI-compatible): times, nodes, trees."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

NODE_FIELDS = ("name", "model", "provider", "tokens_in", "tokens_out", "cost", "tool_name", "status")


def iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).replace(
        microsecond=(ns % 1_000_000_000) // 1000
    ).isoformat().replace("+00:00", "Z")


def ms(ns: int | None) -> float | None:
    return None if ns is None else ns / 1_000_000


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


def event_data(row: dict[str, Any]) -> dict[str, Any]:
    """The span's own attributes, with the normalised fields on top."""
    data = orjson.loads(row["attributes"]) if row["attributes"] else {}
    if not isinstance(data, dict):
        data = {"value": data}
    for field in NODE_FIELDS:
        data[field] = row[field]
    data["duration_ms"] = ms(row["duration_ns"])
    data["tokens_total"] = row["tokens_total"]
    data["cache_read_tokens"] = row["cache_read_tokens"]
    data["cache_write_tokens"] = row["cache_write_tokens"]
    data["reasoning_tokens"] = row["reasoning_tokens"]
    data["cost_source"] = row["cost_source"]
    data["tool_call_id"] = row["tool_call_id"]
    data["convention"] = row["convention"]
    data["agent_name"] = row["agent_name"]
    data["input"] = row["input"]
    data["output"] = row["output"]
    data["parent_run_id"] = row["parent_event_id"]
    return data


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
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
    nodes = {}
    for row in rows:
        node = event_json(row)
        node["children"] = []
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

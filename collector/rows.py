"""Typed rows passed from the mapping stage to the store.

A NamedTuple rather than a frozen dataclass: it is immutable and typed, and building one
costs a tuple allocation, which matters at tens of thousands of spans per second.
Field order and names match the `events` table in schema.sql.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class EventRow(NamedTuple):
    run_id: str
    event_id: str
    parent_event_id: str | None
    source: str
    convention: str
    event_type: str
    name: str | None
    agent_name: str | None
    service_name: str | None
    start_ns: int
    end_ns: int | None
    duration_ns: int | None
    status: str
    status_message: str | None
    closes_run: str | None
    span_kind: str | None
    model: str | None
    request_model: str | None
    provider: str | None
    tokens_in: int | None
    tokens_out: int | None
    tokens_total: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None
    cost: float | None
    cost_source: str | None
    tool_name: str | None
    tool_call_id: str | None
    session_id: str | None
    user_id: str | None
    environment: str | None
    input: str | None
    output: str | None
    attributes: str
    span_events: str | None
    links: str | None
    resource_attributes: str | None
    resource_schema_url: str | None
    scope_name: str | None
    scope_version: str | None
    scope_attributes: str | None
    scope_schema_url: str | None
    trace_state: str | None
    flags: int | None
    dropped_attributes_count: int | None
    dropped_events_count: int | None
    dropped_links_count: int | None
    received_ns: int


@dataclass
class Batch:
    """What one export request produced: rows to store and the items refused, with reasons."""

    rows: list[EventRow] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < 20:
            self.errors.append(message)

    def error_message(self) -> str:
        if not self.rejected:
            return ""
        more = self.rejected - len(self.errors)
        suffix = f" (and {more} more)" if more > 0 else ""
        return "; ".join(self.errors) + suffix

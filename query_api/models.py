"""Response models of the read API: they document `/docs` and fix each response's fields.

Field names follow the GATI backend where it had the endpoint; times are ISO 8601 UTC strings,
durations milliseconds, costs USD.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Root(BaseModel):
    name: str
    version: str
    status: str
    docs: str


class Health(BaseModel):
    status: str
    database: str
    version: str


class Agent(BaseModel):
    name: str
    description: str
    created_at: str | None = Field(description="First event of the agent's first run.")
    last_seen_at: str | None
    total_runs: int
    total_events: int
    total_cost: float
    tokens_in: int
    tokens_out: int
    failed_runs: int


class AgentStats(Agent):
    avg_cost: float = Field(description="Mean cost per run.")


class AgentMetrics(BaseModel):
    agent_name: str
    total_runs: int
    total_events: int
    total_cost: float
    avg_cost_per_run: float
    avg_tokens_in: float
    avg_tokens_out: float
    avg_duration_ms: float
    total_tokens_in: int
    total_tokens_out: int
    total_duration_ms: float
    p50_duration_ms: float | None
    p95_duration_ms: float | None
    p99_duration_ms: float | None
    completed_runs: int
    failed_runs: int
    running_runs: int
    error_rate: float = Field(description="Share of runs that failed, 0..1.")
    first_seen_at: str | None
    last_seen_at: str | None


class Run(BaseModel):
    run_id: str
    agent_name: str
    environment: str | None
    status: str = Field(description="running | completed | failed")
    total_duration_ms: float
    total_cost: float
    tokens_in: int
    tokens_out: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    event_count: int
    error_count: int
    session_id: str | None
    user_id: str | None
    service_name: str | None
    source: str = Field(description="otlp | gati")
    created_at: str
    started_at: str
    ended_at: str


class RunPage(BaseModel):
    runs: list[Run]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    limit: int


class Event(BaseModel):
    run_id: str
    event_id: str
    event_type: str
    parent_event_id: str | None
    parent_run_id: str | None = Field(description="The parent event id, as the GATI backend named it.")
    timestamp: str
    end_timestamp: str | None
    duration_ms: float | None
    name: str | None
    status: str = Field(description="ok | error | unset")
    model: str | None
    provider: str | None
    tokens_in: int | None
    tokens_out: int | None
    cost: float | None
    tool_name: str | None
    data: dict[str, Any] = Field(
        description="The event's attributes (GATI: its data) with the normalised fields."
    )


class TraceNode(Event):
    depth: int
    orphan: bool = Field(description="The parent event never arrived; shown as a root.")
    cycle: bool = Field(description="Its parent chain loops; shown as a root to break the cycle.")
    children: list[TraceNode]


class Timeline(BaseModel):
    run_id: str
    agent_name: str
    status: str
    total_duration_ms: float
    created_at: str
    events: list[Event]
    total_events: int


class Trace(BaseModel):
    run_id: str
    agent_name: str
    status: str
    execution_tree: list[TraceNode]
    total_cost: float
    total_duration_ms: float
    total_tokens_in: int
    total_tokens_out: int
    event_count: int


class Children(BaseModel):
    event_id: str
    run_ids: list[str]
    children: list[Event]
    count: int


class Session(BaseModel):
    session_id: str
    user_ids: list[str]
    agents: list[str]
    run_count: int
    event_count: int
    total_cost: float
    tokens_in: int
    tokens_out: int
    started_at: str
    ended_at: str
    runs: list[Run]


class TopAgentByCost(BaseModel):
    agent_name: str
    cost: float


class TopAgentByRuns(BaseModel):
    agent_name: str
    runs: int


class Summary(BaseModel):
    total_agents: int
    total_runs: int
    total_events: int
    total_cost: float
    avg_cost_per_run: float
    total_tokens_in: int
    total_tokens_out: int
    avg_tokens_in_per_run: float
    avg_tokens_out_per_run: float
    total_duration_ms: float
    total_duration_hours: float
    avg_duration_ms: float
    failed_runs: int
    running_runs: int
    error_rate: float = Field(description="Share of runs that failed, 0..1.")
    top_agents_by_cost: list[TopAgentByCost]
    top_agents_by_runs: list[TopAgentByRuns]


class Point(BaseModel):
    timestamp: str = Field(description="Start of the bucket.")
    runs: int
    events: int
    tokens_in: int
    tokens_out: int
    cost: float
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None


class Series(BaseModel):
    group: str | None = Field(description="The agent or model; null when not grouped.")
    points: list[Point]


class Timeseries(BaseModel):
    bucket: str
    bucket_seconds: int
    group_by: str
    latency: str = Field(description="What the latency percentiles measure.")
    series: list[Series]


class SqlQuery(BaseModel):
    sql: str = Field(
        description="One SELECT over the views agents, runs, events, spans.",
        examples=["SELECT agent_name, sum(total_cost) AS cost FROM runs GROUP BY ALL ORDER BY cost DESC"],
    )
    max_rows: int | None = Field(None, ge=1, description="At most the server's row cap.")


class SqlColumn(BaseModel):
    name: str
    type: str


class SqlResult(BaseModel):
    columns: list[SqlColumn]
    rows: list[list[Any]]
    row_count: int
    truncated: bool = Field(description="More rows matched than were returned.")
    elapsed_ms: float

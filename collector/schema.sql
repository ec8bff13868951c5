-- agent-collector storage schema: the one place the tables are defined.
-- No primary keys, unique constraints or indexes: the same SQL must run on DuckLake,
-- so deduplication is done by the writer (anti-join on run_id, event_id).
-- Times are integer nanoseconds since the Unix epoch (UTC); ids are lowercase hex for OTLP.
-- JSON documents are stored as VARCHAR (JSON text): DuckDB's json functions and ->> work on it, and
-- skipping the JSON type's validation on insert makes ingest ~30% faster (bench/bench_ingest.py).

CREATE TABLE IF NOT EXISTS events (
    run_id                   VARCHAR NOT NULL,  -- OTLP trace id (32 hex) or GATI run id
    event_id                 VARCHAR NOT NULL,  -- OTLP span id (16 hex) or GATI event id
    parent_event_id          VARCHAR,           -- parent span id / GATI parent; NULL for a root
    source                   VARCHAR NOT NULL,  -- otlp | gati
    convention               VARCHAR NOT NULL,  -- otel_genai | openinference | openllmetry | gati | none
    event_type               VARCHAR NOT NULL,  -- llm_call, embedding, retrieval, rerank, tool_call, agent, chain, guardrail, evaluator, span (GATI: as sent)
    name                     VARCHAR,
    agent_name               VARCHAR,           -- agent named on this event itself, if any
    service_name             VARCHAR,
    start_ns                 BIGINT NOT NULL,
    end_ns                   BIGINT,
    duration_ns              BIGINT,
    status                   VARCHAR NOT NULL,  -- ok | error | unset
    status_message           VARCHAR,
    closes_run               VARCHAR,           -- completed | failed when this event ends its run
    span_kind                VARCHAR,           -- internal | server | client | producer | consumer
    model                    VARCHAR,           -- response model, else request model
    request_model            VARCHAR,
    provider                 VARCHAR,
    tokens_in                BIGINT,            -- includes cache read/write tokens
    tokens_out               BIGINT,            -- includes reasoning tokens
    tokens_total             BIGINT,
    cache_read_tokens        BIGINT,
    cache_write_tokens       BIGINT,
    reasoning_tokens         BIGINT,
    cost                     DOUBLE,            -- USD
    cost_source              VARCHAR,           -- client | computed | NULL (unknown)
    tool_name                VARCHAR,
    tool_call_id             VARCHAR,
    session_id               VARCHAR,
    user_id                  VARCHAR,
    environment              VARCHAR,
    input                    VARCHAR,           -- possibly truncated
    output                   VARCHAR,           -- possibly truncated
    attributes               VARCHAR,           -- JSON: every span attribute / GATI data, as sent
    span_events              VARCHAR,           -- JSON: [{time_ns, name, attributes, dropped_attributes_count}]
    links                    VARCHAR,           -- JSON: [{trace_id, span_id, trace_state, attributes, flags}]
    resource_attributes      VARCHAR,           -- JSON
    resource_schema_url      VARCHAR,
    scope_name               VARCHAR,
    scope_version            VARCHAR,
    scope_attributes         VARCHAR,           -- JSON
    scope_schema_url         VARCHAR,
    trace_state              VARCHAR,
    flags                    UBIGINT,
    dropped_attributes_count UBIGINT,
    dropped_events_count     UBIGINT,
    dropped_links_count      UBIGINT,
    received_ns              BIGINT NOT NULL
);

-- One row per run, maintained incrementally by the writer in the same transaction as its events.
CREATE TABLE IF NOT EXISTS runs (
    run_id             VARCHAR NOT NULL,
    agent_name         VARCHAR NOT NULL,   -- agent_attr, else service_name, else 'unknown'
    agent_attr         VARCHAR,            -- first agent name seen on the run's events
    service_name       VARCHAR,
    source             VARCHAR NOT NULL,
    start_ns           BIGINT NOT NULL,
    end_ns             BIGINT NOT NULL,
    status             VARCHAR NOT NULL,   -- running | completed | failed
    event_count        BIGINT NOT NULL,
    error_count        BIGINT NOT NULL,
    tokens_in          BIGINT NOT NULL,
    tokens_out         BIGINT NOT NULL,
    cache_read_tokens  BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    reasoning_tokens   BIGINT NOT NULL,
    total_cost         DOUBLE NOT NULL,
    session_id         VARCHAR,
    user_id            VARCHAR,
    environment        VARCHAR,
    updated_ns         BIGINT NOT NULL
);

CREATE OR REPLACE VIEW agents AS
SELECT agent_name,
       min(start_ns)      AS first_seen_ns,
       max(end_ns)        AS last_seen_ns,
       count(*)           AS total_runs,
       sum(event_count)   AS total_events,
       sum(total_cost)    AS total_cost,
       sum(tokens_in)     AS tokens_in,
       sum(tokens_out)    AS tokens_out,
       count(*) FILTER (WHERE status = 'failed') AS failed_runs
FROM runs
GROUP BY agent_name;

-- Column names of the OpenTelemetry Collector's ClickHouse exporter, for familiarity.
CREATE OR REPLACE VIEW spans AS
SELECT make_timestamp_ns(start_ns)  AS "Timestamp",
       run_id                       AS "TraceId",
       event_id                     AS "SpanId",
       coalesce(parent_event_id, '') AS "ParentSpanId",
       trace_state                  AS "TraceState",
       name                         AS "SpanName",
       span_kind                    AS "SpanKind",
       service_name                 AS "ServiceName",
       resource_attributes::JSON    AS "ResourceAttributes",
       scope_name                   AS "ScopeName",
       scope_version                AS "ScopeVersion",
       attributes::JSON             AS "SpanAttributes",
       duration_ns                  AS "Duration",
       status                       AS "StatusCode",
       status_message               AS "StatusMessage",
       span_events::JSON            AS "Events",
       links::JSON                  AS "Links"
FROM events
WHERE source = 'otlp';

-- agent-collector storage schema: the one place the tables and views are defined, for both stores.
-- Parts marked `-- [both]` run on the embedded DuckDB file and on DuckLake; `-- [duckdb]` only on the
-- embedded file, `-- [ducklake]` only on the lake (collector.store.schema_sql picks the parts).
-- No primary keys, unique constraints or indexes: DuckLake has none,
-- so deduplication is done by the writer (anti-join on run_id, event_id).
-- Times are integer nanoseconds since the Unix epoch (UTC); ids are lowercase hex for OTLP.
-- JSON documents are stored as VARCHAR (JSON text): DuckDB's json functions and ->> work on it, and
-- skipping the JSON type's validation on insert makes ingest ~30% faster (bench/bench_ingest.py).

-- [both]
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

-- [duckdb]
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

-- [ducklake]
-- Several writer replicas commit concurrently, and on DuckLake an UPDATE is a delete plus an insert
-- that conflicts with any concurrent insert into the same table. So each commit appends one row per
-- run it touched (its delta) and `runs` is a view summing them with the same columns as the embedded
-- table. Maintenance folds a run's deltas into one row and appends negative deltas for the
-- duplicates it removes (collector/maintenance.py).
CREATE TABLE IF NOT EXISTS run_deltas (
    run_id             VARCHAR NOT NULL,
    root_agent         VARCHAR,            -- agent named on a root event of this delta
    any_agent          VARCHAR,            -- earliest agent named on any event of this delta
    root_service       VARCHAR,
    any_service        VARCHAR,
    source             VARCHAR,
    start_ns           BIGINT,             -- NULL in a correction delta
    end_ns             BIGINT,
    failed             BOOLEAN NOT NULL,
    completed          BOOLEAN NOT NULL,
    event_count        BIGINT NOT NULL,    -- negative in a correction delta
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
    first_ns           BIGINT NOT NULL,    -- commit time of the earliest delta folded into this row
    last_ns            BIGINT NOT NULL     -- commit time of the latest one
);

-- The aggregation maintenance uses to fold deltas: a folded row is a delta like any other, so the
-- `runs` view gives the same answer before and after folding. First-seen values (agent, service,
-- source, session, user, environment) and the latest root agent follow the embedded store's rules.
CREATE OR REPLACE VIEW run_totals AS
SELECT run_id,
       arg_max(root_agent, last_ns) FILTER (WHERE root_agent IS NOT NULL) AS root_agent,
       arg_min(any_agent, first_ns) FILTER (WHERE any_agent IS NOT NULL) AS any_agent,
       arg_max(root_service, last_ns) FILTER (WHERE root_service IS NOT NULL) AS root_service,
       arg_min(any_service, first_ns) FILTER (WHERE any_service IS NOT NULL) AS any_service,
       arg_min(source, first_ns) FILTER (WHERE source IS NOT NULL) AS source,
       min(start_ns) AS start_ns,
       max(end_ns) AS end_ns,
       bool_or(failed) AS failed,
       bool_or(completed) AS completed,
       sum(event_count)::BIGINT AS event_count,
       sum(error_count)::BIGINT AS error_count,
       sum(tokens_in)::BIGINT AS tokens_in,
       sum(tokens_out)::BIGINT AS tokens_out,
       sum(cache_read_tokens)::BIGINT AS cache_read_tokens,
       sum(cache_write_tokens)::BIGINT AS cache_write_tokens,
       sum(reasoning_tokens)::BIGINT AS reasoning_tokens,
       sum(total_cost) AS total_cost,
       arg_min(session_id, first_ns) FILTER (WHERE session_id IS NOT NULL) AS session_id,
       arg_min(user_id, first_ns) FILTER (WHERE user_id IS NOT NULL) AS user_id,
       arg_min(environment, first_ns) FILTER (WHERE environment IS NOT NULL) AS environment,
       min(first_ns) AS first_ns,
       max(last_ns) AS last_ns
FROM run_deltas
GROUP BY run_id;

CREATE OR REPLACE VIEW runs AS
SELECT run_id,
       coalesce(root_agent, any_agent, root_service, any_service, 'unknown') AS agent_name,
       coalesce(root_agent, any_agent) AS agent_attr,
       coalesce(root_service, any_service) AS service_name,
       source, start_ns, end_ns,
       CASE WHEN failed THEN 'failed' WHEN completed THEN 'completed' ELSE 'running' END AS status,
       event_count, error_count, tokens_in, tokens_out, cache_read_tokens, cache_write_tokens,
       reasoning_tokens, total_cost, session_id, user_id, environment,
       last_ns AS updated_ns
FROM run_totals;

-- A trace is read by run_id within its time range: sorted files let min/max statistics skip the
-- rest. DuckLake sorts when it merges files and flushes inlined data (ducklake_merge_adjacent_files).
ALTER TABLE events SET SORTED BY (run_id, start_ns);
ALTER TABLE run_deltas SET SORTED BY (run_id);
-- Row groups are the unit DuckDB skips or reads (and decompresses, large JSON columns included):
-- small ones let a trace lookup in a merged file read about 10k rows instead of 123k.
-- `lake` is the name collector.lake attaches the catalog under.
CALL ducklake_set_option('lake', 'parquet_row_group_size', 10240);

-- [both]
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

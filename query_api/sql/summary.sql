-- Totals over the runs table only: one row per run, kept up to date by the writer.
SELECT count(DISTINCT agent_name)                 AS total_agents,
       count(*)                                   AS total_runs,
       coalesce(sum(event_count), 0)              AS total_events,
       coalesce(sum(total_cost), 0)               AS total_cost,
       coalesce(avg(total_cost), 0)               AS avg_cost_per_run,
       coalesce(sum(tokens_in), 0)                AS total_tokens_in,
       coalesce(avg(tokens_in), 0)                AS avg_tokens_in_per_run,
       coalesce(sum(tokens_out), 0)               AS total_tokens_out,
       coalesce(avg(tokens_out), 0)               AS avg_tokens_out_per_run,
       coalesce(sum(end_ns - start_ns), 0) / 1e6  AS total_duration_ms,
       coalesce(avg(end_ns - start_ns), 0) / 1e6  AS avg_duration_ms,
       count(*) FILTER (WHERE status = 'failed')  AS failed_runs,
       count(*) FILTER (WHERE status = 'running') AS running_runs
FROM runs

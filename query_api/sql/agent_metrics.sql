SELECT count(*)                                   AS total_runs,
       coalesce(sum(event_count), 0)              AS total_events,
       coalesce(sum(total_cost), 0)               AS total_cost,
       coalesce(avg(total_cost), 0)               AS avg_cost_per_run,
       coalesce(sum(tokens_in), 0)                AS total_tokens_in,
       coalesce(avg(tokens_in), 0)                AS avg_tokens_in,
       coalesce(sum(tokens_out), 0)               AS total_tokens_out,
       coalesce(avg(tokens_out), 0)               AS avg_tokens_out,
       coalesce(sum(end_ns - start_ns), 0) / 1e6  AS total_duration_ms,
       coalesce(avg(end_ns - start_ns), 0) / 1e6  AS avg_duration_ms,
       quantile_cont((end_ns - start_ns) / 1e6, [0.5, 0.95, 0.99]) AS duration_quantiles_ms,
       count(*) FILTER (WHERE status = 'completed') AS completed_runs,
       count(*) FILTER (WHERE status = 'failed')    AS failed_runs,
       count(*) FILTER (WHERE status = 'running')   AS running_runs,
       min(start_ns)                              AS first_seen_ns,
       max(end_ns)                                AS last_seen_ns
FROM runs
WHERE agent_name = $agent_name

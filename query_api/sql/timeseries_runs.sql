-- Per run, bucketed by run start: latency is the run's duration, error rate the share of failed runs.
SELECT start_ns // $bucket_ns * $bucket_ns                         AS bucket_ns,
       CASE WHEN $by_agent THEN agent_name END                     AS grp,
       count(*)                                                    AS runs,
       sum(event_count)                                            AS events,
       sum(tokens_in)                                              AS tokens_in,
       sum(tokens_out)                                             AS tokens_out,
       sum(total_cost)                                             AS cost,
       avg(CASE WHEN status = 'failed' THEN 1.0 ELSE 0.0 END)      AS error_rate,
       quantile_cont((end_ns - start_ns) / 1e6, [0.5, 0.95, 0.99]) AS latency_ms
FROM runs
WHERE start_ns >= $since_ns AND start_ns < $until_ns
  AND ($agent_name IS NULL OR agent_name = $agent_name)
GROUP BY ALL
ORDER BY grp NULLS FIRST, bucket_ns

-- Per model call, bucketed by call start: latency is the call's duration, error rate the share
-- of calls with error status.
SELECT start_ns // $bucket_ns * $bucket_ns                         AS bucket_ns,
       model                                                       AS grp,
       count(DISTINCT run_id)                                      AS runs,
       count(*)                                                    AS events,
       coalesce(sum(tokens_in), 0)                                 AS tokens_in,
       coalesce(sum(tokens_out), 0)                                AS tokens_out,
       coalesce(sum(cost), 0)                                      AS cost,
       avg(CASE WHEN status = 'error' THEN 1.0 ELSE 0.0 END)       AS error_rate,
       quantile_cont(duration_ns / 1e6, [0.5, 0.95, 0.99])         AS latency_ms
FROM events
WHERE model IS NOT NULL AND start_ns >= $since_ns AND start_ns < $until_ns
  AND ($agent_name IS NULL OR run_id IN (SELECT run_id FROM runs WHERE agent_name = $agent_name))
GROUP BY ALL
ORDER BY grp, bucket_ns

-- Newest first, keyset-paginated on (start_ns, run_id). Filters on events (model, name text) are
-- semi-joins bounded below by the time range, so zone maps on events.start_ns can prune.
SELECT run_id, agent_name, service_name, source, environment, status, start_ns, end_ns,
       event_count, error_count, tokens_in, tokens_out, cache_read_tokens, cache_write_tokens,
       reasoning_tokens, total_cost, session_id, user_id
FROM runs
WHERE ($agent_name IS NULL OR agent_name = $agent_name)
  AND ($status IS NULL OR status = $status)
  AND ($source IS NULL OR source = $source)
  AND ($session_id IS NULL OR session_id = $session_id)
  AND ($user_id IS NULL OR user_id = $user_id)
  AND start_ns >= $since_ns AND start_ns < $until_ns
  AND ($min_cost IS NULL OR total_cost >= $min_cost)
  AND ($min_duration_ns IS NULL OR end_ns - start_ns >= $min_duration_ns)
  AND ($after_start_ns IS NULL OR start_ns < $after_start_ns
       OR (start_ns = $after_start_ns AND run_id < $after_run_id))
  AND ($model IS NULL OR run_id IN (
        SELECT run_id FROM events WHERE start_ns >= $since_ns AND model = $model))
  AND ($text IS NULL OR run_id IN (
        SELECT run_id FROM events WHERE start_ns >= $since_ns AND contains(lower(name), lower($text))))
ORDER BY start_ns DESC, run_id DESC
LIMIT $limit

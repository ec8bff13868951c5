SELECT run_id, agent_name, service_name, source, environment, status, start_ns, end_ns,
       event_count, error_count, tokens_in, tokens_out, cache_read_tokens, cache_write_tokens,
       reasoning_tokens, total_cost, session_id, user_id
FROM runs
WHERE agent_name = $agent_name AND ($status IS NULL OR status = $status)
ORDER BY start_ns DESC, run_id DESC
LIMIT $limit OFFSET $offset

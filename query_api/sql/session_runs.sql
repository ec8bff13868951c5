SELECT run_id, agent_name, service_name, source, environment, status, start_ns, end_ns,
       event_count, error_count, tokens_in, tokens_out, cache_read_tokens, cache_write_tokens,
       reasoning_tokens, total_cost, session_id, user_id
FROM runs
WHERE session_id = $session_id
ORDER BY start_ns, run_id

-- Bounded by the run's time range so zone maps skip row groups, as in run_events.sql.
SELECT run_id, event_id, parent_event_id, event_type, name, agent_name, start_ns, end_ns, duration_ns,
       status, status_message, model, provider, tokens_in, tokens_out, tokens_total,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, cost, cost_source, tool_name,
       tool_call_id, session_id, user_id, convention, source, input, output, attributes
FROM events
WHERE run_id = $run_id AND parent_event_id = $event_id AND start_ns BETWEEN $start_ns AND $end_ns
ORDER BY start_ns, event_id

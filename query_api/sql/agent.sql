SELECT agent_name, first_seen_ns, last_seen_ns, total_runs, total_events, total_cost,
       tokens_in, tokens_out, failed_runs
FROM agents
WHERE agent_name = $agent_name

-- Event ids are unique per run only (span ids may repeat across traces): every run holding it.
SELECT r.run_id, r.start_ns, r.end_ns
FROM runs r
WHERE r.run_id IN (SELECT run_id FROM events WHERE event_id = $event_id)
ORDER BY r.start_ns, r.run_id

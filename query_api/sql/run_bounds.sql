SELECT min(start_ns) AS first_ns, max(start_ns) AS last_ns
FROM runs
WHERE start_ns >= $since_ns AND start_ns < $until_ns

-- Statements behind the queue-state metrics (taskq_core.repository.observability).

-- name: queue_stats_lock
-- One replica at a time exports the queue state: the holder of this session lock.
SELECT pg_try_advisory_lock(hashtext('taskq.queue_stats')) AS acquired;

-- name: queue_stats
-- retrying: taskq.retrying_counts (migration 0015), as GET /task-types counts it.
SELECT t.task_type, m.queue_length, m.queue_visible_length,
       coalesce(m.oldest_msg_age_sec, 0) AS oldest_age_seconds,
       coalesce(r.retrying, 0) AS retrying, t.max_rps, t.paused,
       taskq.allowed_rate(b) AS allowed_rps
FROM taskq.task_types AS t
CROSS JOIN LATERAL pgmq.metrics(t.queue_name) AS m
LEFT JOIN taskq.rate_buckets AS b ON b.task_type = t.task_type
LEFT JOIN taskq.retrying_counts AS r ON r.task_type = t.task_type
ORDER BY t.task_type;

-- name: dlq_stats
SELECT queue_length, coalesce(oldest_msg_age_sec, 0) AS oldest_age_seconds
FROM pgmq.metrics(%(dlq)s);

-- name: host_circuit_stats
-- The breakers behind taskq_host_circuit_state: hosts not closed, and closed
-- ones called within the last hour, at most 100 (hosts not closed first), so
-- the metric's host label stays bounded however many hosts tasks target.
SELECT host,
       CASE WHEN state = 'open' AND open_until <= clock_timestamp() THEN 'half_open'
            ELSE state END AS state,
       times_opened
FROM taskq.host_circuits
WHERE state <> 'closed' OR updated_at > clock_timestamp() - interval '1 hour'
ORDER BY state = 'closed', updated_at DESC
LIMIT 100;

-- Statements behind the queue-state metrics (taskq_core.repository.observability).

-- name: queue_stats_lock
-- One replica at a time exports the queue state: the holder of this session lock.
SELECT pg_try_advisory_lock(hashtext('taskq.queue_stats')) AS acquired;

-- name: queue_stats
SELECT t.task_type, m.queue_length, m.queue_visible_length,
       coalesce(m.oldest_msg_age_sec, 0) AS oldest_age_seconds,
       coalesce(r.retrying, 0) AS retrying, t.max_rps, t.paused,
       taskq.allowed_rate(b) AS allowed_rps
FROM taskq.task_types AS t
CROSS JOIN LATERAL pgmq.metrics(t.queue_name) AS m
LEFT JOIN taskq.rate_buckets AS b ON b.task_type = t.task_type
LEFT JOIN (
    SELECT task_type, count(*) AS retrying
    FROM taskq.task_status
    WHERE status = 'pending' AND attempt > 0
    GROUP BY task_type
) AS r ON r.task_type = t.task_type
ORDER BY t.task_type;

-- name: dlq_stats
SELECT queue_length, coalesce(oldest_msg_age_sec, 0) AS oldest_age_seconds
FROM pgmq.metrics(%(dlq)s);

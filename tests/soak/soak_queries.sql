-- What the soak reads at the end of a run to count lost and stuck messages.

-- name: soak_status_counts
SELECT status, count(*) AS messages FROM taskq.task_status GROUP BY status;

-- name: soak_not_delivered
SELECT task_id::text AS task_id, payload_id, status, attempt, error
FROM taskq.task_status
WHERE status <> 'success'
ORDER BY task_id, payload_id
LIMIT 20;

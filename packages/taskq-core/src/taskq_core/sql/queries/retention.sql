-- Statements of the retention job (taskq_core.repository.retention), run by
-- one worker replica at a time, in small batches of short transactions.

-- name: retention_lock
-- The replica holding this session lock runs retention; the others skip it.
SELECT pg_try_advisory_lock(hashtext('taskq.retention')) AS acquired;

-- name: retention_unlock
-- Given back before the connection closes: a closed connection's backend
-- releases its locks only once it has exited, after close() returned, so the
-- next replica (or round) could find the lock still taken.
SELECT pg_advisory_unlock(hashtext('taskq.retention'));

-- name: retention_limits
-- A batch never waits long for a lock: retention yields to traffic (the
-- connection's statement_timeout, DB_STATEMENT_TIMEOUT, bounds its run time).
SELECT set_config('lock_timeout', '1s', true);

-- name: delete_expired_statuses
-- The oldest expirable rows first, off the partial index task_status_expirable
-- (same predicate). SKIP LOCKED: rows an outcome write or a cancel holds wait
-- for the next round instead of making this one wait.
WITH doomed AS (
    SELECT task_id, payload_id
    FROM taskq.task_status
    WHERE (status IN ('success', 'cancelled') OR (status = 'failed' AND dlq_message_id IS NULL))
      AND updated_at < %(before)s
    ORDER BY updated_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM taskq.task_status AS s
USING doomed AS d
WHERE s.task_id = d.task_id AND s.payload_id = d.payload_id
RETURNING s.task_id;

-- name: delete_emptied_tasks
-- A listed task whose last status row just went leaves the listing too.
DELETE FROM taskq.tasks AS t
WHERE t.task_id = ANY(%(task_ids)s::uuid[])
  AND NOT EXISTS (SELECT 1 FROM taskq.task_status AS s WHERE s.task_id = t.task_id);

-- name: forget_idle_hosts
-- Closed circuit breakers of hosts no call reached since `before` (hosts come
-- from whatever URLs tasks name, so the table would otherwise only grow). A
-- host called again simply starts a new row.
DELETE FROM taskq.host_circuits
WHERE host IN (
    SELECT host FROM taskq.host_circuits
    WHERE state = 'closed' AND updated_at < %(before)s
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
);

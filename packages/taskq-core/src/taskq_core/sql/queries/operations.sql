-- Statements of the day-2 operations routes (taskq_core.repository.operations):
-- listing, cancelling, pausing, browsing and purging the DLQ.
--
-- Optional filters are written `(%(x)s IS NULL OR ...)`. The repository runs
-- these statements unprepared, so PostgreSQL plans each one with its actual
-- values, folds the absent filters away and picks the index of the present
-- ones (tests/integration/test_api_listing_plans.py checks the plans).

-- name: list_tasks
-- Newest first, keyset-paginated on (created_at, task_id): a page reads its
-- tasks off one index in order and stops at LIMIT, however many tasks there
-- are. The counts come from each listed task's own status rows (primary key
-- prefix). The success filter (common: most tasks have successes) is applied
-- to those counts, row by row in index order, never as a join the planner
-- could turn into a hash of the whole status table. Other statuses are listed
-- by list_tasks_in_status.
SELECT t.task_id, t.task_type, t.item_id, t.payload_count, t.created_at,
       c.pending, c.success, c.failed, c.cancelled
FROM taskq.tasks AS t
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE s.status = 'pending') AS pending,
           count(*) FILTER (WHERE s.status = 'success') AS success,
           count(*) FILTER (WHERE s.status = 'failed') AS failed,
           count(*) FILTER (WHERE s.status = 'cancelled') AS cancelled
    FROM taskq.task_status AS s
    WHERE s.task_id = t.task_id
) AS c
WHERE (%(task_type)s::text IS NULL OR t.task_type = %(task_type)s::text)
  AND (%(item_id)s::text IS NULL OR t.item_id = %(item_id)s::text)
  AND (%(created_after)s::timestamptz IS NULL OR t.created_at >= %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR t.created_at < %(created_before)s::timestamptz)
  AND (%(after_created_at)s::timestamptz IS NULL
       OR (t.created_at, t.task_id) < (%(after_created_at)s::timestamptz, %(after_task_id)s::uuid))
  AND (%(status)s::text IS DISTINCT FROM 'success' OR c.success > 0)
ORDER BY t.created_at DESC, t.task_id DESC
LIMIT %(limit)s;

-- name: list_tasks_in_status
-- GET /tasks?status=pending|failed|cancelled: a loose index scan over
-- task_status_unsettled_newest. Each step is one descent of the index to the next
-- older task with a row in that status (ORDER BY ... LIMIT 1: always an index
-- scan, whatever the estimates), so a page costs LIMIT descents however many
-- rows the table, or a task, has. The walk starts from the cursor's position
-- (no cursor: after the newest possible row) and skips that start (OFFSET 1),
-- so the first row is found by the same step as every other. The counts repeat
-- list_tasks' for now: sharing them takes a SQL function or view, that is a
-- migration (an inlinable SQL function keeps the per-task index lookup).
WITH RECURSIVE walk AS (
    SELECT coalesce(%(after_created_at)s::timestamptz, 'infinity') AS created_at,
           coalesce(%(after_task_id)s::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff') AS task_id
    UNION ALL
    SELECT next.created_at, next.task_id
    FROM walk AS w
    CROSS JOIN LATERAL (
            SELECT s.created_at, s.task_id
            FROM taskq.task_status AS s
            WHERE s.status = %(status)s::text
              AND (%(task_type)s::text IS NULL OR s.task_type = %(task_type)s::text)
              AND (%(item_id)s::text IS NULL OR s.item_id = %(item_id)s::text)
              AND (%(created_after)s::timestamptz IS NULL OR s.created_at >= %(created_after)s::timestamptz)
              AND (%(created_before)s::timestamptz IS NULL OR s.created_at < %(created_before)s::timestamptz)
              AND (s.created_at, s.task_id) < (w.created_at, w.task_id)
            ORDER BY s.created_at DESC, s.task_id DESC
            LIMIT 1
    ) AS next
)
SELECT t.task_id, t.task_type, t.item_id, t.payload_count, t.created_at,
       c.pending, c.success, c.failed, c.cancelled
FROM (SELECT * FROM walk OFFSET 1 LIMIT %(limit)s) AS f
JOIN taskq.tasks AS t ON t.task_id = f.task_id
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE s.status = 'pending') AS pending,
           count(*) FILTER (WHERE s.status = 'success') AS success,
           count(*) FILTER (WHERE s.status = 'failed') AS failed,
           count(*) FILTER (WHERE s.status = 'cancelled') AS cancelled
    FROM taskq.task_status AS s
    WHERE s.task_id = t.task_id
) AS c
ORDER BY f.created_at DESC, f.task_id DESC;

-- name: task_exists
SELECT EXISTS (
    SELECT 1 FROM taskq.task_status
    WHERE task_id = %(task_id)s AND (%(message_id)s::bigint IS NULL OR message_id = %(message_id)s::bigint)
) AS present;

-- name: cancel_messages
SELECT message_id, cancelled FROM taskq.cancel_messages(%(task_id)s, %(message_id)s::bigint);

-- name: set_task_type_paused
-- The NOTIFY ('*': configuration changed) makes every worker re-read the task
-- types at once instead of at its next periodic refresh.
WITH changed AS (
    UPDATE taskq.task_types
    SET paused = %(paused)s, updated_at = now()
    WHERE task_type = %(task_type)s
    RETURNING task_type
)
SELECT changed.task_type FROM changed, (SELECT pg_notify('taskq_work', '*')) AS notified;

-- name: task_type_figures
-- Configuration and live figures of every type. in_flight: invisible messages
-- that are not waiting for a retry (read by a worker, call under way or
-- buffered). effective_rps: successes over the last minute, read off the
-- expirable index (its predicate includes status = 'success'). allowed_rps:
-- the rate the shared bucket refills at now (migration 0013), NULL unlimited.
-- retrying: taskq.retrying_counts (migration 0015), as the queue metrics count it.
SELECT t.task_type, t.max_rps, t.paused, t.created_at, t.updated_at,
       t.delivery_defaults::text AS defaults, t.max_concurrency,
       CASE WHEN t.snoozed_until > clock_timestamp() THEN t.snoozed_until END AS snoozed_until,
       t.signing_secrets IS NOT NULL AS signed, t.min_rps,
       -- as in get_task_type: paced_until only while rate-limit headers hold the type down
       CASE WHEN b.paced_until > clock_timestamp()
                 AND (b.paced_rps IS NULL OR b.paced_rps < b.rate)
            THEN b.paced_until END AS paced_until,
       m.queue_length AS backlog, m.queue_visible_length AS visible,
       coalesce(m.oldest_msg_age_sec, 0) AS oldest_age_seconds,
       coalesce(r.retrying, 0) AS retrying,
       coalesce(d.dead, 0) AS dlq_depth,
       coalesce(e.succeeded, 0) / 60.0 AS effective_rps,
       taskq.allowed_rate(b) AS allowed_rps, t.adaptive
FROM taskq.task_types AS t
CROSS JOIN LATERAL pgmq.metrics(t.queue_name) AS m
LEFT JOIN taskq.rate_buckets AS b ON b.task_type = t.task_type
LEFT JOIN taskq.retrying_counts AS r ON r.task_type = t.task_type
LEFT JOIN (
    SELECT task_type, count(*) AS dead
    FROM taskq.task_status
    WHERE status = 'failed' AND dlq_message_id IS NOT NULL
    GROUP BY task_type
) AS d ON d.task_type = t.task_type
LEFT JOIN (
    SELECT task_type, count(*) AS succeeded
    FROM taskq.task_status
    WHERE status = 'success' AND updated_at > now() - interval '1 minute'
    GROUP BY task_type
) AS e ON e.task_type = t.task_type
ORDER BY t.task_type;

-- name: dlq_page
SELECT msg_id, enqueued_at, message::text AS message, headers::text AS headers
FROM taskq.dlq_page(%(dlq)s, %(filter)s::jsonb, %(before)s::bigint, %(limit)s);

-- name: take_dead_letters
SELECT msg_id, message
FROM taskq.take_dead_letters(%(dlq)s, %(filter)s::jsonb, %(ids)s::bigint[], %(limit)s);

-- name: delete_dead_letters
SELECT msg_id, task_id, payload_id
FROM taskq.delete_dead_letters(%(dlq)s, %(filter)s::jsonb, %(ids)s::bigint[],
                               %(before)s::timestamptz, %(limit)s);

-- name: forget_dead_letters
-- Their dead letters are gone: the failed rows become expirable (retention
-- deletes them STATUS_RETENTION from now) and are no longer reprocessable.
UPDATE taskq.task_status AS s
SET dlq_message_id = NULL, updated_at = now()
FROM unnest(%(task_ids)s::uuid[], %(payload_ids)s::integer[], %(dlq_ids)s::bigint[])
     AS u(task_id, payload_id, dlq_message_id)
WHERE s.task_id = u.task_id AND s.payload_id = u.payload_id
  AND s.status = 'failed' AND s.dlq_message_id = u.dlq_message_id;

-- name: requeue_messages
SELECT message_id
FROM pgmq.send_batch(%(queue)s, %(messages)s::jsonb[]) WITH ORDINALITY AS s(message_id, position)
ORDER BY position;

-- name: mark_requeued
-- A null payload keeps the stored one (no data override).
UPDATE taskq.task_status AS s
SET status = 'pending', attempt = 0, snoozes = 0, error = '', http_status = NULL, duration_ms = NULL,
    message_id = u.message_id, dlq_message_id = NULL, updated_at = now(),
    payload = coalesce(u.payload, s.payload)
FROM unnest(%(task_ids)s::uuid[], %(payload_ids)s::integer[], %(message_ids)s::bigint[],
            %(payloads)s::jsonb[])
     AS u(task_id, payload_id, message_id, payload)
WHERE s.task_id = u.task_id AND s.payload_id = u.payload_id AND s.status = 'failed';

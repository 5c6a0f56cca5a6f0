-- Read-only inspection used by the test suite (kept here so that every SQL
-- statement lives in one place).

-- name: test_statuses
SELECT task_id::text AS task_id, payload_id, message_id, status, error, attempt, http_status,
       duration_ms, dlq_message_id, scheduled_for, snoozes
FROM taskq.task_status
WHERE task_id = %(task_id)s::uuid
ORDER BY payload_id;

-- name: test_queue_messages
SELECT msg_id, read_ct, message::text AS message
FROM pgmq.read(%(queue)s, 0, 10000);

-- name: test_queue_depth
SELECT queue_length, queue_visible_length FROM pgmq.metrics(%(queue)s);

-- name: test_schema_objects
SELECT c.relname AS name
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'taskq' AND c.relkind IN ('r', 'i', 'v')
UNION ALL
SELECT p.proname
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname = 'taskq'
ORDER BY 1;

-- name: test_applied_migrations
SELECT version FROM taskq.schema_migrations ORDER BY version;

-- name: test_burn_cpu
-- Keeps one backend busy on the CPU for a while (about a second here).
SELECT count(*) FROM generate_series(1, 20000000);

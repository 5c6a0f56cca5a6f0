-- Read-only inspection used by the test suite (kept here so that every SQL
-- statement lives in one place).

-- name: test_statuses
SELECT task_id::text AS task_id, payload_id, message_id, status, error, attempt, http_status,
       duration_ms, dlq_message_id
FROM taskq.task_status
WHERE task_id = %(task_id)s::uuid
ORDER BY payload_id;

-- name: test_queue_messages
SELECT msg_id, read_ct, message::text AS message
FROM pgmq.read(%(queue)s, 0, 10000);

-- name: test_queue_depth
SELECT queue_length, queue_visible_length FROM pgmq.metrics(%(queue)s);

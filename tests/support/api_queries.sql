-- Statements the API tests use to look inside the database and to play the
-- worker's part of moving failed messages to the DLQ.

-- name: test_queue_length
SELECT queue_length FROM pgmq.metrics(%(queue)s);

-- name: test_counts
SELECT (SELECT count(*) FROM taskq.task_status) AS statuses,
       (SELECT count(*) FROM taskq.task_types) AS task_types,
       (SELECT count(*) FROM pgmq.meta WHERE queue_name LIKE 'tq\_%%') AS queues;

-- name: test_take_all
SELECT msg_id, message::text FROM pgmq.read(%(queue)s, 300, 100000) ORDER BY msg_id;

-- name: test_send_all
SELECT message_id FROM pgmq.send_batch(%(queue)s, %(messages)s::jsonb[]) AS s(message_id);

-- name: test_mark_failed
UPDATE taskq.task_status AS s
SET status = 'failed', attempt = 3, error = 'HTTP 500', updated_at = now()
FROM unnest(%(message_ids)s::bigint[]) AS u(message_id)
WHERE s.message_id = u.message_id AND s.task_type = %(task_type)s;

-- name: test_delete_all
SELECT pgmq.delete(%(queue)s, %(message_ids)s::bigint[]);

-- name: test_statuses
SELECT status, attempt, message_id FROM taskq.task_status
WHERE task_id = %(task_id)s ORDER BY payload_id;

-- name: test_listen_work
LISTEN taskq_work;

-- name: test_stored_bytes
-- What a task's calls take as text: its queued messages plus its status rows' payloads.
SELECT (SELECT coalesce(sum(octet_length(message::text)), 0) FROM pgmq.read(%(queue)s, 0, 100000))
     + (SELECT coalesce(sum(octet_length(payload::text)), 0) FROM taskq.task_status) AS stored;

-- name: test_transactions
-- Transactions this database has seen (committed or not), for idle-cost tests.
-- The statistics reach this view within about a second of each transaction.
SELECT xact_commit + xact_rollback AS transactions
FROM pg_stat_database WHERE datname = current_database();
